"""Helpers shared by several test files (a plain module: tests/ is on pytest's ``pythonpath``).

* The training-loop fakes (FakeMethod, FakeTeacher, FakeDataset, FakeSpec, tiny_config): used by
  train/test_loop.py and, under torchrun, by train/test_ddp.py.
* The perfect-field method (GroundTruthField, perfect_reconstructor): used by eval/test_evaluate.py and
  test_cli_reconstruct.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from torch import nn
from torch.utils.data import Dataset

from ifkd.config import Config, DataConfig, TrainConfig, get_preset
from ifkd.data.format import RENDER_DIR, SHAPE_FILE, load_image, read_index, read_shape, read_views, shape_dir
from ifkd.data.loader import image_to_tensor
from ifkd.geometry.camera import view_transform
from ifkd.models.base import Batch, Method
from ifkd.reconstruct import Reconstructor

# ---------------------------------------------------------------------------- training-loop fakes

IMAGE = 6
POINTS = 32


@dataclass(frozen=True)
class FakeSpec:
    name: str = "fake"
    uses_kd: bool = True


class FakeDataset(Dataset):
    """``shapes`` x ``views`` items; each item's random draw depends only on (seed, epoch, index)."""

    def __init__(self, shapes: int = 8, views: int = 2, seed: int = 0) -> None:
        self.items = [(f"cat/s{s}", v) for s in range(shapes) for v in range(views)]
        self.categories, self.num_shapes, self.seed, self.epoch = ["cat"], shapes, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch * 10_007 + i)
        shape = int(self.items[i][0][5:])
        radius = 0.45 + 0.04 * shape  # dense enough that predictions cross 0.5: val IoU is informative
        image = torch.full((3, IMAGE, IMAGE), radius) + 0.05 * torch.rand(3, IMAGE, IMAGE, generator=g)
        points = torch.rand(POINTS, 3, generator=g) - 0.5
        return {
            "image": image,
            "points": points,
            "occ": (points.norm(dim=-1) < radius).float(),
            "E": torch.eye(4),
            "voxels": torch.full((1, 4, 4, 4), radius),
            "category": torch.tensor(0),
        }


class FakeTeacher(Method):
    """A frozen 'voxel teacher' whose z2 is a fixed function of the points and the grid."""

    input_kind = "voxels"
    frame = "object"

    def __init__(self, feature_dim: int = 5) -> None:
        super().__init__()
        self.feature_dim = feature_dim
        self.proj = nn.Linear(3, feature_dim)

    def encode(self, inputs: torch.Tensor) -> torch.Tensor:
        return inputs.mean(dim=(1, 2, 3, 4))

    def point_features(self, code: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.proj(points)) * code[:, None, None]


