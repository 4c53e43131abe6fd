import time

import numpy as np
import pytest

from ifkd.data.synth import (
    CATEGORIES,
    Box,
    Capsule,
    ConvexPolyhedron,
    Cylinder,
    Ellipsoid,
    Shape,
    make_shape,
    rotation_about,
)
from ifkd.geometry.sampling import sample_mesh_surface, sample_point_values, sample_uniform
from ifkd.geometry.voxels import voxelize

ROT = rotation_about((1.0, 2.0, 3.0), 0.7)
PRIMITIVES = {
    "box": lambda: Box(half_extents=(0.3, 0.1, 0.2), center=(0.1, 0.0, -0.05), rotation=ROT),
    "cylinder": lambda: Cylinder(radius=0.2, half_height=0.3, center=(0.0, 0.1, 0.0), rotation=ROT),
    "frustum": lambda: Cylinder(radius=0.25, half_height=0.2, taper=0.4, rotation=ROT),
    "cone": lambda: Cylinder(radius=0.2, half_height=0.3, taper=0.0, rotation=ROT),
    "capsule": lambda: Capsule(radius=0.1, half_length=0.3, center=(0.05, 0.0, 0.0), rotation=ROT),
    "ellipsoid": lambda: Ellipsoid(radii=(0.35, 0.1, 0.2), rotation=ROT),
    "polyhedron": lambda: ConvexPolyhedron.from_points(np.random.default_rng(0).uniform(-0.4, 0.4, (12, 3))),
}


