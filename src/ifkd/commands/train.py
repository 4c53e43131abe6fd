"""`ifkd train teacher|student`: build the resolved config from a preset + method + overrides, then train."""

from __future__ import annotations

import argparse
from pathlib import Path

from ifkd.io import InputError


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, type=Path, help="dataset folder (ifkd format)")
    p.add_argument(
        "--data-extra",
        dest="data_extra",
        action="append",
        default=[],
        type=Path,
        metavar="DIR",
        help="another dataset folder whose train split is mixed into training, e.g. `ifkd data real`'s "
        "(repeatable; saved as data.extra_roots; weights: --set data.source_weights=W_DATA,W_EXTRA); "
        "validation stays on --data's val split",
    )
    p.add_argument("--preset", default=None, help="size preset: paper | cpu | tiny (default cpu)")
    p.add_argument("--out", "--output-dir", required=True, type=Path, help="run folder")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config field, e.g. --set train.epochs_recon=5 (repeatable)",
    )
    p.add_argument("--seed", type=int, default=None, help="shorthand for --set train.seed=N")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda[:i] (default auto)")


def register(sub: argparse._SubParsersAction) -> None:
    group = sub.add_parser("train", help="train the teacher, then a student").add_subparsers(dest="train_cmd")
    group.required = True
    p = group.add_parser("teacher", help="train the voxel teacher (IF-Net style)")
    _common(p)
    p.add_argument(
        "--kind",
        default="ifnet",
        choices=["ifnet", "simple"],
        help="ifnet (5 scales) or simple (last layer only, the paper's ablation)",
    )
    p.set_defaults(func=cmd_train_teacher)

    p = group.add_parser("student", help="train a single-view method (IFKD, an ablation, or a baseline)")
    _common(p)
    p.add_argument("--teacher", type=Path, default=None, help="teacher run folder (needed by KD methods)")
    p.add_argument(
        "--method",
        default="ifkd",
        help="single-view method (default ifkd; the README's Methods list them, an unknown name prints them)",
    )
    p.set_defaults(func=cmd_train_student)


def build_config(
    method: str, preset: str, overrides: list[str], seed: int | None, data_extra: list[Path] | None = None
):
    """preset -> method overrides -> --set overrides -> seed -> --data-extra: the resolved config of a
    run, checked (:class:`InputError` naming the field) before anything is written. Extra dataset folders
    are saved absolute (appended to any ``--set data.extra_roots``), so a resume works from anywhere."""
    from dataclasses import replace

    from ifkd.config import apply_overrides, check_config, get_preset
    from ifkd.methods import method_config

    try:
        cfg = method_config(method, get_preset(preset))
        if seed is not None:
            overrides = [*overrides, f"train.seed={seed}"]
        cfg = apply_overrides(cfg, overrides)
        if data_extra:
            roots = cfg.data.extra_roots + tuple(str(Path(r).resolve()) for r in data_extra)
            cfg = replace(cfg, data=replace(cfg.data, extra_roots=roots))
        return check_config(cfg)
    except ValueError as exc:
        raise InputError(str(exc)) from None


def check_resume_request(args: argparse.Namespace, method: str, cfg) -> None:
    """``--resume`` continues a run exactly as its config.json says. Rerunning the same command with
    ``--resume`` (what a killed run needs) is fine, and so is ``--resume`` with no options; a request
    for anything else (another method or verb, preset, seed, --set, --data-extra) is refused in one line
    instead of being ignored. To train a stopped run longer, start a new run: its checkpoints belong to
    its own config."""
    from ifkd.config import config_to_dict

    if method != cfg.method:
        asked = f"method {method}"
    elif args.preset is None and not args.overrides and args.seed is None and not args.data_extra:
        return
    else:
        wanted = build_config(method, args.preset or cfg.preset, args.overrides, args.seed, args.data_extra)
        have, want = config_to_dict(cfg), config_to_dict(wanted)
        diff = sorted(_diff_keys(have, want))
        if not diff:
            return
        asked = ", ".join(f"{k}={_get(want, k)!r} (the run has {_get(have, k)!r})" for k in diff[:4])
        asked += " ..." if len(diff) > 4 else ""
    raise InputError(
        f"{args.out}: holds a {cfg.method} run (preset {cfg.preset}); --resume continues it as its "
        f"config.json says, not with {asked}: drop those options, or use another --out"
    )


def _diff_keys(a: dict, b: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two nested config dicts."""
    out = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key), b.get(key)
        if isinstance(va, dict) and isinstance(vb, dict):
            out += _diff_keys(va, vb, f"{prefix}{key}.")
        elif va != vb:
            out.append(f"{prefix}{key}")
    return out


def _get(d: dict, dotted: str):
    for part in dotted.split("."):
        d = d.get(part) if isinstance(d, dict) else None
    return d


def _run(args: argparse.Namespace, method: str, teacher: Path | None) -> int:
    from ifkd.config import load_config
    from ifkd.train.run import train

    if args.resume and (args.out / "config.json").is_file():
        cfg = load_config(args.out)  # the saved config is authoritative on resume (checked as it loads)
        check_resume_request(args, method, cfg)
    else:
        cfg = build_config(method, args.preset or "cpu", args.overrides, args.seed, args.data_extra)
    result = train(cfg, args.data, args.out, teacher_run=teacher, resume=args.resume, device=args.device)
    print(
        f"run written to {args.out}: "
        + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in (result or {}).items())
    )
    return 0


def cmd_train_teacher(args: argparse.Namespace) -> int:
    from ifkd.methods import teacher_method

    return _run(args, teacher_method(args.kind), None)


def cmd_train_student(args: argparse.Namespace) -> int:
    from ifkd.methods import METHODS

    spec = METHODS.get(args.method)
    if spec is None:
        raise InputError(f"--method {args.method!r}: unknown; choose from {', '.join(sorted(METHODS))}")
    # A KD method without --teacher is refused by train() once the config is resolved: with
    # train.epochs_kd=0 (e.g. fine-tuning with train.init_from) it needs none.
    return _run(args, args.method, args.teacher)
