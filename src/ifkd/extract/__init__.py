"""From an implicit field to a mesh file: grid sampling (dense or coarse-to-fine), marching cubes, export."""

from ifkd.extract.export import MESH_FORMATS, export_mesh
from ifkd.extract.marching_cubes import extract_mesh, grid_axis
from ifkd.extract.mise import coarse_to_fine, dense_grid

__all__ = ["MESH_FORMATS", "coarse_to_fine", "dense_grid", "export_mesh", "extract_mesh", "grid_axis"]
