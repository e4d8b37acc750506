"""`GET /-/v1/search` through the app: npm's response shape, qualifiers, paging, bad parameters,
private packages, and that every package write shows in the index at once (it commits with it).

Every test uses fresh words (``unique``) in names and descriptions, so the shared registry's other
packages never match its searches.
"""

from __future__ import annotations

from datetime import datetime

import pytest

README = "# Usage\n\n" + "Call the function with a string and it returns a promise. " * 40


def search(reg, text: str, user=None, **params):
    resp = reg.client.get("/-/v1/search", params={"text": text, **params}, headers=user.auth if user else {})
    return reg.assert_ok(resp, 200)


def names(result: dict) -> list[str]:
    return [o["package"]["name"] for o in result["objects"]]


def manifest(reg, name: str, version: str, **extra) -> dict:
    return reg.default_manifest(name, version, **extra)


@pytest.fixture(scope="module")
def word(reg) -> str:
    return reg.unique("zq").replace("-", "")


@pytest.fixture(scope="module")
def family(reg, alice, bob, word) -> dict[str, str]:
    """Five public packages sharing ``word``: a full-featured one, an unstable one, one maintained by
    bob, one keyworded for the qualifier tests, and one in alice's scope."""
    pkgs = {"main": word, "beta": f"{word}-beta", "bobs": f"{word}-tools", "kw": f"{word}-parser",
            "scoped": f"@{alice.name}/{word}-scoped"}
    reg.publish_ok(alice, pkgs["main"], "2.1.0", readme=README, manifest=manifest(
        reg, pkgs["main"], "2.1.0", description=f"Fast {word} promises for every runtime",
        keywords=["http", "server", word], repository={"type": "git", "url": "git+https://example.test/x.git"},
        author="Jane Doe <jane@example.test>", scripts={"test": "node test.js"}, types="index.d.ts"))
    reg.publish_ok(alice, pkgs["beta"], "0.3.0", manifest=manifest(reg, pkgs["beta"], "0.3.0",
                                                                   description=f"An early {word} experiment"))
    reg.publish_ok(bob, pkgs["bobs"], "1.0.0", manifest=manifest(reg, pkgs["bobs"], "1.0.0",
                                                                 description=f"Tools around {word}", keywords=["cli"]))
    reg.publish_ok(alice, pkgs["kw"], "1.0.0", manifest=manifest(reg, pkgs["kw"], "1.0.0",
                                                                 description=f"Parse {word} files",
                                                                 keywords=["http", "parser"]))
    reg.publish_ok(alice, pkgs["scoped"], "1.0.0", manifest=manifest(reg, pkgs["scoped"], "1.0.0",
                                                                     description=f"Scoped {word} helpers"))
    return pkgs


def test_response_has_npms_shape(reg, alice, family):
    result = search(reg, family["main"])
    assert set(result) == {"objects", "total", "time"}
    assert result["total"] == 5
    datetime.fromisoformat(result["time"])
    first = result["objects"][0]
    package = first["package"]
    assert package["name"] == family["main"] and package["version"] == "2.1.0"
    assert package["scope"] == "unscoped"
    assert package["keywords"][:2] == ["http", "server"]
    assert package["description"].startswith("Fast ")
    datetime.fromisoformat(package["date"])
    assert package["links"]["npm"].endswith(f"/package/{family['main']}")
    assert package["links"]["repository"] == "git+https://example.test/x.git"
    assert package["publisher"]["username"] == alice.name
    assert [m["username"] for m in package["maintainers"]] == [alice.name]
    assert package["author"]["name"] == "Jane Doe" and package["license"] == "MIT"
    assert first["searchScore"] == first["score"]["final"] > 100000  # an exact name match is pinned
    detail = first["score"]["detail"]
    assert set(detail) == {"quality", "popularity", "maintenance"}
    assert all(0 <= v <= 1 for v in detail.values())
    assert detail["quality"] > 0.9  # README, license, repository, tests, types, keywords
    assert first["flags"] == {"insecure": 0}
    by_name = {o["package"]["name"]: o for o in result["objects"]}
    assert by_name[family["beta"]]["flags"]["unstable"] is True
    assert by_name[family["scoped"]]["package"]["scope"] == alice.name
    assert by_name[family["beta"]]["score"]["detail"]["quality"] < detail["quality"]


