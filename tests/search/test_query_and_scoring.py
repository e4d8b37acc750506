"""The pure parts of search: qualifier parsing and the scoring functions (table-driven)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from ketch.search import scoring
from ketch.search.query import BadQuery, parse


def test_qualifiers_are_split_from_words():
    q = parse('Fast  HTTP author:"Jane Doe" maintainer:@bob scope:@babel keywords:a+b,c,-d not:deprecated '
              'is:unstable boost-exact:false node:fs')
    assert q.words == ["fast", "http", "node:fs"]  # unknown word:word stays text
    assert (q.author, q.maintainer, q.scope) == ("jane doe", "bob", "babel")
    assert q.keyword_groups == [["a", "b"], ["c"]] and q.keywords_excluded == ["d"]
    assert q.not_flags == {"deprecated"} and q.is_flags == {"unstable"} and q.boost_exact is False
    assert q.terms == ["fast", "http", "node", "fs"]


def test_not_wins_over_is():
    assert parse("x is:deprecated not:deprecated").is_flags == set()


@pytest.mark.parametrize("text", ["is:secure", "not:", "boost-exact:yes", "keywords:" + "k" * 51,
                                  "keywords:" + ",".join("k" * 11), "keywords:,"])
def test_bad_qualifiers(text):
    with pytest.raises(BadQuery):
        parse(text)


@pytest.mark.parametrize("a, b, distance", [
    ("axios", "axois", 1), ("lodash", "lodahs", 1), ("express", "expresss", 1), ("webpack", "webpak", 1),
    ("typescript", "typscript", 1), ("react", "preact", 1), ("moment", "mement", 1), ("abc", "xyz", 3),
])
def test_edit_distance(a, b, distance):
    assert scoring.edit_distance(a, b, 3) == distance


@pytest.mark.parametrize("text, name, kind", [
    ("react-router-dom", "react-router-dom", "exact"), ("React Router DOM", "react-router-dom", "exact"),
    ("core", "@babel/core", "short"), ("expre", "express", "prefix"), ("router react", "react-router", "words"),
    ("axois", "axios", "typo"), ("zebra", "express", "none"),
])
def test_name_score_kinds(text, name, kind):
    query = parse(text)
    assert scoring.name_score(query.text, query.terms, name)[1] == kind


def test_exact_match_is_pinned_unless_turned_off():
    assert scoring.final((1.0, "exact"), 0.1, 0.2, deprecated=False, boost_exact=True) > scoring.EXACT_BOOST
    assert scoring.final((1.0, "exact"), 0.1, 0.2, deprecated=False, boost_exact=False) < 10
    assert (scoring.final((0.6, "prefix"), 0.5, 0.5, deprecated=True, boost_exact=True)
            == pytest.approx(0.25 * scoring.final((0.6, "prefix"), 0.5, 0.5, deprecated=False, boost_exact=True)))


def test_scores_move_the_right_way():
    now = datetime(2026, 11, 1, tzinfo=timezone.utc)
    fresh = [now - timedelta(days=30 * i) for i in range(8)]
    stale = [now - timedelta(days=900 + 30 * i) for i in range(8)]
    assert scoring.maintenance(fresh, now, deprecated=False, finished=False) > 0.9
    assert scoring.maintenance(stale, now, deprecated=False, finished=False) < 0.3
    assert scoring.maintenance(stale, now, deprecated=False, finished=True) == 0.5
    assert scoring.maintenance(fresh, now, deprecated=True, finished=True) == 0.0
    assert scoring.popularity(0, 0, 10**6, 100) == 0.0
    assert scoring.popularity(30, 0, 10**6, 100) < scoring.popularity(10**4, 0, 10**6, 100) < 0.7
    assert scoring.popularity(10**6, 100, 10**6, 100) == 1.0
    full = {"license": "MIT", "repository": "x", "scripts": {"test": "jest"}, "types": "a.d.ts",
            "description": "d", "keywords": ["k"]}
    assert scoring.quality(full, "r" * 2000, False) == 1.0
    assert scoring.quality({"scripts": {"test": 'echo "Error: no test specified" && exit 1'}}, "", False) == 0.0
    assert scoring.weights(0, 0, 0) == scoring.weights(*scoring.DEFAULT_WEIGHTS)
