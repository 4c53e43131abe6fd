"""Property-based tests (hypothesis): projection round trips and metric symmetries and identities.

Complements tests/geometry/test_camera.py (object-frame round trip, numpy/torch on one fixed batch).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ifkd.eval.metrics import chamfer_l1, fscore, iou_occupancy, iou_voxels, normal_consistency
from ifkd.geometry import camera as C

views = st.builds(
    C.Viewpoint,
    azimuth=st.floats(0, 360),
    elevation=st.floats(-60, 60),
    in_plane=st.floats(-15, 15),
    distance_ratio=st.floats(0.6, 1.0),
    fov=st.just(25.0),
)
seeds = st.integers(0, 2**32 - 1)
FAST = settings(max_examples=40, deadline=None)


# ----------------------------------------------------------------------------------- projection


@FAST
@given(view_list=st.lists(views, min_size=1, max_size=3), n=st.integers(1, 40), seed=seeds)
def test_batched_torch_and_numpy_projections_agree(view_list, n, seed):
    pts = np.random.default_rng(seed).uniform(-0.5, 0.5, size=(len(view_list), n, 3))
    Es = np.stack([C.view_transform(v) for v in view_list])
    uv, depth = C.project(pts, Es)
    uv_t, depth_t = C.project(torch.from_numpy(pts), torch.from_numpy(Es))
    np.testing.assert_allclose(uv_t.numpy(), uv, rtol=0, atol=1e-12)
    np.testing.assert_allclose(depth_t.numpy(), depth, rtol=0, atol=1e-12)
    # a batch is the same as its items one by one
    for b, E in enumerate(Es):
        uv_b, depth_b = C.project(pts[b], E)
        np.testing.assert_allclose(uv[b], uv_b, atol=1e-12)
        np.testing.assert_allclose(depth[b], depth_b, atol=1e-12)
    # and torch's unprojection inverts numpy's projection
    back = C.unproject(torch.from_numpy(uv), torch.from_numpy(depth)).numpy()
    np.testing.assert_allclose(back, C.transform_points(pts, Es), atol=1e-9)


@FAST
@given(n=st.integers(1, 50), seed=seeds, torch_backend=st.booleans())
def test_unproject_then_project_is_identity(n, seed, torch_backend):
    rng = np.random.default_rng(seed)
    uv = rng.uniform(-1, 1, size=(n, 2))
    depth = rng.uniform(0.2, 3.0, size=n)
    if torch_backend:
        uv, depth = torch.from_numpy(uv), torch.from_numpy(depth)
    uv2, depth2 = C.project(C.unproject(uv, depth))  # E=None: points already in the view frame
    np.testing.assert_allclose(np.asarray(uv2), np.asarray(uv), atol=1e-12)
    np.testing.assert_allclose(np.asarray(depth2), np.asarray(depth), atol=1e-12)


@FAST
@given(view=views)
def test_object_origin_projects_to_the_image_centre_at_the_camera_distance(view):
    uv, depth = C.project(np.zeros((1, 3)), C.view_transform(view))
    np.testing.assert_allclose(uv, 0.0, atol=1e-6)  # R2N2's camera rotation carries ~4e-8 float noise
    assert depth[0] == pytest.approx(view.distance)


@FAST
@given(view=views, seed=seeds, size=st.integers(4, 40))
def test_projected_uv_samples_the_pixel_the_point_lands_in(view, seed, size):
    """grid_sample(align_corners=False) at project()'s uv reads the pixel project_to_pixels names."""
    rng = np.random.default_rng(seed)
    pts = rng.uniform(-0.5, 0.5, size=(16, 3))
    E = C.view_transform(view)
    uv, _ = C.project(pts, E)
    pix, _ = C.project_to_pixels(pts, E, size)
    inside = np.all((pix > 0) & (pix < size), axis=1)
    frac = pix - np.floor(pix)
    clear = np.all((frac > 1e-6) & (frac < 1 - 1e-6), axis=1)  # not on a pixel border
    keep = inside & clear
    assume(keep.any())
    image = torch.arange(size * size, dtype=torch.float64).reshape(1, 1, size, size)
    grid = torch.from_numpy(uv[keep]).reshape(1, 1, -1, 2)
    got = F.grid_sample(image, grid, mode="nearest", align_corners=False).reshape(-1).numpy()
    col, row = np.floor(pix[keep]).astype(int).T
    np.testing.assert_array_equal(got, row * size + col)


