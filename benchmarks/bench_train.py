"""Training throughput (samples/s) of every method at a preset, on this machine.

Usage: python benchmarks/bench_train.py [--preset cpu] [--steps 10] [--methods ifkd global ...] [--device cpu]
Times full optimiser steps (forward, losses incl. KD against a frozen teacher, backward, Adam) on batches
from the real loader over a small generated dataset; data loading is excluded (batches are prefetched).
Writes benchmarks/results/train_<preset>_<device>.{json,md}.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from common import machine, machine_line, write_results
from torch.utils.data import DataLoader

from ifkd.config import get_preset
from ifkd.data.loader import make_dataset
from ifkd.data.synth.generate import SynthSettings, generate_dataset
from ifkd.methods import METHODS, build_method, method_config


def time_method(name: str, preset: str, root: Path, steps: int, device: torch.device) -> dict:
    spec = METHODS[name]
    cfg = method_config(name, get_preset(preset))
    teacher = None
    if spec.uses_kd:
        tname = spec.teacher_method
        teacher = build_method(tname, method_config(tname, cfg)).to(device).eval().requires_grad_(False)
    model = build_method(name, cfg, teacher.feature_dim if teacher is not None else None).to(device).train()
    ds = make_dataset(root, "train", cfg.data, seed=0)
    loader = DataLoader(ds, batch_size=cfg.train.batch_size, shuffle=True, drop_last=True)
    batches = []
    while len(batches) < steps + 2:
        for b in loader:
            batches.append({k: v.to(device) for k, v in b.items()})
            if len(batches) >= steps + 2:
                break
    opt = torch.optim.Adam(model.parameters(), lr=cfg.train.lr)
    use_amp = device.type == "cuda"
    if model.input_kind == "image" and use_amp:  # as the trainer does: channels_last under bf16 on CUDA
        model.to(memory_format=torch.channels_last)
        for b in batches:
            b["image"] = b["image"].contiguous(memory_format=torch.channels_last)

    def step(batch) -> None:
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_amp):
            losses = model.training_losses(batch, kd_active=teacher is not None, teacher=teacher)
        losses["loss"].backward()
        opt.step()

    for b in batches[:2]:  # warm-up
        step(b)
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for b in batches[2:]:
        step(b)
    if device.type == "cuda":
        torch.cuda.synchronize()
    dt = (time.perf_counter() - t0) / steps
    return {
        "method": name,
        "batch": cfg.train.batch_size,
        "points": cfg.data.points_per_shape,
        "image_size": cfg.data.image_size,
        "step_s": round(dt, 4),
        "samples_per_s": round(cfg.train.batch_size / dt, 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--methods", nargs="+", default=[m for m in METHODS])
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    device = torch.device(args.device)
    root = Path(tempfile.mkdtemp(prefix="ifkd-bench-train-"))
    generate_dataset(root, SynthSettings(per_category=4, views=4, seed=0), workers=2, progress=False)
    rows = [time_method(m, args.preset, root, args.steps, device) for m in args.methods]
    m = machine()
    lines = [
        f"# Training throughput, preset `{args.preset}` on {args.device}",
        "",
        f"Command: `python benchmarks/bench_train.py --preset {args.preset} --steps {args.steps} "
        f"--device {args.device}`  ",
        f"Machine: {machine_line(m)}",
        "",
        "| method | batch | points | px | step (s) | samples/s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r['method']} | {r['batch']} | {r['points']} | {r['image_size']} | {r['step_s']:.3f} | "
        f"{r['samples_per_s']:.1f} |"
        for r in rows
    ]
    write_results(f"train_{args.preset}_{device.type}", {"rows": rows, "machine": m}, "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
