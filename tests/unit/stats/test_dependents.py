from ketch.stats.dependents import edges


class TestEdges:
    def test_kinds_are_recorded(self):
        manifest = {"dependencies": {"a": "^1", "@s/b": "2"}, "peerDependencies": {"a": "*"},
                    "optionalDependencies": {"c": "1"}, "devDependencies": {"d": "1"},
                    "bundleDependencies": ["a"]}
        assert edges(manifest) == [("a", "dependencies"), ("@s/b", "dependencies"), ("a", "peerDependencies"),
                                   ("c", "optionalDependencies")]

    def test_malformed_entries_are_skipped(self):
        assert edges({"dependencies": ["a"], "peerDependencies": "a", "optionalDependencies": None}) == []
        assert edges({"dependencies": {"": "1", "x" * 215: "1", "ok": "1"}}) == [("ok", "dependencies")]
        assert edges({}) == []
