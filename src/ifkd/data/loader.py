"""Torch dataset over (shape, view) pairs of the on-disk format: image, points, occupancy, E_i, voxels.

Per-item randomness (which point-value pairs are drawn) depends only on (seed, epoch, item index),
so a run is reproducible whatever the number of workers or processes, and a resumed run draws the
same samples as an uninterrupted one.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
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
from ifkd.framing import always_framing_affine
from ifkd.geometry.camera import Viewpoint, view_transform
from ifkd.geometry.voxels import uniform_points_in_grid
from ifkd.io import InputError


def premultiplied(rgba: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """RGBA uint8 (H, W, 4) -> (premultiplied RGB (size, size, 3), alpha (size, size, 1)), float32 in [0, 1].

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
        return premul[..., :3], np.clip(premul[..., 3:4], 0.0, 1.0)
    arr = rgba.astype(np.float32) / 255.0
    alpha = arr[..., 3:4]
    return arr[..., :3] * alpha, alpha


def image_to_tensor(rgba: np.ndarray, size: int, background: float = 1.0) -> torch.Tensor:
    """RGBA uint8 (H, W, 4) -> (3, size, size) float32 in [0, 1], composited on a grey level.

    The whole frame is resized (no crop), so normalised image coordinates -- and with them the fixed
    camera M_c -- stay valid at any input size.
    """
    rgb, alpha = premultiplied(rgba, size)
    out = rgb + background * (1.0 - alpha)
    return torch.from_numpy(np.ascontiguousarray(np.clip(out, 0.0, 1.0).transpose(2, 0, 1)))


def model_input(
    input_kind: str,
    data: DataConfig,
    folder: Path | None = None,
    view_name: str | None = None,
    *,
    rgba: np.ndarray | None = None,
    voxels: Mapping[int, np.ndarray] | None = None,
) -> torch.Tensor:
    """A batch of one for a stored shape, as the method reads it (evaluation, report and bench pictures).

    ``input_kind`` 'voxels' (teachers): the (1, 1, R, R, R) ground-truth grid at ``data.voxel_resolution``,
    from ``voxels`` when already read, else from ``folder``'s shape file. Otherwise the (1, 3, S, S) render
    as in training (composited, resized, not reframed): ``rgba`` when already read, else ``folder``'s
    render ``view_name``.
    """
    if input_kind == "voxels":
        res = data.voxel_resolution
        if voxels is None:
            voxels = read_shape(Path(folder) / SHAPE_FILE, voxel_resolutions=(res,)).voxels
        return torch.from_numpy(voxels[res].astype(np.float32))[None, None]
    if rgba is None:
        rgba = load_image(Path(folder) / RENDER_DIR / view_name)
    return image_to_tensor(rgba, data.image_size, data.background)[None]


# ----------------------------------------------------------------------------------- augmentations
IDENTITY_FRAMING = (1.0, 0.0, 0.0)
"""``item['framing']`` (s, dx, dy) when the image is not reframed: points project where M_c puts them."""
AUGMENT_STREAM = 1
"""An item's augmentation is drawn from ``default_rng([*key, AUGMENT_STREAM])``, its points from
``default_rng(key)`` (key = (seed, epoch, index)): switching augmentations leaves the points as they were."""
_AUGMENT_DRAWS = 11
"""uniform numbers drawn per item, one per parameter whatever is switched on (so turning one on does not
change another's draw): background choice, flat colour (3), brightness, contrast, saturation, s, dx, dy,
inference framing"""


def frames_every_picture(cfg: DataConfig) -> bool:
    """Whether a model trained with ``cfg`` sees every picture in the inference framing (``aug_frame`` = 1):
    then inference frames every picture ('always'), and validation and evaluation show the test renders
    framed so too -- scored as a user's picture would be."""
    return cfg.aug_frame >= 1.0


def augmentations_on(cfg: DataConfig) -> bool:
    """Whether any training augmentation of ``cfg`` is switched on."""
    return any(
        (
            cfg.aug_background_white,
            cfg.aug_background_colour,
            cfg.aug_brightness,
            cfg.aug_contrast,
            cfg.aug_saturation,
            cfg.aug_scale,
            cfg.aug_shift,
            cfg.aug_frame,
        )
    )


