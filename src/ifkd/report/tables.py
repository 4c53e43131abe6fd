"""Report tables from a benchmark's results.json, an evaluation summary.json or a run folder.

Pure functions: parsed JSON in, :class:`~ifkd.report.document.Table` out (cells already formatted).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ifkd.eval.evaluate import TABLE_COLUMNS
from ifkd.report.document import Table


def method_order(names: Sequence[str]) -> list[str]:
    """Methods in the registry's order (teacher, ifkd, ablations, baselines), unknown names last."""
    from ifkd.methods import METHODS

    known = list(METHODS)
    return sorted(dict.fromkeys(names), key=lambda m: (known.index(m) if m in known else len(known), m))


def _num(value: Any, fmt: str = "{:.3f}") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return fmt.format(value)


def mean_pm_std(mean: Any, std: Any, n: int, fmt: str = "{:.3f}") -> str:
    """'0.512 ± 0.004' over n > 1 seeds, '0.512' for one."""
    if n > 1 and std is not None and math.isfinite(std):
        return f"{_num(mean, fmt)} ± {_num(std, fmt)}"
    return _num(mean, fmt)


def table_from_runs(runs: Sequence[Mapping]) -> dict[str, dict]:
    """results.json's 'table' (per method: n_seeds, mean/std over seeds, per-category means), rebuilt from
    its 'runs' -- for results files written before the table was added."""
    by_method: dict[str, list[Mapping]] = {}
    for run in runs:
        if run.get("mean"):
            by_method.setdefault(run["method"], []).append(run)
    out = {}
    keys = [k for k, _, _ in TABLE_COLUMNS]
    for method, rs in by_method.items():
        vals = {k: np.array([r["mean"].get(k, np.nan) for r in rs], dtype=float) for k in keys}
        cats = sorted({c for r in rs for c in r.get("per_category", {})})
        out[method] = {
            "n_seeds": len(rs),
            "mean": {k: float(np.nanmean(v)) for k, v in vals.items()},
            "std": {k: float(np.nanstd(v)) for k, v in vals.items()},
            "per_category_mean": {
                c: {
                    k: float(np.nanmean([r["per_category"].get(c, {}).get(k, np.nan) for r in rs]))
                    for k in keys
                }
                for c in cats
            },
        }
    return out


def summary_table(table: Mapping[str, Mapping], runs: Sequence[Mapping] = (), caption: str = "") -> Table:
    """One row per method: seeds, every Table-1 metric as mean ± std over seeds, mean training time."""
    seconds: dict[str, list[float]] = {}
    for run in runs:
        if run.get("train_seconds") is not None:
            seconds.setdefault(run["method"], []).append(float(run["train_seconds"]))
    headers = ["method", "seeds", *[h for _, h, _ in TABLE_COLUMNS], "train time"]
    rows = []
    for method in method_order(list(table)):
        entry = table[method]
        n = int(entry.get("n_seeds", 1))
        cells = [
            mean_pm_std(entry["mean"].get(k), entry.get("std", {}).get(k), n, f) for k, _, f in TABLE_COLUMNS
        ]
        secs = seconds.get(method)
        rows.append([method, str(n), *cells, _duration(float(np.mean(secs))) if secs else "–"])
    return Table(headers, rows, caption)


