"""Loading real meshes (obj/ply/stl/off/glb/gltf, ShapeNetCore v1/v2) and bringing them to our object frame.

Frames (evidence in the comments): ShapeNetCore **v1** ``<synset>/<model>/model.obj`` is our object
frame (+Y up, front +X, centred, bounding-box diagonal ~1) and is what R2N2 rendered, so it is used as
is. ShapeNetCore **v2** ``<synset>/<model>/models/model_normalized.obj`` is +Y up but front -Z, and
centred on its centroid rather than the box centre: we rotate it about +Y by ``V2_ROTATION_DEG`` and
re-normalise (box centre at the origin, diagonal 1). Any other mesh is only re-normalised.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import trimesh

from ifkd.io import InputError, not_found

MESH_SUFFIXES = (".obj", ".ply", ".stl", ".off", ".glb", ".gltf")
V1_FILE = "model.obj"
V2_FILE = "models/model_normalized.obj"
MAX_COORDINATE = 1e12
"""Larger vertex coordinates are refused by name. A mesh 1e30 across used to be called "degenerate":
its cross products (about 1e60 and more for the normals' squares) overflow or lose every digit, so
trimesh found no face with a usable area. No real-world unit needs coordinates this large."""
V2_ROTATION_DEG = -90.0
"""Rotation about +Y taking ShapeNetCore v2 to v1: x_v1 = -z_v2, z_v1 = x_v2.

Evidence: the v1 README says "up is +Y, front is +X" (X-Y the symmetry plane); the v2 README says
"up is +Y, front is -Z" (Y-Z the symmetry plane); mapping front -Z to +X about Y is R_y(-90 deg). The
same matrix follows from the two conversions in a public ShapeNet->SRN helper (v2: [[1,0,0],[0,0,-1],
[0,1,0]], v1: [[0,0,1],[1,0,0],[0,1,0]] -> R_v1^T R_v2 = [[0,0,-1],[0,1,0],[1,0,0]]), and IM-NET's
"flip & transpose to convert coord from shapenet_v1 to shapenet_v2" is its inverse. Some v1 models are
mirrored (the v1 notes mention left-right flips), which no rotation fixes.
"""


def load_mesh(path: str | Path) -> trimesh.Trimesh:
    """One triangle mesh from any supported file: scenes are flattened with their node transforms
    applied (glb/gltf), several geometries concatenated, materials/textures skipped (a missing .mtl
    is fine). Raises InputError naming the file for missing, unreadable, empty or non-finite meshes."""
    path = Path(path)
    if not path.is_file():
        raise InputError(not_found(path, "mesh file"))
    if path.suffix.lower() not in MESH_SUFFIXES:
        raise InputError(
            f"{path}: unsupported mesh type {path.suffix!r} (use one of {', '.join(MESH_SUFFIXES)})"
        )
    kwargs = {"skip_materials": True} if path.suffix.lower() == ".obj" else {}
    try:
        with warnings.catch_warnings():  # overflowing or NaN coordinates: reported below, in one line
            warnings.simplefilter("ignore", RuntimeWarning)
            loaded = trimesh.load(path, force="mesh", **kwargs)
    except Exception as exc:  # trimesh raises many types for bad files
        raise InputError(f"{path}: unreadable mesh ({type(exc).__name__}: {exc})") from None
    if isinstance(loaded, trimesh.Scene):  # force='mesh' on an empty scene
        loaded = loaded.to_mesh() if loaded.geometry else trimesh.Trimesh()
    if not isinstance(loaded, trimesh.Trimesh) or len(loaded.faces) == 0:
        raise InputError(f"{path}: no triangles (a point cloud or empty file?)")
    vertices = np.asarray(loaded.vertices, dtype=np.float64)
    if not np.all(np.isfinite(vertices)):
        raise InputError(f"{path}: vertices contain NaN/Inf")
    big = float(np.abs(vertices).max()) if len(vertices) else 0.0
    if big > MAX_COORDINATE:
        raise InputError(
            f"{path}: vertex coordinates up to {big:.3g}, beyond {MAX_COORDINATE:.0e}: areas and normals "
            "overflow in float64 (a unit or export error?)"
        )
    mesh = trimesh.Trimesh(vertices, np.asarray(loaded.faces), process=True)
    mesh.update_faces(mesh.nondegenerate_faces())
    mesh.remove_unreferenced_vertices()
    if len(mesh.faces) == 0 or not mesh.area > 0:
        raise InputError(f"{path}: all triangles are degenerate (zero area)")
    if not np.linalg.norm(mesh.extents) > 0:
        raise InputError(f"{path}: mesh has zero extent")
    return mesh


def bbox_frame(vertices: np.ndarray) -> tuple[np.ndarray, float]:
    """(loc (3,), scale): bounding-box centre and diagonal; normalised x = (x - loc) / scale."""
    lo, hi = vertices.min(axis=0), vertices.max(axis=0)
    return (lo + hi) / 2.0, float(np.linalg.norm(hi - lo))


def normalise(mesh: trimesh.Trimesh) -> tuple[trimesh.Trimesh, np.ndarray, float]:
    """A copy centred on its bounding-box centre with diagonal 1 (ShapeNet v1's convention), and the
    (loc, scale) used: x_ours = (x - loc) / scale."""
    loc, scale = bbox_frame(np.asarray(mesh.vertices))
    out = mesh.copy()
    out.vertices = (out.vertices - loc) / scale
    return out, loc, scale


def rotate_y(mesh: trimesh.Trimesh, degrees: float) -> trimesh.Trimesh:
    """A copy rotated about +Y (right-handed): x' = cos x + sin z, z' = -sin x + cos z."""
    out = mesh.copy()
    if degrees:
        out.apply_transform(trimesh.transformations.rotation_matrix(np.radians(degrees), [0.0, 1.0, 0.0]))
    return out


def find_shapenet_mesh(meshes_dir: str | Path, synset: str, model: str) -> tuple[Path, int] | None:
    """(path, ShapeNet version 1 or 2) of a model's mesh under a ShapeNetCore root, or None."""
    base = Path(meshes_dir) / synset / model
    for rel, version in ((V1_FILE, 1), (V2_FILE, 2)):
        if (base / rel).is_file():
            return base / rel, version
    return None


def load_shapenet_mesh(
    path: str | Path, version: int, v2_rotation: float = V2_ROTATION_DEG
) -> trimesh.Trimesh:
    """A ShapeNetCore mesh in our object frame. v1: unchanged (R2N2 rendered these coordinates).
    v2: rotated about +Y by ``v2_rotation`` degrees, then centred with diagonal 1."""
    mesh = load_mesh(path)
    if version == 1:
        return mesh
    return normalise(rotate_y(mesh, v2_rotation))[0]


def v1_frame_deviation(mesh: trimesh.Trimesh) -> tuple[float, float]:
    """(|bbox centre|, |diagonal - 1|) of a mesh expected in the v1 frame: 0, 0 when exact."""
    loc, scale = bbox_frame(np.asarray(mesh.vertices))
    return float(np.linalg.norm(loc)), abs(scale - 1.0)


def find_mesh_files(folder: str | Path) -> list[Path]:
    """Mesh files under folder, recursively, sorted; hidden files and folders are skipped."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: mesh folder not found")
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file()
        and p.suffix.lower() in MESH_SUFFIXES
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )
