"""Benchmark protocols: which data a budget's runs train on and which test split they are scored on.

``seen``: one generated dataset of all 13 categories, its train split vs its test split.
``unseen``: train on airplane, car and chair only (GenRe's three largest classes), test on the other 10.
``real``: a folder of arbitrary meshes, imported (normalised, rendered R2N2-style) and scored with the
models of the ``seen`` protocol of the same budget.
``realsplit``: does adding real shapes to training help on real objects, at equal optimiser steps? Two
arms: ``procedural`` (the ``seen`` data alone, its own runs) and ``mix`` (the same plus the
train split of an ``ifkd data real`` dataset at weight :data:`REAL_WEIGHT`), both scored on that dataset's
test split (classes trained on vs held-out classes) and on the synthetic test split.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from ifkd.bench.budgets import Budget
from ifkd.bench.runs import index_stamp
from ifkd.data.format import INDEX_FILE, SHAPE_FILE, read_index
from ifkd.data.synth.generate import (
    SynthSettings,
    generate_dataset,
    generate_shape,
    plan_splits,
    write_synth_index,
)
from ifkd.io import InputError, check_writable

PROTOCOLS = ("seen", "unseen", "real", "realsplit")
UNSEEN_TRAIN: tuple[str, ...] = ("airplane", "car", "chair")
"""GenRe's (NeurIPS 2018) training classes: the three largest ShapeNet categories."""
REAL_CATEGORY = "real"
DEFAULT_MESHES = Path("..") / "shared" / "realdata" / "meshes"
"""The `real` protocol's default folder, relative to the repository root."""
REAL_WEIGHT = 1.5
"""`realsplit`'s ``mix`` arm: the real train split's sampling weight (``data.source_weights=(1, W)``):
an epoch draws round(1.5 x n) of its n (shape, view) items beside every procedural one."""
REALSPLIT_METHODS: tuple[str, ...] = ("ifkd",)
"""`realsplit`'s methods unless --methods names others (its teacher is trained per arm as a dependency)."""
ARMS: tuple[str, ...] = ("procedural", "mix")
"""`realsplit`'s training arms, in table order."""
REAL_TARGETS: tuple[str, ...] = ("real_seen", "real_unseen", "synthetic")
"""`realsplit`'s test sets: the real test shapes of classes trained on, of held-out classes (never
trained on), and the synthetic test split of the ``seen`` data."""


@dataclass(frozen=True)
class ProtocolData:
    """Where a protocol's runs train and where they are scored (the test split of ``eval_root``)."""

    protocol: str
    train_root: Path | None
    """dataset the runs train on (None for `real`: its runs are the `seen` protocol's)"""
    eval_root: Path
    settings: dict
    train_categories: list[str]
    test_categories: list[str]
    import_summary: dict | None = None
    """`real` only: ``import_meshes``' summary (imported, broken with a reason each, warnings)"""
    extra: dict = field(default_factory=dict)

    def to_dict(self, out_dir: Path) -> dict:
        """The ``dataset`` entry of results.json (paths relative to the benchmark folder)."""
        out = {
            "root": os.path.relpath(self.eval_root, out_dir),
            "settings": self.settings,
            "train_categories": self.train_categories,
            "test_categories": self.test_categories,
        }
        if self.train_root is not None and self.train_root != self.eval_root:
            out["train_root"] = os.path.relpath(self.train_root, out_dir)
        if self.import_summary is not None:
            s = self.import_summary
            out["import"] = {
                "imported": sorted([*s["imported"], *s["existing"]]),
                "skipped": s["broken"],
                "n_skipped": len(s["broken"]),
                "degenerate": s.get("degenerate", []),
                "warnings": s["warnings"],
            }
        return out


def _settings_dict(s: SynthSettings) -> dict:
    out = asdict(s)
    out["categories"] = list(s.categories)
    return out


def _shape_job(args: tuple[str, str, int, SynthSettings]) -> str:
    root, category, index, s = args
    return generate_shape(Path(root), category, index, s)


def _generate_shapes(root: Path, keys: list[str], s: SynthSettings, workers: int) -> None:
    """Generate the listed 'category/index' shapes (complete ones are skipped by the generator)."""
    jobs = [(str(root), k.split("/")[0], int(k.split("/")[1]), s) for k in keys]
    jobs = [j for j in jobs if not (root / f"{j[1]}/{j[2]:04d}" / SHAPE_FILE).is_file()]
    if workers > 1 and len(jobs) > 1:
        with mp.get_context("fork").Pool(workers) as pool:
            list(pool.imap_unordered(_shape_job, jobs, chunksize=2))
    else:
        for job in jobs:
            _shape_job(job)


