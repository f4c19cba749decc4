"""Output statistics for silent-failure detection, and the domain thresholds that turn them into findings.

Cost is bounded: every statistic comes from a sample of at most 10,000 elements drawn with a fixed
seed (the same data always gives the same stats), gathered by index, so a 512 MB array is never
scanned. The one larger read is ``vocab_utilization`` (see ``_vocab_utilization``).

Keys per entry: dtype, shape, total_elements, samples_used, mean, std, min, max (over finite
sampled values; null when there are none or the data is not numeric), null_ratio (NaN/None share of
the sample; 0 for integer and bool data), unique_count and top1_fraction (exact distinct non-null
sampled values, and the share of the most common one), entropy (Shannon entropy in bits, NaN
removed: over exact distinct values for integers, bools and strings; for floats over a histogram of
1024 equal-width bins spanning the 0.1th-99.9th percentile of the sample, outer values clipped into
the end bins, so continuous data reads at most 10 bits and one outlier cannot squash the rest into
one bin), vocab_utilization (only when the schema gives ``vocab_size``, else null).
"""

from __future__ import annotations

import math
import sys
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from stage_sdk.findings import Finding, Severity

SAMPLE_SIZE = 10_000
SEED = 0x601DF15
FLOAT_BINS = 1024
VOCAB_SCAN_MAX = 1_000_000


def _sample(arr: np.ndarray, n: int = SAMPLE_SIZE, seed: int = SEED) -> np.ndarray:
    """At most ``n`` elements, deterministic, without a pass over the array."""
    total = int(arr.size)
    if total <= n:
        return np.asarray(arr).reshape(-1)
    idx = np.random.default_rng(seed).choice(total, size=n, replace=False)
    idx.sort()  # sequential access pattern, which matters for memory-mapped arrays
    if arr.flags.c_contiguous:
        return np.asarray(arr.reshape(-1)[idx])
    return np.asarray(arr[np.unravel_index(idx, arr.shape)])


def _entropy_counts(counts: np.ndarray) -> float:
    total = counts.sum()
    if total <= 0:
        return 0.0
    p = counts[counts > 0] / total
    return float(max(0.0, -(p * np.log2(p)).sum()))


def _float_entropy(finite: np.ndarray) -> float:
    if finite.size == 0:
        return 0.0
    lo, hi = np.percentile(finite, [0.1, 99.9])
    if not hi > lo:
        _, counts = np.unique(finite, return_counts=True)
        return _entropy_counts(counts)
    hist, _ = np.histogram(np.clip(finite, lo, hi), bins=FLOAT_BINS, range=(float(lo), float(hi)))
    return _entropy_counts(hist)


def _num(value: Any) -> float | None:
    v = float(value)
    return v if math.isfinite(v) else None


def _vocab_utilization(arr: np.ndarray, vocab_size: int) -> float | None:
    """Share of ids 0..vocab_size-1 that occur.

    Exact over the whole array up to 1,000,000 elements; above that over a deterministic sample of
    min(1,000,000, max(10,000, 4 x vocab_size)) elements, which sees every id of a uniformly used
    vocabulary with ~98% probability, at a cost bounded by the sample, not the array.
    """
    if arr.dtype.kind not in "iu" or vocab_size <= 0:
        return None
    total = int(arr.size)
    n = total if total <= VOCAB_SCAN_MAX else min(VOCAB_SCAN_MAX, max(SAMPLE_SIZE, 4 * vocab_size))
    values = _sample(arr, n, seed=SEED + 1)
    values = values[(values >= 0) & (values < vocab_size)]
    if values.size == 0:
        return 0.0
    used = np.count_nonzero(np.bincount(values.astype(np.int64), minlength=vocab_size))
    return used / vocab_size


def array_stats(arr: Any, *, vocab_size: int | None = None) -> dict[str, Any]:
    """Stats of one array (anything ``np.asarray`` accepts; memory maps stay lazily mapped)."""
    a = arr if isinstance(arr, np.ndarray) else np.asarray(arr)
    sample = _sample(a)
    out: dict[str, Any] = {
        "dtype": str(a.dtype),
        "shape": [int(d) for d in a.shape],
        "mean": None,
        "std": None,
        "min": None,
        "max": None,
        "samples_used": int(sample.size),
        "total_elements": int(a.size),
        "entropy": 0.0,
        "null_ratio": 0.0,
        "unique_count": 0,
        "top1_fraction": None,
        "vocab_utilization": None,
    }
    if sample.size == 0:
        return out
    kind = a.dtype.kind
    if kind in "biuf":
        values = sample.astype(np.float64) if kind == "f" else sample
        nulls = np.isnan(values) if kind == "f" else np.zeros(values.shape, dtype=bool)
        present = values[~nulls]
        out["null_ratio"] = float(nulls.mean()) if kind == "f" else 0.0
        finite = present[np.isfinite(present)] if kind == "f" else present.astype(np.float64)
        if finite.size:
            out.update(mean=_num(finite.mean()), std=_num(finite.std()), min=_num(finite.min()),
                       max=_num(finite.max()))
        uniques, counts = np.unique(present, return_counts=True)
        out["unique_count"] = int(uniques.size)
        out["top1_fraction"] = float(counts.max() / present.size) if present.size else None
        out["entropy"] = _float_entropy(finite) if kind == "f" else _entropy_counts(counts)
        if vocab_size is not None:
            out["vocab_utilization"] = _vocab_utilization(a, int(vocab_size))
        return out
    # Strings, objects, datetimes, complex: exact distinct values; None/NaN/NaT are nulls.
    items = sample.tolist()
    present_items = [v for v in items if not _is_null(v)]
    out["null_ratio"] = 1.0 - len(present_items) / len(items)
    counter = Counter(_hashable(v) for v in present_items)
    if counter:
        counts_arr = np.fromiter(counter.values(), dtype=np.int64)
        out["unique_count"] = len(counter)
        out["top1_fraction"] = float(counts_arr.max() / len(present_items))
        out["entropy"] = _entropy_counts(counts_arr)
    return out