def test_exact_name_first_then_prefix_and_typo(reg, family):
    assert names(search(reg, family["kw"]))[0] == family["kw"]
    assert names(search(reg, family["main"].upper()))[0] == family["main"]  # case and punctuation ignored
    assert names(search(reg, f"{family['main']} parser"))[0] == family["kw"]
    assert family["kw"] in names(search(reg, family["kw"][:-2]))  # prefix
    typo = family["main"][:-3] + family["main"][-2] + family["main"][-3] + family["main"][-1]  # swapped letters
    assert names(search(reg, typo))[0] == family["main"]
    assert names(search(reg, f"{family['main']} boost-exact:false"))  # still found without the pin
    assert search(reg, f"{family['main']} boost-exact:false")["objects"][0]["searchScore"] < 100000


def test_qualifiers(reg, alice, bob, family, word):
    assert names(search(reg, f"{word} maintainer:{bob.name}")) == [family["bobs"]]
    assert set(names(search(reg, f"{word} author:{alice.name}"))) == set(family.values()) - {family["bobs"]}
    assert names(search(reg, f"{word} author:jane@example.test")) == [family["main"]]
    assert names(search(reg, f'{word} author:"jane doe"')) == [family["main"]]
    assert names(search(reg, f"{word} scope:{alice.name}")) == [family["scoped"]]
    assert set(names(search(reg, f"{word} keywords:parser,cli"))) == {family["kw"], family["bobs"]}
    assert names(search(reg, f"{word} keywords:http+parser")) == [family["kw"]]
    assert names(search(reg, f"{word} keywords:http,-parser")) == [family["main"]]
    assert names(search(reg, f"{word} is:unstable")) == [family["beta"]]
    assert family["beta"] not in names(search(reg, f"{word} not:unstable"))
    assert len(names(search(reg, f"{word} not:unstable"))) == 4
    # qualifiers alone: every match, best scores first
    only = search(reg, f"maintainer:{bob.name} keywords:cli")
    assert names(only) == [family["bobs"]] and only["total"] == 1


def test_paging_and_weights(reg, family, word):
    everything = names(search(reg, word, size=250))
    assert len(everything) == 5
    pages = [names(search(reg, word, size=2, **{"from": start})) for start in (0, 2, 4)]
    assert sum(pages, []) == everything
    assert search(reg, word, size=2)["total"] == 5
    assert names(search(reg, word, quality=1, popularity=0, maintenance=0))[0] == family["main"]


@pytest.mark.parametrize("params, mentions", [
    ({"size": "251"}, "size"), ({"size": "0"}, "size"), ({"size": "ten"}, "size"),
    ({"from": "-1"}, "from"), ({"from": "10001"}, "from"), ({"quality": "2"}, "quality"),
    ({"popularity": "nan"}, "popularity"), ({"text": "x is:shiny"}, "is:shiny"),
    ({"text": "x boost-exact:maybe"}, "boost-exact"), ({"text": "author:"}, "author"),
    ({"text": "keywords:" + ",".join(f"k{i}" for i in range(11))}, "keywords"),
    ({"text": "x" * 600}, "text"),
])
def test_bad_parameters_are_clear_400s(reg, params, mentions):
    reg.assert_error(reg.client.get("/-/v1/search", params={"text": "x", **params}), 400, contains=mentions)


def test_empty_query_finds_nothing(reg, family):
    for text in ("", "   "):
        result = search(reg, text)
        assert result["objects"] == [] and result["total"] == 0


