"""Does ``OMP_WAIT_POLICY=PASSIVE`` speed up the CLI on this machine? Image -> mesh and training, with and
without it, in one run.

Run: ``.venv/bin/python benchmarks/omp_wait_policy.py [--repeats 3] [--steps 20]``.
Writes benchmarks/results/omp_wait_policy.{json,md}.

Each measurement is a fresh process (OpenMP reads the variable once, when torch loads it), which imports
torch first -- so the environment given decides, whatever the CLI would set -- and then times, through
the real CLI (``ifkd.cli.main``):

* ``ifkd reconstruct examples/*.png --model pretrained --device cpu`` (128^3 coarse-to-fine, the default),
* ``ifkd train student --method ifkd-nokd --preset cpu`` for ``--steps`` optimiser steps on a small
  generated dataset (steps/s over the whole command, start-up included).

Settings: ``unset`` (OpenMP's default: spin a little, then sleep), ``PASSIVE`` (sleep at once) and, for
reference, ``ACTIVE`` (spin), the 'before' of benchmarks/bench_extract.py. Runs are interleaved (ABC CBA
...) so a change of the shared machine's load falls on every setting alike.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, machine_line, write_results  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((REPO / "examples").glob("*.png"))
POLICIES = ("unset", "PASSIVE", "ACTIVE")

CHILD = r"""
import json, os, sys, time, tempfile
import torch  # first: OpenMP reads OMP_WAIT_POLICY from the environment we were given, now
from ifkd.cli import main
kind, arg = sys.argv[1], json.loads(sys.argv[2])
out = tempfile.mkdtemp(prefix="omp-")
load = os.getloadavg()[0]
cpu0, t0 = time.process_time(), time.perf_counter()
if kind == "reconstruct":
    rc = main(["reconstruct", *arg["images"], "--model", "pretrained", "--out", out, "--device", "cpu"])
else:
    rc = main(["train", "student", "--method", "ifkd-nokd", "--preset", "cpu", "--data", arg["data"],
               "--out", out, "--device", "cpu", "--set", f"train.max_steps={arg['steps']}",
               "--set", "train.val_shapes=0", "--set", "train.checkpoint_every=0"])
wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
print(json.dumps({"rc": rc, "wall_s": wall, "cpu_s": cpu, "load_before": load,
                  "policy_seen": os.environ.get("OMP_WAIT_POLICY"), "threads": torch.get_num_threads()}))
"""


def run_child(kind: str, arg: dict, policy: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if policy != "unset":
        env["OMP_WAIT_POLICY"] = policy
    done = subprocess.run(
        [sys.executable, "-c", CHILD, kind, json.dumps(arg)], env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"{kind} ({policy}) failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if result["rc"] != 0:
        raise SystemExit(f"{kind} ({policy}) exited {result['rc']}:\n{done.stderr[-3000:]}")
    return result


def order(repeats: int) -> list[str]:
    """ABC CBA ABC ...: each setting runs early and late alike."""
    out: list[str] = []
    for r in range(repeats):
        out += list(POLICIES if r % 2 == 0 else reversed(POLICIES))
    return out


def summarise(runs: list[dict], per: float, unit: str) -> dict:
    walls = [r["wall_s"] for r in runs]
    rates = [per / w for w in walls]
    return {
        "wall_s": walls,
        "cpu_s": [r["cpu_s"] for r in runs],
        "load_before": [r["load_before"] for r in runs],
        "median_wall_s": statistics.median(walls),
        f"median_{unit}": statistics.median(rates),
        "median_cpu_s": statistics.median(r["cpu_s"] for r in runs),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--steps", type=int, default=20, help="optimiser steps of the training measurement")
    args = ap.parse_args()

    from ifkd.data.synth.generate import SynthSettings, generate_dataset

    tmp = Path(tempfile.mkdtemp(prefix="omp-bench-"))
    data = tmp / "data"
    cats = ("chair", "table", "airplane")
    settings = SynthSettings(per_category=6, views=4, seed=0, image_size=64, categories=cats)
    generate_dataset(data, settings, progress=False)
    images = [str(p) for p in EXAMPLES]
    raw: dict[str, dict[str, list[dict]]] = {"reconstruct": {}, "train": {}}
    load0 = os.getloadavg()
    for policy in order(args.repeats):
        rec = run_child("reconstruct", {"images": images}, policy)
        raw["reconstruct"].setdefault(policy, []).append(rec)
        tr = run_child("train", {"data": str(data), "steps": args.steps}, policy)
        raw["train"].setdefault(policy, []).append(tr)
        print(f"{policy:>8}: reconstruct {rec['wall_s']:.2f} s, train {tr['wall_s']:.2f} s", flush=True)
    load1 = os.getloadavg()

    recon = {p: summarise(raw["reconstruct"][p], len(images), "images_per_s") for p in POLICIES}
    train = {p: summarise(raw["train"][p], args.steps, "steps_per_s") for p in POLICIES}
    base_r, base_t = recon["unset"]["median_wall_s"], train["unset"]["median_wall_s"]
    payload = {
        "command": "python " + " ".join([os.path.relpath(__file__, REPO), *sys.argv[1:]]),
        "machine": machine(),
        "load_average_before_after": [load0, load1],
        "images": [os.path.relpath(p, REPO) for p in images],
        "train_steps": args.steps,
        "repeats": args.repeats,
        "reconstruct": recon,
        "train": train,
        "speedup_passive_vs_unset": {
            "reconstruct": base_r / recon["PASSIVE"]["median_wall_s"],
            "train": base_t / train["PASSIVE"]["median_wall_s"],
        },
    }
    m = payload["machine"]
    lines = [
        "# OMP_WAIT_POLICY: PASSIVE vs unset (OpenMP's default) vs ACTIVE",
        "",
        f"`ifkd reconstruct` of the {len(images)} examples/*.png with `--model pretrained` (128^3, CPU), and "
        f"`ifkd train student --method ifkd-nokd --preset cpu` for {args.steps} steps; each a fresh process, "
        f"{args.repeats} repeats per setting, interleaved. Median wall time (all runs in brackets).",
        "",
        "| OMP_WAIT_POLICY | reconstruct s (6 images) | images/s | CPU s | train s | steps/s | CPU s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for p in POLICIES:
        r, t = recon[p], train[p]
        lines.append(
            f"| {p} | {r['median_wall_s']:.2f} ({', '.join(f'{w:.2f}' for w in r['wall_s'])}) "
            f"| {r['median_images_per_s']:.2f} | {r['median_cpu_s']:.2f} "
            f"| {t['median_wall_s']:.2f} ({', '.join(f'{w:.2f}' for w in t['wall_s'])}) "
            f"| {t['median_steps_per_s']:.2f} | {t['median_cpu_s']:.2f} |"
        )
    sp = payload["speedup_passive_vs_unset"]
    lines += [
        "",
        f"PASSIVE vs unset: reconstruct {sp['reconstruct']:.2f}x, train {sp['train']:.2f}x "
        "(> 1: PASSIVE faster).",
        "",
        f"Command: `{payload['command']}`",
        "",
        f"Machine: {machine_line(m)}; load average {[round(x, 2) for x in load0]} before, "
        f"{[round(x, 2) for x in load1]} after (cores shared with other jobs).",
        "",
    ]
    js, md = write_results("omp_wait_policy", payload, "\n".join(lines))
    print("\n".join(lines))
    print(f"wrote {js} and {md}")


if __name__ == "__main__":
    main()
