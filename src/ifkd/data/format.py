"""The one on-disk dataset format: every source (generator, R2N2, OccNet, IM-NET) is converted into it.

Layout (format version 1)::

    ROOT/index.json                            format_version, categories {name: synset}, splits
                                               {train, val, test: ["cat/id", ...]}, generator/import settings
    ROOT/<cat>/<id>/shape.npz                  see SHAPE_ARRAYS
    ROOT/<cat>/<id>/rendering/00.png ...       RGBA views (R2N2 naming, transparent background)
    ROOT/<cat>/<id>/rendering/renderings.txt   one image file name per line (R2N2)
    ROOT/<cat>/<id>/rendering/rendering_metadata.txt
                                               one R2N2 viewpoint per line: az el inplane dist_ratio fov

Voxel grids are stored bit-packed: ``voxels_<R>`` = ``np.packbits(grid.reshape(-1))`` of a boolean
(R, R, R) grid indexed [x, y, z] (C order) whose cells tile [-0.5, 0.5]^3; a cell is occupied when its
centre is inside the shape. Readers validate everything and raise :class:`ifkd.io.InputError` with
the file and the problem.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ifkd.geometry.camera import Viewpoint, format_metadata_line, parse_metadata_line
from ifkd.geometry.voxels import pack_voxels, unpack_voxels
from ifkd.io import (
    InputError,
    atomic_path,
    atomic_save_npz,
    atomic_write_json,
    atomic_write_text,
    not_found,
    read_json,
    remove_stale_temps,
)

FORMAT_VERSION = 1
INDEX_FILE = "index.json"
SHAPE_FILE = "shape.npz"
RENDER_DIR = "rendering"
METADATA_FILE = "rendering_metadata.txt"
RENDERINGS_FILE = "renderings.txt"
VOXEL_RESOLUTIONS = (32, 64, 128)
SPLITS = ("train", "val", "test")

SHAPE_ARRAYS = {
    "points": "(N, 3) float32, object frame: IM-NET-style query points (uniform + near surface)",
    "occupancies": "(N,) uint8 in {0, 1}: ground-truth occupancy of points",
    "surface_points": "(M, 3) float32, object frame: area-uniform samples of the outer surface",
    "surface_normals": "(M, 3) float32: unit outward normals of surface_points",
    "voxels_<R>": "packed bits of a (R, R, R) bool grid [x, y, z] on [-0.5, 0.5]^3 (R in 32/64/128)",
    "iou_points": "optional (K, 3) float16: OccNet's evaluation points, uniform in [-0.55, 0.55]^3 (K=100k)",
    "iou_occupancies": "optional packed bits of the (K,) exact labels of iou_points",
    "eval_surface_points": "optional (S, 3) float16: OccNet-size surface samples for the metrics (S=100k)",
    "eval_surface_normals": "optional (S, 3) float16: their unit outward normals",
}
IOU_POINTS_KEY = "iou_points"
IOU_OCC_KEY = "iou_occupancies"
IOU_POINTS = 100_000
"""Evaluation points per shape (OccNet's points.npz holds 100k)."""
EVAL_SURFACE_KEYS = ("eval_surface_points", "eval_surface_normals")
EVAL_SURFACE_POINTS = 100_000
"""Ground-truth surface samples per shape for Chamfer, F-score and normals (OccNet's pointcloud.npz holds
100k; the 16k training-time ``surface_points`` leave a perfect sphere at F@1% 0.87)."""

MAX_IMAGE_PIXELS = 4096 * 4096
"""Refuse images larger than this (decompression bombs)."""


@dataclass
class ShapeRecord:
    """Everything stored for one shape (arrays in the object frame)."""

    points: np.ndarray
    occupancies: np.ndarray
    surface_points: np.ndarray
    surface_normals: np.ndarray
    voxels: dict[int, np.ndarray] = field(default_factory=dict)
    """resolution -> bool (R, R, R) grid"""
    extra: dict[str, np.ndarray] = field(default_factory=dict)
    """optional extra arrays (e.g. loc/scale of an import), stored verbatim"""


def shape_dir(root: str | Path, key: str) -> Path:
    """Resolve ``cat/id`` under root, refusing keys that escape the dataset (``../../x``)."""
    root = Path(root)
    parts = Path(key).parts
    if len(parts) != 2 or any(p in ("..", ".", "") for p in parts) or Path(key).is_absolute():
        raise InputError(f"{root / INDEX_FILE}: shape key {key!r} is not of the form 'category/id'")
    resolved = (root / key).resolve()
    if root.resolve() not in resolved.parents:
        raise InputError(f"{root / INDEX_FILE}: shape key {key!r} points outside the dataset")
    return root / key


def write_shape(path: str | Path, record: ShapeRecord) -> None:
    """Write ``shape.npz`` atomically and deterministically."""
    arrays = {
        "points": np.asarray(record.points, dtype=np.float32),
        "occupancies": np.asarray(record.occupancies, dtype=np.uint8),
        "surface_points": np.asarray(record.surface_points, dtype=np.float32),
        "surface_normals": np.asarray(record.surface_normals, dtype=np.float32),
    }
    for res, grid in sorted(record.voxels.items()):
        arrays[f"voxels_{res}"] = pack_voxels(grid)
    arrays.update(record.extra)
    remove_stale_temps(path)  # left by a writer killed mid-way; one process writes a shape at a time
    atomic_save_npz(path, **arrays)


def iou_arrays(points: np.ndarray, occupancies: np.ndarray) -> dict[str, np.ndarray]:
    """The two stored arrays of the evaluation points (K, 3) float16 and their (K,) bool labels."""
    return {
        IOU_POINTS_KEY: np.asarray(points, dtype=np.float16),
        IOU_OCC_KEY: np.packbits(np.asarray(occupancies, dtype=bool)),
    }


def eval_surface_arrays(points: np.ndarray, normals: np.ndarray) -> dict[str, np.ndarray]:
    """The stored evaluation surface samples (S, 3) and normals (S, 3), float16 as OccNet stores them."""
    return dict(zip(EVAL_SURFACE_KEYS, (np.asarray(points, np.float16), np.asarray(normals, np.float16))))


def read_eval_surface(path: str | Path) -> tuple[np.ndarray, np.ndarray] | None:
    """(points (S, 3), unit normals (S, 3)) float32 of a ``shape.npz``'s evaluation surface samples, or
    None when it has none (the metrics then use its ``surface_points``)."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            if EVAL_SURFACE_KEYS[0] not in npz.files:
                return None
            pts = _check_points(EVAL_SURFACE_KEYS[0], npz[EVAL_SURFACE_KEYS[0]], path)
            if EVAL_SURFACE_KEYS[1] not in npz.files:
                raise InputError(f"{path}: '{EVAL_SURFACE_KEYS[1]}' missing")
            nrm = _check_points(EVAL_SURFACE_KEYS[1], npz[EVAL_SURFACE_KEYS[1]], path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise InputError(f"{path}: unreadable or truncated npz ({exc})") from None
    if nrm.shape != pts.shape:
        raise InputError(f"{path}: '{EVAL_SURFACE_KEYS[1]}' shape {nrm.shape} != points {pts.shape}")
    nrm = nrm / np.maximum(np.linalg.norm(nrm, axis=1, keepdims=True), 1e-12)  # float16 rounding
    return pts, nrm.astype(np.float32)


def read_iou_points(path: str | Path) -> tuple[np.ndarray, np.ndarray] | None:
    """(points (K, 3) float32, labels (K,) bool) of a ``shape.npz``'s evaluation points, or None when
    the shape has none (procedural data made before they existed, older imports)."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            if IOU_POINTS_KEY not in npz.files:
                return None
            pts = _check_points(IOU_POINTS_KEY, npz[IOU_POINTS_KEY], path)
            packed = npz[IOU_OCC_KEY] if IOU_OCC_KEY in npz.files else None
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise InputError(f"{path}: unreadable or truncated npz ({exc})") from None
    if packed is None or packed.dtype != np.uint8 or packed.shape != ((len(pts) + 7) // 8,):
        raise InputError(f"{path}: '{IOU_OCC_KEY}' missing or not {(len(pts) + 7) // 8} packed bytes")
    return pts, np.unpackbits(packed, count=len(pts)).astype(bool)


def _check_points(name: str, arr: np.ndarray, where: Path, width: int = 3) -> np.ndarray:
    if arr.ndim != 2 or arr.shape[1] != width:
        raise InputError(f"{where}: '{name}' has shape {arr.shape}, expected (N, {width})")
    if not np.issubdtype(arr.dtype, np.floating):
        raise InputError(f"{where}: '{name}' has dtype {arr.dtype}, expected float")
    if not np.all(np.isfinite(arr)):
        bad = int((~np.isfinite(arr)).any(axis=1).sum())
        raise InputError(f"{where}: '{name}' has {bad} rows with NaN/Inf")
    return arr.astype(np.float32, copy=False)


def read_shape(
    path: str | Path, voxel_resolutions: tuple[int, ...] = (), surface: bool = True
) -> ShapeRecord:
    """Read and validate ``shape.npz``; only the requested voxel grids are unpacked."""
    path = Path(path)
    if not path.is_file():
        raise InputError(not_found(path))
    try:
        with np.load(path, allow_pickle=False) as npz:
            names = set(npz.files)
            missing = {"points", "occupancies"} - names
            if surface:
                missing |= {"surface_points", "surface_normals"} - names
            if missing:
                raise InputError(f"{path}: missing arrays {sorted(missing)}")
            points = _check_points("points", npz["points"], path)
            occ = npz["occupancies"]
            surf = (
                _check_points("surface_points", npz["surface_points"], path) if surface else np.zeros((0, 3))
            )
            normals = _check_points("surface_normals", npz["surface_normals"], path) if surface else surf
            voxels = {}
            for res in voxel_resolutions:
                key = f"voxels_{res}"
                if key not in names:
                    raise InputError(
                        f"{path}: no '{key}' grid (has {sorted(n for n in names if 'vox' in n)})"
                    )
                voxels[res] = unpack_voxels(npz[key], res, where=f"{path}: '{key}'")
    except InputError:
        raise
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise InputError(f"{path}: unreadable or truncated npz ({exc})") from None
    if occ.shape != (points.shape[0],):
        raise InputError(f"{path}: 'occupancies' has shape {occ.shape}, expected ({points.shape[0]},)")
    if surface and normals.shape != surf.shape:
        raise InputError(f"{path}: 'surface_normals' shape {normals.shape} != surface_points {surf.shape}")
    return ShapeRecord(points, occ.astype(np.uint8), surf, normals, voxels)


def write_views(folder: str | Path, views: list[Viewpoint], images: list[np.ndarray]) -> None:
    """Write RGBA PNGs ``00.png ...`` plus R2N2's ``renderings.txt`` and ``rendering_metadata.txt``.

    The metadata is written last, so a folder with a metadata file has all its images.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i, img in enumerate(images):
        name = f"{i:02d}.png"
        remove_stale_temps(folder / name)
        with atomic_path(folder / name, suffix=".png") as tmp:
            Image.fromarray(np.asarray(img, dtype=np.uint8), mode="RGBA").save(tmp, format="PNG")
        names.append(name)
    remove_stale_temps(folder / RENDERINGS_FILE)
    remove_stale_temps(folder / METADATA_FILE)
    atomic_write_text(folder / RENDERINGS_FILE, "\n".join(names) + "\n")
    atomic_write_text(folder / METADATA_FILE, "\n".join(format_metadata_line(v) for v in views) + "\n")


def read_views(folder: str | Path) -> tuple[list[str], list[Viewpoint]]:
    """Image file names and viewpoints of a ``rendering/`` folder (R2N2 layout)."""
    folder = Path(folder)
    meta = folder / METADATA_FILE
    if not meta.is_file():
        raise InputError(not_found(meta))
    lines = [ln for ln in meta.read_text().splitlines() if ln.strip()]
    try:
        views = [parse_metadata_line(ln, f"{meta}: line {i + 1}") for i, ln in enumerate(lines)]
    except ValueError as exc:  # the parser names the file and line; make it a user-input error
        raise InputError(str(exc)) from None
    listing = folder / RENDERINGS_FILE
    if listing.is_file():
        names = [ln.strip() for ln in listing.read_text().splitlines() if ln.strip()]
    else:
        names = [f"{i:02d}.png" for i in range(len(views))]
    if len(names) != len(views):
        raise InputError(f"{meta}: {len(views)} viewpoints but {len(names)} images in {RENDERINGS_FILE}")
    for name in names:
        if Path(name).name != name:
            raise InputError(f"{listing}: image name {name!r} must be a plain file name")
    return names, views


IMAGE_SIGNATURES = {
    b"\x89PNG\r\n\x1a\n": "PNG",
    b"\xff\xd8\xff": "JPEG",
    b"GIF87a": "GIF",
    b"GIF89a": "GIF",
    b"BM": "BMP",
    b"II*\x00": "TIFF",
    b"MM\x00*": "TIFF",
}


def image_signature(path: str | Path) -> str | None:
    """The image format a file's first bytes announce ('PNG', 'JPEG', ..., 'WebP'), or None."""
    with open(path, "rb") as f:
        head = f.read(16)
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    return next((kind for magic, kind in IMAGE_SIGNATURES.items() if head.startswith(magic)), None)


def _decoder_error(path: str | Path, kind: str) -> str | None:
    """What the format's own Pillow decoder says about a file it refused (Image.open only says that no
    decoder accepted it)."""
    factory = Image.OPEN.get(kind.upper(), (None,))[0]
    if factory is None:
        return None
    try:
        with open(path, "rb") as f:
            factory(f, str(path))
    except Exception as exc:  # the decoder's own complaint, whatever its type
        return " ".join(str(exc).split()) or type(exc).__name__
    return None


def load_image(path: str | Path) -> np.ndarray:
    """Any image file -> RGBA uint8 (H, W, 4). Alpha is 255 where the file has none.

    Handles palette, grayscale, 16-bit, CMYK and EXIF-rotated files; refuses decompression bombs,
    truncated and non-image files with an :class:`InputError` naming the file.
    """
    from PIL import ImageOps, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise InputError(not_found(path, "image file"))
    if path.stat().st_size == 0:
        raise InputError(f"{path}: empty file (0 bytes)")
    try:
        with Image.open(path) as im:
            if im.width * im.height > MAX_IMAGE_PIXELS:
                raise InputError(
                    f"{path}: image of {im.width}x{im.height} pixels exceeds the limit of {MAX_IMAGE_PIXELS}"
                )
            im.load()
            im = ImageOps.exif_transpose(im)
            if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                arr = np.asarray(im, dtype=np.float64)
                peak = 65535.0 if arr.max() > 255 else 255.0
                im = Image.fromarray(np.clip(arr / peak * 255.0 + 0.5, 0, 255).astype(np.uint8), mode="L")
            rgba = im.convert("RGBA")
    except InputError:
        raise
    except Image.DecompressionBombError as exc:
        # Pillow refuses > 2x its own limit already at open(), before our size check sees it.
        raise InputError(f"{path}: image exceeds the limit of {MAX_IMAGE_PIXELS} pixels ({exc})") from None
    except UnidentifiedImageError as exc:
        kind = image_signature(path)
        if kind:  # the right magic bytes, but Pillow could not parse it: a damaged file, not a non-image
            raise InputError(f"{path}: corrupt {kind} file ({_decoder_error(path, kind) or exc})") from None
        raise InputError(f"{path}: not an image file (unrecognised format)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"{path}: unreadable or truncated image ({exc})") from None
    # Any size is accepted (a 1x1 image too): the whole frame is resized to the model's input.
    return np.asarray(rgba, dtype=np.uint8)


def stored_voxel_resolutions(path: str | Path) -> tuple[int, ...]:
    """The R of every ``voxels_<R>`` array in a ``shape.npz`` (reads the archive's listing only)."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = [Path(n).stem for n in zf.namelist()]
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputError(f"{path}: unreadable or truncated npz ({exc})") from None
    return tuple(sorted(int(n[7:]) for n in names if n.startswith("voxels_") and n[7:].isdigit()))


def check_shape(root: str | Path, key: str) -> None:
    """Read everything stored for one shape -- every array, every voxel grid, the view metadata and
    every image -- raising :class:`InputError` (naming the file) at the first problem."""
    folder = shape_dir(root, key)
    path = folder / SHAPE_FILE
    if not path.is_file():
        raise InputError(not_found(path))
    record = read_shape(path, voxel_resolutions=stored_voxel_resolutions(path))
    iou = read_iou_points(path)
    read_eval_surface(path)
    names, views = read_views(folder / RENDER_DIR)
    images = [load_image(folder / RENDER_DIR / name) for name in names]
    from ifkd.data.solid_check import solid_problems

    problems = solid_problems(record, iou, views, images)
    if problems:
        raise InputError(f"{path}: degenerate ground truth: {'; '.join(problems)}")


def write_index(root: str | Path, categories: dict[str, str], splits: dict[str, list[str]], **info) -> None:
    index = {
        "format_version": FORMAT_VERSION,
        "categories": categories,
        "splits": {s: list(splits.get(s, [])) for s in SPLITS},
        "counts": {s: len(splits.get(s, [])) for s in SPLITS},
        **info,
    }
    atomic_write_json(Path(root) / INDEX_FILE, index)


def read_index(root: str | Path) -> dict:
    """Read and validate ``index.json`` (version, splits, keys inside the dataset)."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: dataset folder not found")
    path = root / INDEX_FILE
    if not path.is_file():
        raise InputError(f"{path}: missing dataset index (is {root} an ifkd dataset? see `ifkd data synth`)")
    index = read_json(path)
    if not isinstance(index, dict) or index.get("format_version") != FORMAT_VERSION:
        raise InputError(f"{path}: unsupported format_version {index.get('format_version')!r}")
    splits = index.get("splits")
    if not isinstance(splits, dict):
        raise InputError(f"{path}: 'splits' must be an object with train/val/test lists")
    for name, keys in splits.items():
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise InputError(f"{path}: split {name!r} must be a list of 'category/id' strings")
        for key in keys:
            shape_dir(root, key)
    if not isinstance(index.get("categories"), dict):
        raise InputError(f"{path}: 'categories' must map names to synset ids")
    return index