# ----------------------------------------------------------------------------------- metrics


def _cloud(seed: int, n: int, spread: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """(n, 3) distinct points and (n, 3) random (unnormalised) normals."""
    rng = np.random.default_rng(seed)
    return rng.uniform(-spread, spread, size=(n, 3)), rng.normal(size=(n, 3))


sizes = st.integers(1, 60)


@FAST
@given(seed_a=seeds, seed_b=seeds, n=sizes, m=sizes)
def test_chamfer_is_symmetric_in_its_arguments_roles(seed_a, seed_b, n, m):
    (a, _), (b, _) = _cloud(seed_a, n), _cloud(seed_b, m, 0.7)
    ab, ba = chamfer_l1(a, b), chamfer_l1(b, a)
    assert ab["chamfer_l1"] == pytest.approx(ba["chamfer_l1"], abs=1e-12)
    assert ab["accuracy"] == pytest.approx(ba["completeness"], abs=1e-12)
    assert ab["completeness"] == pytest.approx(ba["accuracy"], abs=1e-12)
    assert ab["chamfer_l1"] >= 0.0
    # the order of the points does not matter
    perm = np.random.default_rng(seed_a).permutation(n)
    assert chamfer_l1(a[perm], b)["chamfer_l1"] == pytest.approx(ab["chamfer_l1"], abs=1e-12)


@FAST
@given(seed=seeds, n=sizes, threshold=st.floats(1e-4, 0.5))
def test_identical_sets_score_perfectly(seed, n, threshold):
    a, normals = _cloud(seed, n)
    assert chamfer_l1(a, a.copy())["chamfer_l1"] == 0.0
    assert fscore(a, a.copy(), threshold)["fscore"] == 1.0
    assert normal_consistency(a, normals, a.copy(), normals.copy()) == pytest.approx(1.0)
    assert normal_consistency(a, normals, a.copy(), -normals) == pytest.approx(1.0)  # orientation-free


@FAST
@given(seed_a=seeds, seed_b=seeds, n=sizes, m=sizes, t1=st.floats(1e-3, 0.3), t2=st.floats(1e-3, 0.3))
def test_fscore_and_normal_consistency_swap_roles_and_stay_in_range(seed_a, seed_b, n, m, t1, t2):
    (a, na), (b, nb) = _cloud(seed_a, n), _cloud(seed_b, m, 0.6)
    ab, ba = fscore(a, b, t1), fscore(b, a, t1)
    assert ab["precision"] == ba["recall"] and ab["recall"] == ba["precision"]
    assert ab["fscore"] == pytest.approx(ba["fscore"]) and 0.0 <= ab["fscore"] <= 1.0
    lo, hi = sorted((t1, t2))
    assert fscore(a, b, lo)["fscore"] <= fscore(a, b, hi)["fscore"]  # a looser threshold never hurts
    nc = normal_consistency(a, na, b, nb)
    assert nc == pytest.approx(normal_consistency(b, nb, a, na))
    assert 0.0 <= nc <= 1.0 + 1e-12  # a mean of |cos| of unit vectors (up to rounding)


@FAST
@given(seed=seeds, n=st.integers(1, 500), p=st.floats(0, 1), q=st.floats(0, 1))
def test_iou_is_symmetric_bounded_and_one_on_identical(seed, n, p, q):
    rng = np.random.default_rng(seed)
    a, b = rng.random(n) < p, rng.random(n) < q
    iou = iou_occupancy(a, b)
    assert iou == iou_occupancy(b, a) and 0.0 <= iou <= 1.0
    assert iou_occupancy(a, a.copy()) == 1.0  # also when both are empty
    inter, union = np.count_nonzero(a & b), np.count_nonzero(a | b)
    assert iou == (inter / union if union else 1.0)
    res = 4
    va, vb = rng.random((res,) * 3) < p, rng.random((res,) * 3) < q
    assert iou_voxels(va, vb) == iou_voxels(vb, va) and iou_voxels(va, va) == 1.0
