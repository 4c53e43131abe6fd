"""The wide pixel filter (Blender's 1.5 px): weights, and sub-pixel parts leaving partial alpha."""

import numpy as np
import pytest
import trimesh

from ifkd.geometry.camera import Viewpoint, project_to_pixels, view_transform
from ifkd.render.raycast import render
from ifkd.render.shading import filter_reduce, pixel_filter_weights


@pytest.mark.parametrize("s,width", [(2, 1.5), (3, 1.5), (4, 2.0), (2, 1.0)])
def test_weights_sum_to_one_and_are_symmetric(s, width):
    w = pixel_filter_weights(s, width)
    assert w.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(w, w[::-1])


def test_box_width_one_equals_block_mean():
    rng = np.random.default_rng(0)
    a = rng.random((12, 18))
    out = filter_reduce(a, 3, pixel_filter_weights(3, 1.0))
    np.testing.assert_allclose(out, a.reshape(4, 3, 6, 3).mean(axis=(1, 3)))


def test_thin_pole_leaves_alpha_on_every_pixel_it_touches():
    pole = trimesh.creation.cylinder(radius=0.003, height=0.8)  # ~0.4 px wide at 64 px
    pole.apply_transform(trimesh.transformations.rotation_matrix(np.pi / 2, [1, 0, 0]))  # along +Y
    view = Viewpoint(33.0, 25.0, 0.0, 0.8, 25.0)
    E = view_transform(view)
    wide = render(pole, E, 64, supersample=4, filter_width=1.5).rgba[..., 3] > 0
    pts = trimesh.sample.sample_surface(pole, 4000, seed=0)[0]
    pix, _ = project_to_pixels(pts, E, 64)
    c, r = np.floor(pix[:, 0]).astype(int), np.floor(pix[:, 1]).astype(int)
    assert wide[r, c].mean() >= 0.99
    box = render(pole, E, 64, supersample=2, filter_width=1.0).rgba[..., 3] > 0
    assert box[r, c].mean() < wide[r, c].mean()