def test_private_packages_only_for_readers(reg, alice, bob):
    word = reg.unique("pv").replace("-", "")  # its own word: no public package may match the query
    carol = reg.signup("carol")
    mine = f"@{alice.name}/{word}-secret"
    reg.publish_ok(alice, mine, "1.0.0", access="restricted",
                   manifest=manifest(reg, mine, "1.0.0", description=f"{word} internal secret"))
    org = reg.unique("org")
    reg.assert_ok(reg.client.put(f"/-/org/{org}", headers=alice.auth), 200, 201)
    reg.assert_ok(reg.client.put(f"/-/org/{org}/user", json={"user": bob.name, "role": "developer"},
                                 headers=alice.auth), 200, 201)
    team = f"@{org}/{word}-teamonly"
    reg.publish_ok(alice, team, "1.0.0", access="restricted",
                   manifest=manifest(reg, team, "1.0.0", description=f"{word} internal secret"))
    query = f"{word} secret"
    assert set(names(search(reg, query, alice))) == {mine, team}
    assert names(search(reg, query, bob)) == [team]  # the org's developers team may read it
    assert names(search(reg, query, carol)) == []
    assert names(search(reg, query)) == []
    assert mine not in names(search(reg, mine))  # not even by exact name
    assert names(search(reg, mine, alice))[0] == mine


def test_index_follows_publish_deprecate_unpublish_and_access(reg, alice):
    word = reg.unique("lc").replace("-", "")
    name = f"{word}-lifecycle"
    assert search(reg, name)["total"] == 0
    reg.publish_ok(alice, name, "1.0.0")
    assert names(search(reg, name))[0] == name
    reg.publish_ok(alice, name, "1.1.0", manifest=manifest(reg, name, "1.1.0", keywords=["fresh"]))
    top = search(reg, name)["objects"][0]
    assert top["package"]["version"] == "1.1.0" and top["package"]["keywords"] == ["fresh"]
    doc = reg.doc(name, write=True)
    for version in doc["versions"].values():
        version["deprecated"] = "gone fishing"
    reg.assert_ok(reg.put_json("/" + name, doc, alice), 200, 201)
    deprecated = search(reg, name)["objects"][0]
    assert deprecated["flags"]["deprecated"] == "gone fishing"  # still found by its exact name
    assert deprecated["score"]["detail"]["maintenance"] == 0
    assert name not in names(search(reg, f"{name} not:deprecated"))
    assert names(search(reg, f"{word} is:deprecated")) == [name]
    rev = reg.doc(name)["_rev"]
    reg.assert_ok(reg.client.delete(f"/{name}/-rev/{rev}", headers=alice.auth), 200)
    assert search(reg, name)["total"] == 0


def test_reindex_rebuilds_a_lost_index_with_fresh_downloads(reg, alice):
    """`ketch reindex` restores every row from the packages tables and reads downloads anew (they
    change without any publish). Last in this module: it empties the index first."""
    import asyncio

    from sqlalchemy import text
    from typer.testing import CliRunner

    from ketch import cli
    from ketch.db import Database
    from ketch.stats import periods, services as stats

    word = reg.unique("rx").replace("-", "")
    popular, quiet = f"{word}-popular", f"{word}-quiet"
    reg.publish_ok(alice, popular, "1.0.0")
    reg.publish_ok(alice, quiet, "1.0.0")
    assert search(reg, word)["objects"][0]["downloads"]["weekly"] == 0
    yesterday = periods.last_days(7, periods.today()).end

    async def wipe_and_count() -> None:
        db = Database(reg.settings.resolved_database_url)
        try:
            async with db.write() as session:
                for table in ("search_documents", "search_fts", "search_names"):
                    await session.execute(text(f"DELETE FROM {table}"))
                await stats.add_downloads(db, session, {(popular, "1.0.0", yesterday): 5000})
        finally:
            await db.dispose()

    asyncio.run(wipe_and_count())
    assert search(reg, word)["total"] == 0
    result = CliRunner().invoke(cli.app, ["reindex", "--data-dir", str(reg.settings.data_dir)])
    assert result.exit_code == 0, result.output
    assert "reindexed" in result.output
    found = search(reg, word)["objects"]
    assert [o["package"]["name"] for o in found] == [popular, quiet]  # downloads decide between equals
    assert found[0]["downloads"]["weekly"] == 5000 and found[0]["score"]["detail"]["popularity"] > 0
    assert found[1]["score"]["detail"]["popularity"] == 0
