import gzip
import io
import json
import struct
import tarfile
import time
import tracemalloc
import zipfile
import zlib
from collections.abc import Iterable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ketch.registry.tarball import BadTarball, TarballInfo, inspect_tarball

MiB = 1024 * 1024
PKG = json.dumps({"name": "demo", "version": "1.0.0"}).encode()

Entry = tuple  # (name, data | None for a directory, optional tarfile type, optional extra kwargs)


def make_tar(entries: Iterable[Entry], fmt: int = tarfile.PAX_FORMAT, **open_kwargs: object) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt, **open_kwargs) as tf:  # type: ignore[call-overload]
        for entry in entries:
            name, data, *rest = entry
            kind = rest[0] if rest else (tarfile.DIRTYPE if data is None else tarfile.REGTYPE)
            extra = rest[1] if len(rest) > 1 else {}
            info = tarfile.TarInfo(name)
            info.type = kind
            info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
            for key, value in extra.items():
                setattr(info, key, value)
            if kind in (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE) and data is not None:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
            else:
                tf.addfile(info)
    return buf.getvalue()


def make_tgz(entries: Iterable[Entry], **kwargs: object) -> bytes:
    return gzip.compress(make_tar(entries, **kwargs), mtime=0)  # type: ignore[arg-type]


def honest_entries() -> list[Entry]:
    return [
        ("package", None),
        ("package/package.json", PKG),
        ("package/README.md", b"# demo\n\nHello \xe2\x9c\x93\n"),
        ("package/LICENSE", b"MIT"),
        ("package/npm-shrinkwrap.json", b"{}"),
        ("package/lib", None),
        ("package/lib/index.js", b"module.exports = 1\n"),
        ("package/lib/util/deep.js", b"exports.x = 2\n"),
        ("package/docs/README.md", b"nested readme, not the package readme"),
    ]


def bad(data: bytes, fragment: str, **kwargs: object) -> BadTarball:
    with pytest.raises(BadTarball) as info:
        inspect_tarball(data, **kwargs)  # type: ignore[arg-type]
    assert fragment in str(info.value), str(info.value)
    return info.value


# --- honest packages -------------------------------------------------------------


def test_honest_package() -> None:
    info = inspect_tarball(make_tgz(honest_entries()))
    assert isinstance(info, TarballInfo)
    assert info.package_json == {"name": "demo", "version": "1.0.0"}
    assert info.readme == "# demo\n\nHello \u2713\n"
    assert info.readme_filename == "README.md"
    assert info.files == frozenset(
        {
            "package.json",
            "README.md",
            "LICENSE",
            "npm-shrinkwrap.json",
            "lib/index.js",
            "lib/util/deep.js",
            "docs/README.md",
        }
    )
    assert info.file_count == 7
    assert info.unpacked_size == sum(len(e[1]) for e in honest_entries() if e[1] is not None)
    assert info.has_shrinkwrap


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT])
def test_formats(fmt: int) -> None:
    info = inspect_tarball(make_tgz(honest_entries(), fmt=fmt))
    assert info.file_count == 7


def test_minimal_package_without_directory_entries() -> None:
    info = inspect_tarball(make_tgz([("package/package.json", PKG)]))
    assert info.files == frozenset({"package.json"})
    assert info.readme is None and info.readme_filename is None
    assert not info.has_shrinkwrap
    assert info.unpacked_size == len(PKG)


@pytest.mark.parametrize("root", ["package", "demo", "node-tar-root", "."])
def test_any_single_root_directory(root: str) -> None:
    info = inspect_tarball(make_tgz([(f"{root}/package.json", PKG), (f"{root}/a/b.js", b"")]))
    assert info.files == frozenset({"package.json", "a/b.js"})


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT])
def test_long_names(fmt: int) -> None:
    deep = "package/" + "/".join(["d" * 50] * 8) + "/file.js"
    unicode_name = "package/lib/\u00fcber-\u6587\u4ef6.js"
    info = inspect_tarball(
        make_tgz([("package/package.json", PKG), (deep, b"x"), (unicode_name, b"y")], fmt=fmt)
    )
    assert deep.removeprefix("package/") in info.files
    assert unicode_name.removeprefix("package/") in info.files


