"""`real` protocol picture sheets: per mesh, the input view, the ground truth and each method's mesh,
all rendered from the input camera (``OUT/sheets/<mesh>.png``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ifkd.bench.protocols import ProtocolData
from ifkd.data.format import RENDER_DIR, load_image, read_index, read_views, shape_dir
from ifkd.data.loader import image_to_tensor, model_input
from ifkd.geometry.camera import view_transform
from ifkd.render.raycast import render_mesh_figure

LABEL_HEIGHT = 14
MIN_PANEL = 128
"""Sheet panels are at least this many pixels wide (small budgets render tiny images)."""


def source_files(folder: str | Path, category: str) -> dict[str, Path]:
    """{dataset key: mesh file} as ``import_meshes`` names them (same order, same duplicate suffixes)."""
    from ifkd.data.shapenet.importer import mesh_key_id
    from ifkd.data.shapenet.meshes import find_mesh_files

    folder, keys = Path(folder), {}
    for f in find_mesh_files(folder):
        base = key = f"{category}/{mesh_key_id(f, folder)}"
        n = 1
        while key in keys:
            n += 1
            key = f"{base}_{n}"
        keys[key] = f
    return keys


def composite(rgba: np.ndarray, size: int) -> np.ndarray:
    """(H, W, 4) uint8 render -> (size, size, 3) uint8 on white, as the models see it."""
    return (image_to_tensor(rgba, size).numpy().transpose(1, 2, 0) * 255).round().astype(np.uint8)


def labelled(panels: Sequence[tuple[str, np.ndarray]]) -> Image.Image:
    """Panels side by side, each with its label underneath."""
    size = panels[0][1].shape[0]
    sheet = Image.new("RGB", (size * len(panels), size + LABEL_HEIGHT), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (label, img) in enumerate(panels):
        sheet.paste(Image.fromarray(img), (i * size, 0))
        draw.text((i * size + 2, size + 1), label[: max(4, size // 6)], fill=(0, 0, 0))
    return sheet


def write_sheets(
    out: Path,
    data: ProtocolData,
    runs: Sequence[tuple[str, str]],
    device: str,
    size: int,
    force: bool,
    log: Callable[[str], None],
    which: str = "best",
) -> list[str]:
    """One sheet per mesh of ``data`` (existing sheets kept unless ``force``); returns their paths
    relative to ``out``. ``runs``: (label, run folder) per method, in column order."""
    size = max(size, MIN_PANEL)
    from ifkd.bench.runs import scored_checkpoint
    from ifkd.data.shapenet.meshes import load_mesh, normalise
    from ifkd.reconstruct import Reconstructor

    folder = Path(data.settings["meshes"])
    sources = source_files(folder, data.test_categories[0])
    keys = read_index(data.eval_root)["splits"]["test"]
    todo = [k for k in keys if force or not (out / "sheets" / f"{k.split('/')[-1]}.png").is_file()]
    recs = (
        {
            label: Reconstructor.from_run(run, which=scored_checkpoint(run, which), device=device)
            for label, run in runs
        }
        if todo
        else {}
    )
    paths = []
    for key in keys:
        name = f"sheets/{key.split('/')[-1]}.png"
        paths.append(name)
        if key not in todo:
            continue
        folder_k = shape_dir(data.eval_root, key)
        names, views = read_views(folder_k / RENDER_DIR)
        view, rgba = views[0], load_image(folder_k / RENDER_DIR / names[0])
        E = view_transform(view)
        panels = [("input", composite(rgba, size))]
        gt = normalise(load_mesh(sources[key]))[0] if key in sources else None
        panels.append(("ground truth", render_mesh_figure(gt, E, size) if gt is not None else _blank(size)))
        for label, rec in recs.items():
            panels.append((label, render_mesh_figure(_reconstruct(rec, folder_k, rgba, view), E, size)))
        (out / "sheets").mkdir(parents=True, exist_ok=True)
        tmp = out / f"{name}.tmp.png"
        labelled(panels).save(tmp)
        tmp.replace(out / name)
        log(f"[bench] sheet {out / name}")
    return paths


def _reconstruct(rec, folder: Path, rgba: np.ndarray, view):
    """The method's mesh for this view, in the object frame (the teacher reads the GT voxels)."""
    inp = model_input(rec.model.input_kind, rec.cfg.data, folder, rgba=rgba)
    (out,) = rec.reconstruct(inp, distance=view.distance, poses=[view])
    return out.mesh_object


def _blank(size: int) -> np.ndarray:
    return np.full((size, size, 3), 255, dtype=np.uint8)