def seen_data(budget: Budget, out_dir: Path, workers: int = 1, progress: bool | None = False) -> ProtocolData:
    """All categories of the budget, one generated dataset (resumable): train split vs test split."""
    root = Path(out_dir) / "data"
    generate_dataset(root, budget.synth, workers=workers, progress=progress)
    cats = list(budget.synth.categories)
    return ProtocolData("seen", root, root, _settings_dict(budget.synth), cats, cats)


def unseen_data(
    budget: Budget, out_dir: Path, workers: int = 1, progress: bool | None = False
) -> ProtocolData:
    """Train/val shapes of :data:`UNSEEN_TRAIN`, test shapes of the other categories, in one folder.

    Shapes and splits are those of the `seen` dataset of the same budget (per-shape seeds do not
    depend on the category list), so the unseen test shapes are exactly `seen`'s test shapes of those
    categories: the generalisation gap compares like with like. Only the shapes used are generated.

    The three classes hold 3/13 of the training shapes here (about 40 % of ShapeNet's, where they are
    the largest), so the runs train ``epoch_scale`` times more epochs (and wait ``epoch_scale`` times
    more epochs for a plateau): the same optimiser steps as `seen`, so that the gap measures the
    categories and not a shorter training.
    """
    s = budget.synth
    train_cats = [c for c in UNSEEN_TRAIN if c in s.categories]
    test_cats = [c for c in s.categories if c not in UNSEEN_TRAIN]
    if not train_cats or not test_cats:
        raise InputError(
            f"budget {budget.name!r}: the unseen protocol needs {list(UNSEEN_TRAIN)} and other categories"
        )
    root = Path(out_dir) / "data"
    check_writable(root)
    train_splits = plan_splits(replace(s, categories=tuple(train_cats)))
    test_keys = plan_splits(replace(s, categories=tuple(test_cats)))["test"]
    splits = {"train": train_splits["train"], "val": train_splits["val"], "test": test_keys}
    _generate_shapes(root, [*splits["train"], *splits["val"], *splits["test"]], s, workers)
    scale = max(1, round(len(plan_splits(s)["train"]) / max(1, len(splits["train"]))))
    settings = {**_settings_dict(s), "protocol": "unseen", "epoch_scale": scale}
    write_synth_index(root, s, splits, protocol="unseen")
    return ProtocolData("unseen", root, root, settings, train_cats, test_cats, extra={"epoch_scale": scale})


def epoch_overrides(budget: Budget, scale: int) -> tuple[str, ...]:
    """Config overrides multiplying the budget's E1 and E2 epochs by ``scale`` (none for 1).

    ``train.patience`` (counted in epochs) is multiplied too: the plateau a run must show before it
    stops then spans as many optimiser steps as in `seen`, not ``1/scale`` of them.
    """
    if scale <= 1:
        return ()
    train = budget.config("ifkd", 0).train
    over = (f"train.epochs_recon={train.epochs_recon * scale}", f"train.epochs_kd={train.epochs_kd * scale}")
    return (*over, f"train.patience={train.patience * scale}") if train.patience else over


def real_data(
    budget: Budget,
    out_dir: Path,
    meshes: str | Path,
    workers: int = 1,
    progress: bool | None = False,
    log: Callable[[str], None] = print,
) -> ProtocolData:
    """Import a folder of meshes into ``OUT/data_real`` (test split); bad meshes skipped with a reason."""
    from ifkd.data.shapenet.importer import ImportSettings, import_meshes

    s = budget.synth
    settings = ImportSettings(
        n_points=s.n_points,
        n_uniform=s.n_uniform,
        surface_points=s.surface_points,
        voxel_resolutions=s.voxel_resolutions,
        image_size=s.image_size,
        category=REAL_CATEGORY,
    )
    root = Path(out_dir) / "data_real"
    summary = import_meshes(
        meshes,
        root,
        views=budget.real_views,
        seed=s.seed,
        workers=workers,
        settings=settings,
        progress=progress,
    )
    for bad in summary["broken"]:
        log(f"skipped {bad['key']}: {bad['reason']}")
    for bad in summary["degenerate"]:
        log(f"skipped {bad['key']} (degenerate ground truth, kept out of the test split): {bad['reason']}")
    if not summary["imported"] and not summary["existing"]:
        raise InputError(f"{meshes}: no mesh could be imported ({len(summary['broken'])} skipped)")
    info = {**asdict(settings), "views": budget.real_views, "seed": s.seed, "meshes": str(meshes)}
    info["voxel_resolutions"] = list(settings.voxel_resolutions)
    return ProtocolData("real", None, root, info, [], [REAL_CATEGORY], import_summary=summary)


