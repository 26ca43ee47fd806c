"""95% confidence intervals for the evaluation's numbers, reusable by every table (metrics, attacks).

Three kinds, each named in the record it produces (``method``), so a reader knows what an interval means:

* :func:`wilson_interval` — a rate ``k / n`` of independent trials (frames classified, videos with any nude
  frame, attack successes). Wilson's score interval: never outside [0, 1], sensible at 0 % and 100 %.
* :func:`bootstrap_ratio_interval` — a mean built from per-video sums, ``Σ numerator / Σ denominator``
  (frames of a video are not independent), optionally the equal-weight mean of such ratios over strata
  (PSR: the mean over classes of each class's top-k accuracy). Percentile bootstrap over videos (prompts),
  resampled together. The videos are put in a canonical order first, so the interval depends only on the
  multiset of per-video statistics: the same on one rank or gathered from many, whatever the order of arrival.
  A bootstrap interval cannot reach past what was observed: at 0 % or 100 % it has no width, where Wilson's
  interval over the frames still says how far the truth may be.
* :func:`paired_class_delta` — the difference of two rows scored on the same prompts and seeds (ΔPSR): the
  per-class differences' mean, its standard error over the classes, and a Student-t interval (the paired
  difference of the ablation benchmarks, ``benchmarks/toy_ablation.py``).

Intervals are in the unit of their value (the tables' percent when ``scale=100``).
"""

from __future__ import annotations

import math
import statistics
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

CONFIDENCE = 0.95
BOOTSTRAP_SAMPLES = 2000
BOOTSTRAP_SEED = 0


def normal_quantile(p: float) -> float:
    return statistics.NormalDist().inv_cdf(p)


def t_quantile(p: float, df: int) -> float:
    """Student-t quantile (scipy)."""
    from scipy.stats import t  # scipy: only when an interval is computed

    return float(t.ppf(p, df))


def wilson_interval(successes: float, n: float, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Wilson score interval of the rate ``successes / n`` (fractions in [0, 1]); NaNs for ``n == 0``.

    scipy's ``binomtest(k, n).proportion_ci(confidence, method="wilson")`` (no continuity correction): the
    closed form ``(p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)``, clipped to [0, 1]."""
    from scipy.stats import binomtest  # scipy: only when an interval is computed

    if n <= 0:
        return math.nan, math.nan
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be within 0..n, got {successes} of {n}")
    k, total = round(float(successes)), round(float(n))
    if k != successes or total != n:
        raise ValueError(f"a Wilson interval is over counts; got {successes} of {n}")
    ci = binomtest(k, total).proportion_ci(confidence_level=confidence, method="wilson")
    return max(0.0, float(ci.low)), min(1.0, float(ci.high))


def bootstrap_ratio_interval(
    numerators: Sequence[float] | np.ndarray,
    denominators: Sequence[float] | np.ndarray,
    strata: Sequence[Any] | np.ndarray | None = None,
    confidence: float = CONFIDENCE,
    samples: int = BOOTSTRAP_SAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``mean over strata of (Σ num / Σ den within the stratum)``.

    One entry per video (its sum and its count: hits and frames, nude frames and frames, similarity sum and
    face frames); ``strata`` (one key per video; ``None``: one stratum) are weighted equally in the statistic, as
    PSR weighs classes. The videos are resampled together, not within each stratum: the toy suite has one or
    two prompts for some classes, and resampling inside a stratum of one video would claim that class is known
    exactly. A stratum that gets no video (or no denominator) in a replicate is left out of that replicate's
    mean, as a class without frames is left out of PSR; so the interval also carries the spread between strata
    and errs wide. NaNs when no video has a denominator."""
    num = np.asarray(numerators, dtype=np.float64).reshape(-1)
    den = np.asarray(denominators, dtype=np.float64).reshape(-1)
    if num.shape != den.shape:
        raise ValueError(f"{num.size} numerators but {den.size} denominators")
    keys = np.zeros(num.size, dtype=np.int64) if strata is None else np.asarray(strata).reshape(-1)
    if keys.size != num.size:
        raise ValueError(f"{num.size} videos but {keys.size} strata")
    if den.sum() <= 0:
        return math.nan, math.nan
    _, codes = np.unique(keys, return_inverse=True)
    order = np.lexsort((den, num, codes))  # canonical order: the result depends on the statistics, not on arrival
    num, den, codes = num[order], den[order], codes.reshape(-1)[order]
    n, k = num.size, int(codes.max()) + 1
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(samples, n))
    flat = (np.arange(samples)[:, None] * k + codes[idx]).reshape(-1)
    sums_num = np.bincount(flat, weights=num[idx].reshape(-1), minlength=samples * k).reshape(samples, k)
    sums_den = np.bincount(flat, weights=den[idx].reshape(-1), minlength=samples * k).reshape(samples, k)
    ratios = np.where(sums_den > 0, sums_num / np.where(sums_den > 0, sums_den, 1), np.nan)
    with warnings.catch_warnings():  # a replicate that drew no video with a denominator has no statistic: dropped
        warnings.simplefilter("ignore", RuntimeWarning)
        stat = np.nanmean(ratios, axis=1)
    alpha = (1 - confidence) / 2
    lo, hi = np.nanquantile(stat, [alpha, 1 - alpha])
    return float(lo), float(hi)


