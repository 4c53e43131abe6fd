"""Time image -> 128^3 mesh for the `cpu` preset student: coarse-to-fine vs dense, decoder queries, and
the decoder's achieved GFLOP/s against a plain torch matmul measured in the same run.

Run: ``.venv/bin/python benchmarks/bench_extract.py [--model RUN] [--resolution 128] [--repeats 3]``.
Writes benchmarks/results/extract.{json,md}. Targets (issue 4): <= 1.0 s per image at 128^3 with
coarse-to-fine, >= 8x fewer decoder queries than dense, decoder >= 40 % of matmul throughput.

Without ``--model`` the field is the randomly initialised cpu-preset IFKD student whose full forward
pass runs on every query, plus an analytic chair (seat, back, four legs) added to its logits: a random
network's field has no surface, and the number of queries coarse-to-fine makes depends on the surface.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

# Before torch loads, as the `ifkd` CLI does at start (ifkd.cli.passive_openmp_waits); an explicit setting
# wins. benchmarks/results/omp_wait_policy.md compares it with OpenMP's default on this machine.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, machine_line, write_results  # noqa: E402

from ifkd.config import get_preset  # noqa: E402
from ifkd.methods import build_method, method_config  # noqa: E402
from ifkd.models.base import Method  # noqa: E402
from ifkd.reconstruct import Reconstructor  # noqa: E402

CHAIR = torch.tensor(
    # (centre xyz, half-size xyz) of boxes, in the view frame's OpenCV axes (+Y down); looked up from a
    # precomputed 128^3 logit volume so the stand-in costs about as little as one feature lookup
    [
        [0.0, 0.0, 0.0, 0.25, 0.03, 0.25],  # seat
        [0.0, -0.25, 0.22, 0.25, 0.25, 0.03],  # back
        [-0.22, 0.2, -0.22, 0.025, 0.2, 0.025],  # legs
        [0.22, 0.2, -0.22, 0.025, 0.2, 0.025],
        [-0.22, 0.2, 0.22, 0.025, 0.2, 0.025],
        [0.22, 0.2, 0.22, 0.025, 0.2, 0.025],
    ]
)
SHARPNESS = 60.0
"""logit slope per unit of signed distance (a trained field's 0.5 level set is similarly sharp)"""


def chair_volume(res: int = 128, half: float = 0.55) -> torch.Tensor:
    """(1, 1, R, R, R) logits of the union of CHAIR's boxes (positive inside) at the cell centres of
    [-half, half]^3, indexed [z, y, x] as grid_sample wants; built separably (cheap)."""
    axis = -half + (np.arange(res) + 0.5) * (2 * half / res)
    best = np.full((res, res, res), np.inf)
    for cx, cy, cz, hx, hy, hz in CHAIR.numpy().astype(np.float64):
        qx, qy, qz = (np.abs(axis - c) - h for c, h in ((cx, hx), (cy, hy), (cz, hz)))
        qx, qy, qz = qx[:, None, None], qy[None, :, None], qz[None, None, :]
        outside = np.sqrt(np.maximum(qx, 0) ** 2 + np.maximum(qy, 0) ** 2 + np.maximum(qz, 0) ** 2)
        best = np.minimum(best, outside + np.minimum(np.maximum(np.maximum(qx, qy), qz), 0))
    logits = -SHARPNESS * best  # [x, y, z]
    return torch.from_numpy(np.ascontiguousarray(logits.transpose(2, 1, 0), dtype=np.float32))[None, None]


class ChairField(Method):
    """The student's full forward pass plus an analytic chair, so extraction meets a real surface."""

    frame = "view"
    input_kind = "image"

    def __init__(self, student: Method) -> None:
        super().__init__()
        self.student = student
        self.decoder = student.decoder
        self.register_buffer("chair", chair_volume(), persistent=False)
        self.analytic_s = 0.0

    def encode(self, inputs: torch.Tensor):
        return self.student.encode(inputs)

    def decode(self, code, points: torch.Tensor, distance=None) -> torch.Tensor:
        logits = self.student.decode(code, points, distance)
        t0 = time.perf_counter()
        grid = (points.float() / 0.55).reshape(points.shape[0], 1, 1, -1, 3)  # trilinear lookup
        chair = F.grid_sample(self.chair, grid, align_corners=False, padding_mode="border")
        out = chair.reshape(logits.shape) + 1e-3 * logits  # the network's output stays in the result
        self.analytic_s += time.perf_counter() - t0
        return out


def decoder_flops_per_query(decoder: nn.Module) -> int:
    """FLOPs of one query through the point decoder's MLP: 2 * in * out per Linear (activations free)."""
    return sum(2 * m.in_features * m.out_features for m in decoder.modules() if isinstance(m, nn.Linear))


class DecoderClock:
    """Wall time spent inside ``decoder.forward`` and the rows it processed (forward hooks)."""

    def __init__(self, decoder: nn.Module) -> None:
        self.seconds, self.rows, self._t0 = 0.0, 0, 0.0
        decoder.register_forward_pre_hook(self._start)
        decoder.register_forward_hook(self._stop)

    def _start(self, module, args) -> None:
        self._t0 = time.perf_counter()

    def _stop(self, module, args, output) -> None:
        self.seconds += time.perf_counter() - self._t0
        self.rows += int(np.prod(args[0].shape[:-1]))

    def reset(self) -> None:
        self.seconds, self.rows = 0.0, 0


def matmul_gflops(rows: int, width: int, repeats: int = 10) -> float:
    """Best-of GFLOP/s of a plain (rows, width) @ (width, width) float32 matmul (a hidden layer's shape)."""
    a, b = torch.randn(rows, width), torch.randn(width, width)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t0)
    return 2.0 * rows * width * width / best / 1e9