def test_package_json_with_bom_and_big_numbers() -> None:
    raw = b"\xef\xbb\xbf" + b'{"name":"x","version":"1.0.0","n":123456789012345678901234567890}'
    info = inspect_tarball(make_tgz([("package/package.json", raw)]))
    assert info.package_json["name"] == "x"


def test_multi_member_gzip_is_accepted() -> None:
    tar = make_tar(honest_entries())
    half = len(tar) // 2
    data = gzip.compress(tar[:half]) + gzip.compress(tar[half:])
    assert inspect_tarball(data).file_count == 7


def test_global_pax_header_from_git_archive_is_accepted() -> None:
    data = make_tgz(honest_entries(), pax_headers={"comment": "0123456789abcdef"})
    assert inspect_tarball(data).file_count == 7


def test_bytearray_and_memoryview_input() -> None:
    data = make_tgz(honest_entries())
    assert inspect_tarball(bytearray(data)).file_count == 7  # type: ignore[arg-type]
    assert inspect_tarball(memoryview(data)).file_count == 7  # type: ignore[arg-type]


# --- README selection ------------------------------------------------------------


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (["README", "README.md", "readme.txt"], "README.md"),
        (["readme.md", "README.md"], "README.md"),
        (["readme.markdown", "README", "README.txt"], "readme.markdown"),
        (["README", "README.txt"], "README"),
        (["Readme.rst"], "Readme.rst"),
        (["readme"], "readme"),
        (["READMEFIRST.txt", "notes.md"], None),
        (["docs/README.md"], None),
    ],
)
def test_readme_choice(names: list[str], expected: str | None) -> None:
    entries: list[Entry] = [("package/package.json", PKG)]
    entries += [(f"package/{n}", n.encode()) for n in names]
    info = inspect_tarball(make_tgz(entries))
    assert info.readme_filename == expected
    assert info.readme == (expected.encode().decode() if expected else None)


def test_readme_is_capped_and_decoded_with_replacement() -> None:
    body = b"\xff\xfe bad bytes " + "\u00e9".encode() * MiB  # 2 MiB plus, cut mid-character
    info = inspect_tarball(make_tgz([("package/package.json", PKG), ("package/README.md", body)]))
    assert info.readme is not None
    assert info.readme.startswith("\ufffd\ufffd bad bytes \u00e9")
    assert len(info.readme) <= MiB  # capped on the raw bytes: 1 MiB of input at most
    assert info.readme.endswith("\u00e9")  # the character cut in half by the cap is dropped
    assert info.unpacked_size == len(PKG) + len(body)


def test_readme_directory_is_ignored() -> None:
    info = inspect_tarball(
        make_tgz([("package/package.json", PKG), ("package/readme", None), ("package/readme/x", b"")])
    )
    assert info.readme is None


# --- gzip layer --------------------------------------------------------------------


def test_not_gzip() -> None:
    bad(make_tar(honest_entries()), "not gzip")
    bad(b"", "not gzip")
    bad(b"PK\x03\x04", "not gzip")


def _zip_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("package/package.json", PKG)
    return buf.getvalue()


def test_zip_is_refused() -> None:
    bad(_zip_bytes(), "not gzip")


def test_gzipped_zip_is_refused() -> None:
    bad(gzip.compress(_zip_bytes()), "does not contain a tar archive")


def test_gzip_of_random_text_is_refused() -> None:
    bad(gzip.compress(b"hello world\n" * 100), "does not contain a tar archive")


@pytest.mark.parametrize("cut", [1, 4, 8, 9, 100])
def test_truncated_gzip(cut: int) -> None:
    data = make_tgz(honest_entries())
    bad(data[:-cut], "truncated")


def test_truncated_gzip_header_only() -> None:
    bad(b"\x1f\x8b", "truncated")


