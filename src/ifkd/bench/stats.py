"""Seed statistics of benchmark runs: per-method mean +- std (the results.json ``table``) and formatting.

Pure functions over results.json data; the tables and the claims text are both computed from these.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import numpy as np

from ifkd.eval.evaluate import TABLE_COLUMNS
from ifkd.methods import METHODS

METRIC_KEYS: tuple[str, ...] = tuple(k for k, _, _ in TABLE_COLUMNS)
HEADERS: dict[str, str] = {k: h for k, h, _ in TABLE_COLUMNS}
LOWER_IS_BETTER = frozenset({"chamfer_l1_x10", "edge_chamfer_x1000"})


def method_rank(name: str) -> tuple[int, str]:
    """Sort key: registry order (teachers, ifkd, ablations, baselines), unknown names last by name."""
    order = list(METHODS)
    return (order.index(name) if name in order else len(order), name)


def method_order(names: Iterable[str]) -> list[str]:
    """The distinct names in registry order (see :func:`method_rank`)."""
    return sorted(set(names), key=method_rank)


def _values(xs: Iterable) -> list[float]:
    return [float(x) for x in xs if x is not None and math.isfinite(float(x))]


def mean_std(xs: Iterable) -> tuple[float | None, float | None, int]:
    """(mean, sample std (ddof 1; 0.0 for one value), n) of the finite values; (None, None, 0) if none."""
    vals = _values(xs)
    if not vals:
        return None, None, 0
    std = float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0
    return float(np.mean(vals)), std, len(vals)


def aggregate(runs: list[dict]) -> dict:
    """results.json ``table``: per method, mean and std over seeds of the class-mean metrics, and the
    seed mean of every per-category metric."""
    by_method: dict[str, list[dict]] = {}
    for r in runs:
        by_method.setdefault(r["method"], []).append(r)
    table = {}
    for method in method_order(by_method):
        rs = sorted(by_method[method], key=lambda r: r["seed"])
        stats = {k: mean_std(r["mean"].get(k) for r in rs) for k in METRIC_KEYS}
        cats = sorted({c for r in rs for c in r.get("per_category", {})})
        table[method] = {
            "n_seeds": len(rs),
            "seeds": [r["seed"] for r in rs],
            "mean": {k: v[0] for k, v in stats.items()},
            "std": {k: v[1] for k, v in stats.items()},
            "per_category_mean": {
                c: {k: mean_std(r["per_category"].get(c, {}).get(k) for r in rs)[0] for k in METRIC_KEYS}
                for c in cats
            },
        }
    return table


def fmt_value(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def fmt_stat(mean: float | None, std: float | None, n: int, digits: int = 3) -> str:
    """'0.512 ± 0.004' over several seeds, '0.512' for one, '–' when missing."""
    if mean is None:
        return "–"
    if n > 1 and std is not None:
        return f"{mean:.{digits}f} ± {std:.{digits}f}"
    return f"{mean:.{digits}f}"


def cell(table: Mapping, method: str, key: str, digits: int = 3) -> str:
    """One method's metric in a table, as mean ± std over its seeds."""
    entry = table.get(method)
    if not entry:
        return "–"
    return fmt_stat(entry["mean"].get(key), entry["std"].get(key), entry["n_seeds"], digits)


def by_seed(runs: list[dict], method: str, key: str = "iou") -> dict[int, float]:
    """{seed: class-mean metric} of one method's runs (missing values dropped)."""
    out = {}
    for r in runs:
        value = r["mean"].get(key)
        if r["method"] == method and value is not None and math.isfinite(value):
            out[r["seed"]] = float(value)
    return out


def paired_gaps(seen: Mapping, unseen: Mapping, key: str = "iou") -> dict[str, dict[int, float]]:
    """{method: {seed: seen - unseen}} over the seeds both results.json dicts ran (the generalisation
    gap is paired by seed: a seed's shapes and init are the same in both protocols)."""
    out = {}
    for method in {r["method"] for r in seen.get("runs", [])} & {r["method"] for r in unseen.get("runs", [])}:
        a, b = by_seed(seen["runs"], method, key), by_seed(unseen["runs"], method, key)
        if set(a) & set(b):
            out[method] = {s: a[s] - b[s] for s in sorted(set(a) & set(b))}
    return out


def compare(table: Mapping, a: str, b: str, key: str = "iou", lower: bool | None = None) -> dict | None:
    """Is ``a`` better than ``b`` on ``key``? Verdict from the seed spread; None if either is missing.

    The spread is the std of the difference of one run of each, sqrt(std_a^2 + std_b^2). 'holds':
    better by more than that; 'reversed': worse by more than that; 'within': inside it; 'single': a
    method has one seed (no spread estimate).
    """
    ea, eb = table.get(a), table.get(b)
    if not ea or not eb or ea["mean"].get(key) is None or eb["mean"].get(key) is None:
        return None
    ma, mb = ea["mean"][key], eb["mean"][key]
    lower = key in LOWER_IS_BETTER if lower is None else lower
    sign = -1.0 if lower else 1.0
    gain = sign * (ma - mb)  # > 0: a is better
    n = min(ea["n_seeds"], eb["n_seeds"])
    spread = math.hypot(ea["std"].get(key) or 0.0, eb["std"].get(key) or 0.0)
    if n < 2:
        verdict = "single"
    elif abs(gain) <= spread:
        verdict = "within"
    else:
        verdict = "holds" if gain > 0 else "reversed"
    return {"a": ma, "b": mb, "gain": gain, "spread": spread, "n": n, "verdict": verdict, "key": key}