def build(model: str | None) -> tuple[Reconstructor, str]:
    if model:
        return Reconstructor.from_run(model, device="cpu"), f"trained run {model}"
    cfg = method_config("ifkd", get_preset("cpu"))
    torch.manual_seed(0)
    field = ChairField(build_method("ifkd", cfg).eval())
    note = "random-init cpu-preset ifkd student (full forward per query) + analytic chair added to its logits"
    return Reconstructor(field, cfg, "cpu"), note


def run_mode(rec: Reconstructor, clock: DecoderClock, image: np.ndarray, res: int, dense: bool, repeats: int):
    """Median-of-repeats timings of one image -> mesh at ``res``."""
    rows = []
    for _ in range(repeats):
        clock.reset()
        if isinstance(rec.model, ChairField):
            rec.model.analytic_s = 0.0
        t0, c0 = time.perf_counter(), time.process_time()
        (out,) = rec.reconstruct([image], resolution=res, dense=dense)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        rows.append(
            {
                "wall_s": wall,
                "cpu_s": cpu,
                "decoder_s": clock.seconds,
                "decoder_rows": clock.rows,
                "analytic_s": getattr(rec.model, "analytic_s", 0.0),
                "queries": out.n_queries,
                "faces": len(out.mesh.faces),
                "watertight": bool(out.mesh.is_watertight),
                **{f"stage_{k}_s": v for k, v in out.timings.items()},
            }
        )
    med = {k: float(np.median([r[k] for r in rows])) for k in rows[0] if isinstance(rows[0][k], float)}
    return {**rows[0], **med, "repeats": repeats, "wall_all_s": [round(r["wall_s"], 3) for r in rows]}