def test_corrupt_gzip_checksum() -> None:
    data = bytearray(make_tgz(honest_entries()))
    data[-8] ^= 0xFF  # CRC32 in the trailer
    bad(bytes(data), "corrupt")


def test_corrupt_deflate_data() -> None:
    data = bytearray(make_tgz(honest_entries()))
    for i in range(20, 40):
        data[i] ^= 0x55
    with pytest.raises(BadTarball):
        inspect_tarball(bytes(data))


@pytest.mark.parametrize("tail", [b"x", b"\x00", b"\x00" * 1024, b"PK\x05\x06" + bytes(18), b"\x1f"])
def test_trailing_bytes_after_gzip(tail: bytes) -> None:
    bad(make_tgz(honest_entries()) + tail, "trailing data")


def test_trailing_partial_gzip_member() -> None:
    bad(make_tgz(honest_entries()) + b"\x1f\x8b\x08", "truncated")


# --- tar stream layer --------------------------------------------------------------


def test_data_after_tar_end_is_refused() -> None:
    bad(gzip.compress(make_tar(honest_entries()) + b"junk"), "after the end of the tar archive")


def test_tar_zip_polyglot_is_refused() -> None:
    bad(gzip.compress(make_tar(honest_entries()) + _zip_bytes()), "after the end of the tar archive")


def test_zero_padding_after_tar_end_is_fine() -> None:
    assert inspect_tarball(gzip.compress(make_tar(honest_entries()) + bytes(100_000))).file_count == 7


def test_tar_without_end_marker_is_fine() -> None:
    tar = make_tar([("package/package.json", PKG)])
    body_end = 512 + 512 * ((len(PKG) + 511) // 512)
    assert inspect_tarball(gzip.compress(tar[:body_end])).file_count == 1


@pytest.mark.parametrize("where", ["header", "data"])
def test_truncated_tar(where: str) -> None:
    tar = make_tar([("package/package.json", PKG), ("package/big.js", b"a" * 5000)])
    cut = 1024 + 200 if where == "header" else 1024 + 512 + 1000
    bad(gzip.compress(tar[:cut]), "truncated")


def test_corrupt_second_header_is_refused() -> None:
    tar = bytearray(make_tar([("package/package.json", PKG), ("package/x.js", b"x")]))
    tar[1024 + 10] ^= 0xFF  # second header's name, checksum no longer matches
    bad(gzip.compress(bytes(tar)), "corrupt tar header")


def test_empty_archives() -> None:
    bad(gzip.compress(b""), "empty")
    bad(gzip.compress(bytes(10240)), "empty")


# --- member rules ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("/etc/passwd", "absolute path"),
        ("/package/x.js", "absolute path"),
        ("C:/package/x.js", "absolute path"),
        ("package/../../etc/passwd", "'..'"),
        ("package/lib/../x.js", "'..'"),
        ("../package/x.js", "'..'"),
        ("package\\..\\..\\x.js", "backslash"),
        ("package/lib\\x.js", "backslash"),
        ("package//x.js", "not normalized"),
        ("package/./x.js", "not normalized"),
        ("package/x\n.js", "control character"),
        ("package/x\x1b[31m.js", "control character"),
    ],
)
def test_bad_paths(name: str, fragment: str) -> None:
    bad(make_tgz([("package/package.json", PKG), (name, b"x")]), fragment)


def test_nul_in_pax_path() -> None:
    entry = ("package/x.js", b"x", tarfile.REGTYPE, {"pax_headers": {"path": "package/a\x00b.js"}})
    bad(make_tgz([("package/package.json", PKG), entry]), "NUL")


def test_non_utf8_name() -> None:
    entries = [("package/package.json", PKG), ("package/\udcff.js", b"x")]
    bad(make_tgz(entries, fmt=tarfile.GNU_FORMAT, errors="surrogateescape"), "not valid UTF-8")
    bad(make_tgz(entries, fmt=tarfile.PAX_FORMAT, errors="surrogateescape"), "UTF-8")