def on_surface(part, p: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    return part.contains(p, margin=-eps) & ~part.contains(p, margin=eps)


@pytest.mark.parametrize("name", PRIMITIVES)
def test_primitive_matches_its_mesh(name):
    part = PRIMITIVES[name]()
    mesh = part.to_mesh()
    assert mesh.is_watertight and mesh.volume > 0
    assert len(mesh.visual.face_colors) == len(mesh.faces)
    q = np.random.default_rng(1).uniform(-0.6, 0.6, (20000, 3))
    agree = (part.contains(q) == mesh.contains(q)).mean()
    exact = name in ("box", "polyhedron")  # the others' meshes are polygonal approximations
    assert agree == 1.0 if exact else agree > 0.995
    assert abs(mesh.area / part.area - 1) < 0.012
    np.testing.assert_allclose(part.bounds, mesh.bounds, atol=1e-9 if exact else 2e-3)


@pytest.mark.parametrize("name", PRIMITIVES)
def test_primitive_samples_lie_on_the_surface_with_outward_normals(name):
    part = PRIMITIVES[name]()
    p, n = part.sample_surface(5000, np.random.default_rng(2))
    assert p.shape == n.shape == (5000, 3)
    np.testing.assert_allclose(np.linalg.norm(n, axis=1), 1.0, atol=1e-9)
    assert on_surface(part, p).all()
    lo, hi = part.bounds
    assert np.all((p >= lo - 1e-9) & (p <= hi + 1e-9))
    assert not part.contains(p + 1e-4 * n).any()
    assert part.contains(p - 1e-4 * n).mean() > 0.998  # misses only within 1e-4 of sharp rims


@pytest.mark.parametrize("name", PRIMITIVES)
def test_primitive_samples_are_area_uniform(name):
    """Same first and second moments as area-uniform samples of the part's mesh (the slow reference)."""
    part = PRIMITIVES[name]()
    rng = np.random.default_rng(3)
    p, _ = part.sample_surface(60000, rng)
    ref, _ = sample_mesh_surface(part.to_mesh(), 60000, rng)
    np.testing.assert_allclose(p.mean(axis=0), ref.mean(axis=0), atol=3e-3)
    np.testing.assert_allclose(np.cov(p.T), np.cov(ref.T), atol=1.5e-3)


def test_rescaled_part_scales_geometry():
    part = PRIMITIVES["frustum"]()
    big = part.rescaled(2.0, np.array([1.0, 0.0, 0.0]))
    np.testing.assert_allclose(big.bounds, part.bounds * 2 + [1.0, 0.0, 0.0])
    assert big.area == pytest.approx(4 * part.area)
    q = np.random.default_rng(4).uniform(-0.5, 0.5, (1000, 3))
    np.testing.assert_array_equal(big.contains(2 * q + [1.0, 0.0, 0.0]), part.contains(q))


def test_union_of_flush_boxes_is_sampled_once_and_uniformly():
    """Boxes [0,2] and [1,3] along x make the box [0,3]x[0,1]^2 (outer area 14)."""
    a = Box(half_extents=(1.0, 0.5, 0.5), center=(1.0, 0.5, 0.5))
    b = Box(half_extents=(1.0, 0.5, 0.5), center=(2.0, 0.5, 0.5))
    p, n = Shape((a, b)).sample_surface(56000, np.random.default_rng(5))
    assert len(p) == 56000
    assert not np.any(np.all((p > 1e-6) & (p < np.array([3, 1, 1]) - 1e-6), axis=1))  # none inside
    end_cap = (p[:, 0] < 1e-9).mean()
    bottom = (p[:, 1] < 1e-9).mean()
    assert end_cap == pytest.approx(1 / 14, abs=0.005)
    assert bottom == pytest.approx(3 / 14, abs=0.008)  # flush overlap counted once, not twice


def test_occupancy_is_the_union_and_mesh_carries_part_colours():
    shape = make_shape("chair", 3)
    q = sample_uniform(20000, np.random.default_rng(6), half=0.5)
    brute = np.any([part.contains(q) for part in shape.parts], axis=0)
    np.testing.assert_array_equal(shape.occupancy(q), brute)
    mesh = shape.to_mesh()
    assert len(mesh.faces) == sum(len(p.to_mesh().faces) for p in shape.parts)
    assert len(mesh.visual.face_colors) == len(mesh.faces)
    assert len(np.unique(mesh.visual.face_colors, axis=0)) >= 2


@pytest.mark.parametrize("category", ["airplane", "car", "chair", "lamp", "table", "vessel"])
def test_fast_voxelize_equals_generic_path(category):
    shape = make_shape(category, 11)
    for res in (16, 32):
        np.testing.assert_array_equal(shape.voxelize(res), voxelize(shape.occupancy, res))


def test_categories_are_the_13_shapenet_synsets():
    assert len(CATEGORIES) == 13
    assert CATEGORIES["chair"] == "03001627" and CATEGORIES["vessel"] == "04530566"
    assert all(len(s) == 8 and s.isdigit() for s in CATEGORIES.values())
    with pytest.raises(ValueError, match="unknown category"):
        make_shape("spaceship", 0)


SIGNATURES = {  # bounding-box extents (x, y, z) that tell the categories apart
    "airplane": lambda e: e[1] < 0.3 and e[0] > 0.5 and e[2] > 0.5,
    "bench": lambda e: e[0] == e.max(),
    "car": lambda e: e[2] > 0.8 and e[1] < 0.4,
    "chair": lambda e: e[1] == e.max(),
    "rifle": lambda e: e[2] > 0.9 and e[0] < 0.15,
    "sofa": lambda e: e[0] == e.max() and e[1] < 0.5,
    "table": lambda e: e[1] < max(e[0], e[2]),
    "vessel": lambda e: e[0] < 0.3 and e[2] > 0.6,
}


@pytest.mark.parametrize("category", CATEGORIES)
def test_every_category_builds_normalised_with_its_proportions_for_20_seeds(category):
    extents = []
    for seed in range(20):
        lo, hi = make_shape(category, seed).bounds
        assert np.linalg.norm(hi - lo) == pytest.approx(1.0, abs=1e-6)
        np.testing.assert_allclose(lo + hi, 0.0, atol=1e-6)
        assert SIGNATURES.get(category, lambda e: True)(hi - lo), (seed, hi - lo)
        extents.append(hi - lo)
    assert np.std(extents, axis=0).max() > 0.02  # proportions vary within the category


def test_make_shape_is_deterministic():
    a, b = make_shape("airplane", 42), make_shape("airplane", 42)
    assert [type(p) for p in a.parts] == [type(p) for p in b.parts]
    assert [p.color for p in a.parts] == [p.color for p in b.parts]
    pa, na = a.sample_surface(2000, np.random.default_rng(0))
    pb, nb = b.sample_surface(2000, np.random.default_rng(0))
    np.testing.assert_array_equal(pa, pb)
    np.testing.assert_array_equal(na, nb)
    np.testing.assert_array_equal(a.voxelize(32), b.voxelize(32))
    np.testing.assert_array_equal(a.to_mesh().vertices, b.to_mesh().vertices)
    assert not np.array_equal(make_shape("airplane", 43).bounds, a.bounds)


@pytest.mark.parametrize("category", CATEGORIES)
def test_surface_samples_are_on_the_outer_surface(category):
    for seed in (0, 1):
        shape = make_shape(category, seed)
        p, n = shape.sample_surface(3000, np.random.default_rng(seed))
        assert p.shape == n.shape == (3000, 3)
        np.testing.assert_allclose(np.linalg.norm(n, axis=1), 1.0, atol=1e-9)
        on_some = np.any([on_surface(part, p) for part in shape.parts], axis=0)
        inside_any = np.any([part.contains(p, margin=1e-6) for part in shape.parts], axis=0)
        assert on_some.all() and not inside_any.any()
        # outward: a step out leaves the union, a step in enters it (except within 1e-3 of a
        # concave junction or a sharp rim)
        assert (~shape.occupancy(p + 1e-3 * n)).mean() > 0.98
        assert shape.occupancy(p - 1e-3 * n).mean() > 0.98


@pytest.mark.parametrize("category", CATEGORIES)
def test_voxel_fill_matches_uniform_occupancy_and_point_values_mix(category):
    shape = make_shape(category, 5)
    rng = np.random.default_rng(7)
    fill = shape.voxelize(64).mean()
    mc = shape.occupancy(sample_uniform(40000, rng, half=0.5)).mean()
    assert abs(fill - mc) < 0.006 + 0.1 * mc
    surface, _ = shape.sample_surface(4000, rng)
    pts, occ = sample_point_values(shape.occupancy, surface, rng, n_total=4000, n_uniform=128)
    near_inside = occ[128:].mean()
    assert 0.15 < near_inside < 0.7, near_inside
    assert occ[:128].mean() < 0.6  # uniform points in the padded cube: mostly empty space


def test_thin_parts_exist():
    chairs = [min(p.thickness for p in make_shape("chair", seed).parts) for seed in range(20)]
    assert max(chairs) < 0.05 and np.median(chairs) < 0.025  # legs, posts, slats, spindles
    thinnest = [min(p.thickness for p in make_shape(c, s).parts) for c in CATEGORIES for s in range(5)]
    assert np.mean(np.array(thinnest) < 0.02) > 0.5
    assert min(thinnest) > 0.004  # nothing thinner than about half a 128^3 voxel


def test_one_shape_with_all_ground_truth_is_fast():
    """Shape + 16384 surface samples + 10k point values + voxels 32/64/128 within 0.25 s CPU each."""
    times = []
    for category in CATEGORIES:
        start = time.process_time()
        shape = make_shape(category, 1)
        rng = np.random.default_rng(1)
        surface, _ = shape.sample_surface(16384, rng)
        sample_point_values(shape.occupancy, surface, rng)
        for res in (32, 64, 128):
            shape.voxelize(res)
        times.append(time.process_time() - start)
    assert np.mean(times) < 0.25, times
