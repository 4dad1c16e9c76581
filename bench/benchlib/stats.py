"""Medians, spreads and ratios, formatted for the tables."""

import math
import statistics


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def spread(xs):
    return (min(xs), max(xs)) if xs else (float("nan"), float("nan"))


def fmt(x, digits=1):
    if x != x:  # NaN
        return "–"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    if abs(x) >= 100:
        return f"{x:.0f}"
    return f"{x:.{digits}f}"


def with_spread(xs, digits=1):
    """`median (min–max)`; just the median for a single value."""
    if not xs:
        return "–"
    m = fmt(median(xs), digits)
    if len(xs) == 1:
        return m
    lo, hi = spread(xs)
    return f"{m} ({fmt(lo, digits)}–{fmt(hi, digits)})"


def ratio(a, b):
    if a != a or b != b or b == 0:
        return float("nan")
    return a / b


def fmt_ratio(r):
    if r != r:
        return "–"
    return f"×{r:.2f}" if r < 10 else f"×{r:.0f}"


def first_last(xs, n=10):
    """Median of the first n and of the last n values of a series."""
    return median(xs[:n]), median(xs[-n:])


def median_ci(xs, level=0.95):
    """A distribution-free confidence interval of the median: the order
    statistics x_(k) and x_(n+1-k) for the largest k such that fewer than k
    of n values fall below the median with probability at most (1-level)/2.
    (min, max) when n is too small for `level`."""
    xs = sorted(xs)
    n = len(xs)
    if n == 0:
        return float("nan"), float("nan")
    tail, k, below = (1 - level) / 2, 0, 0.0
    while True:
        below += math.comb(n, k) / 2**n  # P(exactly k of n below the median)
        if below > tail:
            break
        k += 1
    k = max(k, 1)
    return xs[k - 1], xs[n - k]
