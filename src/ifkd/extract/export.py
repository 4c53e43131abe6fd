"""Writing extracted meshes to disk (obj, ply, glb, stl, off): the last step of ``ifkd reconstruct``.

Files are written atomically (temp file + rename) so an interrupted run never leaves a partial mesh.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import trimesh

from ifkd.io import InputError, atomic_write_bytes

MESH_FORMATS = ("obj", "ply", "glb", "stl", "off")

# Rotations taking a mesh whose up axis is the key to glTF's +Y up (right-handed, proper rotations).
_TO_Y_UP = {
    "+y": np.eye(4),
    # OpenCV view frame (+Y down, +Z forward): 180 deg about X, so the camera then looks down -Z
    # as glTF cameras do.
    "-y": np.diag([1.0, -1.0, -1.0, 1.0]),
    # Z-up frames (Blender): -90 deg about X, (x, y, z) -> (x, z, -y).
    "+z": np.array([[1.0, 0, 0, 0], [0, 0, 1.0, 0], [0, -1.0, 0, 0], [0, 0, 0, 1.0]]),
}


def mesh_format(path: str | Path, file_format: str | None = None) -> str:
    """The format to write: ``file_format`` if given, else the path's suffix; checked against MESH_FORMATS."""
    fmt = (file_format or Path(path).suffix.lstrip(".")).lower()
    if fmt not in MESH_FORMATS:
        raise InputError(f"{path}: unknown mesh format {fmt!r}; choose one of {', '.join(MESH_FORMATS)}")
    return fmt


def export_mesh(
    mesh: trimesh.Trimesh, path: str | Path, file_format: str | None = None, *, up: str = "+y"
) -> Path:
    """Write ``mesh`` to ``path`` atomically and return the path.

    Args:
        mesh: the mesh, in the frame the caller wants on disk.
        path: output file; parent folders are created.
        file_format: one of MESH_FORMATS; default: the path's suffix.
        up: the mesh's up axis, one of "+y" (object frame, ShapeNet v1), "-y" (OpenCV view frame),
            "+z". Only glb is rotated, to glTF's +Y up; obj/ply/stl/off keep the coordinates as given,
            since those formats have no up convention and our readers expect the frame unchanged.
    """
    fmt = mesh_format(path, file_format)
    if up not in _TO_Y_UP:
        raise ValueError(f"up must be one of {sorted(_TO_Y_UP)}, got {up!r}")
    out = mesh
    if fmt == "glb" and up != "+y":
        out = mesh.copy()
        out.apply_transform(_TO_Y_UP[up])
    if fmt == "obj" and len(out.faces) == 0:
        # trimesh writes "v" and "f" lines without numbers for an empty mesh, which readers reject.
        data = b"# empty mesh (the field never crossed the threshold)\n"
    else:
        data = out.export(file_type=fmt)
    if isinstance(data, str):
        data = data.encode("utf-8")
    atomic_write_bytes(path, data)
    return Path(path)