def measure(args: argparse.Namespace) -> dict:
    """Every number of the report, from this process (whose OpenMP wait policy is fixed at import)."""
    if args.threads:
        torch.set_num_threads(args.threads)
    rec, field_note = build(args.model)
    decoder = rec.model.decoder
    flops = decoder_flops_per_query(decoder)
    clock = DecoderClock(decoder)
    image = np.random.default_rng(0).integers(0, 256, size=(137, 137, 3), dtype=np.uint8)  # R2N2 size
    rec.reconstruct([image], resolution=32)  # warm-up: allocator, MKL/oneDNN kernels
    load_before = os.getloadavg()
    hidden = max(m.out_features for m in decoder.modules() if isinstance(m, nn.Linear))
    mm = matmul_gflops(rec.cfg.eval.points_per_chunk, hidden)
    modes = {"coarse_to_fine": run_mode(rec, clock, image, args.resolution, False, args.repeats)}
    if args.dense_repeats:
        modes["dense"] = run_mode(rec, clock, image, args.resolution, True, args.dense_repeats)
    mm_after = matmul_gflops(rec.cfg.eval.points_per_chunk, hidden)
    matmul = max(mm, mm_after)
    for r in modes.values():
        r["decoder_gflops"] = flops * r["decoder_rows"] / r["decoder_s"] / 1e9
        r["decoder_share_of_matmul"] = r["decoder_gflops"] / matmul
    return {
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "torch_threads": torch.get_num_threads(),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "field": field_note,
        "preset": rec.cfg.preset,
        "resolution": args.resolution,
        "coarse_resolution": rec.cfg.eval.coarse_resolution,
        "points_per_chunk": rec.cfg.eval.points_per_chunk,
        "decoder_flops_per_query": flops,
        "matmul_shape": [rec.cfg.eval.points_per_chunk, hidden, hidden],
        "matmul_gflops": matmul,
        "matmul_gflops_before_after": [mm, mm_after],
        **modes,
    }


def spinning_baseline(args: argparse.Namespace) -> dict:
    """The coarse-to-fine numbers again in a child process with ``OMP_WAIT_POLICY=ACTIVE`` (threads spin
    at every wait): the 'before' of the report. Not OpenMP's default (spin briefly, then sleep), which
    benchmarks/omp_wait_policy.py compares with PASSIVE."""
    cmd = [sys.executable, __file__, "--emit-json", "--dense-repeats", "0", "--repeats", str(args.repeats)]
    cmd += ["--resolution", str(args.resolution)] + (["--model", args.model] if args.model else [])
    cmd += ["--threads", str(args.threads)] if args.threads else []
    env = {**os.environ, "OMP_WAIT_POLICY": "ACTIVE"}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="a trained run folder (default: see module docstring)")
    ap.add_argument("--resolution", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3, help="coarse-to-fine repeats (median reported)")
    ap.add_argument("--dense-repeats", type=int, default=1, help="dense repeats (0: skip dense)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--no-baseline", action="store_true", help="skip the spinning-OpenMP 'before' run")
    ap.add_argument("--emit-json", action="store_true", help=argparse.SUPPRESS)  # the baseline child
    args = ap.parse_args()
    result = measure(args)
    if args.emit_json:
        print(json.dumps(result))
        return
    fine, dense = result["coarse_to_fine"], result["dense"]
    ratio = dense["queries"] / fine["queries"]
    payload = {
        "command": "python " + " ".join(sys.argv),
        "machine": machine(),
        **result,
        "query_reduction": ratio,
        "targets_met": {
            "seconds_per_image_le_1": fine["wall_s"] <= 1.0,
            "query_reduction_ge_8x": ratio >= 8.0,
            "decoder_ge_40pct_of_matmul": fine["decoder_share_of_matmul"] >= 0.4,
        },
    }
    if not args.no_baseline:
        payload["before_spinning_openmp"] = spinning_baseline(args)
    write_results("extract", payload, markdown(payload))
    print(markdown(payload))


