"""Decide whether a newly trained student replaces the shipped `pretrained` weights, and package it.

Usage:
  python benchmarks/ship_mix.py --run RUN --real REAL --synth SYNTH [--against pretrained]
         [--name ifkd-mix-cpu] [--ship] [--curve NAME]

Scores the candidate run's 'best' weights and the incumbent (default: the shipped `pretrained`) with
`ifkd evaluate`'s protocol (camera-free, exact labels, view 0 of every test shape) on
- REAL's test split (``ifkd data real``), split into the classes trained on (``real_seen``) and the
  held-out classes (``real_unseen``), and
- SYNTH's test split (procedural shapes neither model trained on),
then applies issue #15's rule: the candidate replaces the incumbent only if its class-mean IoU is higher
on the real test split (all of it: ``real``) and not lower by more than :data:`SYNTH_TOLERANCE` on the
synthetic test split; the seen / held-out parts are reported beside it.
Writes benchmarks/results/<--out-name>.{json,md}.
With ``--ship`` and a passing rule, the candidate is copied into src/ifkd/pretrained/<--name>/ (config,
metrics, 'best' weights, provenance.json); making it the default is a one-line change to
``ifkd.pretrained.DEFAULT_NAME``, left to the committer.
Evaluations are cached in --work (per shape), so a rerun costs nothing.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, machine, machine_line, write_results  # noqa: E402

SYNTH_TOLERANCE = 0.02
"""Issue #15: the new weights may not be worse than the shipped ones by more than this IoU on the
synthetic test set."""
KEYS = ("iou", "chamfer_l1_x10", "fscore_1", "normal_consistency", "empty")
HEADERS = ("IoU", "Chamfer-L1 ×10", "F@1%", "NC", "empty")


def evaluate(model: str, data: Path, out: Path, workers: int = 1) -> Path:
    """`ifkd evaluate`'s protocol on data's test split (cached per shape in out)."""
    from ifkd.eval.evaluate import EvalOptions, run_evaluation

    opts = EvalOptions(split="test", views="first")
    run_evaluation(model, data, out, opts, device="auto", workers=workers, progress=False)
    return out


def scores(eval_real: Path, eval_synth: Path, held_out: list[str]) -> dict:
    from ifkd.bench.harness import split_real

    parts = split_real(eval_real, held_out)
    real = json.loads((eval_real / "summary.json").read_text())
    synth = json.loads((eval_synth / "summary.json").read_text())
    return {
        "real": {k: real["mean"].get(k) for k in KEYS},
        "real_seen": parts["real_seen"]["mean"],
        "real_unseen": parts["real_unseen"]["mean"] if parts["real_unseen"] else None,
        "synthetic": {k: synth["mean"].get(k) for k in KEYS},
        "n": {
            "real": real["n"],
            "real_seen": parts["real_seen"]["shapes"],
            "real_unseen": parts["real_unseen"]["shapes"] if parts["real_unseen"] else 0,
            "synthetic": synth["n"],
        },
    }


def verdict(new: dict, old: dict) -> tuple[bool, str]:
    real = new["real"]["iou"] - old["real"]["iou"]
    synth = new["synthetic"]["iou"] - old["synthetic"]["iou"]
    ok = real > 0 and synth >= -SYNTH_TOLERANCE
    why = (
        f"real test split IoU {real:+.3f} (class mean over all its classes); synthetic test IoU {synth:+.3f} "
        f"(allowed >= -{SYNTH_TOLERANCE}): {'replace' if ok else 'keep the shipped weights'}"
    )
    return ok, why


def markdown(doc: dict) -> str:
    lines = [
        "# Shipped weights: the real-shape mix against the procedural-only weights",
        "",
        f"Command: `{doc['command']}`  ",
        f"Machine: {machine_line(doc['machine'])}; evaluation on CPU, fp32.",
        "",
        "`ifkd evaluate`'s protocol: camera-free (nominal distance), exact IoU labels at 100k points, 100k "
        "surface samples, view 0 of every test shape; class means. `real`: the whole real test split; "
        "`real_seen` / `real_unseen`: its classes trained on / held out (never trained on).",
        "",
        "| weights | test set | shapes | " + " | ".join(HEADERS) + " |",
        "|---|---|---:|" + "---:|" * len(HEADERS),
    ]
    for who in ("candidate", "incumbent"):
        s = doc[who]["scores"]
        for part in ("real", "real_seen", "real_unseen", "synthetic"):
            if s[part] is None:
                continue
            cells = " | ".join(f"{s[part][k]:.3f}" if s[part].get(k) is not None else "-" for k in KEYS)
            lines.append(f"| {doc[who]['label']} | {part} | {s['n'][part]} | {cells} |")
    lines += ["", f"**Rule (issue #15):** {doc['verdict']}", ""]
    lines += [f"- candidate: {doc['candidate']['model']}", f"- incumbent: {doc['incumbent']['model']}", ""]
    return "\n".join(lines)


def ship(run: Path, name: str, provenance: dict) -> Path:
    """Copy the run's config, metrics and 'best' weights into src/ifkd/pretrained/<name>/."""
    from ifkd.io import atomic_write_json
    from ifkd.pretrained import PRETRAINED_DIR

    dest = PRETRAINED_DIR / name
    (dest / "checkpoints").mkdir(parents=True, exist_ok=True)
    shutil.copy2(run / "config.json", dest / "config.json")
    shutil.copy2(run / "metrics.jsonl", dest / "metrics.jsonl")
    shutil.copy2(run / "checkpoints" / "best.safetensors", dest / "checkpoints" / "best.safetensors")
    atomic_write_json(dest / "provenance.json", provenance)
    return dest


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", type=Path, required=True, help="the candidate run folder")
    ap.add_argument("--real", type=Path, required=True, help="`ifkd data real` folder (its test split)")
    ap.add_argument("--synth", type=Path, required=True, help="procedural dataset (its test split)")
    ap.add_argument("--against", default="pretrained", help="the incumbent (default: the shipped weights)")
    ap.add_argument("--name", default="ifkd-mix-cpu", help="folder name under src/ifkd/pretrained/")
    ap.add_argument("--work", type=Path, default=Path("/tmp/ship-mix"), help="evaluation cache")
    ap.add_argument("--out-name", default="shipped_mix", help="results/<name>.{json,md}")
    ap.add_argument("--provenance", type=Path, default=None, help="JSON of facts to add to provenance.json")
    ap.add_argument("--ship", action="store_true", help="package the candidate when the rule passes")
    ap.add_argument("--workers", type=int, default=1, help="evaluation processes (default 1)")
    args = ap.parse_args()
    import torch

    from ifkd.data.format import read_index

    torch.set_num_threads(1)
    held_out = list(read_index(args.real).get("held_out_categories", []))
    doc: dict = {
        "command": "python benchmarks/ship_mix.py " + " ".join(sys.argv[1:]),
        "machine": machine(),
        "synth_tolerance": SYNTH_TOLERANCE,
    }
    for who, model, label in (
        ("candidate", str(args.run), args.name),
        ("incumbent", args.against, args.against),
    ):
        base = args.work / who
        real = evaluate(model, args.real, base / "real", args.workers)
        synth = evaluate(model, args.synth, base / "synth", args.workers)
        doc[who] = {"model": model, "label": label, "scores": scores(real, synth, held_out)}
    ok, why = verdict(doc["candidate"]["scores"], doc["incumbent"]["scores"])
    doc["replace"], doc["verdict"] = ok, why
    md = markdown(doc)
    write_results(args.out_name, doc, md)
    print(md)
    if args.ship and ok:
        extra = json.loads(args.provenance.read_text()) if args.provenance else {}
        facts = {**extra, "test_metrics": doc["candidate"]["scores"], "compared": why}
        dest = ship(args.run, args.name, facts)
        print(f"shipped to {dest} (results: {RESULTS / args.out_name}.md)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
