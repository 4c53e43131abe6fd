"""Turn a clean mesh into a ShapeNet-style polygon soup, to test and benchmark inside tests on it.

ShapeNet's models are exported from modelling tools as triangle soups: every face stored twice back to
back (double-sided rendering), vertices repeated per face, each part wound its own way. This makes those
pathologies on any mesh whose solid is known, so the inside test can be scored against the truth.
"""

from __future__ import annotations

import numpy as np
import trimesh


def shapenet_soup(
    mesh: trimesh.Trimesh,
    rng: np.random.Generator,
    double_sided: bool = True,
    unmerge: bool = True,
    flip_parts: float = 0.5,
) -> trimesh.Trimesh:
    """A soup with the solid of ``mesh``: each connected part wound inside-out with probability
    ``flip_parts``, every face duplicated reversed (``double_sided``), one vertex triple per face
    (``unmerge``). Faces are shuffled, so nothing depends on their order."""
    faces = np.asarray(mesh.faces).copy()
    labels = trimesh.graph.connected_component_labels(mesh.face_adjacency, node_count=len(faces))
    flip = rng.random(int(labels.max()) + 1) < flip_parts
    faces[flip[labels]] = faces[flip[labels]][:, ::-1]
    if double_sided:
        faces = np.concatenate([faces, faces[:, ::-1]])
    faces = faces[rng.permutation(len(faces))]
    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    if unmerge:
        vertices, faces = vertices[faces].reshape(-1, 3), np.arange(faces.size).reshape(-1, 3)
    return trimesh.Trimesh(vertices, faces, process=False)
