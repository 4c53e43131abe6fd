"""Reader for 3D-R2N2's ShapeNetRendering: ``<synset>/<model>/rendering/{00..23}.png`` + metadata.

Each model folder holds 24 RGBA renders (137 x 137, transparent background) of the ShapeNet v1 mesh,
``renderings.txt`` (one file name per line) and ``rendering_metadata.txt`` (one viewpoint per line,
parsed by :func:`ifkd.geometry.camera.parse_metadata_line`). The importer copies both into our layout.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ifkd.data.format import METADATA_FILE, RENDER_DIR, RENDERINGS_FILE, load_image, read_views
from ifkd.geometry.camera import Viewpoint
from ifkd.io import InputError

R2N2_SIZE = 137
"""Side of R2N2's renders in pixels."""
R2N2_VIEWS = 24


def list_models(renders_dir: str | Path, synsets: list[str] | None = None) -> list[tuple[str, str]]:
    """(synset, model) pairs under a ShapeNetRendering root that have a ``rendering/`` folder, sorted."""
    root = Path(renders_dir)
    if not root.is_dir():
        raise InputError(f"{root}: ShapeNetRendering folder not found")
    wanted = sorted(synsets) if synsets else sorted(p.name for p in root.iterdir() if p.is_dir())
    pairs = []
    for syn in wanted:
        if not (root / syn).is_dir():
            raise InputError(f"{root / syn}: no renderings for synset {syn}")
        pairs += [(syn, m.name) for m in sorted((root / syn).iterdir()) if (m / RENDER_DIR).is_dir()]
    return pairs


def read_model_views(model_dir: str | Path) -> tuple[list[Viewpoint], list[Path]]:
    """Viewpoints and image paths of one R2N2 model folder (``<model>`` or its ``rendering/``)."""
    folder = Path(model_dir)
    if (folder / RENDER_DIR).is_dir():
        folder = folder / RENDER_DIR
    if not (folder / METADATA_FILE).is_file():
        raise InputError(f"{folder / METADATA_FILE}: file not found (not an R2N2 rendering folder?)")
    try:
        names, views = read_views(folder)
    except InputError:
        raise
    except ValueError as exc:  # the camera parser names the line
        raise InputError(str(exc)) from None
    if not names:
        raise InputError(f"{folder / RENDERINGS_FILE}: no views listed")
    paths = [folder / n for n in names]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise InputError(f"{folder}: {len(missing)} listed images are missing (first: {missing[0]})")
    return views, paths


def load_render(path: str | Path) -> np.ndarray:
    """One render as RGBA uint8 (H, W, 4); images without alpha get it from the white background."""
    from ifkd.data.shapenet.occnet import alpha_from_white

    img = load_image(path)
    if np.all(img[..., 3] == 255):
        img = alpha_from_white(img[..., :3])
    return img