def check_real_data(root: str | Path | None) -> dict:
    """The index of an ``ifkd data real`` dataset; a one-line InputError naming the folder otherwise."""
    if root is None:
        raise InputError("the realsplit protocol needs --real-data DIR (made by `ifkd data real --out DIR`)")
    root = Path(root)
    if not (root / INDEX_FILE).is_file():
        what = "no such folder" if not root.is_dir() else f"no {INDEX_FILE}"
        raise InputError(
            f"{root}: not a real-shape dataset ({what}); run `ifkd data real --out {root}` first"
        )
    index = read_index(root)
    for split in ("train", "test"):
        if not index["splits"].get(split):
            raise InputError(f"{root / INDEX_FILE}: the {split} split is empty (see `ifkd data real`)")
    return index


def mix_overrides(real_root: str | Path) -> tuple[str, ...]:
    """Config overrides of the ``mix`` arm: the real train split as a second source at :data:`REAL_WEIGHT`,
    its val split also scored at epoch ends ('best' still follows the procedural val split)."""
    root = str(Path(real_root).resolve())
    if any(c in root for c in ",()[]"):  # the tuple syntax of --set cannot carry them
        raise InputError(f"{root}: --real-data path must not contain commas or brackets")
    return (f"data.extra_roots={root}", f"data.source_weights=1,{REAL_WEIGHT:g}", "data.val_extra=true")


def realsplit_data(
    budget: Budget,
    real_root: str | Path | None,
    seen_dir: str | Path,
    workers: int = 1,
    progress: bool | None = False,
) -> ProtocolData:
    """The ``seen`` data in ``seen_dir`` (generated if missing, the data the ``seen`` protocol uses) and
    the real dataset ``real_root`` (read only): train on the first (+ the second's train split for
    ``mix``), score on the second's test split and on the first's."""
    index = check_real_data(real_root)
    real = Path(real_root).resolve()
    seen = seen_data(budget, Path(seen_dir), workers, progress)
    held_out = sorted(index.get("held_out_categories") or [])
    cats = {s: sorted({k.split("/")[0] for k in keys}) for s, keys in index["splits"].items()}
    settings = {
        **seen.settings,
        "protocol": "realsplit",
        "real_data": str(real),
        "real_index": index_stamp(real),
        "real_weight": REAL_WEIGHT,
        "held_out_categories": held_out,
        "real_shapes": {s: len(keys) for s, keys in index["splits"].items()},
    }
    extra = {
        "synthetic_root": seen.eval_root,
        "seen_dir": Path(seen_dir),
        "held_out": held_out,
        "real_train_categories": cats.get("train", []),
    }
    train_cats = sorted({*seen.train_categories, *cats.get("train", [])})
    return ProtocolData("realsplit", seen.train_root, real, settings, train_cats, cats["test"], extra=extra)


def prepare_data(
    protocol: str,
    budget: Budget,
    out_dir: Path,
    *,
    meshes: str | Path | None = None,
    real_dataset: str | Path | None = None,
    seen_dir: str | Path | None = None,
    workers: int = 1,
    progress: bool | None = False,
    log: Callable[[str], None] = print,
) -> ProtocolData:
    """Generate or import the protocol's data under ``out_dir`` (resumable); `realsplit` reads
    ``real_dataset`` and generates the `seen` data in ``seen_dir`` (default ``out_dir/../seen``)."""
    if protocol == "realsplit":
        seen = Path(seen_dir) if seen_dir else Path(out_dir).parent / "seen"
        return realsplit_data(budget, real_dataset, seen, workers, progress)
    if protocol == "seen":
        return seen_data(budget, out_dir, workers, progress)
    if protocol == "unseen":
        return unseen_data(budget, out_dir, workers, progress)
    if protocol == "real":
        return real_data(budget, out_dir, meshes or default_meshes(), workers, progress, log)
    raise InputError(f"unknown protocol {protocol!r}; choose from {list(PROTOCOLS)}")


def default_meshes() -> Path:
    """``../shared/realdata/meshes`` relative to the repository root (the folder holding pyproject.toml)."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "pyproject.toml").is_file():
            return (parent / DEFAULT_MESHES).resolve()
    return (Path.cwd() / DEFAULT_MESHES).resolve()
