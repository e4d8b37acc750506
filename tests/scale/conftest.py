"""Scaled-out fixtures: Ketch nodes that share only a PostgreSQL database and an S3 bucket
(SeaweedFS), each with its own data dir — separate hosts in spirit."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from tests.integrity.conftest import KetchServer
from tests.support.databases import execute as _sql  # test modules import it from here
from tests.support.postgres import start_postgres
from tests.support.seaweed import ACCESS_KEY, REGION, SECRET_KEY, start_seaweed

SHARED_PG = "postgresql://postgres@127.0.0.1:5432"


class Node(KetchServer):
    """A Ketch node on a given database URL and S3 bucket (no database of its own)."""

    def __init__(self, base: Path, *, database_url: str, storage_url: str, s3_endpoint: str, workers: int = 1):
        self.base = base
        self.data_dir = base / "data"
        self.log_path = base / "server.log"
        self.workers = workers
        self.extra_env = {"AWS_ENDPOINT_URL": s3_endpoint, "AWS_ACCESS_KEY_ID": ACCESS_KEY,
                          "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_REGION": REGION}
        self.proc = None
        self.port = 0
        self.database = None
        self.database_url = database_url
        self.storage_url = storage_url

    def _db_args(self) -> list[str]:
        return ["--database-url", self.database_url, "--storage-url", self.storage_url]


@pytest.fixture(scope="module")
def seaweed(tmp_path_factory):
    endpoint, proc = start_seaweed(tmp_path_factory.mktemp("seaweed"))
    yield endpoint, proc
    proc.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, seaweed):
    """Two nodes on the machine's PostgreSQL (a fresh database) and one SeaweedFS bucket."""
    endpoint, _ = seaweed
    name = "ketch_scale_" + uuid.uuid4().hex[:10]
    try:
        asyncio.run(_sql(SHARED_PG + "/postgres", f'CREATE DATABASE "{name}"'))
    except OSError as exc:
        pytest.fail(f"PostgreSQL on 127.0.0.1:5432 is required for the scale-out tests: {exc}")
    storage = f"s3://ketch-scale/{name}"
    nodes = [Node(tmp_path_factory.mktemp(f"node{i}"), database_url=f"{SHARED_PG}/{name}", storage_url=storage,
                  s3_endpoint=endpoint, workers=2) for i in "ab"]
    try:
        for node in nodes:
            node.start()
        yield nodes
    finally:
        for node in nodes:
            node.stop()
        asyncio.run(_sql(SHARED_PG + "/postgres", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def private_stack(tmp_path):
    """One node on a private PostgreSQL and a private SeaweedFS, both of which tests may stop."""
    pg = start_postgres()
    endpoint, weed = start_seaweed(tmp_path / "seaweed")
    node = Node(tmp_path / "node", database_url=pg.url, storage_url="s3://ketch-fault/t", s3_endpoint=endpoint)
    try:
        node.start()
        yield node, pg, weed
    finally:
        node.stop()
        weed.stop()
        pg.cleanup()