@dataclass(frozen=True)
class Augmentation:
    """One item's drawn augmentation (see the ``aug_*`` fields of :class:`~ifkd.config.DataConfig`)."""

    background: tuple[float, float, float]
    """RGB the render is composited on"""
    brightness: float = 1.0
    contrast: float = 1.0
    saturation: float = 1.0
    scale: float = 1.0
    """framing: the image is scaled by ``scale`` about its centre ..."""
    dx: float = 0.0
    """... then shifted by (dx, dy) in normalised [-1, 1] units: u -> scale * u + (dx, dy)"""
    dy: float = 0.0
    frame: bool = False
    """show the render in the inference framing first (``aug_frame``; see :meth:`with_framing`)"""

    def with_framing(self, affine: tuple[float, float, float]) -> Augmentation:
        """This augmentation after the inference framing's affine (s_f, dx_f, dy_f): u -> s (s_f u + d_f)
        + d, so the jitter acts on the framed picture as it would on a render."""
        s_f, dx_f, dy_f = affine
        return replace(
            self, scale=self.scale * s_f, dx=self.scale * dx_f + self.dx, dy=self.scale * dy_f + self.dy
        )

    @property
    def framing(self) -> torch.Tensor:
        """(3,) float32 (s, dx, dy): ``item['framing']``."""
        return torch.tensor([self.scale, self.dx, self.dy], dtype=torch.float32)


def draw_augmentation(cfg: DataConfig, rng: np.random.Generator) -> Augmentation:
    """An item's augmentation from its own generator (:data:`AUGMENT_STREAM`)."""
    u = rng.random(_AUGMENT_DRAWS)

    def factor(x: float, r: float) -> float:
        return 1.0 + x * (2.0 * float(r) - 1.0)

    if u[0] < cfg.aug_background_white:
        background = (1.0, 1.0, 1.0)
    elif u[0] < cfg.aug_background_white + cfg.aug_background_colour:
        background = (float(u[1]), float(u[2]), float(u[3]))
    else:
        background = (float(cfg.background),) * 3
    return Augmentation(
        background,
        brightness=factor(cfg.aug_brightness, u[4]),
        contrast=factor(cfg.aug_contrast, u[5]),
        saturation=factor(cfg.aug_saturation, u[6]),
        scale=factor(cfg.aug_scale, u[7]),
        dx=cfg.aug_shift * (2.0 * float(u[8]) - 1.0),
        dy=cfg.aug_shift * (2.0 * float(u[9]) - 1.0),
        frame=bool(u[10] < cfg.aug_frame),
    )


