"""Two-sample Kolmogorov–Smirnov test for the timing-oracle checks (catalogue C02); scipy is not a
test dependency, and these few lines match its results."""

from __future__ import annotations

import math


def ks_statistic(a: list[float], b: list[float]) -> float:
    """The largest distance between the two empirical distribution functions."""
    a, b = sorted(a), sorted(b)
    i = j = 0
    d = 0.0
    while i < len(a) and j < len(b):
        x = min(a[i], b[j])
        while i < len(a) and a[i] == x:
            i += 1
        while j < len(b) and b[j] == x:
            j += 1
        d = max(d, abs(i / len(a) - j / len(b)))
    return d


def ks_pvalue(d: float, n: int, m: int) -> float:
    """Asymptotic p-value of statistic ``d`` for samples of sizes n and m: the Kolmogorov
    distribution's tail, with Stephens' small-sample correction (Numerical Recipes' probks)."""
    en = math.sqrt(n * m / (n + m))
    lam = (en + 0.12 + 0.11 / en) * d
    if lam < 0.2:
        return 1.0
    total = sum(2 * (-1) ** (k - 1) * math.exp(-2 * k * k * lam * lam) for k in range(1, 101))
    return min(1.0, max(0.0, total))
