"""Benchmark Markdown: the paper's Tables 1-4, the generalisation tables and gap, equal steps vs equal
time, and ``benchmarks/RESULTS.md`` assembled from every results.json (with command, date, machine).

Everything here is computed from results.json data (see /work/shared bench schema); nothing is typed in.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from ifkd.bench.stats import (
    HEADERS,
    METRIC_KEYS,
    aggregate,
    cell,
    fmt_stat,
    fmt_value,
    mean_std,
    method_order,
    method_rank,
    paired_gaps,
)
from ifkd.eval.evaluate import ECD_NOTE, NONEMPTY_OF, NONEMPTY_SUFFIX
from ifkd.io import atomic_write_text
from ifkd.methods import METHODS, MethodSpec

TABLE1_KEYS = ("iou", "iou_voxels_32", "chamfer_l1_x10", "edge_chamfer_x1000", "fscore_1")


def _plain_unet(spec: MethodSpec) -> bool:
    return spec.student_overrides.get("skip") == "skip" and not spec.student_overrides.get("global_code")


_KD_STRENGTH = {None: 0, "simple": 1, "ifnet": 2}
"""Table 2's row order (a presentation choice): no KD, KD from the simple teacher, KD from IF-Net."""

TABLE2_METHODS = tuple(n for n, s in METHODS.items() if s.is_teacher) + tuple(
    sorted(
        (n for n, s in METHODS.items() if s.role == "student" and _plain_unet(s)),
        key=lambda n: _KD_STRENGTH[METHODS[n].teacher_kind],
    )
)
"""The teachers, then the plain-U-Net students that differ only in their teacher (from the registry)."""
TABLE4_METHODS = tuple(
    n
    for n, s in METHODS.items()
    if s.role == "student" and s.teacher_kind == "ifnet" and not s.student_overrides.get("global_code")
)
"""The IF-Net-distilled students that differ only in their skip paths (from the registry, its order)."""
NONEMPTY_KEYS = tuple(f"{k}{NONEMPTY_SUFFIX}" for k in NONEMPTY_OF)
"""Chamfer and F@1% over the non-empty meshes only, in every table beside OccNet's convention."""
ROW_KEYS = (
    "iou",
    "iou_voxels_32",
    "chamfer_l1_x10",
    "edge_chamfer_x1000",
    "fscore_1",
    "normal_consistency",
    "empty",
    *NONEMPTY_KEYS,
)
GEN_KEYS = (
    "iou",
    "chamfer_l1_x10",
    "edge_chamfer_x1000",
    "fscore_1",
    "normal_consistency",
    "empty",
    *NONEMPTY_KEYS,
)
BUDGET_ORDER = {"smoke": 0, "converged": 1, "cpu": 2, "full": 3}
"""``converged`` first: every baseline trained until it stopped improving, scored with exact labels"""
PROTOCOL_ORDER = {"seen": 0, "unseen": 1, "real": 2, "realsplit": 3}
REALSPLIT_KEYS = ("iou", "chamfer_l1_x10", "fscore_1", "normal_consistency", "empty", *NONEMPTY_KEYS)
"""`realsplit`'s columns: IoU, Chamfer-L1 x10, F@1%, normal consistency, the empty-mesh share, and the
surface metrics over non-empty meshes."""
REALSPLIT_TITLES = {
    "real_seen": "Real test shapes of classes trained on (`real_seen`)",
    "real_unseen": "Real test shapes of held-out classes, never trained on (`real_unseen`)",
    "synthetic": "Synthetic test split (`synthetic`)",
}


def _table(results: Mapping) -> dict:
    return results.get("table") or aggregate(results.get("runs", []))


