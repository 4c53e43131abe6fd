"""The field's reconstruction metrics, as pure numpy functions, and one evaluator for every method.

Place in the flow: ``ifkd.extract`` turns a field into a mesh; :func:`evaluate_mesh` scores that mesh
against the ground truth's surface samples and occupancy points, identically for every method
(OccNet's ``MeshEvaluator`` idea). OccNet's protocol is the default; deviations are stated below.

===================== ==================================================== ================================
key                   definition                                           unit / normalisation
===================== ==================================================== ================================
iou                   |P & G| / |P | G| over the IoU points; P = inside    fraction in [0, 1]; empty mesh
                      test of the predicted mesh (OccNet's: +z and -z ray  -> 0 (OccNet); P and G both
                      parities both odd), G = ground-truth occupancy       empty -> 1
accuracy              mean Euclidean NN distance, predicted -> GT samples  distance / ``scale``
completeness          mean Euclidean NN distance, GT -> predicted samples  distance / ``scale``
chamfer_l1            (accuracy + completeness) / 2 (OccNet's Chamfer-L1)  distance / ``scale``; empty
                                                                           mesh -> sqrt(3) each way
chamfer_l1_x10        chamfer_l1 * 10, as OccNet-style tables print it     tenths of ``scale``
normal_consistency    (mean |cos| pred -> NN in GT + mean |cos| GT -> NN   [0, 1]; empty mesh -> -1
                      in pred) / 2; pred normals = sampled faces' normals  (OccNet's value)
fscore_1, fscore_2    Tatarchenko et al.: 2PR / (P + R) with precision P = [0, 1]; tau = 1 %, 2 % of
                      share of predicted points closer than tau to the GT, ``scale``; empty mesh -> 0
                      recall R the same from the GT side (strict <)
edge_chamfer          BSP-Net's ECD: edge points (a neighbour within 0.01  squared distance / ``scale``^2;
                      whose normal has |n.n'| < 0.1) of 16384 samples per  NaN when the GT has no edge
                      surface, at most 4096 kept; mean squared NN distance points (BSP-Net skips the
                      pred -> GT plus mean squared NN distance GT -> pred  shape); empty pred edges ->
                      (summed, not halved)                                 one point at the origin
===================== ==================================================== ================================

``scale`` is the longest bounding-box edge of the ground truth: distances are divided by it so the
unit is OccNet's (object with longest edge 1). For data already in OccNet's frame pass ``scale=1``.
Deviations from OccNet: OccNet's empty-mesh dictionary has no Chamfer-L1 entry, so its averages skip
empty meshes for Chamfer-L1; we report sqrt(3) (the value its accuracy/completeness get) and flag
``empty = 1`` so an aggregator can reproduce either convention. BSP-Net finds neighbours with
squared distance < 1e-4; we use distance <= 0.01 (cKDTree), identical up to ties.

Not implemented: DR-KFS (a learned perceptual metric) needs a trained network whose weights cannot be
obtained offline, so it is left out rather than approximated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import trimesh
from scipy.spatial import cKDTree

from ifkd.geometry.sampling import sample_mesh_surface

EMPTY_DISTANCE = float(np.sqrt(3.0))
"""OccNet's accuracy/completeness for an empty prediction (the diagonal of the unit box)."""
EMPTY_NORMAL_CONSISTENCY = -1.0
"""OccNet's normal consistency for an empty prediction."""

RngLike = np.random.Generator | int | None


def _rng(rng: RngLike) -> np.random.Generator:
    """A Generator; ``None`` means seed 0 so evaluations are reproducible by default."""
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(0 if rng is None else rng)


