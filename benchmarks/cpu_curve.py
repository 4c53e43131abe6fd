"""Validation IoU against wall time for one method trained on this machine for a fixed time.

Usage: python benchmarks/cpu_curve.py --data DIR [--method ifkd-nokd] [--preset cpu] [--minutes 30]
       python benchmarks/cpu_curve.py --summarise RUN      (a run already trained, e.g. by hand)
Training is `ifkd train student` stopped with SIGTERM after --minutes (it saves and exits cleanly).
Writes benchmarks/results/cpu_curve.{json,md}: per epoch the cumulative seconds, steps and val IoU.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from common import machine, machine_line, write_results


def summarise(run: Path, command: str) -> None:
    rows, total = [], 0.0
    for line in (run / "metrics.jsonl").read_text().splitlines():
        rec = json.loads(line)
        total += rec.get("seconds", 0.0)
        rows.append(
            {
                "epoch": rec["epoch"] + 1,
                "step": rec["step"],
                "minutes": round(total / 60, 2),
                "train_recon": rec.get("train_recon"),
                "val_iou": rec.get("val_iou"),
            }
        )
    cfg = json.loads((run / "config.json").read_text())
    m = machine()
    best = max((r["val_iou"] or 0.0 for r in rows), default=0.0)
    lines = [
        f"# Validation IoU over training time: {cfg['method']}, preset {cfg['preset']}",
        "",
        f"Command: `{command}`  ",
        f"Machine: {machine_line(m)}",
        "",
        "| epoch | steps | minutes | train recon (MSE) | val IoU |",
        "|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r['epoch']} | {r['step']} | {r['minutes']:.1f} | {r['train_recon']:.4f} | {r['val_iou']:.3f} |"
        for r in rows
    ]
    lines += [
        "",
        f"Best validation IoU {best:.3f} after {rows[-1]['minutes'] if rows else 0:.1f} minutes "
        f"(target of issue #3: >= 0.5 within 30 minutes: {'met' if best >= 0.5 else 'not met'}).",
    ]
    write_results(
        "cpu_curve",
        {
            "method": cfg["method"],
            "preset": cfg["preset"],
            "rows": rows,
            "best_val_iou": best,
            "command": command,
            "machine": m,
        },
        "\n".join(lines) + "\n",
    )
    print("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path)
    ap.add_argument("--method", default="ifkd-nokd")
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--summarise", type=Path, default=None)
    ap.add_argument("--command", default=None, help="the command to record with --summarise")
    args = ap.parse_args()
    if args.summarise:
        summarise(
            args.summarise, args.command or f"python benchmarks/cpu_curve.py --summarise {args.summarise}"
        )
        return
    if args.data is None:
        ap.error("--data is required unless --summarise is given")
    run = Path(tempfile.mkdtemp(prefix="ifkd-curve-"))
    cmd = [
        sys.executable,
        "-m",
        "ifkd",
        "train",
        "student",
        "--data",
        str(args.data),
        "--preset",
        args.preset,
        "--method",
        args.method,
        "--out",
        str(run),
        "--set",
        "train.epochs_recon=1000",
        "--set",
        "train.epochs_kd=0",
    ]
    try:
        subprocess.run(cmd, timeout=args.minutes * 60)
    except subprocess.TimeoutExpired:
        pass  # subprocess.run kills the child; the last completed epoch is in metrics.jsonl
    summarise(
        run,
        " ".join(
            [
                "python benchmarks/cpu_curve.py",
                "--data",
                str(args.data),
                "--method",
                args.method,
                "--preset",
                args.preset,
                "--minutes",
                str(args.minutes),
            ]
        ),
    )


if __name__ == "__main__":
    main()