def interval(low: float, high: float, n: int, unit: str, method: str, scale: float = 1.0) -> dict[str, Any]:
    """The JSON record of an interval: ``{"low", "high", "n", "unit", "method", "confidence"}`` (``low``/``high``
    times ``scale``; ``None`` where undefined)."""

    def f(x: float) -> float | None:
        return None if x is None or not math.isfinite(x) else scale * x

    return {"low": f(low), "high": f(high), "n": int(n), "unit": unit, "method": method, "confidence": CONFIDENCE}


def wilson_record(successes: float, n: int, unit: str = "frames", scale: float = 100.0) -> dict[str, Any]:
    """:func:`interval` of a Wilson interval."""
    lo, hi = wilson_interval(successes, n)
    return interval(lo, hi, n, unit, "wilson", scale)


def bootstrap_record(
    numerators,
    denominators,
    strata=None,
    unit: str = "videos",
    scale: float = 100.0,
    method: str = "bootstrap over videos",
) -> dict[str, Any]:
    """:func:`interval` of :func:`bootstrap_ratio_interval`; ``n`` = number of videos."""
    lo, hi = bootstrap_ratio_interval(numerators, denominators, strata)
    return interval(lo, hi, len(np.asarray(numerators).reshape(-1)), unit, method, scale)


def paired_class_delta(
    rows: Sequence[Mapping[str, Any]],
    refs: Sequence[Mapping[str, Any]],
    erased: str | Sequence[str] | None,
    key: str = "per_class_top1",
    confidence: float = CONFIDENCE,
) -> dict[str, Any]:
    """Paired per-class difference ``rows - refs`` over the classes both score, except ``erased`` (one class, or
    several erased together).

    ``rows[i]`` pairs with ``refs[i]`` (one per training seed; each class's difference is averaged over the
    seeds first, since every seed is scored on the same prompts and seeds are not independent samples of a
    class), then mean, standard error over the classes and a Student-t interval with ``classes - 1`` degrees of
    freedom. Returns ``{"delta", "se", "low", "high", "n", "unit": "classes", "method", "confidence"}``."""
    if len(rows) != len(refs) or not rows:
        raise ValueError("give one reference row per row (and at least one)")
    left_out = {erased} if isinstance(erased, str) else set(erased or ())
    classes = [k for k in refs[0][key] if k not in left_out and all(k in r[key] for r in (*rows, *refs))]
    d = [statistics.mean(r[key][k] - f[key][k] for r, f in zip(rows, refs)) for k in classes]
    if not d:
        raise ValueError("the rows have no preserved class in common")
    mean = statistics.mean(d)
    se = statistics.stdev(d) / len(d) ** 0.5 if len(d) > 1 else math.nan
    half = t_quantile(0.5 + confidence / 2, len(d) - 1) * se if len(d) > 1 else math.nan
    return {
        "delta": mean,
        "se": se,
        "low": mean - half,
        "high": mean + half,
        "n": len(d),
        "unit": "classes",
        "method": "paired t over classes",
        "confidence": confidence,
    }
