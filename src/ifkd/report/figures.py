"""Report plots with matplotlib (Agg, no display): training curves of a run and the paper's Fig 6,
validation IoU per epoch with the KD switch, as mean +- std over seeds.

Epochs are plotted 1-based (x = epochs completed); the KD switch line sits at x = E1 + 0.5, between the
last reconstruction-only epoch (x = E1) and the first epoch with the KD term (x = E1 + 1).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # before pyplot: the report runs headless (CI, ssh, the demo)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ifkd.io import atomic_path  # noqa: E402

METHOD_COLORS = {"ifkd": "#1f77b4", "ifkd-nokd": "#d62728", "teacher": "#2ca02c"}
LOSS_LABELS = {
    "train_recon": "reconstruction (MSE)",
    "train_kd": "KD (L1 features)",
    "train_cam": "camera pose",
    "train_loss": "total",
}


def kd_switch_epoch(records: Sequence[Mapping]) -> int | None:
    """E1: the number of epochs before the first one with ``kd_active`` (None when KD never ran)."""
    for r in records:
        if r.get("kd_active"):
            return int(r["epoch"])
    return None


def _save(fig, path: Path) -> Path:
    path = Path(path)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def _kd_line(ax, switch: int | None) -> None:
    if switch is not None:
        ax.axvline(switch + 0.5, color="#555", linestyle="--", linewidth=1)
        ax.text(
            switch + 0.5,
            0.5,
            " KD on ",
            transform=ax.get_xaxis_transform(),  # x in data, y in axes fraction
            rotation=90,
            ha="center",
            va="center",
            color="#555",
            fontsize=8,
            bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1},
        )


def plot_training_curves(records: Sequence[Mapping], path: str | Path, title: str = "") -> Path:
    """Two panels from a run's metrics.jsonl records: the loss parts per epoch, and validation IoU.

    records: one dict per epoch with ``epoch`` (0-based), ``train_<part>`` losses, ``val_iou``
    (None when not validated) and ``kd_active``.
    """
    if not records:
        raise ValueError("no epoch records to plot")
    epochs = np.array([r["epoch"] + 1 for r in records])
    switch = kd_switch_epoch(records)
    fig, (ax_loss, ax_iou) = plt.subplots(1, 2, figsize=(10, 3.6))
    parts = sorted({k for r in records for k in r if k.startswith("train_")}, key=_loss_order)
    if all(r.get("train_loss") == r.get("train_recon") for r in records):
        parts = [k for k in parts if k != "train_loss"]  # no KD term: the total is the recon loss
    for key in parts:
        vals = np.array([r.get(key, np.nan) for r in records], dtype=float)
        ax_loss.plot(epochs, vals, marker="o", markersize=3, label=LOSS_LABELS.get(key, key[6:]))
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("training loss (epoch mean)")
    ax_loss.set_title("losses")
    ax_loss.legend(fontsize=8)
    _kd_line(ax_loss, switch)
    iou = np.array([np.nan if r.get("val_iou") is None else r["val_iou"] for r in records], dtype=float)
    if np.isfinite(iou).any():
        ax_iou.plot(epochs, iou, marker="o", markersize=3, color=METHOD_COLORS["ifkd"])
        best = int(np.nanargmax(iou))
        ax_iou.scatter([epochs[best]], [iou[best]], s=60, facecolors="none", edgecolors="k", zorder=3)
        right = best >= len(epochs) / 2  # keep the label inside the axes, clear of the rising curve
        ax_iou.annotate(
            f"best {iou[best]:.3f}",
            (epochs[best], iou[best]),
            xytext=(-10, 4) if right else (8, -14),
            textcoords="offset points",
            fontsize=8,
            ha="right" if right else "left",
        )
    else:
        ax_iou.text(
            0.5, 0.5, "no validation IoU recorded", ha="center", va="center", transform=ax_iou.transAxes
        )
    ax_iou.set_xlabel("epoch")
    ax_iou.set_ylabel("validation IoU")
    ax_iou.set_title("validation IoU")
    _kd_line(ax_iou, switch)
    for ax in (ax_loss, ax_iou):
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, Path(path))


def _loss_order(key: str) -> tuple[int, str]:
    order = list(LOSS_LABELS)
    return (order.index(key) if key in order else len(order), key)


def mean_std_curve(runs: Sequence[Sequence[Mapping]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-epoch mean and std of ``val_iou`` over seeds -> (epochs 1-based, mean, std), over the epochs
    that every seed reached (a run cut short does not bias the tail)."""
    series = []
    for recs in runs:
        vals = {int(r["epoch"]): r.get("val_iou") for r in recs}
        series.append(vals)
    common = sorted(set.intersection(*(set(s) for s in series))) if series else []
    common = [e for e in common if all(s[e] is not None for s in series)]
    data = np.array([[s[e] for e in common] for s in series], dtype=float).reshape(len(series), len(common))
    return np.array(common) + 1, data.mean(axis=0), data.std(axis=0)