def _is_null(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    pd = sys.modules.get("pandas")
    if pd is not None:  # pd.NA, NaT and friends (pandas is loaded whenever such values exist)
        result = pd.isna(value)
        return result if isinstance(result, bool) else False
    try:
        return bool(value != value)  # NaN-likes compare unequal to themselves
    except Exception:
        return False


def _hashable(value: Any) -> Any:
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return value


def table_stats(columns: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Per-column stats, keyed by column name."""
    return {str(name): array_stats(np.asarray(values)) for name, values in columns.items()}


# ------------------------------------------------------------------------------------ domain checks


@dataclass(frozen=True)
class Threshold:
    stat: str
    bound: Literal["min", "max"]
    limit: float
    severity: Severity


# Applied on top of the always-on sanity checks below; a domain threshold on the same stat
# replaces the default one.
PRESETS: dict[str, tuple[Threshold, ...]] = {
    "default": (
        Threshold("null_ratio", "max", 0.5, "warning"),
        Threshold("entropy", "min", 0.1, "warning"),
    ),
    "nlp_tokenizer": (
        Threshold("entropy", "min", 6.0, "error"),
        Threshold("vocab_utilization", "min", 0.7, "warning"),
        Threshold("null_ratio", "max", 0.01, "error"),
    ),
    "image_embeddings": (
        Threshold("entropy", "min", 8.0, "warning"),
        Threshold("null_ratio", "max", 0.001, "error"),
    ),
    "tabular_features": (
        Threshold("null_ratio", "max", 0.05, "error"),
        Threshold("top1_fraction", "max", 0.5, "warning"),
    ),
}


def thresholds_for(domain: str) -> list[Threshold]:
    chosen = {t.stat: t for t in PRESETS["default"]}
    for t in PRESETS.get(domain, ()):
        chosen[t.stat] = t
    return list(chosen.values())


def _entropy_checkable(stats: Mapping[str, Any], limit: float) -> bool:
    """Entropy below ``limit`` bits only means something when the sample could reach it.

    A sample of n values reads at most log2(n) bits, so a threshold is applied once the sample is
    comfortably larger than 2**limit (4x) and the output has more than 100 elements.
    """
    return stats.get("total_elements", 0) > 100 and stats.get("samples_used", 0) > 4 * 2**limit


def evaluate(stats: Mapping[str, Any], *, signal: str, key: str, domain: str,
             domain_checks: bool = True) -> list[Finding]:
    """Findings for one stats entry. ``domain_checks=False`` applies only the default sanity checks
    (used for secondary arrays of a multi-array output, e.g. an attention mask beside token ids)."""
    out: list[Finding] = []
    label = key if key == signal else f"{signal} (array/column {key[len(signal) + 1:]!r})"
    total = int(stats.get("total_elements") or 0)
    if total == 0:
        return [Finding("stats", "empty_output", "warning", signal, f"{label} is empty (0 elements).", 0, None)]
    constant = stats.get("unique_count") == 1 and total > 1
    if constant:
        out.append(Finding("stats", "constant_output", "warning", signal,
                           f"{label} is constant: every sampled value is the same "
                           f"({stats.get('samples_used')} samples of {total}). Possible collapse or a fill bug.",
                           1, None))
    for t in thresholds_for(domain if domain_checks else "default"):
        value = stats.get(t.stat)
        if value is None:
            continue
        if t.stat == "entropy" and (not _entropy_checkable(stats, t.limit) or (constant and t.limit <= 0.1)):
            continue
        failed = value < t.limit if t.bound == "min" else value > t.limit
        if failed:
            word = "below the minimum" if t.bound == "min" else "above the maximum"
            unit = " bits" if t.stat == "entropy" else ""
            out.append(Finding(
                "stats", f"{t.stat}_{t.bound}", t.severity, signal,
                f"{label}: {t.stat} {value:.4g}{unit} is {word} {t.limit:g}{unit} "
                f"(svs.domain {domain if domain_checks else 'default'!r}).",
                float(value), t.limit,
            ))
    return out
