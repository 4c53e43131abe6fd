"""CPU renderer: RGBA views, depth and silhouettes of meshes under the R2N2 camera (embree or numpy)."""

from ifkd.render.raycast import HAS_EMBREE, render, render_mesh_figure, render_views, silhouette
from ifkd.render.shading import DEFAULT_LIGHT, Light, RenderResult

__all__ = [
    "DEFAULT_LIGHT",
    "HAS_EMBREE",
    "Light",
    "RenderResult",
    "render",
    "render_mesh_figure",
    "render_views",
    "silhouette",
]
