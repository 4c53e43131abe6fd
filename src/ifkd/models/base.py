"""The contract between methods, the trainer, the reconstructor and the evaluator.

Every method (teacher, IFKD student and its ablations, baselines) is a :class:`Method`: one trainer
loop, one coarse-to-fine extractor and one evaluator serve them all through these few calls.

Batches are dicts of tensors produced by :mod:`ifkd.data.loader`:

=============  ======================  =====================================================
key            shape / dtype           meaning
=============  ======================  =====================================================
image          (B, 3, H, W) float32    RGB in [0, 1], composited on the configured background
points         (B, N, 3) float32       query points, object frame (ShapeNet v1, +Y up)
occ            (B, N) float32          ground-truth occupancy of ``points`` (0 or 1)
E              (B, 4, 4) float32       view transform of the image's view (object -> view frame)
voxels         (B, 1, R, R, R) float32 occupancy grid, axes (x, y, z), cell centres on [-0.5, 0.5]^3
category       (B,) int64              category index (into the dataset's category list)
framing        (B, 3) float32          (s, dx, dy) of the loader's framing jitter, with images:
                                       the image was scaled by s about its centre and shifted
                                       by (dx, dy) (normalised [-1, 1] units), so a point that
                                       M_c projects to u shows at s u + (dx, dy);
                                       (1, 0, 0) when not reframed
=============  ======================  =====================================================

Methods that project points into the image (the IFKD student and its variants, the camera baseline)
apply ``framing`` after the projection, in training (:meth:`Method.training_losses`) and validation
(:meth:`Method.predict`), reading it with ``batch.get("framing")``; their ``decode`` takes it as an
optional ``framing`` argument, which inference leaves at None (identity: images are not reframed).
Methods that project nothing (teacher, global baseline) ignore it.

Frames of :meth:`Method.decode`:

* ``frame == "view"``: points are *view-aligned and object-centred* (``R_i p``); the method adds the
  camera distance itself (``distance`` argument) to place them in front of the fixed camera M_c.
  At inference the distance is unknown and a nominal one is used (the paper's camera-free design).
* ``frame == "object"``: points are in the canonical object frame (teacher, IM-NET-style global,
  DISN-style camera-estimating baselines); the evaluator moves their meshes by the known ``R_i``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

Batch = dict[str, torch.Tensor]


class Method(nn.Module):
    """Base class of every trainable method. Subclasses implement the four methods below."""

    frame: str = "view"
    """'view' or 'object': the frame of the points passed to :meth:`decode` (see module docstring)."""
    input_kind: str = "image"
    """'image' for single-view methods, 'voxels' for the teacher."""
    uses_teacher: bool = False
    """True when training needs a frozen teacher for the KD loss."""

    def encode(self, inputs: torch.Tensor) -> Any:
        """Images (B, 3, H, W) -- or voxels (B, 1, R, R, R) for the teacher -> a per-sample code."""
        raise NotImplementedError

    def decode(self, code: Any, points: torch.Tensor, distance: torch.Tensor | None = None) -> torch.Tensor:
        """Occupancy logits (B, N) at points (B, N, 3) in ``self.frame``; distance (B,) for 'view'."""
        raise NotImplementedError

    def training_losses(
        self, batch: Batch, kd_active: bool = False, teacher: Method | None = None
    ) -> dict[str, torch.Tensor]:
        """Loss parts for one batch: must contain 'loss' (the total to back-propagate) and 'recon';
        'kd' when ``kd_active`` (L1 between the student's projected z1 and the frozen teacher's z2)."""
        raise NotImplementedError

    def predict(self, batch: Batch) -> torch.Tensor:
        """Occupancy probabilities (B, N) at ``batch['points']`` (object frame), using the batch's known
        E for view-frame methods. Used for validation IoU."""
        raise NotImplementedError
