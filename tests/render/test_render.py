"""Tests for the CPU renderer: camera agreement, pinhole geometry, depth, backends, alpha, orientation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import trimesh
from scipy import ndimage
from scipy.spatial import ConvexHull

from ifkd.geometry import camera
from ifkd.render import HAS_EMBREE, Light, raster, render, render_mesh_figure, render_views, silhouette
from ifkd.render.raycast import pixel_directions

BACKENDS = [
    pytest.param("embree", marks=pytest.mark.skipif(not HAS_EMBREE, reason="embreex not installed")),
    "raster",
]
MESHES = Path("/work/shared/realdata/meshes")
R2N2_VIEW = camera.Viewpoint(45.3, 25.7, 0.0, 0.8, 25.0)


def normalised(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """The object-frame normalisation: bbox centred at the origin, bbox diagonal 1."""
    mesh = mesh.copy()
    mesh.apply_translation(-mesh.bounds.mean(axis=0))
    mesh.apply_scale(1.0 / np.linalg.norm(mesh.extents))
    return mesh


def markers(centres: list[tuple[float, float, float]], radius: float = 0.08):
    """Small spheres concatenated into one mesh, and the face-index range of each."""
    parts = [trimesh.creation.icosphere(2, radius=radius).apply_translation(c) for c in centres]
    sizes = np.cumsum([0] + [len(p.faces) for p in parts])
    return trimesh.util.concatenate(parts), [(sizes[k], sizes[k + 1]) for k in range(len(parts))]


def sphere_view(radius: float, view: camera.Viewpoint) -> trimesh.Trimesh:
    """An icosphere with one vertex turned towards the camera, so the central ray hits the true sphere."""
    mesh = trimesh.creation.icosphere(4, radius=radius)
    to_cam = camera.camera_position(view)
    mesh.apply_transform(trimesh.geometry.align_vectors(mesh.vertices[0], to_cam))
    return mesh


@pytest.mark.parametrize("backend", BACKENDS)
def test_cube_silhouette_is_hull_of_projected_corners(backend):
    cube = trimesh.creation.box(extents=np.full(3, 1.0 / np.sqrt(3.0)))  # bbox diagonal 1
    E = camera.view_transform(R2N2_VIEW)
    size = 137
    mask = silhouette(cube, E, size, backend=backend)
    corners, _ = camera.project_to_pixels(cube.vertices, E, size)
    assert np.all((corners > 0) & (corners < size)), "test set-up: the cube must be in frame"
    rows, cols = np.nonzero(mask)
    # The mask's bbox in continuous pixel coordinates (pixel i spans [i, i + 1)) vs the corners' bbox.
    assert abs(cols.min() - corners[:, 0].min()) <= 1.0
    assert abs(cols.max() + 1 - corners[:, 0].max()) <= 1.0
    assert abs(rows.min() - corners[:, 1].min()) <= 1.0
    assert abs(rows.max() + 1 - corners[:, 1].max()) <= 1.0
    # Every corner lands on or next to the silhouette.
    for u, v in np.floor(corners).astype(int):
        assert mask[max(v - 1, 0) : v + 2, max(u - 1, 0) : u + 2].any()
    # A convex solid's silhouette is the convex hull of its projected corners: check every pixel centre
    # that is clearly inside / outside it.
    hull = ConvexHull(corners)
    jj, ii = np.mgrid[:size, :size]
    centres = np.stack([ii.ravel() + 0.5, jj.ravel() + 0.5], axis=1)
    signed = (centres @ hull.equations[:, :2].T + hull.equations[:, 2]).max(axis=1).reshape(size, size)
    assert mask[signed < -0.01].all()
    assert not mask[signed > 0.01].any()


@pytest.mark.parametrize("backend", BACKENDS)
def test_sphere_renders_as_disc_with_pinhole_radius(backend):
    r, view = 0.3, camera.Viewpoint(0.0, 0.0, 0.0, 0.8)
    size = 137
    res = render(trimesh.creation.icosphere(4, radius=r), camera.view_transform(view), size, backend=backend)
    d = view.distance
    f = camera.intrinsics(size)[0, 0]
    # The tangent cone has half-angle asin(r/d); its image is a circle of radius f * tan(asin(r/d)).
    expected = f * r / np.sqrt(d * d - r * r)
    rows, cols = np.nonzero(res.mask)
    assert abs(np.sqrt(res.mask.sum() / np.pi) - expected) < 1.0
    assert abs((cols.max() - cols.min() + 1) / 2 - expected) < 1.0
    assert abs((rows.max() - rows.min() + 1) / 2 - expected) < 1.0
    assert abs(cols.mean() + 0.5 - size / 2) < 0.5 and abs(rows.mean() + 0.5 - size / 2) < 0.5


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("view", [camera.Viewpoint(0.0, 0.0, 0.0, 0.8), R2N2_VIEW])
def test_depth_at_centre_is_distance_minus_radius(backend, view):
    r = 0.35
    res = render(sphere_view(r, view), camera.view_transform(view), 137, backend=backend)
    # 137 is odd: the centre pixel's ray is the optical axis, through the object centre.
    assert abs(res.depth[68, 68] - (view.distance - r)) < 1e-4
    assert np.isinf(res.depth[0, 0]) and res.face_index[0, 0] == -1


@pytest.mark.skipif(not HAS_EMBREE, reason="embreex not installed")
@pytest.mark.parametrize("supersample", [1, 2])
def test_embree_and_raster_agree(supersample):
    mesh = trimesh.util.concatenate(
        [
            trimesh.creation.capsule(height=0.4, radius=0.15),
            trimesh.creation.box(extents=(0.5, 0.1, 0.3)).apply_translation((0.1, 0.25, 0.0)),
        ]
    )
    E = camera.view_transform(camera.Viewpoint(123.0, 31.0, 0.0, 0.7))
    a = render(mesh, E, 64, supersample=supersample, backend="embree")
    b = render(mesh, E, 64, supersample=supersample, backend="raster")
    iou = (a.mask & b.mask).sum() / (a.mask | b.mask).sum()
    assert iou >= 0.98
    both = a.mask & b.mask
    assert np.median(np.abs(a.depth[both] - b.depth[both])) < 1e-5
    same = both & (a.face_index == b.face_index)
    assert same.mean() > 0.9 * both.mean()
    np.testing.assert_allclose(a.depth[same], b.depth[same], atol=1e-5)
    np.testing.assert_array_equal(a.rgba[same], b.rgba[same])


@pytest.mark.parametrize("backend", BACKENDS)
def test_alpha_is_transparent_background_opaque_object(backend):
    mesh = trimesh.creation.icosphere(3, radius=0.3)
    E = camera.view_transform(R2N2_VIEW)
    res = render(mesh, E, 48, backend=backend)
    assert res.rgba.dtype == np.uint8 and res.rgba.shape == (48, 48, 4)
    assert set(np.unique(res.rgba[..., 3])) == {0, 255}
    np.testing.assert_array_equal(res.rgba[..., 3] == 255, res.mask)
    assert np.all(res.rgba[~res.mask] == 0)
    assert np.all(res.normals[~res.mask] == 0) and np.all(np.isinf(res.depth[~res.mask]))
    # Supersampling: coverage alpha on the edge, full alpha inside, same mask as any-hit.
    aa = render(mesh, E, 48, supersample=3, backend=backend)
    edge = (aa.rgba[..., 3] > 0) & (aa.rgba[..., 3] < 255)
    assert edge.sum() > 20
    np.testing.assert_array_equal(aa.rgba[..., 3] > 0, aa.mask)
    assert np.all(aa.rgba[..., 3][res.mask & ~edge] == 255)
    # Coverage integrates to the disc area seen by the pixel-centre render (up to boundary noise).
    assert abs(aa.rgba[..., 3].sum() / 255.0 - res.mask.sum()) < 0.03 * res.mask.sum()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("az, el", [(0.0, 0.0), (90.0, 20.0), (210.0, 35.0), (315.0, 10.0)])
def test_object_up_is_image_up(backend, az, el):
    mesh, (top, bottom) = markers([(0.0, 0.35, 0.0), (0.0, -0.35, 0.0)])
    res = render(mesh, camera.view_transform(camera.Viewpoint(az, el, 0.0, 0.8)), 64, backend=backend)
    rows = np.nonzero(res.mask)[0]
    fi = res.face_index[res.mask]
    in_top = (fi >= top[0]) & (fi < top[1])
    in_bottom = (fi >= bottom[0]) & (fi < bottom[1])
    assert in_top.any() and in_bottom.any()
    assert rows[in_top].mean() < rows[in_bottom].mean() - 10


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("az", [0.0, 30.0, 90.0, 150.0, 180.0, 270.0, 330.0])
def test_azimuth_moves_camera_as_camera_position_says(backend, az):
    centres = [(0.4, 0.0, 0.0), (-0.4, 0.0, 0.0), (0.0, 0.0, 0.4), (0.0, 0.0, -0.4)]
    mesh, ranges = markers(centres)
    view = camera.Viewpoint(az, 10.0, 0.0, 0.8)
    cam = camera.camera_position(view)
    dist = np.linalg.norm(np.asarray(centres) - cam, axis=1)
    nearest = int(np.argmin(dist))
    assert np.sort(dist)[1] - dist[nearest] > 0.05, "test set-up: one marker must be clearly nearest"
    res = render(mesh, camera.view_transform(view), 96, backend=backend)
    j, i = np.unravel_index(np.argmin(res.depth), res.depth.shape)
    lo, hi = ranges[nearest]
    assert lo <= res.face_index[j, i] < hi
    # The nearest surface point of that marker lies about dist - radius from the camera.
    ray = pixel_directions(camera.intrinsics(96), 96, 96)[j * 96 + i]
    assert abs(res.depth[j, i] * np.linalg.norm(ray) - (dist[nearest] - 0.08)) < 0.01


@pytest.mark.parametrize("backend", BACKENDS)
def test_real_bunny_vertices_project_inside_silhouette(backend):
    bunny = normalised(trimesh.load(MESHES / "bunny.ply", force="mesh"))
    views = [R2N2_VIEW, camera.Viewpoint(200.0, 12.0, 0.0, 0.7)]
    # The bunny is finely tessellated: ~4% of its vertices sit on the outline, in pixels whose centre
    # is just outside. With 3x3 sub-samples "inside" means the vertex's pixel is (partly) covered.
    results = render_views(bunny, views, 137, backend=backend, supersample=3)
    for view, res in zip(views, results):
        E = camera.view_transform(view)
        uv, _ = camera.project_to_pixels(bunny.vertices, E, 137)
        cols, rows = np.floor(uv).astype(int).T
        assert cols.min() >= 0 and rows.min() >= 0 and cols.max() < 137 and rows.max() < 137
        assert res.mask[rows, cols].mean() >= 0.98
        # Pixel-centre silhouette: every vertex is inside it or at most one pixel away.
        near = ndimage.binary_dilation(silhouette(bunny, E, 137, backend=backend))
        assert near[rows, cols].mean() >= 0.999
        assert res.rgba[res.mask, :3].std() > 5.0  # shaded, not flat


@pytest.mark.skipif(not HAS_EMBREE, reason="embreex not installed")
def test_real_bunny_backends_agree():
    bunny = normalised(trimesh.load(MESHES / "bunny.ply", force="mesh"))
    E = camera.view_transform(R2N2_VIEW)
    a, b = silhouette(bunny, E, 96, backend="embree"), silhouette(bunny, E, 96, backend="raster")
    assert (a & b).sum() / (a | b).sum() >= 0.98


def test_textured_mesh_keeps_its_colours():
    duck = normalised(trimesh.load(MESHES / "Duck.glb", force="mesh"))
    res = render(duck, camera.view_transform(R2N2_VIEW), 64)
    rgb = res.rgba[res.mask, :3].astype(int)
    assert (rgb[:, 0] - rgb[:, 2]).mean() > 50  # the duck is yellow, not the default grey


def test_winding_does_not_change_the_image():
    mesh = trimesh.creation.icosphere(2, radius=0.3)
    flipped = trimesh.Trimesh(mesh.vertices, mesh.faces[:, ::-1], process=False)
    E = camera.view_transform(R2N2_VIEW)
    a, b = render(mesh, E, 40), render(flipped, E, 40)
    np.testing.assert_array_equal(a.rgba, b.rgba)
    np.testing.assert_allclose(a.normals, b.normals, atol=1e-6)


def test_normals_face_camera_and_light_from_upper_left_brightens_that_side():
    mesh = trimesh.creation.icosphere(4, radius=0.35)
    res = render(mesh, camera.view_transform(camera.Viewpoint(0.0, 0.0, 0.0, 0.8)), 64)
    n = res.normals[res.mask]
    np.testing.assert_allclose(np.linalg.norm(n, axis=1), 1.0, atol=1e-5)
    rays = pixel_directions(camera.intrinsics(64), 64, 64).reshape(64, 64, 3)[res.mask]
    assert np.all(np.einsum("ij,ij->i", n, rays) < 0)
    grey = res.rgba[..., :3].astype(float).mean(axis=-1)
    assert grey[20, 20] > grey[44, 44] + 20  # upper-left quadrant of the disc vs lower-right
    dark = render(mesh, camera.view_transform(camera.Viewpoint(0.0, 0.0)), 64, light=Light(diffuse=0.0))
    assert dark.rgba[dark.mask, :3].std() < 1.0  # ambient only: flat


def test_raster_chunking_does_not_change_the_result(monkeypatch):
    mesh = trimesh.creation.icosphere(3, radius=0.4)
    E = camera.view_transform(R2N2_VIEW)
    whole = raster.render(mesh, E, 50)
    monkeypatch.setattr(raster, "_CHUNK_PAIRS", 97)
    chunked = raster.render(mesh, E, 50)
    np.testing.assert_array_equal(whole.face_index, chunked.face_index)
    np.testing.assert_array_equal(whole.depth, chunked.depth)


@pytest.mark.parametrize("backend", BACKENDS)
def test_custom_K_and_rectangular_image(backend):
    mesh = trimesh.creation.icosphere(3, radius=0.3)
    E = camera.view_transform(R2N2_VIEW)
    wide = render(mesh, E, 80, 40, backend=backend)
    assert wide.rgba.shape == (40, 80, 4) and wide.depth.shape == (40, 80)
    rows, cols = np.nonzero(wide.mask)
    centre, _ = camera.project_to_pixels(np.zeros((1, 3)), E, 80, 40)
    assert abs(cols.mean() + 0.5 - centre[0, 0]) < 1.5 and abs(rows.mean() + 0.5 - centre[0, 1]) < 1.5
    # Shifting the principal point by 5 px shifts the silhouette by 5 px.
    K = camera.intrinsics(80, 40)
    K[0, 2] += 5.0
    shifted = render(mesh, E, 80, 40, K=K, backend=backend)
    np.testing.assert_array_equal(shifted.mask[:, 5:], wide.mask[:, :-5])


def test_figure_is_opaque_on_white():
    mesh = trimesh.creation.icosphere(3, radius=0.3)
    fig = render_mesh_figure(mesh, camera.view_transform(R2N2_VIEW), 48, color=(200, 60, 60))
    assert fig.shape == (48, 48, 3) and fig.dtype == np.uint8
    assert np.all(fig[0, 0] == 255)
    centre = fig[24, 24].astype(int)
    assert centre[0] > centre[1] + 40  # the requested red


def test_empty_mesh_and_object_out_of_view():
    empty = trimesh.Trimesh(np.zeros((0, 3)), np.zeros((0, 3), dtype=int))
    res = render(empty, np.eye(4), 16)
    assert not res.mask.any() and np.all(res.rgba == 0)
    behind = trimesh.creation.icosphere(2, radius=0.3)
    E = np.eye(4)
    E[2, 3] = -2.0  # object behind the camera
    for backend in ["raster"] + (["embree"] if HAS_EMBREE else []):
        assert not render(behind, E, 16, backend=backend).mask.any()


def test_bad_arguments_are_rejected():
    mesh = trimesh.creation.box()
    E = camera.view_transform(R2N2_VIEW)
    with pytest.raises(ValueError, match="E must be"):
        render(mesh, np.eye(3), 16)
    with pytest.raises(ValueError, match="image size"):
        render(mesh, E, 0)
    with pytest.raises(ValueError, match="supersample"):
        render(mesh, E, 16, supersample=0)
    with pytest.raises(ValueError, match="face_colors"):
        render(mesh, E, 16, face_colors=np.zeros((3, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match="backend"):
        render(mesh, E, 16, backend="opengl")