def _points(x: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != 3:
        raise ValueError(f"{name} must have shape (N, 3), got {x.shape}")
    return x


def _nearest(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each of the (N, 3) ``src`` points: Euclidean distance (N,) to its nearest of ``dst`` and index."""
    dist, idx = cKDTree(dst).query(src, k=1, workers=-1)
    return dist, idx


def _unit(normals: np.ndarray) -> np.ndarray:
    """Row-normalised (N, 3) normals; zero rows (degenerate faces) stay zero, i.e. count as |cos| = 0."""
    norm = np.linalg.norm(normals, axis=1, keepdims=True)
    return normals / np.maximum(norm, 1e-12)


# ---------------------------------------------------------------- volumetric IoU


def iou_occupancy(pred_occ: np.ndarray, gt_occ: np.ndarray) -> float:
    """Volumetric IoU of two occupancy labelings of the same (N,) points (bool or 0/1).

    Both empty -> 1.0 (they agree everywhere; OccNet would divide 0 by 0). An empty prediction
    against a non-empty GT gives 0, as in OccNet.
    """
    pred = np.asarray(pred_occ).astype(bool).reshape(-1)
    gt = np.asarray(gt_occ).astype(bool).reshape(-1)
    if pred.shape != gt.shape:
        raise ValueError(f"occupancies differ in size: {pred.shape} vs {gt.shape}")
    union = np.count_nonzero(pred | gt)
    return 1.0 if union == 0 else float(np.count_nonzero(pred & gt) / union)


def iou_voxels(pred_vox: np.ndarray, gt_vox: np.ndarray) -> float:
    """IoU of two (R, R, R) bool voxel grids (the paper's IoU at 32^3); same conventions as iou_occupancy."""
    pred_vox, gt_vox = np.asarray(pred_vox), np.asarray(gt_vox)
    if pred_vox.shape != gt_vox.shape or pred_vox.ndim != 3:
        raise ValueError(f"voxel grids must be (R, R, R) and equal, got {pred_vox.shape} vs {gt_vox.shape}")
    return iou_occupancy(pred_vox, gt_vox)


def _count_hits(mesh: trimesh.Trimesh, origins: np.ndarray, direction: Sequence[float]) -> np.ndarray:
    """(N,) number of mesh faces crossed by rays from (N, 3) origins along one direction."""
    directions = np.broadcast_to(np.asarray(direction, dtype=np.float64), origins.shape)
    _, ray_index = mesh.ray.intersects_id(origins, directions, multiple_hits=True)[:2]
    return np.bincount(ray_index, minlength=len(origins))


def mesh_contains(mesh: trimesh.Trimesh, points: np.ndarray) -> np.ndarray:
    """(N,) bool: which (N, 3) points (mesh frame) lie inside ``mesh``.

    OccNet's ``check_mesh_contains`` rule: cast rays along +z and -z and call a point inside when both
    cross the surface an odd number of times. On a watertight mesh this is the exact inside test; on an
    open or self-intersecting one (marching-cubes output of a bad field, other methods' meshes) it
    degrades gracefully instead of flipping whole regions, which a single parity ray would. Rays run
    on Embree when installed (trimesh picks it), else on trimesh's pure-numpy intersector.
    """
    points = _points(points, "points")
    inside = np.zeros(len(points), dtype=bool)
    if len(mesh.faces) == 0 or len(points) == 0:
        return inside
    low, high = mesh.bounds
    in_box = np.all((points >= low) & (points <= high), axis=1)
    candidates = points[in_box]
    if len(candidates):
        up = _count_hits(mesh, candidates, (0.0, 0.0, 1.0))
        down = _count_hits(mesh, candidates, (0.0, 0.0, -1.0))
        inside[in_box] = (up % 2 == 1) & (down % 2 == 1)
    return inside


def voxelize_mesh_occupancy(
    mesh: trimesh.Trimesh, res: int, half: float = 0.5, surface: bool = True, rng: RngLike = None
) -> np.ndarray:
    """(res, res, res) bool voxels of ``mesh`` over [-half, half]^3, indexed [x, y, z].

    A voxel is occupied when its centre is inside the mesh (:func:`mesh_contains`) or, with
    ``surface``, when the surface passes through it (checked with ~16 area-uniform samples per voxel
    face area), like binvox's surface-plus-fill voxels. Without it, parts thinner than a voxel vanish.
    """
    pitch = 2.0 * half / res
    centres = -half + (np.arange(res) + 0.5) * pitch
    grid = np.stack(np.meshgrid(centres, centres, centres, indexing="ij"), axis=-1).reshape(-1, 3)
    occ = mesh_contains(mesh, grid).reshape(res, res, res)
    if surface and len(mesh.faces):
        n = int(min(4_000_000, max(10_000, 16 * mesh.area / pitch**2)))
        samples, _ = sample_mesh(mesh, n, rng)
        index = np.floor((samples + half) / pitch).astype(np.int64)
        index = index[np.all((index >= 0) & (index < res), axis=1)]
        occ[index[:, 0], index[:, 1], index[:, 2]] = True
    return occ


# ---------------------------------------------------------------- surface metrics


def sample_mesh(mesh: trimesh.Trimesh, n: int, rng: RngLike = None) -> tuple[np.ndarray, np.ndarray]:
    """Area-uniform surface samples (:func:`ifkd.geometry.sampling.sample_mesh_surface`): points (n, 3)
    float64 and their faces' unit normals (n, 3); ``rng`` may be a seed or None.

    A mesh without faces (or with zero area) gives two (0, 3) arrays instead of an error.
    """
    if not len(mesh.faces) or not float(np.asarray(mesh.area_faces).sum()) > 0:
        return np.zeros((0, 3)), np.zeros((0, 3))
    return sample_mesh_surface(mesh, n, _rng(rng))


@dataclass(frozen=True)
class _Matches:
    """Nearest neighbours both ways between N predicted and M GT points (computed once, used by all)."""

    to_gt: np.ndarray  # (N,) distance from each predicted point to its nearest GT point
    to_gt_index: np.ndarray  # (N,) index of that GT point
    to_pred: np.ndarray  # (M,) distance from each GT point to its nearest predicted point
    to_pred_index: np.ndarray  # (M,)


def _match(pred: np.ndarray, gt: np.ndarray) -> _Matches:
    return _Matches(*_nearest(pred, gt), *_nearest(gt, pred))


def _chamfer(m: _Matches) -> dict[str, float]:
    acc, comp = float(m.to_gt.mean()), float(m.to_pred.mean())
    return {"accuracy": acc, "completeness": comp, "chamfer_l1": 0.5 * (acc + comp)}


def _normal_consistency(m: _Matches, pred_normals: np.ndarray, gt_normals: np.ndarray) -> float:
    pred_n, gt_n = _unit(pred_normals), _unit(gt_normals)
    accuracy = np.abs(np.sum(pred_n * gt_n[m.to_gt_index], axis=1)).mean()
    completeness = np.abs(np.sum(gt_n * pred_n[m.to_pred_index], axis=1)).mean()
    return float(min(0.5 * (accuracy + completeness), 1.0))  # |cos| rounding can exceed 1 by an ulp


def _fscore(m: _Matches, threshold: float) -> dict[str, float]:
    precision = float(np.mean(m.to_gt < threshold))
    recall = float(np.mean(m.to_pred < threshold))
    total = precision + recall
    return {
        "precision": precision,
        "recall": recall,
        "fscore": 2 * precision * recall / total if total else 0.0,
    }


def _check_gt(gt: np.ndarray) -> None:
    if len(gt) == 0:
        raise ValueError("gt_pts is empty: the ground truth needs surface samples")


def chamfer_l1(pred_pts: np.ndarray, gt_pts: np.ndarray) -> dict[str, float]:
    """OccNet's Chamfer-L1 between (N, 3) predicted and (M, 3) GT points, in the points' unit.

    accuracy = mean NN distance pred -> GT, completeness = GT -> pred, chamfer_l1 = their mean.
    An empty prediction scores sqrt(3) each way (OccNet). The caller divides by the scale.
    """
    pred, gt = _points(pred_pts, "pred_pts"), _points(gt_pts, "gt_pts")
    _check_gt(gt)
    if len(pred) == 0:
        return {"accuracy": EMPTY_DISTANCE, "completeness": EMPTY_DISTANCE, "chamfer_l1": EMPTY_DISTANCE}
    return _chamfer(_match(pred, gt))


def normal_consistency(
    pred_pts: np.ndarray, pred_normals: np.ndarray, gt_pts: np.ndarray, gt_normals: np.ndarray
) -> float:
    """Mean |cos| between each point's normal and its nearest neighbour's, both ways, halved.

    (N, 3) predicted and (M, 3) GT points with normals (any length; normalised here, so orientation
    does not matter). Empty prediction -> -1 (OccNet).
    """
    pred, gt = _points(pred_pts, "pred_pts"), _points(gt_pts, "gt_pts")
    _check_gt(gt)
    if len(pred) == 0:
        return EMPTY_NORMAL_CONSISTENCY
    normals = _points(pred_normals, "pred_normals"), _points(gt_normals, "gt_normals")
    return _normal_consistency(_match(pred, gt), *normals)


def fscore(pred_pts: np.ndarray, gt_pts: np.ndarray, threshold: float) -> dict[str, float]:
    """Tatarchenko et al.'s F-score at distance ``threshold`` (the points' unit; strict <).

    precision = share of the (N, 3) predicted points closer than threshold to the (M, 3) GT points,
    recall = the same from the GT side, fscore = 2PR / (P + R) (0 when both are 0; empty pred -> 0).
    """
    pred, gt = _points(pred_pts, "pred_pts"), _points(gt_pts, "gt_pts")
    _check_gt(gt)
    if len(pred) == 0:
        return {"precision": 0.0, "recall": 0.0, "fscore": 0.0}
    return _fscore(_match(pred, gt), threshold)


# ---------------------------------------------------------------- edge Chamfer (BSP-Net)


def edge_points(
    points: np.ndarray,
    normals: np.ndarray,
    radius: float = 0.01,
    dot_threshold: float = 0.1,
    max_points: int = 4096,
    rng: RngLike = None,
) -> np.ndarray:
    """BSP-Net's edge samples: (K, 3) points with a neighbour within ``radius`` whose normal is nearly
    perpendicular (|n.n'| < dot_threshold), a random subset of at most ``max_points`` (seeded).

    Input: (N, 3) surface samples and their normals, in the metric's unit (object longest edge 1).
    """
    points = _points(points, "points")
    unit = _unit(_points(normals, "normals"))
    if len(points) == 0:
        return np.zeros((0, 3))
    pairs = cKDTree(points).query_pairs(radius, output_type="ndarray")
    dots = np.abs(np.sum(unit[pairs[:, 0]] * unit[pairs[:, 1]], axis=1))
    is_edge = np.zeros(len(points), dtype=bool)
    is_edge[pairs[dots < dot_threshold].reshape(-1)] = True
    index = np.flatnonzero(is_edge)
    if len(index) > max_points:
        index = _rng(rng).choice(index, size=max_points, replace=False)
    return points[index]


def edge_chamfer_distance(
    pred_pts: np.ndarray,
    pred_normals: np.ndarray,
    gt_pts: np.ndarray,
    gt_normals: np.ndarray,
    radius: float = 0.01,
    dot_threshold: float = 0.1,
    max_points: int = 4096,
    rng: RngLike = None,
) -> float:
    """BSP-Net's edge Chamfer distance (ECD) between two sampled surfaces, in squared units.

    Edge points of each side (:func:`edge_points`), then mean squared NN distance pred -> GT plus
    mean squared NN distance GT -> pred (BSP-Net sums the two, it does not halve). Expects 16384
    samples per surface in the unit where the object's longest edge is 1 (``radius`` is in that unit).
    A GT without edge points returns NaN (BSP-Net leaves such shapes out of its means); an empty
    predicted edge set is replaced by one point at the origin, as BSP-Net's evaluation does.
    """
    gen = _rng(rng)
    gt_edges = edge_points(gt_pts, gt_normals, radius, dot_threshold, max_points, gen)
    if len(gt_edges) == 0:
        return float("nan")
    pred_edges = edge_points(pred_pts, pred_normals, radius, dot_threshold, max_points, gen)
    if len(pred_edges) == 0:
        pred_edges = np.zeros((1, 3))
    to_gt = _nearest(pred_edges, gt_edges)[0]
    to_pred = _nearest(gt_edges, pred_edges)[0]
    return float(np.mean(to_gt**2) + np.mean(to_pred**2))


# ---------------------------------------------------------------- one evaluator


def evaluate_mesh(
    pred_mesh: trimesh.Trimesh,
    gt_surface_points: np.ndarray,
    gt_surface_normals: np.ndarray,
    iou_points: np.ndarray,
    iou_gt_occ: np.ndarray,
    *,
    n_surface: int = 100_000,
    scale: float | None = None,
    fscore_thresholds: Sequence[float] = (0.01, 0.02),
    edge: bool = True,
    n_edge_samples: int = 16_384,
    rng: RngLike = None,
) -> dict[str, float]:
    """Every metric of the module docstring for one predicted mesh, all in one frame.

    Args:
        pred_mesh: the reconstruction, in the same frame as the ground truth.
        gt_surface_points, gt_surface_normals: (M, 3) GT surface samples and normals
            (OccNet: the 100k of pointcloud.npz).
        iou_points, iou_gt_occ: (P, 3) points and (P,) bool GT occupancy (OccNet: points.npz).
        n_surface: samples drawn on the predicted mesh for Chamfer, normals and F-score.
        scale: divides all distances (F-score thresholds and the edge radius are fractions of it);
            default: the longest bounding-box edge of the GT surface points. OccNet data: 1.
        fscore_thresholds: fractions of ``scale``; key ``fscore_<100*t>`` (1 % -> "fscore_1").
        edge: compute the edge Chamfer distance (``n_edge_samples`` per surface; GT subsampled).
        rng: seed or Generator for the surface samples (default seed 0: reproducible).

    Returns:
        dict of floats: iou, accuracy, completeness, chamfer_l1, chamfer_l1_x10, normal_consistency,
        precision_k / recall_k / fscore_k per threshold, edge_chamfer (if ``edge``), empty (1.0 when
        the mesh has no faces).
    """
    gen = _rng(rng)
    gt_pts = _points(gt_surface_points, "gt_surface_points")
    gt_normals = _points(gt_surface_normals, "gt_surface_normals")
    if scale is None:
        scale = float(np.max(gt_pts.max(axis=0) - gt_pts.min(axis=0)))
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale}")
    empty = len(pred_mesh.faces) == 0
    pred_pts, pred_normals = sample_mesh(pred_mesh, n_surface, gen)
    pred_pts, gt_scaled = pred_pts / scale, gt_pts / scale

    out: dict[str, float] = {"empty": float(empty)}
    iou_occ = np.asarray(iou_gt_occ).astype(bool)
    out["iou"] = 0.0 if empty else iou_occupancy(mesh_contains(pred_mesh, iou_points), iou_occ)
    matches = None if len(pred_pts) == 0 else _match(pred_pts, gt_scaled)  # one NN search serves all
    out.update(chamfer_l1(pred_pts, gt_scaled) if matches is None else _chamfer(matches))
    out["chamfer_l1_x10"] = 10.0 * out["chamfer_l1"]
    out["normal_consistency"] = (
        EMPTY_NORMAL_CONSISTENCY
        if matches is None
        else _normal_consistency(matches, pred_normals, gt_normals)
    )
    for t in fscore_thresholds:
        name = f"{100 * t:g}".replace(".", "p")
        f = fscore(pred_pts, gt_scaled, t) if matches is None else _fscore(matches, t)
        for key in ("precision", "recall", "fscore"):
            out[f"{key}_{name}"] = f[key]
    if edge:
        edge_pred, edge_pred_n = sample_mesh(pred_mesh, n_edge_samples, gen)
        keep = gen.permutation(len(gt_pts))[:n_edge_samples]
        out["edge_chamfer"] = edge_chamfer_distance(
            edge_pred / scale, edge_pred_n, gt_scaled[keep], gt_normals[keep], rng=gen
        )
    return out
