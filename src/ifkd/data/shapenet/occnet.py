"""Reader (and fixture writer) for OccNet's preprocessed ShapeNet: points.npz, pointcloud.npz, img_choy2016/.

OccNet's frame: the v1 mesh centred on its bounding-box centre ``loc`` and divided by its longest edge
``scale``; back to ShapeNet v1 (= our object frame, where the R2N2 cameras apply):
``x_v1 = x * scale + loc``. No further rescaling is applied, because it would break the cameras.
``cameras.npz`` holds ``world_mat_i`` (3x4, v1 frame -> OpenCV camera) and ``camera_mat_i`` (K in
pixels); each world_mat is turned back into an R2N2 viewpoint and must reproduce itself.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from ifkd.data.format import load_image
from ifkd.geometry.camera import (
    Viewpoint,
    intrinsics,
    occnet_cameras,
    view_transform,
    viewpoint_from_world_mat,
)
from ifkd.io import InputError, atomic_path, atomic_save_npz

IMG_DIR = "img_choy2016"
CAMERA_FILE = "cameras.npz"
WORLD_MAT_TOL = 1e-3
"""Largest |entry| difference between a world_mat and the one rebuilt from its viewpoint."""
WHITE_TOL = 10
"""A JPEG pixel within this many levels of white in every channel is background."""


def _load_npz(path: Path, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [n for n in names if n not in npz.files]
            if missing:
                raise InputError(f"{path}: missing arrays {missing} (has {sorted(npz.files)})")
            return {n: npz[n] for n in npz.files}
    except InputError:
        raise
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise InputError(f"{path}: unreadable or truncated npz ({exc})") from None


def _loc_scale(arrays: dict[str, np.ndarray], path: Path) -> tuple[np.ndarray, float]:
    loc, scale = np.asarray(arrays["loc"], dtype=np.float64), np.asarray(arrays["scale"], dtype=np.float64)
    if loc.shape != (3,) or scale.size != 1 or not np.all(np.isfinite(loc)) or not float(scale) > 0:
        raise InputError(f"{path}: 'loc' must be (3,) and 'scale' a positive scalar, got {loc}, {scale}")
    return loc, float(scale)


def _points3(arr: np.ndarray, name: str, path: Path) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.ndim != 2 or arr.shape[1] != 3 or not np.issubdtype(arr.dtype, np.floating):
        raise InputError(f"{path}: '{name}' has {arr.dtype} {arr.shape}, expected float (N, 3)")
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise InputError(f"{path}: '{name}' has NaN/Inf rows")
    return arr


def to_object_frame(points: np.ndarray, loc: np.ndarray, scale: float) -> np.ndarray:
    """OccNet-normalised points (N, 3) -> ShapeNet v1 / our object frame: x * scale + loc."""
    return np.asarray(points, dtype=np.float64) * scale + loc


def read_points(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """points.npz -> (points (N, 3) float64 in our frame, occupancies (N,) uint8, loc, scale)."""
    path = Path(path)
    arrays = _load_npz(path, ("points", "occupancies", "loc", "scale"))
    pts = _points3(arrays["points"], "points", path)
    occ = np.asarray(arrays["occupancies"])
    if occ.dtype == np.uint8 and occ.ndim == 1 and occ.size == (len(pts) + 7) // 8 != len(pts):
        occ = np.unpackbits(occ)[: len(pts)]  # OccNet stores bits packed
    elif occ.shape == (len(pts),):
        occ = (occ > 0).astype(np.uint8)
    else:
        raise InputError(
            f"{path}: 'occupancies' {occ.dtype} {occ.shape} fits neither packed nor plain {len(pts)}"
        )
    loc, scale = _loc_scale(arrays, path)
    return to_object_frame(pts, loc, scale), occ.astype(np.uint8), loc, scale


def read_pointcloud(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """pointcloud.npz -> (surface points (N, 3) in our frame, unit normals (N, 3)); scaling keeps normals."""
    path = Path(path)
    arrays = _load_npz(path, ("points", "normals", "loc", "scale"))
    pts = _points3(arrays["points"], "points", path)
    normals = _points3(arrays["normals"], "normals", path)
    if normals.shape != pts.shape:
        raise InputError(f"{path}: 'normals' {normals.shape} does not match 'points' {pts.shape}")
    loc, scale = _loc_scale(arrays, path)
    lengths = np.linalg.norm(normals, axis=1, keepdims=True)
    return to_object_frame(pts, loc, scale), normals / np.maximum(lengths, 1e-12)


def read_cameras(img_dir: str | Path) -> tuple[list[Viewpoint], list[Path]]:
    """img_choy2016/ -> R2N2 viewpoints recovered from each ``world_mat_i`` and the image paths."""
    img_dir = Path(img_dir)
    path = img_dir / CAMERA_FILE
    arrays = _load_npz(path, ())
    n = sum(1 for k in arrays if k.startswith("world_mat_"))
    if n == 0:
        raise InputError(f"{path}: no 'world_mat_<i>' arrays")
    views, images = [], []
    for i in range(n):
        if f"world_mat_{i}" not in arrays:
            raise InputError(f"{path}: 'world_mat_{i}' missing (views must be numbered 0..{n - 1})")
        wm = np.asarray(arrays[f"world_mat_{i}"], dtype=np.float64)
        if wm.shape not in ((3, 4), (4, 4)) or not np.all(np.isfinite(wm)):
            raise InputError(f"{path}: 'world_mat_{i}' has shape {wm.shape}, expected finite 3x4")
        if np.linalg.norm(wm[:3, 3]) < 1e-9:
            raise InputError(f"{path}: 'world_mat_{i}' puts the camera at the object's centre")
        view = viewpoint_from_world_mat(wm)
        err = float(np.abs(view_transform(view)[:3] - wm[:3]).max())
        if not err <= WORLD_MAT_TOL:  # also catches NaN
            raise InputError(f"{path}: 'world_mat_{i}' is not an R2N2 camera (rebuilt differs by {err:.2g})")
        image = img_dir / f"{i:03d}.jpg"
        if not image.is_file():
            image = image.with_suffix(".png")
        if not image.is_file():
            raise InputError(f"{img_dir}: image {i:03d}.jpg missing")
        km = arrays.get(f"camera_mat_{i}")
        if km is not None:
            width = load_image_size(image)
            if np.asarray(km).shape != (3, 3) or np.abs(np.asarray(km) - intrinsics(width)).max() > 1e-2:
                raise InputError(
                    f"{path}: 'camera_mat_{i}' is not the R2N2 35 mm / 32 mm camera at {width} px"
                )
        views.append(view)
        images.append(image)
    return views, images


def load_image_size(path: Path) -> int:
    with Image.open(path) as im:
        return im.width


def alpha_from_white(rgb: np.ndarray, tol: int = WHITE_TOL) -> np.ndarray:
    """RGBA (H, W, 4) from a render composited on white (OccNet's JPEGs, IM-NET's pixels).

    Foreground = not within ``tol`` of white, plus the white regions it encloses (so white parts
    inside the object stay opaque); the heuristic misses white parts on the silhouette itself.
    """
    rgb = np.asarray(rgb, dtype=np.uint8)
    fg = ndimage.binary_fill_holes(np.any(rgb < 255 - tol, axis=-1))
    alpha = np.where(fg, 255, 0).astype(np.uint8)
    return np.concatenate([rgb, alpha[..., None]], axis=-1)


def load_view_image(path: str | Path) -> np.ndarray:
    """An img_choy2016 image as RGBA (alpha from the white background when the file has none)."""
    img = load_image(path)
    return alpha_from_white(img[..., :3]) if np.all(img[..., 3] == 255) else img


def write_model(
    folder: str | Path,
    points: np.ndarray,
    occupancies: np.ndarray,
    surface: np.ndarray,
    normals: np.ndarray,
    views: list[Viewpoint],
    images: list[np.ndarray],
    loc: np.ndarray,
    scale: float,
) -> None:
    """Write one model in OccNet's layout (for exports and test fixtures); inputs in our frame.

    Points go to float16 in OccNet's normalised frame, occupancies bit-packed, images as JPEG on white.
    """
    folder = Path(folder)
    inv = lambda x: (np.asarray(x, dtype=np.float64) - loc) / scale  # noqa: E731
    occ = np.packbits(np.asarray(occupancies, dtype=bool))
    atomic_save_npz(
        folder / "points.npz", points=inv(points).astype(np.float16), occupancies=occ, loc=loc, scale=scale
    )
    atomic_save_npz(
        folder / "pointcloud.npz",
        points=inv(surface).astype(np.float32),
        normals=normals,
        loc=loc,
        scale=scale,
    )
    cams = {}
    for i, (view, img) in enumerate(zip(views, images)):
        K, world = occnet_cameras(view, img.shape[1])
        cams[f"camera_mat_{i}"], cams[f"world_mat_{i}"] = K, world
        alpha = img[..., 3:4].astype(np.float64) / 255.0
        rgb = np.round(img[..., :3] * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)
        with atomic_path(folder / IMG_DIR / f"{i:03d}.jpg", suffix=".jpg") as tmp:
            Image.fromarray(rgb).save(tmp, format="JPEG", quality=95)
    atomic_save_npz(folder / IMG_DIR / CAMERA_FILE, **cams)