def _duration(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 90 else f"{seconds:.0f} s"


def category_table(table: Mapping[str, Mapping], metric: str, caption: str = "") -> Table:
    """Categories x methods for one metric (mean over seeds), with the class-mean row (paper's Table 1)."""
    fmt = next((f for k, _, f in TABLE_COLUMNS if k == metric), "{:.3f}")
    methods = method_order(list(table))
    cats = sorted({c for m in methods for c in table[m].get("per_category_mean", {})})
    higher = next((h for k, h, _ in TABLE_COLUMNS if k == metric), "↑").endswith("↑")
    rows = [
        [
            c,
            *_bold_best(
                [table[m].get("per_category_mean", {}).get(c, {}).get(metric) for m in methods], fmt, higher
            ),
        ]
        for c in cats
    ]
    means = [table[m]["mean"].get(metric) for m in methods]
    rows.append(["**mean (of classes)**", *_bold_best(means, fmt, higher)])
    return Table(["category", *methods], rows, caption)


def _bold_best(values: Sequence[Any], fmt: str, higher: bool) -> list[str]:
    """Format a row of numbers with the best one (max or min) in bold."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    best = (max(finite) if higher else min(finite)) if len(finite) > 1 else None
    return [f"**{_num(v, fmt)}**" if best is not None and v == best else _num(v, fmt) for v in values]


def epoch_table(curves: Mapping[str, Sequence[Sequence[Mapping]]], caption: str = "") -> Table:
    """The paper's Table 3: validation IoU per epoch for each method (mean ± std over seeds), with the
    epochs where the KD term was on marked."""
    from ifkd.report.figures import mean_std_curve

    methods = [m for m in curves if any(curves[m])]
    stats = {m: mean_std_curve([r for r in curves[m] if r]) for m in methods}
    kd_epochs = {
        int(r["epoch"]) + 1 for m in methods for recs in curves[m] for r in recs if r.get("kd_active")
    }
    epochs = sorted({int(e) for m in methods for e in stats[m][0]})
    rows = []
    for e in epochs:
        row = [str(e), "KD" if e in kd_epochs else ""]
        for m in methods:
            x, mean, std = stats[m]
            hit = np.nonzero(x == e)[0]
            n = len([r for r in curves[m] if r])
            row.append(mean_pm_std(float(mean[hit[0]]), float(std[hit[0]]), n) if len(hit) else "–")
        rows.append(row)
    return Table(["epoch", "loss", *methods], rows, caption, align_left=2)


def eval_table(summary: Mapping, caption: str = "") -> Table:
    """An `ifkd evaluate` summary.json as the Table-1 layout: per category and the class mean."""
    headers = ["category", "n", *[h for _, h, _ in TABLE_COLUMNS]]
    rows = [
        [cat, str(vals.get("n", "")), *[_num(vals.get(k), f) for k, _, f in TABLE_COLUMNS]]
        for cat, vals in summary.get("per_category", {}).items()
    ]
    mean = summary.get("mean", {})
    rows.append(
        [
            "**mean (of classes)**",
            str(summary.get("n", "")),
            *[_num(mean.get(k), f) for k, _, f in TABLE_COLUMNS],
        ]
    )
    return Table(headers, rows, caption)


def run_table(cfg: Any, records: Sequence[Mapping], best: Mapping | None) -> Table:
    """Key facts of one training run: method, preset, sizes, schedule, time, best validation IoU."""
    from ifkd.methods import METHODS

    tc, sc = cfg.train, cfg.student
    spec = METHODS.get(cfg.method)
    kd = f"(recon + {tc.kd_weight:g}·KD)" if spec is not None and spec.uses_kd else "more recon"
    seconds = sum(float(r.get("seconds", 0.0)) for r in records)
    is_teacher = spec is not None and spec.is_teacher
    teacher = (
        f"{cfg.teacher.kind}, channels {list(cfg.teacher.channels)}, {cfg.data.voxel_resolution}³ voxels"
    )
    rows = [["method / preset", f"{cfg.method} / {cfg.preset}"]]
    if not is_teacher:
        rows.append(["input image", f"{cfg.data.image_size} px"])
        rows.append(["U-Net", f"base {sc.base_channels}, depth {sc.depth}, features {sc.feature_channels}"])
    if is_teacher or (spec is not None and spec.uses_kd):
        rows.append(["teacher", teacher])
    steps = records[-1]["step"] if records else 0
    rows += [
        [
            "schedule",
            f"{tc.epochs_recon} recon + {tc.epochs_kd} {kd} epochs, batch {tc.batch_size}, lr {tc.lr:g}",
        ],
        ["epochs done", f"{len(records)} ({steps} steps, {_duration(seconds)})"],
    ]
    if best:
        rows.append(
            [
                "best validation IoU",
                f"{best.get('val_iou', float('nan')):.3f} (epoch {best.get('epoch', 0) + 1})",
            ]
        )
    return Table(["", "value"], rows, align_left=2)
