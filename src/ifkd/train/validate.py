"""Validation during training: IoU of the predicted occupancy at the val split's sampled points.

Called by the trainer (:mod:`ifkd.train.loop`) at each epoch end; the score picks the 'best' checkpoint.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Subset

from ifkd.models.base import Method
from ifkd.train.distributed import DistContext, all_reduce_sum


def validation_shapes(dataset: Dataset, shapes: int) -> list[int]:
    """Indices of the first view of each of the split's first ``shapes`` shapes (items are (shape, view))."""
    items = getattr(dataset, "items", None) or [(i, 0) for i in range(len(dataset))]
    first: dict[Any, int] = {}
    for index, (shape, _view) in enumerate(items):
        if len(first) >= shapes:
            break
        first.setdefault(shape, index)
    return list(first.values())


def validation_iou(
    method: Method,
    dataset: Dataset,
    shapes: int,
    ctx: DistContext,
    batch_size: int,
    autocast: Callable[[], contextlib.AbstractContextManager],
) -> float | None:
    """Mean over shapes of IoU(predict > 0.5, occ > 0.5) at the dataset's sampled points (epoch-0 draw,
    so epochs compare). Ranks score disjoint shards and pool the sums."""
    if hasattr(dataset, "set_epoch"):
        dataset.set_epoch(0)
    indices = validation_shapes(dataset, shapes)[ctx.rank :: ctx.world_size]
    loader = DataLoader(Subset(dataset, indices), batch_size=batch_size, generator=torch.Generator())
    totals = torch.zeros(2, dtype=torch.float64, device=ctx.device)
    was_training = method.training
    method.eval()
    with torch.no_grad():
        for batch in loader:
            batch = {k: v.to(ctx.device) for k, v in batch.items()}
            with autocast():
                pred = method.predict(batch) > 0.5
            gt = batch["occ"] > 0.5
            inter, union = (pred & gt).sum(1).double(), (pred | gt).sum(1).double()
            iou = torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))  # both empty: 1
            totals += torch.stack([iou.sum(), iou.new_tensor(len(iou))])
    method.train(was_training)
    total, count = all_reduce_sum(totals, ctx).tolist()
    return total / count if count else None