def test_path_too_long() -> None:
    bad(make_tgz([("package/package.json", PKG), ("package/" + "a" * 5000, b"x")]), "longer than")


@pytest.mark.parametrize(
    ("kind", "fragment"),
    [
        (tarfile.SYMTYPE, "link"),
        (tarfile.LNKTYPE, "link"),
        (tarfile.CHRTYPE, "device or FIFO"),
        (tarfile.BLKTYPE, "device or FIFO"),
        (tarfile.FIFOTYPE, "device or FIFO"),
        (b"V", "unsupported entry type"),
        (b"Z", "unsupported entry type"),
    ],
)
def test_bad_entry_types(kind: bytes, fragment: str) -> None:
    entry = ("package/evil", None, kind, {"linkname": "package/package.json"})
    bad(make_tgz([("package/package.json", PKG), entry]), fragment)


def test_symlink_to_outside_is_refused_even_with_a_harmless_name() -> None:
    entry = ("package/README.md", None, tarfile.SYMTYPE, {"linkname": "/etc/passwd"})
    bad(make_tgz([("package/package.json", PKG), entry]), "link")


def test_multiple_roots() -> None:
    bad(make_tgz([("package/package.json", PKG), ("other/x.js", b"")]), "single top-level directory")


def test_file_at_top_level() -> None:
    bad(make_tgz([("package.json", PKG)]), "outside the package directory")
    bad(make_tgz([("package/package.json", PKG), ("package", b"x")]), "outside the package directory")


@pytest.mark.parametrize("path", ["package/package.json", "package/lib/x.js"])
def test_duplicate_paths(path: str) -> None:
    entries = [("package/package.json", PKG), ("package/lib/x.js", b"1"), (path, b'{"name":"evil"}')]
    bad(make_tgz(entries), "more than once")


def test_file_used_as_directory() -> None:
    bad(
        make_tgz([("package/package.json", PKG), ("package/lib", b"x"), ("package/lib/x.js", b"")]),
        "both as a file",
    )
    bad(
        make_tgz([("package/package.json", PKG), ("package/lib/x.js", b""), ("package/lib", b"x")]),
        "both as a file",
    )
    bad(
        make_tgz([("package/package.json", PKG), ("package/lib", None), ("package/lib", b"x")]),
        "both as a file",
    )
    bad(
        make_tgz([("package/package.json", PKG), ("package/a/b", b""), ("package/a/b/c/d", b"")]),
        "both as a file",
    )


def test_directory_with_data_is_refused() -> None:
    bad(
        make_tgz([("package/package.json", PKG), ("package/lib", None, tarfile.DIRTYPE, {"size": 512})]),
        "has data",
    )


def test_repeated_directory_entries_are_fine() -> None:
    info = inspect_tarball(make_tgz([("package", None), ("package/package.json", PKG), ("package", None)]))
    assert info.file_count == 1


def test_too_many_files() -> None:
    entries = [("package/package.json", PKG)] + [(f"package/f{i}.js", b"") for i in range(20)]
    bad(make_tgz(entries), "more than 10 entries", max_files=10)
    assert inspect_tarball(make_tgz(entries), max_files=21).file_count == 21


def test_sparse_file_is_refused() -> None:
    bad(make_tgz([("package/package.json", PKG), ("package/s", b"", tarfile.GNUTYPE_SPARSE)]), "sparse")


def test_pax_header_too_large() -> None:
    entry = ("package/x.js", b"x", tarfile.REGTYPE, {"pax_headers": {"comment": "a" * 100_000}})
    bad(make_tgz([("package/package.json", PKG), entry]), "extended header larger than")


def _raw_header(name: bytes, kind: bytes, size: int) -> bytes:
    info = tarfile.TarInfo(name.decode())
    info.type = kind
    info.size = size
    return info.tobuf(format=tarfile.USTAR_FORMAT)