def _md(header: list[str], rows: list[list[str]], align: str = "---:") -> str:
    lines = ["| " + " | ".join(header) + " |", "|---|" + f"{align}|" * (len(header) - 1)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def method_rows(table: Mapping, methods, keys=ROW_KEYS, title: str = "") -> str:
    """Rows: methods (those present); columns: seeds and each metric as mean ± std over seeds."""
    present = [m for m in methods if m in table]
    if not present:
        return ""
    rows = [[m, str(table[m]["n_seeds"]), *(cell(table, m, k) for k in keys)] for m in present]
    head = f"**{title}**\n\n" if title else ""
    return head + _md(["method", "seeds", *(HEADERS[k] for k in keys)], rows)


def table1(table: Mapping, keys=TABLE1_KEYS, methods=None) -> str:
    """Paper Table 1: per category (rows) and class mean (last row), one block per metric, method columns."""
    methods = [m for m in (methods or method_order(table)) if m in table]
    if not methods:
        return ""
    cats = sorted({c for m in methods for c in table[m]["per_category_mean"]})
    blocks = []
    for key in keys:
        rows = [
            [c, *(fmt_value(table[m]["per_category_mean"].get(c, {}).get(key)) for m in methods)]
            for c in cats
        ]
        rows.append(["**mean**", *(cell(table, m, key) for m in methods)])
        blocks.append(f"**{HEADERS[key]}**\n\n" + _md(["category", *methods], rows))
    return "\n".join(blocks)


def table3(runs: list[dict], a: str = "ifkd", b: str = "ifkd-nokd") -> str:
    """Paper Table 3: validation IoU per epoch (mean ± std over seeds), the first KD epoch marked."""
    curves = {m: [r["curve"] for r in runs if r["method"] == m and r.get("curve")] for m in (a, b)}
    if not any(curves.values()):
        return ""
    n_epochs = max(len(c) for cs in curves.values() for c in cs)
    switch = next((p["epoch"] for cs in curves[a] for p in cs if p.get("kd_active")), None)
    rows = []
    for e in range(n_epochs):
        label = f"{e + 1}" + (" ← KD on" if e == switch else "")
        cells = []
        for m in (a, b):
            mean, std, n = mean_std(c[e].get("val_iou") for c in curves[m] if len(c) > e)
            cells.append(fmt_stat(mean, std, n))
        rows.append([label, *cells])
    return _md(["epoch", f"{a} val IoU", f"{b} val IoU"], rows)


def equal_time_table(results: Mapping) -> str:
    """Each method at equal optimiser steps and at the reference's training wall time (seed-matched)."""
    eq_runs = results.get("equal_time_runs") or []
    if not eq_runs:
        return ""
    steps = {(r["method"], r["seed"]): r for r in results.get("runs", [])}
    rows = []
    for r in sorted(eq_runs, key=lambda r: (method_rank(r["method"]), r["seed"])):
        base = steps.get((r["method"], r["seed"]), {})
        rows.append(
            [
                r["method"],
                str(r["seed"]),
                str(base.get("steps", "–")),
                fmt_value(base.get("train_seconds"), 0),
                fmt_value(base.get("mean", {}).get("iou")),
                str(r.get("steps", "–")),
                fmt_value(r.get("train_seconds"), 0),
                fmt_value(r.get("mean", {}).get("iou")),
            ]
        )
    head = ["method", "seed", "steps", "train s", "IoU (equal steps)", "steps", "train s", "IoU (equal time)"]
    return _md(head, rows)


def gap_table(seen: Mapping, unseen: Mapping) -> str:
    """Generalisation gap per method: seen IoU - unseen IoU, paired by seed (the seeds are listed, as
    the seen and unseen columns average every seed each protocol ran)."""
    ts, tu, gaps = _table(seen), _table(unseen), paired_gaps(seen, unseen)
    rows = []
    for m in method_order(set(ts) & set(tu)):
        paired = gaps.get(m, {})
        gap = fmt_stat(*mean_std(list(paired.values()))) if paired else "–"
        seeds = ", ".join(str(s) for s in paired) or "none"
        rows.append([m, cell(ts, m, "iou"), cell(tu, m, "iou"), seeds, gap])
    header = ["method", "seen IoU", "unseen IoU", "seeds in both", "gap (seen − unseen, paired by seed)"]
    return _md(header, rows) if rows else ""


def per_shape_table(results: Mapping, key: str = "iou") -> str:
    """`real`: one row per mesh, one column per method (seed mean of ``key``)."""
    runs = [r for r in results.get("runs", []) if r.get("per_shape")]
    methods = method_order(r["method"] for r in runs)
    shapes = sorted({s for r in runs for s in r["per_shape"]})
    rows = []
    for s in shapes:
        vals = [
            mean_std(r["per_shape"].get(s, {}).get(key) for r in runs if r["method"] == m)[0] for m in methods
        ]
        rows.append([s, *(fmt_value(v) for v in vals)])
    return _md(["mesh", *methods], rows) if rows else ""


def _machine(m: Mapping) -> str:
    gpu = f", GPU {m['cuda']}" if m.get("cuda") else ""
    return f"{m.get('cpu', '?')}, {m.get('cores', '?')} cores{gpu}, torch {m.get('torch', '?')}"


def header(results: Mapping) -> str:
    """Command, date and machine of the invocation that wrote results.json, then any earlier ones whose
    runs it kept."""
    out = (
        f"- command: `{results.get('command') or '(not recorded)'}`\n- date: {results.get('created', '?')}\n"
        f"- machine: {_machine(results.get('machine', {}))}\n"
    )
    for e in reversed(results.get("earlier", [])):
        out += (
            f"- runs kept from an earlier command: `{e.get('command') or '(not recorded)'}` "
            f"({e.get('created', '?')}; {_machine(e.get('machine') or {})})\n"
        )
    return out


def run_label(results: Mapping) -> str:
    """Where and how the runs of a results.json were trained: device, precision, optimiser steps.

    The budget's name says what was asked for (``cpu``: sized for 2 cores), not where it ran: a ``cpu``
    budget run on a GPU trained in bf16 autocast (``train.amp``, CUDA only), on a CPU in fp32.
    """
    machine = results.get("machine", {})
    overrides = results.get("budget_settings", {}).get("overrides", [])
    amp = "train.amp=false" not in [o.replace(" ", "").lower() for o in overrides]
    if machine.get("cuda"):
        where = f"GPU {machine['cuda']}, {'bf16 autocast' if amp else 'fp32'}"
    else:
        where = f"CPU {machine.get('cpu', '?')} ({machine.get('cores', '?')} cores), fp32"
    steps = sorted({int(r["steps"]) for r in results.get("runs", []) if r.get("steps") is not None})
    span = "" if not steps else f"{steps[0]}" if len(steps) == 1 else f"{steps[0]}–{steps[-1]}"
    return f"trained on {where}" + (f", {span} optimiser steps per run" if span else "")


def evaluation_protocol(results: Mapping, base: str | Path | None) -> str | None:
    """One line on how the runs of a results.json were scored, read from a run's ``per_shape.csv`` under
    ``base`` (its folder): exact IoU labels and the ground-truth surface sample count (issue #17's
    protocol), or the earlier one -- labels looked up in the 128^3 voxels -- whose figures do not compare
    with the exact-label ones. None when no per-shape file is at hand."""
    import csv

    if base is None:
        return None
    for run in results.get("runs", []):
        path = Path(base) / str(run.get("eval_dir") or "") / "per_shape.csv"
        if not run.get("eval_dir") or not path.is_file():
            continue
        with path.open(newline="") as fh:
            row = next(csv.DictReader(fh), None)
        if row is None:
            continue
        overrides = dict(o.split("=", 1) for o in results.get("budget_settings", {}).get("overrides", []))
        iou_points = int(overrides.get("eval.iou_points", 100_000))
        if "iou_exact_labels" not in row:
            return (
                "- evaluation: **earlier protocol** -- IoU labels looked up in the 128³ voxel grid, "
                f"{iou_points:,} IoU points (per_shape.csv has no `iou_exact_labels`): thin parts score low "
                "even when perfect; ECD from each method's own extraction grid (view-frame students on a "
                "rotated one), so it mostly measures the grid; do not compare these figures with "
                "exact-label tables"
            )
        if not float(row["iou_exact_labels"]):
            return "- evaluation: IoU labels from the 128³ voxels (data made before exact labels were stored)"
        samples = int(float(row.get("gt_surface_samples") or 0))
        predicted = int(overrides.get("eval.surface_points", 100_000))
        return (
            "- evaluation: IoU at the uniform points stored with the data, exact labels; Chamfer-L1 / "
            f"F-score / NC with {samples:,} ground-truth and {predicted:,} predicted surface samples; ECD "
            f"from meshes extracted on one common object-frame grid for every method\n- {ECD_NOTE}"
        )
    return None


def realsplit_sections(results: Mapping) -> list[str]:
    """`realsplit`: the arms (data, weight, steps), per test set a table of arm x method (class means,
    mean ± std over seeds), then the paired mix − procedural differences per seed and their mean."""
    rs = results.get("realsplit") or {}
    arms, schedules = rs.get("arms", {}), rs.get("schedules", {})
    proc, mix = arms.get("procedural", {}), arms.get("mix", {})
    real = (mix.get("train") or ["?"])[-1]
    held_out = ", ".join(rs.get("held_out_categories", [])) or "none"
    parts = [
        f"Arms: `procedural` trains on `{', '.join(proc.get('train', []))}` (the `seen` protocol's data; "
        f"runs in `{proc.get('runs', '?')}`); `mix` on the same plus the train split of `{real}` at weight "
        f"W = {rs.get('weight', '?')} (an epoch draws round(W × n) of its n items). Held-out real "
        f"classes: {held_out}.\n",
    ]
    if schedules:
        rows = []
        for m in method_order(schedules):
            p, x = schedules[m]["procedural"], schedules[m]["mix"]
            rows.append(
                [
                    m,
                    f"{p['items_per_epoch']} / {x['items_per_epoch']}",
                    f"{p['steps_per_epoch']} / {x['steps_per_epoch']}",
                    f"{p['epochs_recon']}+{p['epochs_kd']} / {x['epochs_recon']}+{x['epochs_kd']}",
                    f"{p['steps']} / {x['steps']}",
                ]
            )
        head = ["method", "items/epoch (proc / mix)", "steps/epoch", "epochs E1+E2", "optimiser steps"]
        parts += ["### Equal optimiser steps (planned)", "", _md(head, rows)]
    targets = rs.get("targets", {})
    for target, title in REALSPLIT_TITLES.items():
        by_arm = targets.get(target) or {}
        rows = [
            [arm, m, str(t[m]["n_seeds"]), *(cell(t, m, k) for k in REALSPLIT_KEYS)]
            for arm, t in by_arm.items()
            for m in method_order(t)
        ]
        if rows:
            head = ["arm", "method", "seeds", *(HEADERS[k] for k in REALSPLIT_KEYS)]
            parts += [f"### {title}", "", _md(head, rows)]
    paired = rs.get("paired", {})
    rows = []
    for target in REALSPLIT_TITLES:
        for m, d in sorted((paired.get(target) or {}).items(), key=lambda kv: method_rank(kv[0])):
            per_seed = ", ".join(f"s{x['seed']} {fmt_value(x.get('iou'), 3)}" for x in d["per_seed"])
            means = (fmt_stat(d["mean"].get(k), d["std"].get(k), d["n"]) for k in REALSPLIT_KEYS)
            rows.append([target, m, per_seed, *means])
    if rows:
        head = ["test set", "method", "ΔIoU per seed", *(f"Δ {HEADERS[k]}" for k in REALSPLIT_KEYS)]
        parts += ["### mix − procedural (paired by seed; mean ± std of the differences)", "", _md(head, rows)]
    parts.append(
        "Class means (unweighted mean of the per-class means, as the other tables) over the scored views; "
        "mean ± std over seeds.\n"
    )
    return parts


def protocol_markdown(
    results: Mapping, link_prefix: str = "", folder: str = "", base: str | Path | None = None
) -> str:
    """All tables of one results.json (one budget, one protocol); ``folder`` names a results folder other
    than the protocol's own in the title; ``base`` is the results.json's folder (for
    :func:`evaluation_protocol`)."""
    table, runs, proto = _table(results), results.get("runs", []), results.get("protocol")
    arms = ""
    if proto == "realsplit":
        w = (results.get("realsplit") or {}).get("weight", "?")
        arms = f", arms `procedural` vs `mix` (+ real train split at W = {w})"
    title = (
        f"## Budget `{results.get('budget')}`, protocol `{proto}`"
        + (f", folder `{folder}`" if folder else "")
        + arms
        + f" ({run_label(results)})"
    )
    parts = [title, "", header(results)]
    scored = evaluation_protocol(results, base)
    if scored:
        parts[-1] = parts[-1].rstrip("\n") + "\n" + scored + "\n"
    ds = results.get("dataset", {})
    if proto == "realsplit":
        return "\n".join([*parts, *realsplit_sections(results)]) + "\n"
    if ds.get("train_categories") is not None:
        parts.append(
            f"Train categories: {', '.join(ds['train_categories']) or '(seen runs)'}; "
            f"test categories: {', '.join(ds.get('test_categories', []))}.\n"
        )
    parts += ["### Methods (mean ± std over seeds)", "", method_rows(table, method_order(table), GEN_KEYS)]
    if proto == "seen":
        parts += ["### Table 1: per category and class mean", "", table1(table)]
        parts += ["### Table 2: KD and teacher ablation", "", method_rows(table, TABLE2_METHODS)]
        parts += ["### Table 3: validation IoU per epoch", "", table3(runs)]
        parts += ["### Table 4: skip-connection variants", "", method_rows(table, TABLE4_METHODS)]
    elif proto == "unseen":
        parts += ["### Per unseen category", "", table1(table, ("iou", "chamfer_l1_x10"))]
    elif proto == "real":
        parts += ["### Per mesh (IoU)", "", per_shape_table(results)]
        skipped = ds.get("import", {}).get("skipped", [])
        parts.append(f"Skipped meshes: {len(skipped)}\n")
        parts += [f"- `{s['key']}`: {s['reason']}" for s in skipped]
        sheets = results.get("sheets", [])
        if sheets:
            parts += ["", "### Picture sheets (input view, ground truth, each method)", ""]
            parts += [f"![{Path(s).stem}]({link_prefix}{s})" for s in sheets]
    eq = equal_time_table(results)
    if eq:
        parts += ["### Equal optimiser steps vs equal wall time", "", eq]
    return "\n".join(p for p in parts if p is not None) + "\n"


def find_results(root: str | Path) -> list[tuple[Path, dict]]:
    """Every benchmark results.json under ``root`` (files of another layout are ignored)."""
    found = []
    for path in sorted(Path(root).rglob("results.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(data, dict) and "budget" in data and "protocol" in data and "runs" in data:
            found.append((path, data))
    return found


def _main_result(protocol: str, found: list[tuple[Path, dict]]) -> tuple[Path, dict]:
    """Of several results.json of one budget and protocol, the one in the canonical folder
    (``<budget>/<protocol>/``), else the one with the most runs (a --model check is not the benchmark)."""
    canonical = [f for f in found if f[0].parent.name == protocol]
    return max(canonical or found, key=lambda f: (len(f[1]["runs"]), -len(str(f[0]))))


EARLIER_RESULTS_MD = "RESULTS_EARLIER_PROTOCOL.md"
"""Where the tables scored under the earlier protocol (labels from the 128^3 voxels) are kept, beside
RESULTS.md, so that RESULTS.md holds only figures that compare with one another."""

_EARLIER = "- evaluation: **earlier"


def _is_earlier(path: Path, data: Mapping) -> bool:
    """Whether a results.json was scored under the earlier protocol (read from its per_shape.csv)."""
    return (evaluation_protocol(data, path.parent) or "").startswith(_EARLIER)


def _budget_sections(
    by_budget: Mapping[str, Mapping[str, list[tuple[Path, dict]]]], out: Path, earlier: bool
) -> list[str]:
    """Per budget: each results.json's tables, the generalisation gap and the claims paragraphs (from
    each protocol's main results; none when no claim's protocol was run)."""
    from ifkd.bench.claims import CLAIMS, claims_section

    parts: list[str] = []
    for budget in sorted(by_budget, key=lambda b: (BUDGET_ORDER.get(b, 9), b)):
        protos = by_budget[budget]
        parts += [f"# Budget `{budget}`", ""]
        for proto in sorted(protos, key=lambda p: PROTOCOL_ORDER.get(p, 9)):
            for path, data in protos[proto]:
                prefix = os.path.relpath(path.parent, out.parent) + "/"
                folder = "" if path.parent.name == proto else path.parent.name
                parts += [
                    protocol_markdown(data, prefix, folder, path.parent),
                    f"Source: `{os.path.relpath(path, out.parent)}`",
                    "",
                ]
        main = {p: _main_result(p, found)[1] for p, found in protos.items()}
        if "seen" in main and "unseen" in main:
            parts += [
                "## Generalisation gap (seen − unseen IoU)",
                "",
                gap_table(main["seen"], main["unseen"]),
            ]
        if not {c.protocol for c in CLAIMS} & set(main):
            continue
        parts += ["## The paper's claims on this budget", ""]
        if earlier:
            parts += [
                f"*Scored under the earlier protocol ({', '.join(sorted(main))}: IoU labels from the 128³ "
                "voxels): read these beside RESULTS.md's `converged` paragraphs (exact labels).*",
                "",
            ]
        parts.append(claims_section(main))
    return parts


def write_results_md(bench_root: str | Path, out: str | Path | None = None) -> Path:
    """Assemble ``bench_root/RESULTS.md`` from every results.json under ``bench_root`` scored under
    today's protocol, per budget (:func:`_budget_sections`), then the one-off protocol notes; those scored
    under the earlier protocol go to :data:`EARLIER_RESULTS_MD` beside it (removed when none is left), so
    no table of RESULTS.md is compared with figures it does not compare with. Returns RESULTS.md's path."""
    root = Path(bench_root)
    out = Path(out) if out else root / "RESULTS.md"
    archive = out.with_name(EARLIER_RESULTS_MD)
    current: dict[str, dict[str, list[tuple[Path, dict]]]] = {}
    earlier: dict[str, dict[str, list[tuple[Path, dict]]]] = {}
    for path, data in find_results(root):
        into = earlier if _is_earlier(path, data) else current
        into.setdefault(data["budget"], {}).setdefault(data["protocol"], []).append((path, data))
    parts = ["# Benchmark results", "", "Generated by `ifkd bench` from the results.json files below.", ""]
    if earlier:
        parts += [
            "Tables scored under the earlier protocol (IoU labels looked up in the 128³ voxels, the "
            "ground-truth surface samples stored with the data then, each method's own ECD grid) are kept "
            f"apart in "
            f"[{archive.name}]({archive.name}) (budgets {', '.join(f'`{b}`' for b in sorted(earlier))}): "
            "their figures do not compare with these.",
            "",
        ]
    parts += _budget_sections(current, out, earlier=False)
    from ifkd.report.markdown import relink_images  # here: the report package loads plotting

    for name in PROTOCOL_NOTES:  # one-off protocol comparisons kept beside the budgets' tables
        note = root / "results" / name
        if note.is_file():
            body = relink_images(note.read_text().strip(), note.parent, out.parent)  # figures beside it
            text = [("#" + line if line.startswith("#") else line) for line in body.splitlines()]
            parts += [*text, "", f"Source: `{os.path.relpath(note, out.parent)}`", ""]
    atomic_write_text(out, "\n".join(parts) + "\n")
    if earlier:
        head = [
            "# Benchmark results under the earlier protocol",
            "",
            "Generated by `ifkd bench` beside RESULTS.md from the results.json files below, scored "
            "before issue #17's protocol: IoU labels looked up in the 128³ voxel grid (thin parts score low "
            "even when perfect), the ground-truth surface samples stored with the data then (16,384 per "
            "shape in the issue's audit), the true camera distance for students, "
            "ECD from each method's own extraction grid. Kept for the record; compare them with one another "
            "only, and rerun a budget to bring it into RESULTS.md.",
            "",
        ]
        atomic_write_text(
            archive, "\n".join([*head, *_budget_sections(earlier, archive, earlier=True)]) + "\n"
        )
    elif archive.is_file():
        archive.unlink()  # generated from results.json files that are now all rescored
    return out


PROTOCOL_NOTES = (
    "reference_converged.md",
    "shipped_mix.md",
    "camera_free.md",
    "framing.md",
    "framing_frame.md",
    "views_curve.md",
)
"""results/*.md files appended to RESULTS.md, one level down (their own title becomes a section)."""


__all__ = [
    "METRIC_KEYS",
    "aggregate",
    "equal_time_table",
    "gap_table",
    "method_rows",
    "protocol_markdown",
    "realsplit_sections",
    "table1",
    "table3",
    "EARLIER_RESULTS_MD",
    "write_results_md",
]
