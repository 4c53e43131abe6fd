"""Does the KD weight decide whether distillation helps? Arms fine-tuned from one student at the switch.

In the `converged` budget the KD epochs lowered `ifkd`'s validation IoU (RESULTS.md, Table 3): the
train loss went from 0.107 (reconstruction) to 0.63 at the switch, the KD term (lambda = 1) about five
times the reconstruction term. This starts every arm from the same weights -- a benchmark `ifkd` run's
'last' checkpoint at the end of its reconstruction epochs (E1) -- with the budget's settings, a fresh Adam
and the same data order, and trains E epochs of reconstruction + lambda x KD for each lambda (0: the
reconstruction loss alone, the no-KD control). Validation IoU per epoch (the budget's validation
shapes) is the measure; it is noisy (+-0.03 from epoch to epoch), so read the mean over the arm's epochs.

Usage: python benchmarks/kd_probe.py --snapshot RUN --teacher TEACHER --data DATA --out DIR
           [--budget converged] [--seed 2] [--epochs 6] [--weights 0 0.1 1] [--jobs 2]
RUN: a copy of a benchmark ifkd run taken after epoch E1 (its 'last' weights are the switch's).
Writes benchmarks/results/kd_probe.{json,md}; the arms' runs go to DIR (resumable: rerun to continue).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from common import machine, machine_line, write_results

from ifkd.bench.budgets import get_budget


def init_folder(snapshot: Path, out: Path) -> Path:
    """DIR/init: the snapshot's config and its 'last' weights alone, so train.init_from loads those."""
    init = out / "init"
    (init / "checkpoints").mkdir(parents=True, exist_ok=True)
    shutil.copy2(snapshot / "config.json", init / "config.json")
    shutil.copy2(snapshot / "checkpoints" / "last.safetensors", init / "checkpoints" / "last.safetensors")
    return init


def arm_command(args, budget, init: Path, weight: float) -> list[str]:
    sets = [
        *budget.overrides,
        f"train.seed={args.seed}",
        f"train.init_from={init}",
        "train.epochs_recon=0",
        f"train.epochs_kd={args.epochs}",
        f"train.kd_weight={weight:g}",
        "train.patience=0",
    ]
    cmd = [sys.executable, "-m", "ifkd", "train", "student", "--data", str(args.data), "--preset"]
    cmd += [budget.preset, "--method", "ifkd", "--teacher", str(args.teacher), "--device", "cpu"]
    cmd += ["--out", str(args.out / f"kd-{weight:g}")]
    for s in sets:
        cmd += ["--set", s]
    if (args.out / f"kd-{weight:g}" / "config.json").is_file():
        cmd.append("--resume")
    return cmd


def run_arm(cmd: list[str], log: Path) -> int:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with log.open("a") as fh:
        return subprocess.run(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT).returncode


def read_curve(run: Path) -> list[dict]:
    path = run / "metrics.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--snapshot", type=Path, required=True)
    ap.add_argument("--teacher", type=Path, required=True)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--budget", default="converged")
    ap.add_argument("--seed", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--weights", type=float, nargs="+", default=[0.0, 0.1, 1.0])
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    budget = get_budget(args.budget)
    snap_curve = read_curve(args.snapshot)
    if not snap_curve or not (args.snapshot / "checkpoints" / "last.safetensors").is_file():
        raise SystemExit(f"{args.snapshot}: no metrics.jsonl or checkpoints/last.safetensors")
    init = init_folder(args.snapshot, args.out)
    cmds = {w: arm_command(args, budget, init, w) for w in args.weights}
    with ThreadPoolExecutor(args.jobs) as pool:
        codes = dict(zip(cmds, pool.map(lambda w: run_arm(cmds[w], args.out / f"kd-{w:g}.log"), cmds)))
    if any(codes.values()):
        raise SystemExit(f"arms failed (exit codes {codes}); logs in {args.out}")
    start = snap_curve[-1]
    arms = {}
    for w in args.weights:
        curve = read_curve(args.out / f"kd-{w:g}")
        ious = [r["val_iou"] for r in curve]
        arms[f"{w:g}"] = {
            "val_iou": ious,
            "mean": sum(ious) / len(ious),
            "train_recon": [r.get("train_recon") for r in curve],
            "train_kd": [r.get("train_kd") for r in curve],
            "command": shlex.join(cmds[w]),
        }
    tc = budget.config("ifkd", args.seed).train
    m = machine()
    command = shlex.join(["python", "benchmarks/kd_probe.py", *sys.argv[1:]])
    payload = {
        "command": command,
        "machine": m,
        "budget": budget.name,
        "snapshot": {"run": str(args.snapshot), "epoch": start["epoch"] + 1, "val_iou": start["val_iou"]},
        "arms": arms,
    }
    head = "| epoch | " + " | ".join(f"λ = {w}" for w in arms) + " |"
    rows = [
        f"| {e + 1} | "
        + " | ".join(f"{a['val_iou'][e]:.3f}" if e < len(a["val_iou"]) else "–" for a in arms.values())
        + " |"
        for e in range(max(len(a["val_iou"]) for a in arms.values()))
    ]
    rows.append("| **mean** | " + " | ".join(f"**{a['mean']:.3f}**" for a in arms.values()) + " |")
    kd_rows = [
        f"| λ = {w} | {a['train_recon'][-1]:.4f} | "
        + (f"{a['train_kd'][-1]:.4f}" if a["train_kd"][-1] is not None else "–")
        + " |"
        for w, a in arms.items()
    ]
    md = "\n".join(
        [
            "# KD weight probe: the same student at the switch, trained on with each KD weight",
            "",
            f"Machine: {machine_line(m)} (fp32, one thread per arm, {args.jobs} "
            f"arm{'s' * (args.jobs > 1)} at a time). Command: "
            f"`{command}`. Every arm starts from `{args.snapshot.name}`'s weights after epoch "
            f"{start['epoch'] + 1} (validation IoU {start['val_iou']:.3f}) with budget `{budget.name}`'s "
            f"settings, a fresh Adam (lr {tc.lr:g}, constant) and the same data order, and trains "
            f"{args.epochs} epochs of reconstruction + λ × KD (λ = 0: reconstruction alone). Validation "
            f"IoU on the budget's {tc.val_shapes} validation shapes:",
            "",
            head,
            "|---|" + "---:|" * len(arms),
            *rows,
            "",
            "Loss terms in the last epoch (KD unweighted):",
            "",
            "| arm | recon (MSE) | KD (L1) |",
            "|---|---:|---:|",
            *kd_rows,
            "",
            "One seed, one switch point, validation shapes only: a pointer for the KD recipe, not a claim.",
        ]
    )
    write_results("kd_probe", payload, md + "\n")
    print(md)


if __name__ == "__main__":
    main()