def pax_record(key: str, value: str) -> bytes:
    payload = f" {key}={value}\n".encode()
    length = len(payload) + 1
    if len(str(length)) + len(payload) != length:
        length += 1
    return str(length).encode() + payload


def test_pax_record_helper() -> None:
    assert pax_record("path", "x") == b"9 path=x\n"
    assert pax_record("comment", "a" * 90) == b"102 comment=" + b"a" * 90 + b"\n"


def test_quadratic_pax_header_is_fast() -> None:
    # CVE-2024-6232 shape: one long run of digits in a PAX header.
    body = b"1" * 60_000
    tar = _raw_header(b"././@PaxHeader", tarfile.XHDTYPE, len(body)) + body + bytes(-len(body) % 512)
    tar += make_tar([("package/package.json", PKG)])
    start = time.perf_counter()
    bad(gzip.compress(tar), "malformed PAX header")
    assert time.perf_counter() - start < 0.05


@pytest.mark.parametrize(
    "body",
    [
        b"5 a=b\n",  # length too small
        b"99 path=x\n",  # length past the end
        b"10 path=x\nx",  # leftover garbage
        b"x path=y\n",
        b"11 path=x\x00\n",  # length mismatch
        b"8 =xyz\n\n",  # empty key
        b"9 pathx\n\n",  # no '='
        pax_record("path", "package/a") + pax_record("path", "package/b"),  # repeated key
        b"27 GNU.sparse.size=1000000\n",
        b"14 size=12x34\n",
    ],
)
def test_malformed_pax_records(body: bytes) -> None:
    tar = _raw_header(b"././@PaxHeader", tarfile.XHDTYPE, len(body)) + body + bytes(-len(body) % 512)
    tar += make_tar([("package/package.json", PKG)])
    with pytest.raises(BadTarball):
        inspect_tarball(gzip.compress(tar))


def test_global_pax_header_may_not_set_path() -> None:
    body = pax_record("path", "package/evil")
    tar = _raw_header(b"pax_global_header", tarfile.XGLTYPE, len(body)) + body + bytes(-len(body) % 512)
    tar += make_tar([("package/package.json", PKG)])
    bad(gzip.compress(tar), "global PAX header")


def test_conflicting_gnu_and_pax_names() -> None:
    long_name = ("package/" + "l" * 150).encode() + b"\x00"
    pax = b"22 path=package/other\n"
    tar = _raw_header(b"././@LongLink", tarfile.GNUTYPE_LONGNAME, len(long_name)) + long_name
    tar += bytes(-len(long_name) % 512)
    tar += _raw_header(b"././@PaxHeader", tarfile.XHDTYPE, len(pax)) + pax + bytes(-len(pax) % 512)
    tar += _raw_header(b"package/short", tarfile.REGTYPE, 0)
    tar += make_tar([("package/package.json", PKG)])
    bad(gzip.compress(tar), "conflicting")


def test_extended_header_at_end_is_refused() -> None:
    body = b"18 path=package/x\n"
    tar = make_tar([("package/package.json", PKG)])[:1024]
    tar += _raw_header(b"././@PaxHeader", tarfile.XHDTYPE, len(body)) + body + bytes(-len(body) % 512)
    bad(gzip.compress(tar + bytes(1024)), "ends after an extended header")


# --- package.json rules --------------------------------------------------------------


@pytest.mark.parametrize(
    ("entries", "fragment"),
    [
        ([("package/index.js", b"")], "no package.json"),
        ([("package/lib/package.json", PKG)], "no package.json"),
        ([("package/Package.json", PKG)], "no package.json"),
        ([("package/package.json", None), ("package/package.json/x", PKG)], "no package.json"),
        ([("package/package.json", b"{" + b" " * MiB + b"}")], "larger than"),
        ([("package/package.json", b"{not json")], "not valid JSON"),
        ([("package/package.json", b"")], "not valid JSON"),
        ([("package/package.json", b"[1, 2]")], "JSON object"),
        ([("package/package.json", b'"name"')], "JSON object"),
        ([("package/package.json", b"null")], "JSON object"),
        ([("package/package.json", b'{"name": "\xff"}')], "UTF-8"),
        ([("package/package.json", '{"name":"x"}'.encode("utf-16"))], "UTF-8"),
        ([("package/package.json", b'{"v": NaN}')], "not valid JSON"),
        ([("package/package.json", b'{"v": 1e400}')], "not valid JSON"),
        ([("package/package.json", b'{"v": "\\ud800"}')], "not valid JSON"),
        ([("package/package.json", b"[" * 100_000 + b"]" * 100_000)], "not valid JSON"),
    ],
)
def test_bad_package_json(entries: list[Entry], fragment: str) -> None:
    bad(make_tgz(entries), fragment)