def markdown(p: dict) -> str:
    f, d = p["coarse_to_fine"], p["dense"]

    def row(name: str, r: dict) -> str:
        other = r["wall_s"] - r["decoder_s"] - r["analytic_s"]
        return (
            f"| {name} | {r['queries']:,} | {r['wall_s']:.2f} | {r['cpu_s']:.2f} | "
            f"{r['stage_encode_s']:.2f} | "
            f"{r['decoder_s']:.2f} | {r['analytic_s']:.2f} | {other:.2f} | {r['decoder_gflops']:.1f} | "
            f"{100 * r['decoder_share_of_matmul']:.0f} % | {r['faces']:,} |"
        )

    met = p["targets_met"]
    yes = {True: "met", False: "**missed**"}
    return "\n".join(
        [
            f"# Image -> {p['resolution']}^3 mesh ({p['preset']} preset)",
            "",
            f"Field: {p['field']}. Coarse grid {p['coarse_resolution']}^3, {p['points_per_chunk']:,} "
            f"points per decoder call. Decoder MLP: {p['decoder_flops_per_query']:,} FLOPs per query "
            "(2·in·out per Linear). Plain matmul "
            f"{' x '.join(map(str, p['matmul_shape']))} (the hidden layer's shape): "
            f"{p['matmul_gflops']:.1f} GFLOP/s (best of 10, before and after the runs).",
            "",
            "| extraction | decoder queries | wall s | CPU s | encode s | decoder MLP s | analytic s | "
            "rest s (sampling, grids, MC) | decoder GFLOP/s | of matmul | faces |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
            row("coarse-to-fine", f),
            row("dense", d),
            "",
            f"- {f['wall_s']:.2f} s per image (median of {f['repeats']}: {f['wall_all_s']}) -- "
            "target <= 1.0 s: "
            f"{yes[met['seconds_per_image_le_1']]}",
            f"- {p['query_reduction']:.1f}x fewer queries than dense -- target >= 8x: "
            f"{yes[met['query_reduction_ge_8x']]}",
            f"- decoder at {100 * f['decoder_share_of_matmul']:.0f} % of the matmul's GFLOP/s -- "
            "target >= 40 %: "
            f"{yes[met['decoder_ge_40pct_of_matmul']]}",
            "",
            "'analytic s' is the stand-in chair's own cost (not part of a real model's); 'rest' = wall - "
            "decoder MLP - analytic: image loading, encoder, pixel-aligned sampling, grid bookkeeping, "
            "marching cubes.",
            *before_after(p),
            "",
            f"Command: `{p['command']}`",
            "",
            f"Machine: {machine_line(p['machine'])}; torch threads {p['torch_threads']}, OpenMP wait "
            f"policy {p['omp_wait_policy']}; "
            "load average "
            f"{[round(x, 2) for x in p['load_average_before']]} before, "
            f"{[round(x, 2) for x in p['load_average_after']]} after (2 cores shared with other jobs: wall "
            "times grow with the load, CPU s is this process's CPU time).",
            "",
        ]
    )


def before_after(p: dict) -> list[str]:
    """Lines comparing the run with the spinning-OpenMP baseline child, when there is one."""
    b = p.get("before_spinning_openmp")
    if not b:
        return []
    old, new = b["coarse_to_fine"], p["coarse_to_fine"]
    return [
        "",
        "Before / after the hot-path fix (OpenMP threads wait passively instead of spinning, set by the CLI "
        "before torch loads; inference_mode in the reconstructor). Same image, coarse-to-fine, this run:",
        "",
        "| OpenMP waits | wall s | CPU s | encode s | decoder MLP s | decoder GFLOP/s | load average |",
        "|---|---:|---:|---:|---:|---:|---|",
        *(
            f"| {name} | {r['wall_s']:.2f} | {r['cpu_s']:.2f} | {r['stage_encode_s']:.2f} | "
            f"{r['decoder_s']:.2f} | {r['decoder_gflops']:.1f} | {[round(x, 1) for x in load]} |"
            for name, r, load in (
                ("spinning (before)", old, b["load_average_after"]),
                ("passive (after)", new, p["load_average_after"]),
            )
        ),
    ]


if __name__ == "__main__":
    main()