def plot_iou_per_epoch(
    curves: Mapping[str, Sequence[Sequence[Mapping]]],
    path: str | Path,
    kd_switch: int | None = None,
    title: str = "Validation IoU per epoch",
) -> Path:
    """The paper's Fig 6: val IoU per epoch for each method, mean line and +-1 std band over seeds.

    curves: method -> one record list per seed (records as in metrics.jsonl / results.json 'curve').
    kd_switch: E1 (0-based index of the first KD epoch); default from the records.
    """
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    drawn = 0
    for i, (method, runs) in enumerate(curves.items()):
        runs = [r for r in runs if r]
        if not runs:
            continue
        x, mean, std = mean_std_curve(runs)
        if len(x) == 0:
            continue
        color = METHOD_COLORS.get(method, f"C{i + 2}")
        label = f"{method} (n={len(runs)} seed{'s' if len(runs) > 1 else ''})"
        ax.plot(x, mean, marker="o", markersize=3, color=color, label=label)
        if len(runs) > 1:
            ax.fill_between(x, mean - std, mean + std, color=color, alpha=0.2, linewidth=0)
        if kd_switch is None:
            kd_switch = next((s for s in (kd_switch_epoch(r) for r in runs) if s is not None), None)
        drawn += 1
    if not drawn:
        plt.close(fig)
        raise ValueError("no validation IoU curves to plot")
    _kd_line(ax, kd_switch)
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation IoU")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend(fontsize=9, loc="lower right")
    return _save(fig, Path(path))


VIEWS_SUBSETS = {"synth": "synthetic test shapes", "real": "real CAPOD meshes"}
"""Subsets of benchmarks/views_curve.py's summary and how the plot names them."""


def plot_views_curve(summary: Mapping[str, Mapping[str, Mapping]], path: str | Path) -> Path:
    """Multi-view fusion with known poses: IoU and Chamfer-L1 x10 against the number of views fused.

    summary: subset ('synth', 'real') -> fusion rule ('mean', 'min') -> number of views (str or int)
    -> {'iou', 'chamfer_l1_x10', ...}, as benchmarks/views_curve.py writes it. One colour per subset,
    a solid line for the mean-logit rule and a dashed one for the others; the x axis is logarithmic
    (1, 2, 4, 8, 24 views)."""
    fig, axes = plt.subplots(1, 2, figsize=(9.6, 3.8))
    drawn = 0
    for i, (subset, by_rule) in enumerate(summary.items()):
        for rule, by_k in by_rule.items():
            ks = sorted(int(k) for k in by_k)
            if not ks:
                continue
            style = "-" if rule == "mean" else "--"
            label = f"{VIEWS_SUBSETS.get(subset, subset)}, {rule}"
            for ax, key in zip(axes, ("iou", "chamfer_l1_x10")):
                ys = [by_k[str(k)][key] if str(k) in by_k else by_k[k][key] for k in ks]
                ax.plot(ks, ys, style, marker="o", markersize=3, color=f"C{i}", label=label)
            drawn += 1
    if not drawn:
        plt.close(fig)
        raise ValueError("no views-curve rows to plot")
    for ax, name in zip(axes, ("IoU (higher is better)", "Chamfer-L1 x10 (lower is better)")):
        ax.set_xscale("log")
        ticks = sorted({int(k) for by_rule in summary.values() for by_k in by_rule.values() for k in by_k})
        ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.minorticks_off()
        ax.set_xlabel("views fused (known poses)")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    axes[1].set_yscale("log")  # the min rule's Chamfer blows up by an order of magnitude
    axes[0].legend(fontsize=8, loc="best")
    fig.suptitle("Multi-view fusion with known poses")
    return _save(fig, Path(path))
