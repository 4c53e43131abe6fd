"""Torch dataset over (shape, view) pairs of the on-disk format: image, points, occupancy, E_i, voxels.

Per-item randomness (which point-value pairs are drawn) depends only on (seed, epoch, item index),
so a run is reproducible whatever the number of workers or processes, and a resumed run draws the
same samples as an uninterrupted one.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from ifkd.config import DataConfig
from ifkd.data.format import (
    RENDER_DIR,
    SHAPE_FILE,
    load_image,
    read_index,
    read_shape,
    read_views,
    shape_dir,
    stored_voxel_resolutions,
)
from ifkd.geometry.camera import Viewpoint, view_transform
from ifkd.geometry.voxels import uniform_points_in_grid
from ifkd.io import InputError


def image_to_tensor(rgba: np.ndarray, size: int, background: float = 1.0) -> torch.Tensor:
    """RGBA uint8 (H, W, 4) -> (3, size, size) float32 in [0, 1], composited on a grey level.

    The whole frame is resized (no crop), so normalised image coordinates -- and with them the fixed
    camera M_c -- stay valid at any input size.
    """
    if rgba.ndim != 3 or rgba.shape[2] != 4:
        raise ValueError(f"expected an RGBA array (H, W, 4), got {rgba.shape}")
    img = Image.fromarray(rgba, mode="RGBA")
    if img.size != (size, size):
        # Premultiply before resizing so the transparent background's colour does not bleed in.
        arr = rgba.astype(np.float32) / 255.0
        alpha = arr[..., 3:4]
        premul = np.concatenate([arr[..., :3] * alpha, alpha], axis=-1)
        chans = [
            np.asarray(
                Image.fromarray(premul[..., c]).resize((size, size), Image.BILINEAR, reducing_gap=None)
            )
            for c in range(4)
        ]
        premul = np.stack(chans, axis=-1)
        rgb, alpha = premul[..., :3], np.clip(premul[..., 3:4], 0.0, 1.0)
    else:
        arr = rgba.astype(np.float32) / 255.0
        alpha = arr[..., 3:4]
        rgb = arr[..., :3] * alpha
    out = rgb + background * (1.0 - alpha)
    return torch.from_numpy(np.ascontiguousarray(np.clip(out, 0.0, 1.0).transpose(2, 0, 1)))


LABEL_RESOLUTION = 128
"""voxel grid that labels the extra uniform points (cell size 1/128 of the unit box)"""


def label_resolution(path: Path) -> int:
    """The grid that labels uniform points: :data:`LABEL_RESOLUTION` when stored, else the finest one."""
    stored = stored_voxel_resolutions(path)
    if not stored:
        raise InputError(f"{path}: no voxels_<R> grid to label uniform points with")
    return LABEL_RESOLUTION if LABEL_RESOLUTION in stored else max(stored)


class ShapeViewDataset(Dataset):
    """Items are (shape, view) pairs of one split; returns unbatched tensors (see models/base.py)."""

    def __init__(
        self,
        root: str | Path,
        split: str,
        cfg: DataConfig,
        seed: int = 0,
        *,
        with_images: bool = True,
        with_voxels: bool = True,
        cache_size: int = 4096,
    ) -> None:
        self.root = Path(root)
        self.index = read_index(self.root)
        if split not in self.index["splits"]:
            raise InputError(f"{self.root / 'index.json'}: no split {split!r}")
        self.split = split
        self.cfg = cfg
        self.seed = seed
        self.epoch = 0
        self.with_images = with_images
        self.with_voxels = with_voxels
        self.categories: list[str] = list(self.index["categories"])
        self.shape_keys: list[str] = list(self.index["splits"][split])
        self.views: dict[str, tuple[list[str], list[Viewpoint]]] = {}
        self.items: list[tuple[str, int]] = []
        for key in self.shape_keys:
            folder = shape_dir(self.root, key) / RENDER_DIR
            names, views = read_views(folder) if with_images else ([], [Viewpoint(0.0, 25.0)])
            n = len(views) if cfg.views_per_shape is None else min(len(views), cfg.views_per_shape)
            self.views[key] = (names, views)
            self.items.extend((key, v) for v in range(n))
        self._cache: OrderedDict[str, dict[str, np.ndarray]] = OrderedDict()
        self._cache_size = cache_size
        self._images: dict[tuple[str, int], torch.Tensor] = {}

    @property
    def num_shapes(self) -> int:
        return len(self.shape_keys)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.items)

    def _shape_arrays(self, key: str) -> dict[str, np.ndarray]:
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        path = shape_dir(self.root, key) / SHAPE_FILE
        res = {self.cfg.voxel_resolution} if self.with_voxels else set()
        label_res = None
        if self.cfg.uniform_fraction > 0:
            label_res = label_resolution(path)
            res.add(label_res)
        rec = read_shape(path, voxel_resolutions=tuple(sorted(res)), surface=False)
        arrays = {"points": rec.points, "occupancies": rec.occupancies}
        if self.with_voxels:
            arrays["voxels"] = rec.voxels[self.cfg.voxel_resolution]
        if label_res is not None:
            arrays["labels"] = rec.voxels[label_res]
        self._cache[key] = arrays
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return arrays

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        key, view_idx = self.items[i]
        arrays = self._shape_arrays(key)
        rng = np.random.default_rng([self.seed, self.epoch, i])
        n_all = arrays["points"].shape[0]
        n_uniform = int(round(self.cfg.uniform_fraction * self.cfg.points_per_shape))
        n = self.cfg.points_per_shape - n_uniform
        idx = rng.choice(n_all, size=n, replace=n > n_all)
        points, occ = arrays["points"][idx], arrays["occupancies"][idx].astype(np.float32)
        if n_uniform:
            extra, extra_occ = uniform_points_in_grid(arrays["labels"], n_uniform, rng)
            points, occ = np.concatenate([points, extra]), np.concatenate([occ, extra_occ.astype(np.float32)])
        names, views = self.views[key]
        item = {
            "points": torch.from_numpy(points),
            "occ": torch.from_numpy(occ),
            "E": torch.from_numpy(view_transform(views[view_idx]).astype(np.float32)),
            "category": torch.tensor(self.categories.index(key.split("/")[0]), dtype=torch.int64),
            "index": torch.tensor(i, dtype=torch.int64),
        }
        if self.with_voxels:
            item["voxels"] = torch.from_numpy(arrays["voxels"].astype(np.float32))[None]
        if self.with_images:
            item["image"] = self._image(key, view_idx, names[view_idx])
        return item

    def _image(self, key: str, view_idx: int, name: str) -> torch.Tensor:
        """The view's input tensor; kept as uint8 after the first read (decode + resize dominate)."""
        cached = self._images.get((key, view_idx))
        if cached is None:
            path = shape_dir(self.root, key) / RENDER_DIR / name
            img = image_to_tensor(load_image(path), self.cfg.image_size, self.cfg.background)
            cached = (img * 255.0).round().to(torch.uint8)
            if len(self._images) < self._cache_size * 24:
                self._images[(key, view_idx)] = cached
        return cached.float() / 255.0


def make_dataset(
    root: str | Path, split: str, data_cfg: DataConfig, seed: int = 0, **kwargs
) -> ShapeViewDataset:
    """The dataset of one split (train/val/test) of an ifkd dataset folder."""
    return ShapeViewDataset(root, split, data_cfg, seed, **kwargs)