def reframe(image: torch.Tensor, scale: float, dx: float, dy: float) -> torch.Tensor:
    """Scale an image (C, H, W) by ``scale`` about its centre, then shift it by (dx, dy), in the normalised
    [-1, 1] coordinates of :func:`ifkd.geometry.camera.project` (``align_corners=False``): what was at u is
    now at ``scale * u + (dx, dy)``. Bilinear; what comes in from outside the frame is 0 (for a
    premultiplied RGBA image: transparent)."""
    if scale == 1.0 and dx == 0.0 and dy == 0.0:
        return image
    c, h, w = image.shape
    # Output u_out samples the input at (u_out - d) / s: affine_grid maps output to input coordinates.
    s, dx, dy = float(scale), float(dx), float(dy)
    theta = torch.tensor([[[1.0 / s, 0.0, -dx / s], [0.0, 1.0 / s, -dy / s]]], dtype=torch.float32)
    grid = F.affine_grid(theta, [1, c, h, w], align_corners=False)
    out = F.grid_sample(image[None].float(), grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out[0]


def _grey(img: torch.Tensor) -> torch.Tensor:
    return (0.299 * img[0] + 0.587 * img[1] + 0.114 * img[2])[None]


def colour_jitter(img: torch.Tensor, brightness: float, contrast: float, saturation: float) -> torch.Tensor:
    """Brightness (scale), contrast (blend with the mean grey), saturation (blend with each pixel's grey),
    in that order, each clipped to [0, 1]; RGB (3, H, W). Factors of 1 leave the image as it is."""
    if brightness != 1.0:
        img = (img * brightness).clamp(0.0, 1.0)
    if contrast != 1.0:
        mean = _grey(img).mean()
        img = ((img - mean) * contrast + mean).clamp(0.0, 1.0)
    if saturation != 1.0:
        grey = _grey(img)
        img = ((img - grey) * saturation + grey).clamp(0.0, 1.0)
    return img


def augment_image(premul: torch.Tensor, aug: Augmentation) -> torch.Tensor:
    """Premultiplied RGBA (4, S, S) in [0, 1] -> the augmented input (3, S, S): reframed (alpha and all,
    so the background fills what comes in from outside), composited on the drawn background, jittered."""
    x = reframe(premul.float(), aug.scale, aug.dx, aug.dy)
    rgb, alpha = x[:3], x[3:4].clamp(0.0, 1.0)
    background = torch.tensor(aug.background, dtype=torch.float32)[:, None, None]
    img = (rgb + background * (1.0 - alpha)).clamp(0.0, 1.0)
    return colour_jitter(img, aug.brightness, aug.contrast, aug.saturation)


def framed_for_model(rgba: np.ndarray, data: DataConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """A picture as a model trained with ``aug_frame`` = 1 reads it when its pose is known (validation,
    evaluation, several views): RGBA uint8 (H, W, 4) -> (the image in the inference framing (3, S, S),
    that framing (3,) = (s, dx, dy), which the projection then follows -- as in training, without the
    jitter). A picture without transparency, or with no object in it, is shown as it is (identity)."""
    affine = always_framing_affine(rgba[..., 3]) if (rgba[..., 3] < 255).any() else None
    if affine is None:
        return image_to_tensor(rgba, data.image_size, data.background), torch.tensor(IDENTITY_FRAMING)
    rgb, alpha = premultiplied(rgba, data.image_size)
    premul = torch.from_numpy(np.concatenate([rgb, alpha], axis=-1).transpose(2, 0, 1).copy())
    aug = Augmentation((float(data.background),) * 3).with_framing(affine)
    return augment_image(premul, aug), aug.framing


LABEL_RESOLUTION = 128
"""voxel grid that labels the extra uniform points (cell size 1/128 of the unit box)"""


def label_resolution(path: Path) -> int:
    """The grid that labels uniform points: :data:`LABEL_RESOLUTION` when stored, else the finest one."""
    stored = stored_voxel_resolutions(path)
    if not stored:
        raise InputError(f"{path}: no voxels_<R> grid to label uniform points with")
    return LABEL_RESOLUTION if LABEL_RESOLUTION in stored else max(stored)


class ShapeViewDataset(Dataset):
    """Items are (shape, view) pairs of one split; returns unbatched tensors (see models/base.py).

    ``augment=True`` (the trainer's train split) applies the config's ``aug_*`` augmentations when any is
    on; every other use (validation, evaluation) reads the renders as inference does.
    """

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
        augment: bool = False,
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
        self.augment = bool(augment and with_images and augmentations_on(cfg))
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
        self._frames: dict[tuple[str, int], tuple[float, float, float] | None] = {}

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
        return self.load(i, (self.seed, self.epoch, i))

    def load(self, i: int, key: Sequence[int]) -> dict[str, torch.Tensor]:
        """Item ``i`` with its random draws seeded by ``key``: (seed, epoch, i) for ``dataset[i]``; a
        training mix (:mod:`ifkd.data.mix`) passes its own (seed, epoch, position in the mix)."""
        key_name, view_idx = self.items[i]
        arrays = self._shape_arrays(key_name)
        rng = np.random.default_rng(list(key))
        n_all = arrays["points"].shape[0]
        n_uniform = int(round(self.cfg.uniform_fraction * self.cfg.points_per_shape))
        n = self.cfg.points_per_shape - n_uniform
        idx = rng.choice(n_all, size=n, replace=n > n_all)
        points, occ = arrays["points"][idx], arrays["occupancies"][idx].astype(np.float32)
        if n_uniform:
            extra, extra_occ = uniform_points_in_grid(arrays["labels"], n_uniform, rng)
            points, occ = np.concatenate([points, extra]), np.concatenate([occ, extra_occ.astype(np.float32)])
        names, views = self.views[key_name]
        item = {
            "points": torch.from_numpy(points),
            "occ": torch.from_numpy(occ),
            "E": torch.from_numpy(view_transform(views[view_idx]).astype(np.float32)),
            "category": torch.tensor(self.categories.index(key_name.split("/")[0]), dtype=torch.int64),
            "index": torch.tensor(i, dtype=torch.int64),
        }
        if self.with_voxels:
            item["voxels"] = torch.from_numpy(arrays["voxels"].astype(np.float32))[None]
        if self.with_images:
            if self.augment:
                aug = draw_augmentation(self.cfg, np.random.default_rng([*key, AUGMENT_STREAM]))
                if aug.frame and (affine := self._framing_affine(key_name, view_idx, names[view_idx])):
                    aug = aug.with_framing(affine)
                item["image"] = augment_image(self._premultiplied(key_name, view_idx, names[view_idx]), aug)
                item["framing"] = aug.framing
            elif frames_every_picture(self.cfg):  # as this model reads a picture of known pose
                rgba = load_image(shape_dir(self.root, key_name) / RENDER_DIR / names[view_idx])
                item["image"], item["framing"] = framed_for_model(rgba, self.cfg)
            else:
                item["image"] = self._image(key_name, view_idx, names[view_idx])
                item["framing"] = torch.tensor(IDENTITY_FRAMING, dtype=torch.float32)
        return item

    def _cached(self, key: str, view_idx: int, make) -> torch.Tensor:
        """A view's uint8 tensor, made once (decode + resize dominate) and kept while the cache has room."""
        cached = self._images.get((key, view_idx))
        if cached is None:
            cached = make()
            if len(self._images) < self._cache_size * 24:
                self._images[(key, view_idx)] = cached
        return cached

    def _image(self, key: str, view_idx: int, name: str) -> torch.Tensor:
        """The view's input tensor (3, S, S), composited on ``background`` as at inference."""

        def make() -> torch.Tensor:
            path = shape_dir(self.root, key) / RENDER_DIR / name
            img = image_to_tensor(load_image(path), self.cfg.image_size, self.cfg.background)
            return (img * 255.0).round().to(torch.uint8)

        return self._cached(key, view_idx, make).float() / 255.0

    def _framing_affine(self, key: str, view_idx: int, name: str) -> tuple[float, float, float] | None:
        """The inference framing's affine of a view (:func:`ifkd.framing.always_framing_affine`), measured
        on the render at full size, once per view."""
        if (key, view_idx) not in self._frames:
            alpha = load_image(shape_dir(self.root, key) / RENDER_DIR / name)[..., 3]
            self._frames[(key, view_idx)] = always_framing_affine(alpha)
        return self._frames[(key, view_idx)]

    def _premultiplied(self, key: str, view_idx: int, name: str) -> torch.Tensor:
        """The view's premultiplied RGBA (4, S, S) in [0, 1], for augmentation (one dataset caches either
        these or composited images, never both)."""

        def make() -> torch.Tensor:
            rgb, alpha = premultiplied(
                load_image(shape_dir(self.root, key) / RENDER_DIR / name), self.cfg.image_size
            )
            rgba = np.concatenate([rgb, alpha], axis=-1).transpose(2, 0, 1)
            return torch.from_numpy(
                np.ascontiguousarray(np.clip(rgba, 0.0, 1.0) * 255.0).round().astype(np.uint8)
            )

        return self._cached(key, view_idx, make).float() / 255.0


def make_dataset(
    root: str | Path, split: str, data_cfg: DataConfig, seed: int = 0, **kwargs
) -> ShapeViewDataset:
    """The dataset of one split (train/val/test) of an ifkd dataset folder."""
    return ShapeViewDataset(root, split, data_cfg, seed, **kwargs)
