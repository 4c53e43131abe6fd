"""Pure-numpy z-buffer triangle rasteriser: the renderer's fallback when embree is not installed.

Same pixel-centre sampling, camera and output as :func:`ifkd.render.raycast.render`; vectorised over
(triangle, pixel-in-bounding-box) pairs in chunks, so it is fine for the small meshes we render.
"""

from __future__ import annotations

import numpy as np
import trimesh

from ifkd.render.shading import (
    DEFAULT_LIGHT,
    Light,
    RenderResult,
    check_camera,
    compose,
    image_size,
    mul3,
    sample_intrinsics,
    view_faces,
)

NEAR = 1e-6
"""Triangles with a corner at view-frame z <= NEAR are dropped (no near-plane clipping in the fallback)."""
_CHUNK_PAIRS = 1 << 20
"""Upper bound on (triangle, pixel) candidate pairs processed at once, to cap memory (~100 MB)."""
_EDGE_TOL = 1e-9
"""Barycentric slack so a pixel centre exactly on a shared edge is not lost to rounding in both faces."""


def _chunks(counts: np.ndarray, limit: int):
    """Consecutive index ranges whose counts sum to <= limit (a single larger count gets its own range)."""
    ends = np.cumsum(counts)
    start = 0
    while start < len(counts):
        before = ends[start] - counts[start]
        stop = max(int(np.searchsorted(ends, before + limit, side="right")), start + 1)
        yield np.arange(start, stop)
        start = stop


def zbuffer(tris: np.ndarray, K: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Nearest face and its depth at every pixel centre.

    tris: (F, 3, 3) view-frame triangles (OpenCV axes); K: (3, 3) pixels; width, height: grid size.
    Returns (face_index (H, W) int64, -1 = miss; depth (H, W) float64 view-frame z, inf = miss).
    """
    face_index = np.full(height * width, -1, dtype=np.int64)
    depth = np.full(height * width, np.inf)
    z = tris[..., 2]
    front = np.all(z > NEAR, axis=1)
    ids = np.nonzero(front)[0]
    if ids.size == 0:
        return face_index.reshape(height, width), depth.reshape(height, width)
    pix = mul3(tris[ids].reshape(-1, 3), K).reshape(-1, 3, 3)
    uv = pix[..., :2] / pix[..., 2:3]  # (F', 3, 2) continuous pixel coordinates
    zf = z[ids]
    # Pixel i is sampled at i + 0.5: a triangle can cover columns ceil(umin - .5) .. floor(umax - .5).
    lo = np.maximum(np.ceil(uv.min(axis=1) - 0.5), 0).astype(np.int64)
    hi = np.minimum(np.floor(uv.max(axis=1) - 0.5), [width - 1, height - 1]).astype(np.int64)
    n_cols, n_rows = (hi - lo + 1).T
    a, b, c = uv[:, 0], uv[:, 1], uv[:, 2]
    area = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    keep = (n_cols > 0) & (n_rows > 0) & (np.abs(area) > 1e-12) & np.all(np.isfinite(uv), axis=(1, 2))
    ids, lo, n_cols, n_rows, a, b, c, area, zf = (
        x[keep] for x in (ids, lo, n_cols, n_rows, a, b, c, area, zf)
    )
    counts = n_cols * n_rows
    for chunk in _chunks(counts, _CHUNK_PAIRS):
        cnt = counts[chunk]
        tri = np.repeat(chunk, cnt)
        local = np.arange(cnt.sum()) - np.repeat(np.cumsum(cnt) - cnt, cnt)
        col = lo[tri, 0] + local % n_cols[tri]
        row = lo[tri, 1] + local // n_cols[tri]
        px, py = col + 0.5, row + 0.5
        ta, tb, tc = a[tri], b[tri], c[tri]
        # Barycentrics from signed sub-triangle areas; dividing by the signed area handles both windings.
        w0 = ((tc[:, 0] - tb[:, 0]) * (py - tb[:, 1]) - (tc[:, 1] - tb[:, 1]) * (px - tb[:, 0])) / area[tri]
        w1 = ((ta[:, 0] - tc[:, 0]) * (py - tc[:, 1]) - (ta[:, 1] - tc[:, 1]) * (px - tc[:, 0])) / area[tri]
        w2 = 1.0 - w0 - w1
        inside = (w0 >= -_EDGE_TOL) & (w1 >= -_EDGE_TOL) & (w2 >= -_EDGE_TOL)
        tri, w0, w1, w2 = tri[inside], w0[inside], w1[inside], w2[inside]
        pid = (row * width + col)[inside]
        # Perspective-correct: 1/z is affine in screen space across a planar triangle.
        zt = zf[tri]
        zz = 1.0 / (w0 / zt[:, 0] + w1 / zt[:, 1] + w2 / zt[:, 2])
        # Z-test within the chunk (nearest per pixel), then against the buffer.
        order = np.lexsort((zz, pid))
        pid, zz, tri = pid[order], zz[order], tri[order]
        first = np.ones(pid.size, dtype=bool)
        first[1:] = pid[1:] != pid[:-1]
        pid, zz, tri = pid[first], zz[first], tri[first]
        closer = zz < depth[pid]
        depth[pid[closer]] = zz[closer]
        face_index[pid[closer]] = ids[tri[closer]]
    return face_index.reshape(height, width), depth.reshape(height, width)


def render(
    mesh: trimesh.Trimesh,
    E: np.ndarray,
    width: int,
    height: int | None = None,
    *,
    face_colors: np.ndarray | None = None,
    K: np.ndarray | None = None,
    light: Light = DEFAULT_LIGHT,
    supersample: int = 1,
    filter_width: float = 1.0,
) -> RenderResult:
    """Render ``mesh`` (object frame) seen through E (4, 4; object -> view, OpenCV axes) and K (3, 3).

    See :func:`ifkd.render.raycast.render`; this is the same picture from a z-buffer instead of rays.
    """
    width, height = image_size(width, height)
    E, K = check_camera(E, K, width, height)
    s = int(supersample)
    Ks = sample_intrinsics(K, supersample)
    tris, normals, face_rgb = view_faces(mesh, E, face_colors, light)
    face_index, depth = zbuffer(tris, Ks, width * s, height * s)
    return compose(face_rgb, normals, face_index, depth, s, filter_width)