def test_package_json_symlink_is_refused() -> None:
    entry = ("package/package.json", None, tarfile.SYMTYPE, {"linkname": "../../etc/passwd"})
    bad(make_tgz([entry]), "link")


# --- size limits and gzip bombs -----------------------------------------------------------

_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"


def gzip_of_zeros(n_mib: int, prefix: bytes = b"") -> bytes:
    """A valid single-member gzip of *prefix* + *n_mib* MiB of zeros, built cheaply.

    Each MiB of zeros compresses, after a full flush, to the same block of deflate
    data, so the stream is one compressed MiB repeated rather than 1 GiB compressed.
    """
    chunk = bytes(MiB)
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = comp.compress(prefix) + comp.flush(zlib.Z_FULL_FLUSH)
    block = comp.compress(chunk) + comp.flush(zlib.Z_FULL_FLUSH)
    tail = comp.flush(zlib.Z_FINISH)
    crc = zlib.crc32(prefix)
    for _ in range(n_mib):
        crc = zlib.crc32(chunk, crc)
    size = (len(prefix) + n_mib * MiB) & 0xFFFFFFFF
    return _GZIP_HEADER + head + block * n_mib + tail + struct.pack("<II", crc, size)


def test_gzip_of_zeros_helper_is_honest() -> None:
    assert gzip.decompress(gzip_of_zeros(3, b"abc")) == b"abc" + bytes(3 * MiB)


@pytest.fixture(scope="module")
def bomb() -> bytes:
    data = gzip_of_zeros(1024)  # 1 GiB of zeros in about 1 MiB
    assert len(data) < 2 * MiB
    return data


def _measure(data: bytes, **kwargs: object) -> tuple[BadTarball, float, int]:
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(BadTarball) as info:
            inspect_tarball(data, **kwargs)  # type: ignore[arg-type]
        elapsed = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return info.value, elapsed, peak


def test_gzip_bomb_default_cap(bomb: bytes) -> None:
    err, elapsed, peak = _measure(bomb)
    assert "unpacks to more than" in str(err)
    assert elapsed < 10  # inflating 256 MiB of zeros; about 1 s on an idle machine
    assert peak < 8 * MiB  # nothing like the 256 MiB cap, let alone 1 GiB


def test_gzip_bomb_small_cap_fails_fast(bomb: bytes) -> None:
    err, elapsed, peak = _measure(bomb, max_unpacked=4 * MiB)
    assert "unpacks to more than 4194304 bytes" in str(err)
    assert elapsed < 0.5
    assert peak < 8 * MiB


def test_gzip_bomb_behind_an_honest_header(bomb: bytes) -> None:
    # A file that declares 100 MiB (under the cap) but the stream keeps going.
    header = _raw_header(b"package/big.bin", tarfile.REGTYPE, 100 * MiB)
    data = gzip_of_zeros(300, prefix=make_tar([("package/package.json", PKG)])[:1024] + header)
    err, _, peak = _measure(data, max_unpacked=128 * MiB)
    assert "unpacks to more than" in str(err)
    assert peak < 8 * MiB


def test_declared_size_over_cap_is_refused_before_reading() -> None:
    header = _raw_header(b"package/huge.bin", tarfile.REGTYPE, 2 * 1024 * MiB)
    err, elapsed, _ = _measure(gzip_of_zeros(1, prefix=header))
    assert "larger than" in str(err)
    assert elapsed < 0.5