class FakeMethod(Method):
    """Image -> global code -> MLP occupancy; a KD head used only in KD epochs (like the real student).

    ``noise`` draws from the global torch RNG each step (so resume must restore it); ``nan_at`` /
    ``sigint_at`` make call number k return a NaN loss / send SIGINT to this process.
    """

    input_kind = "image"

    def __init__(self, teacher_dim: int | None = 5, noise: bool = True) -> None:
        super().__init__()
        self.encoder = nn.Linear(3 * IMAGE * IMAGE, 16)
        self.decoder = nn.Sequential(nn.Linear(16 + 3, 32), nn.ReLU(), nn.Linear(32, 1))
        self.kd_head = nn.Linear(16 + 3, teacher_dim) if teacher_dim else None
        self.noise = noise
        self.calls = 0
        self.nan_at: int | None = None
        self.sigint_at: int | None = None

    def encode(self, inputs: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.encoder(inputs.flatten(1)))

    def _features(self, code: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        return torch.cat([code[:, None].expand(-1, points.shape[1], -1), points], dim=-1)

    def decode(self, code: torch.Tensor, points: torch.Tensor, distance: torch.Tensor | None = None):
        return self.decoder(self._features(code, points)).squeeze(-1)

    def training_losses(self, batch: Batch, kd_active: bool = False, teacher: Method | None = None):
        self.calls += 1
        if self.sigint_at == self.calls:
            os.kill(os.getpid(), signal.SIGINT)
        image = batch["image"]
        if self.noise:
            image = image + 0.01 * torch.randn_like(image)
        code = self.encode(image)
        feats = self._features(code, batch["points"])
        recon = F.mse_loss(torch.sigmoid(self.decoder(feats).squeeze(-1)), batch["occ"])
        out = {"recon": recon, "loss": recon}
        if kd_active:
            assert teacher is not None and not teacher.training
            z2 = teacher.point_features(teacher.encode(batch["voxels"]), batch["points"])
            out["kd"] = F.l1_loss(self.kd_head(feats), z2)
            out["loss"] = recon + 0.5 * out["kd"]
        if self.nan_at == self.calls:
            out["loss"] = out["loss"] * float("nan")
        return out

    def predict(self, batch: Batch) -> torch.Tensor:
        return torch.sigmoid(self.decode(self.encode(batch["image"]), batch["points"]))


def tiny_config(**train: object) -> Config:
    """E1 = 1 recon epoch + E2 = 2 KD epochs; 16 items / batch 4 = 4 steps per epoch."""
    base = TrainConfig(epochs_recon=1, epochs_kd=2, batch_size=4, lr=1e-2, val_shapes=4, amp=False, seed=3)
    # A registered method name: config.json is checked on load (resume); FakeSpec drives the schedule.
    cfg = Config(method="ifkd-nokd", preset="tiny", data=DataConfig(num_workers=0))
    return replace(cfg, train=replace(base, **train))


# ---------------------------------------------------------------------------- perfect-field method


def _image_key(image: torch.Tensor) -> str:
    return hashlib.sha1(image.contiguous().numpy().tobytes()).hexdigest()


def _occupancy(vox: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(N,) bool: inside the GT grid (R, R, R) on [-0.5, 0.5]^3 made continuous -- trilinear between cell
    centres, level 0.5 -- whose boundary lies on the cell faces that the evaluator's GT lookup uses."""
    centres = (points + 0.5) * vox.shape[0] - 0.5  # continuous cell-index coordinates
    return ndimage.map_coordinates(vox.astype(np.float32), centres.T, order=1, mode="constant") >= 0.5


class GroundTruthField(Method):
    """Decodes the GT occupancy of the dataset image it is shown (see the module docstring).

    ``rotate=False`` makes a broken view-frame method that treats R_i p as object coordinates.
    """

    input_kind = "image"

    def __init__(self, frame: str, data_root: Path, cfg: Config, rotate: bool = True) -> None:
        super().__init__()
        self.frame, self.rotate = frame, rotate
        self.entries: list[tuple[np.ndarray, np.ndarray]] = []  # (128^3 GT grid, R_i)
        self.lookup: dict[str, int] = {}
        self.distances: list[float] = []
        for key in read_index(data_root)["splits"]["test"]:
            folder = shape_dir(data_root, key)
            vox = read_shape(folder / SHAPE_FILE, voxel_resolutions=(128,)).voxels[128]
            names, views = read_views(folder / RENDER_DIR)
            for name, view in zip(names, views):
                rgba = load_image(folder / RENDER_DIR / name)
                image = image_to_tensor(rgba, cfg.data.image_size, cfg.data.background)
                self.lookup[_image_key(image)] = len(self.entries)
                self.entries.append((vox, view_transform(view)[:3, :3]))

    def encode(self, inputs: torch.Tensor) -> torch.Tensor:
        return torch.tensor([self.lookup[_image_key(image)] for image in inputs])

    def decode(self, code: torch.Tensor, points: torch.Tensor, distance: torch.Tensor | None = None):
        vox, R = self.entries[int(code[0])]
        p = points[0].double().numpy()
        if self.frame == "view":
            self.distances.append(float(torch.as_tensor(distance).reshape(-1)[0]))
            if self.rotate:
                p = p @ R  # rows R_i p -> p
        occ = _occupancy(vox, p)
        return torch.from_numpy(np.where(occ, 10.0, -10.0).astype(np.float32))[None]


def perfect_reconstructor(frame: str, data_root: Path, rotate: bool = True) -> Reconstructor:
    """A reconstructor over GroundTruthField: the tiny preset with OccNet's 100k IoU points (less noise)
    and a 32^3 first level (as OccNet's MISE) so coarse-to-fine keeps the GT's thinner parts."""
    cfg = get_preset("tiny")
    cfg = replace(cfg, eval=replace(cfg.eval, coarse_resolution=32, iou_points=100_000))
    return Reconstructor(GroundTruthField(frame, data_root, cfg, rotate), cfg, "cpu")


def subset_test_split(dataset: Path, root: Path, categories) -> Path:
    """A copy of ``dataset`` at ``root`` whose test split is its first test shape of each category."""
    index = json.loads((dataset / "index.json").read_text())
    keys = [next(k for k in index["splits"]["test"] if k.startswith(f"{c}/")) for c in categories]
    for key in keys:
        shutil.copytree(dataset / key, root / key)
    index["splits"] = {"train": [], "val": [], "test": keys}
    (root / "index.json").write_text(json.dumps(index))
    return root
