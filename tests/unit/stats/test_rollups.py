from datetime import date

from ketch.stats import counter, periods
from ketch.stats.services import roll_up

D1, D2 = date(2024, 5, 1), date(2024, 5, 2)


class TestRollUp:
    def test_sums_per_package_day_and_per_day(self):
        counts = {("a", "1.0.0", D1): 3, ("a", "2.0.0", D1): 4, ("a", "1.0.0", D2): 1,
                  ("@s/b", "1.0.0", D1): 10}
        packages, days = roll_up(counts)
        assert packages == {("a", D1): 7, ("a", D2): 1, ("@s/b", D1): 10}
        assert days == {D1: 17, D2: 1}
        assert sum(packages.values()) == sum(days.values()) == sum(counts.values())

    def test_empty(self):
        assert roll_up({}) == ({}, {})


class TestToRows:
    def test_version_comes_from_the_file_name(self):
        day = periods.day_number(D1)
        pending = {(day, "a", "a-1.0.0.tgz"): 2, (day, "@s/a-b", "a-b-1.0.0-beta.1.tgz"): 5,
                   (day + 1, "a", "a-1.0.0.tgz"): 1}
        assert counter.to_rows(pending) == {("a", "1.0.0", D1): 2, ("@s/a-b", "1.0.0-beta.1", D1): 5,
                                            ("a", "1.0.0", D2): 1}