def test_total_unpacked_size_cap() -> None:
    entries = [("package/package.json", PKG)] + [(f"package/f{i}.bin", bytes(MiB)) for i in range(5)]
    data = make_tgz(entries)
    bad(data, "unpacks to more than", max_unpacked=3 * MiB)
    assert inspect_tarball(data, max_unpacked=6 * MiB).unpacked_size == 5 * MiB + len(PKG)


def test_too_many_gzip_members() -> None:
    empty = gzip.compress(b"", mtime=0)
    start = time.perf_counter()
    bad(empty * 1_000_000, "gzip members")
    assert time.perf_counter() - start < 0.5


def test_many_small_gzip_members() -> None:
    # Concatenated members are legal gzip; the cap still applies across all of them.
    member = gzip.compress(bytes(MiB))
    bad(member * 20, "unpacks to more than", max_unpacked=10 * MiB)


# --- fuzzing ---------------------------------------------------------------------------

_HONEST_TAR = make_tar(honest_entries())
_HONEST_TGZ = gzip.compress(_HONEST_TAR, mtime=0)
_FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _only_bad_tarball(data: bytes) -> None:
    try:
        result = inspect_tarball(data, max_unpacked=4 * MiB, max_files=1000)
    except BadTarball as e:
        assert str(e)
    else:
        assert isinstance(result, TarballInfo)
        assert "package.json" in result.files


@_FUZZ
@given(st.binary(max_size=4096))
def test_fuzz_random_bytes(data: bytes) -> None:
    _only_bad_tarball(data)


@_FUZZ
@given(st.binary(max_size=4096))
def test_fuzz_gzip_of_random_bytes(data: bytes) -> None:
    _only_bad_tarball(gzip.compress(data))
    _only_bad_tarball(b"\x1f\x8b" + data)


def _mutate(base: bytes, edits: list[tuple[int, int]], cut: int | None) -> bytes:
    out = bytearray(base)
    for pos, value in edits:
        out[pos % len(out)] = value
    return bytes(out[:cut] if cut is not None else out)


_EDITS = st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), max_size=12)
_CUT = st.none() | st.integers(min_value=0, max_value=len(_HONEST_TAR))


@_FUZZ
@given(_EDITS, _CUT)
def test_fuzz_mutated_tar(edits: list[tuple[int, int]], cut: int | None) -> None:
    _only_bad_tarball(gzip.compress(_mutate(_HONEST_TAR, edits, cut)))


@_FUZZ
@given(_EDITS, st.none() | st.integers(min_value=0, max_value=len(_HONEST_TGZ)))
def test_fuzz_mutated_tgz(edits: list[tuple[int, int]], cut: int | None) -> None:
    _only_bad_tarball(_mutate(_HONEST_TGZ, edits, cut))


@_FUZZ
@given(
    st.lists(
        st.tuples(
            st.text(st.characters(codec="utf-8"), min_size=0, max_size=40),
            st.sampled_from(
                [
                    tarfile.REGTYPE,
                    tarfile.AREGTYPE,
                    tarfile.DIRTYPE,
                    tarfile.SYMTYPE,
                    tarfile.LNKTYPE,
                    b"7",
                    b"x",
                ]
            ),
            st.binary(max_size=64),
        ),
        max_size=6,
    ),
    st.sampled_from([tarfile.PAX_FORMAT, tarfile.GNU_FORMAT]),
)
def test_fuzz_structured_entries(members: list[tuple[str, bytes, bytes]], fmt: int) -> None:
    entries: list[Entry] = [("package/package.json", PKG)]
    for name, kind, data in members:
        entries.append((name, data, kind) if kind != tarfile.DIRTYPE else (name, None))
    try:
        data = make_tgz(entries, fmt=fmt)
    except (ValueError, tarfile.TarError, UnicodeError):
        return  # tarfile cannot write this one
    _only_bad_tarball(data)
