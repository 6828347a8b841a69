"""The pass mark of a pre-registered comparison: a paired difference against twice its standard error.

Two arms run on the same seeds (same initial weights, batches and data); the difference of a metric
is taken seed by seed, d_s = on_s − off_s, and judged by its mean against the standard error of that
mean, SE = sd(d) / √n (sample standard deviation, ddof = 1):

    supported      mean d >  2·SE   (the arm "on" improves the metric)
    harmful        mean d < −2·SE   (it makes the metric worse)
    not supported  otherwise

For a metric where lower is better (forgetting, loss) the difference is taken the other way round
(`higher_is_better=False`), so that "supported" always means "the arm improves it". With n < 2 there
is no standard error and the verdict is "inconclusive". This is the rule written down before the
runs in docs/workspace.md ("Pre-registered tests"); it is a two-sided test at about the 5% level
for n ≥ 30 and a lenient one for n = 5 (a t-test would ask for 2.78·SE), which the docs say.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

SUPPORTED, NOT_SUPPORTED, HARMFUL, INCONCLUSIVE = "supported", "not supported", "harmful", "inconclusive"
MARK = 2.0
"""How many standard errors the mean paired difference must clear."""


@dataclass(frozen=True)
class PairedDifference:
    """mean and se of the seed-wise differences (oriented so that > 0 is an improvement), n
    seeds, and the verdict."""

    mean: float
    se: float | None
    n: int
    verdict: str

    def to_json(self) -> dict[str, object]:
        return {"mean": self.mean, "se": self.se, "n": self.n, "verdict": self.verdict}


def paired_difference(on: Sequence[float], off: Sequence[float], higher_is_better: bool = True) -> PairedDifference:
    """The verdict of arm `on` against arm `off`, both given seed by seed in the same order."""
    if len(on) != len(off) or not on:
        raise ValueError(f"paired arms need the same non-zero number of seeds; got {len(on)} and {len(off)}")
    sign = 1.0 if higher_is_better else -1.0
    differences = [sign * (a - b) for a, b in zip(on, off, strict=True)]
    if not all(math.isfinite(d) for d in differences):
        raise ValueError(f"paired differences must be finite; got {differences}")
    n = len(differences)
    mean = sum(differences) / n
    if n < 2:
        return PairedDifference(mean, None, n, INCONCLUSIVE)
    se = math.sqrt(sum((d - mean) ** 2 for d in differences) / (n - 1) / n)
    verdict = SUPPORTED if mean > MARK * se else HARMFUL if mean < -MARK * se else NOT_SUPPORTED
    return PairedDifference(mean, se, n, verdict)
