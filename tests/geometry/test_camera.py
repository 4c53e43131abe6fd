"""The R2N2 camera convention: hand-computed projections, round trips, and the peers' matrices."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ifkd.geometry import camera as C


def test_constants_match_r2n2_lens():
    assert C.NORMALISED_FOCAL == pytest.approx(2.1875)
    assert C.FOV_DEG == pytest.approx(49.1343, abs=1e-3)
    K = C.intrinsics(137)
    assert K[0, 0] == pytest.approx(35 * 137 / 32) and K[0, 2] == 68.5 and K[1, 2] == 68.5


def test_cube_corners_land_where_hand_computation_says():
    # az 0, el 0, ratio 1: the camera sits on the object's +X axis at 1.75 looking back at the origin.
    # View axes (OpenCV): z forward = -X_obj, y down = -Y_obj, x right = y cross z = -Z_obj.
    E = C.view_transform(C.Viewpoint(0.0, 0.0, 0.0, 1.0, 25.0))
    corners = np.array([[sx, sy, sz] for sx in (-0.5, 0.5) for sy in (-0.5, 0.5) for sz in (-0.5, 0.5)])
    pix, depth = C.project_to_pixels(corners, E, 137)
    f = 35 * 137 / 32
    for (x, y, z), (u, v), d in zip(corners, pix, depth):
        zc = 1.75 - x
        assert d == pytest.approx(zc, abs=1e-6)
        # R2N2's camera rotation carries 4e-8 float noise: 1e-4 px is its exact agreement.
        assert u == pytest.approx(68.5 + f * (-z) / zc, abs=1e-4)
        assert v == pytest.approx(68.5 + f * (-y) / zc, abs=1e-4)
    # The corner (0.5, 0.5, 0.5): in front, up, towards +Z -> top-left of the image.
    u, v = pix[-1]
    assert u == pytest.approx(68.5 - f * 0.4, abs=1e-4) and v == pytest.approx(8.5625, abs=1e-4)


def test_elevation_looks_down_and_azimuth_turns_camera():
    view = C.Viewpoint(90.0, 30.0, 0.0, 0.8, 25.0)
    pos = C.camera_position(view)
    d = 0.8 * 1.75
    # Azimuth 90 puts the camera on +Z, elevation lifts it along +Y.
    np.testing.assert_allclose(pos, [0.0, d * np.sin(np.radians(30)), d * np.cos(np.radians(30))], atol=1e-6)
    # The origin projects to the image centre; a point above it projects higher (smaller row).
    E = C.view_transform(view)
    (uv0,), _ = C.project_to_pixels(np.zeros((1, 3)), E, 137)
    (uv1,), _ = C.project_to_pixels(np.array([[0.0, 0.2, 0.0]]), E, 137)
    np.testing.assert_allclose(uv0, [68.5, 68.5], atol=1e-5)
    assert uv1[1] < uv0[1] - 5


def test_matches_occnet_cameras_npz_convention():
    # OccNet's world_mat = [RT[:, :3] @ blender_T | RT[:, 3]] with R2N2's getBlenderProj; E must equal it.
    az, el, ratio = 123.4, 27.0, 0.7
    sa, ca = np.sin(np.radians(-az)), np.cos(np.radians(-az))
    se, ce = np.sin(np.radians(-el)), np.cos(np.radians(-el))
    r_world2obj = np.array([[ca * ce, -sa, ca * se], [sa * ce, ca, sa * se], [-se, 0, ce]]).T
    cam_rot = C._CAM_ROT
    r = np.diag([1, -1, -1]) @ cam_rot.T @ r_world2obj
    t = np.diag([1, -1, -1]) @ (-cam_rot.T @ np.array([ratio * 1.75, 0, 0]))
    world_mat = np.concatenate([r @ C.BLENDER_T, t[:, None]], axis=1)
    K, W = C.occnet_cameras(C.Viewpoint(az, el, 0.0, ratio, 25.0))
    np.testing.assert_allclose(W, world_mat, atol=1e-12)
    np.testing.assert_allclose(K, [[149.84375, 0, 68.5], [0, 149.84375, 68.5], [0, 0, 1]])


def test_rotation_is_proper_and_translation_on_axis():
    for az, el in [(0, 25), (45, 30), (200, 28), (359, 26)]:
        E = C.view_transform(C.Viewpoint(az, el, 0, 0.75, 25))
        R = E[:3, :3]
        np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)
        assert np.linalg.det(R) == pytest.approx(1.0)
        np.testing.assert_allclose(E[:3, 3], [0, 0, 0.75 * 1.75], atol=1e-6)


@settings(max_examples=60, deadline=None)
@given(
    az=st.floats(0, 360),
    el=st.floats(-60, 60),
    ratio=st.floats(0.6, 1.0),
    inplane=st.floats(-10, 10),
)
def test_project_unproject_round_trip(az, el, ratio, inplane):
    rng = np.random.default_rng(0)
    pts = rng.uniform(-0.5, 0.5, size=(64, 3))
    E = C.view_transform(C.Viewpoint(az, el, inplane, ratio, 25.0))
    uv, depth = C.project(pts, E)
    back_view = C.unproject(uv, depth)
    back_obj = (back_view - E[:3, 3]) @ E[:3, :3]
    np.testing.assert_allclose(back_obj, pts, atol=1e-5)
    # normalised coordinates agree with pixel coordinates of any image size
    for w in (64, 137):
        pix, _ = C.project_to_pixels(pts, E, w)
        np.testing.assert_allclose(C.normalised_to_pixels(uv, w), pix, atol=1e-6)


@settings(max_examples=30, deadline=None)
@given(az=st.floats(0, 359.99), el=st.floats(-80, 80), ratio=st.floats(0.5, 1.2))
def test_viewpoint_recovered_from_world_mat(az, el, ratio):
    view = C.Viewpoint(az, el, 0.0, ratio, 25.0)
    back = C.viewpoint_from_world_mat(C.view_transform(view))
    assert back.elevation == pytest.approx(el, abs=1e-4)
    assert back.distance_ratio == pytest.approx(ratio, abs=1e-6)
    assert (back.azimuth - az + 180) % 360 - 180 == pytest.approx(0.0, abs=1e-4)


def test_torch_and_numpy_agree_batched():
    rng = np.random.default_rng(1)
    pts = rng.uniform(-0.5, 0.5, size=(2, 10, 3))
    Es = np.stack([C.view_transform(C.Viewpoint(a, 25, 0, 0.8, 25)) for a in (10, 250)])
    uv_np, d_np = C.project(pts, Es)
    uv_t, d_t = C.project(torch.tensor(pts), torch.tensor(Es))
    np.testing.assert_allclose(uv_t.numpy(), uv_np, atol=1e-10)
    np.testing.assert_allclose(d_t.numpy(), d_np, atol=1e-10)
    uv_f, _ = C.project(torch.tensor(pts, dtype=torch.float32), torch.tensor(Es, dtype=torch.float32))
    assert uv_f.dtype == torch.float32


def test_metadata_line_parsing():
    v = C.parse_metadata_line("[291.0, 28.5, 0, 0.72, 25]")
    assert v == C.Viewpoint(291.0, 28.5, 0.0, 0.72, 25.0)
    assert C.parse_metadata_line(C.format_metadata_line(v)) == v
    with pytest.raises(ValueError, match="expected 5 numbers"):
        C.parse_metadata_line("1 2 3 4", "meta.txt")
    with pytest.raises(ValueError, match="not a number"):
        C.parse_metadata_line("1 2 x 4 5", "meta.txt")
    with pytest.raises(ValueError, match="non-finite"):
        C.parse_metadata_line("1 2 nan 4 5", "meta.txt")
