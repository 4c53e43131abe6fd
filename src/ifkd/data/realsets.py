"""The real-shape dataset: the licensed meshes of ``/work/shared/realdata`` in our format, in our frame.

Two sources (see ``PROVENANCE.md`` there):

* ``capod/<class>/m<N>.obj``: the CAnonically Posed 3D Objects Dataset, 15 classes x 12 models, CC-BY 3.0.
  Poses are canonical within a class but every class has its own up and front, so each class carries a
  rotation (:data:`CAPOD_CLASSES`; four airplanes lie rolled on their side: :data:`CAPOD_MODEL_ROTATIONS`).
  Five classes map to our categories (airplane, car, chair, gun -> rifle, desktop_computer -> display);
  the other ten keep their own names and go to the test split only: real classes never trained on.
* ``furniture_cc0/<kit>/<name>.glb``: the Kenney Furniture Kit and KayKit Furniture Bits, CC0, Y-up
  glTF with the front at +Z already (checked by renders); the file name says the category
  (:data:`FURNITURE_KEYWORDS`, first match wins); pieces that match none are skipped and listed.

Frame: ours is ShapeNet v1's +Y up, centred, bounding-box diagonal 1, with the front of the procedural
families at **+Z** (:mod:`ifkd.data.synth.families`: a chair's seat edge, a car's nose, a screen, a
muzzle; the R2N2 camera at azimuth 90 looks at it). Every rotation here was chosen by looking at renders
from R2N2 viewpoints (azimuth 0, 90, 180, 270; elevation 25) next to ``make_shape(category, 0)``; the
record sheet is ``benchmarks/results/realsets_orientation.png`` and ``tests/data/test_realsets.py``
checks the up axes automatically.

Rotations are written as signed axis permutations ``"a,b,c"``: the new x, y, z are the file's axes
a, b, c (``"x,z,-y"``: x' = x, y' = z, z' = -y, i.e. a Z-up file brought to Y-up). Only proper
rotations (determinant +1) are allowed.

:func:`build_real_dataset` imports every selected mesh with the importer's per-model steps (ground
truth, R2N2-like renders, solid checks, ``shape.npz`` written last), splits by model with a fixed seed
(70/10/20 per category; held-out classes all test) and writes ``index.json`` with the licences.
"""

from __future__ import annotations

import time
import zlib
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import trimesh

from ifkd.data.categories import SYNSETS
from ifkd.data.format import read_index
from ifkd.data.shapenet import meshes, splits
from ifkd.data.shapenet.convert import (
    ImportSettings,
    _finish,
    _ground_truth,
    shape_rng,
)
from ifkd.data.shapenet.importer import prepare_output, run_import_jobs, summarise_import
from ifkd.engine import Workers
from ifkd.geometry.camera import draw_viewpoints, view_transform
from ifkd.io import InputError

SOURCE = "realdata"
DEFAULT_ROOT = Path(__file__).resolve().parents[3].parent / "shared" / "realdata"
"""Where the project keeps the licensed meshes (``PROVENANCE.md`` there): ``shared/realdata`` beside
the repository checkout (the meshes are not part of the package)."""
CAPOD_DIR = "capod"
FURNITURE_DIR = "furniture_cc0"
SPLIT_SEED = 0
"""The split is part of the dataset's definition: fixed, independent of the sampling ``seed``."""


@dataclass(frozen=True)
class CapodClass:
    rotation: str
    """signed axis permutation taking the class's files to +Y up, front +Z (see the module docstring)"""
    category: str
    """our category (one of the 13) or, for a class never trained on, the class's own name"""
    front: str
    """what faces +Z after the rotation (how the front was decided)"""

    @property
    def held_out(self) -> bool:
        return self.category not in SYNSETS


CAPOD_CLASSES: dict[str, CapodClass] = {
    # ShapeNet categories: up and front matched to make_shape(category, 0) by renders.
    "airplane": CapodClass("z,y,-x", "airplane", "nose (file: Y up, nose -X)"),
    "car": CapodClass("y,z,x", "car", "bonnet and grille (file: Z up, nose +X)"),
    "chair": CapodClass("x,z,-y", "chair", "seat edge (file: Z up, seat edge -Y)"),
    "desktop_computer": CapodClass("-y,z,-x", "display", "screen, keyboard in front (file: Z up, screen -X)"),
    "gun": CapodClass("-y,z,-x", "rifle", "muzzle; the class is revolvers (file: Z up, muzzle -X)"),
    # Held out (never trained on): upright as the object stands, front its face / head.
    "dog": CapodClass("x,z,-y", "dog", "head (file: Z up, head -Y)"),
    "dolphin": CapodClass("-y,z,-x", "dolphin", "beak, dorsal fin up (file: Z up, beak -X)"),
    "guitar": CapodClass("-y,x,z", "guitar", "strings, neck up (file: neck +X, strings +Z)"),
    "hand": CapodClass("-y,z,-x", "hand", "palm, fingers up (file: fingers +Z, palm -X)"),
    "horse": CapodClass("x,z,-y", "horse", "head (file: Z up, head -Y)"),
    "human": CapodClass("x,z,-y", "human", "face (file: Z up, face -Y)"),
    "piano": CapodClass("x,z,-y", "piano", "keyboard and stool (file: Z up, keys -Y)"),
    "spider": CapodClass("-y,z,-x", "spider", "head and fangs (file: Z up, head -X)"),
    "tree": CapodClass("-y,x,z", "tree", "none (file: trunk along -X; turned about Y it is the same)"),
    "vase": CapodClass("x,z,-y", "vase", "none (file: Z up; handles stay on +-X)"),
}
"""CAPOD class folder -> rotation, category, front. One place for the whole CAPOD mapping."""

CAPOD_MODEL_ROTATIONS: dict[str, str] = {f"airplane/m{n}": "-y,z,-x" for n in (43, 44, 45, 46)}
"""Models posed unlike the rest of their class (these four airliners lie rolled 90 degrees onto a wing,
wingspan along the file's Y): their own rotation, also checked by renders."""

FURNITURE_KITS: dict[str, dict[str, str]] = {
    "kenney-furniture-kit": {
        "prefix": "kenney",
        "rotation": "x,y,z",
        "licence": "CC0 1.0",
        "attribution": "Kenney Furniture Kit, by Kenney (kenney.nl), CC0",
    },
    "kaykit-furniture-kit": {
        "prefix": "kaykit",
        "rotation": "x,y,z",
        "licence": "CC0 1.0",
        "attribution": "KayKit Furniture Bits, by Kay Lousberg, CC0",
    },
}
"""Kit folder -> key prefix, rotation (both kits are Y-up glTF with the front already at +Z: seat
edges, doors, drawers, screens and speaker drivers face the azimuth-90 camera), licence."""

FURNITURE_KEYWORDS: tuple[tuple[str, str], ...] = (
    ("lamp", "lamp"),  # before "table": lamp_table is a lamp
    ("television", "display"),
    ("monitor", "display"),
    ("computerscreen", "display"),
    ("speaker", "loudspeaker"),
    ("sofa", "sofa"),
    ("couch", "sofa"),
    ("bench", "bench"),
    ("chair", "chair"),  # before "desk": chair_desk_a is a chair
    ("stool", "chair"),  # ShapeNet's chair synset holds stools
    ("cabinet", "cabinet"),  # before "table"/"drawer": cabinetBedDrawerTable is a nightstand cabinet
    ("bookcase", "cabinet"),
    ("wardrobe", "cabinet"),
    ("table", "table"),  # before "drawer": sideTableDrawers is a table with drawers
    ("desk", "table"),
    ("drawer", "cabinet"),
    ("shelf", "cabinet"),
)
"""Lower-case substring of the file name -> category; the first match wins."""

FURNITURE_EXCLUDED: dict[str, str] = {
    "shelf_a_big": "a wall shelf (a plank on brackets), not a cabinet",
    "shelf_a_small": "a wall shelf (a plank on brackets), not a cabinet",
    "shelf_b_big": "a wall shelf (a plank on brackets), not a cabinet",
    "shelf_b_small": "a wall shelf (a plank on brackets), not a cabinet",
    "loungeSofaOttoman": "an ottoman (a padded footstool), not a sofa",
}
"""File stems whose keyword match is wrong (seen in renders): skipped with this reason."""

LICENCES: dict[str, dict[str, str]] = {
    "capod": {
        "licence": "CC-BY 3.0",
        "citation": 'P. Papadakis, "The Canonically Posed 3D Objects Dataset", Eurographics Workshop on 3D '
        "Object Retrieval (3DOR), 2014",
        "origin": "github.com/trneedham/QuantizedGromovWasserstein data/CAPOD "
        "(ab2f85fc8a45092a22b0c14c32f690d50cac8283)",
    },
    **{
        kit["prefix"]: {
            "licence": kit["licence"],
            "citation": kit["attribution"],
            "origin": "github.com/matteocollina/3D-Room static/models "
            "(f63b53f4a10d2ad391c9ef0bdad317553477d64d)",
        }
        for kit in FURNITURE_KITS.values()
    },
}
"""Per source (the key prefix): licence and the attribution to keep with any weights trained on it."""

_AXES = {"x": 0, "y": 1, "z": 2}


def rotation_matrix(spec: str) -> np.ndarray:
    """(3, 3) float64 matrix R of a signed axis permutation (``v_new = R @ v_file``); InputError unless
    it is a proper rotation."""
    parts = [p.strip().lower() for p in spec.split(",")]
    R = np.zeros((3, 3))
    for i, part in enumerate(parts):
        axis = part.lstrip("+-")
        if len(parts) != 3 or axis not in _AXES or len(part) - len(axis) > 1:
            raise InputError(f"rotation {spec!r}: expected three signed axes such as 'x,z,-y'")
        R[i, _AXES[axis]] = -1.0 if part.startswith("-") else 1.0
    if not np.allclose(R @ R.T, np.eye(3)) or round(np.linalg.det(R)) != 1:
        raise InputError(f"rotation {spec!r} is not a proper rotation (each axis once, determinant +1)")
    return R


def rotate(mesh: trimesh.Trimesh, spec: str) -> trimesh.Trimesh:
    """A copy of mesh with ``v_new = R(spec) @ v`` (faces unchanged: a proper rotation keeps winding)."""
    out = mesh.copy()
    out.vertices = np.asarray(mesh.vertices) @ rotation_matrix(spec).T
    return out


def furniture_category(name: str) -> str | None:
    """Our category for a furniture file name (stem or file name), or None (skipped)."""
    stem = Path(name).stem
    if stem in FURNITURE_EXCLUDED:
        return None
    low = stem.lower()
    return next((cat for word, cat in FURNITURE_KEYWORDS if word in low), None)


@dataclass(frozen=True)
class RealModel:
    key: str
    """``<category>/<source>_<file stem>``, e.g. ``chair/capod_m25``, ``table/kenney_tableRound``"""
    path: str
    """relative to the realdata root"""
    category: str
    rotation: str
    source: str
    """capod | kenney | kaykit (a key of :data:`LICENCES`)"""
    held_out: bool


def list_real_models(realdata_root: str | Path) -> tuple[list[RealModel], list[dict]]:
    """(selected models sorted by key, skipped furniture pieces ``{"path", "reason"}``).

    InputError when a source folder is missing or holds a CAPOD class that is not in the table."""
    root = Path(realdata_root)
    capod, furniture = root / CAPOD_DIR, root / FURNITURE_DIR
    for folder in (capod, furniture):
        if not folder.is_dir():
            raise InputError(f"{folder}: folder not found (is {root} the realdata root?)")
    models: list[RealModel] = []
    for cls_dir in sorted(p for p in capod.iterdir() if p.is_dir()):
        if cls_dir.name not in CAPOD_CLASSES:
            raise InputError(f"{cls_dir}: CAPOD class {cls_dir.name!r} has no entry in CAPOD_CLASSES")
        cls = CAPOD_CLASSES[cls_dir.name]
        for f in meshes.find_mesh_files(cls_dir):
            rot = CAPOD_MODEL_ROTATIONS.get(f"{cls_dir.name}/{f.stem}", cls.rotation)
            models.append(
                RealModel(
                    f"{cls.category}/capod_{f.stem}",
                    str(f.relative_to(root)),
                    cls.category,
                    rot,
                    "capod",
                    cls.held_out,
                )
            )
    skipped: list[dict] = []
    for kit_dir in sorted(p for p in furniture.iterdir() if p.is_dir()):
        kit = FURNITURE_KITS.get(kit_dir.name)
        if kit is None:
            raise InputError(f"{kit_dir}: furniture kit {kit_dir.name!r} has no entry in FURNITURE_KITS")
        for f in meshes.find_mesh_files(kit_dir):
            rel = str(f.relative_to(root))
            cat = furniture_category(f.name)
            if cat is None:
                reason = FURNITURE_EXCLUDED.get(f.stem, "no category keyword in the name")
                skipped.append({"path": rel, "reason": reason})
                continue
            models.append(
                RealModel(f"{cat}/{kit['prefix']}_{f.stem}", rel, cat, kit["rotation"], kit["prefix"], False)
            )
    models.sort(key=lambda m: m.key)
    keys = [m.key for m in models]
    if len(set(keys)) != len(keys):
        raise InputError("two real meshes map to the same shape key")
    return models, skipped


def split_models(models: list[RealModel], seed: int = SPLIT_SEED) -> dict[str, str]:
    """{key: split}: per category a seeded 70/10/20 split of the sorted keys (each model in one split);
    held-out categories all test. Depends only on the keys and the seed (not on order or workers)."""
    table: dict[str, str] = {}
    for cat in sorted({m.category for m in models}):
        keys = sorted(m.key for m in models if m.category == cat)
        if any(m.held_out for m in models if m.category == cat):
            table.update({k: "test" for k in keys})
            continue
        table.update(splits.split_of(splits.random_split(keys, seed=[seed, zlib.crc32(cat.encode())])))
    return table


def import_real_model(out: Path, key: str, path: str, rotation: str, s: ImportSettings) -> dict:
    """One real mesh -> out/key, as the importer's ``import_mesh_file`` but rotated into our frame first:
    load, rotate (``rotation``), normalise (box centre, diagonal 1), ground truth, R2N2-like renders, the
    solid checks, ``shape.npz`` last. ``source_loc``/``source_scale`` are in the rotated frame
    (x_ours = (R x_file - loc) / scale) and ``source_rotation`` is R."""
    from ifkd.render.raycast import render

    R = rotation_matrix(rotation)
    mesh, loc, scale = meshes.normalise(rotate(meshes.load_mesh(path), rotation))
    record = _ground_truth(mesh, key, s)
    record.extra.update(source_loc=loc, source_scale=np.float64(scale), source_rotation=R)
    views = draw_viewpoints(shape_rng(s.seed + 1, key), s.views)
    images = [
        render(mesh, view_transform(v), s.image_size, supersample=s.supersample, filter_width=1.5).rgba
        for v in views
    ]
    return _finish(out, key, views, images, record)


def build_real_dataset(
    out,
    realdata_root,
    workers: int = 1,
    scheduler: str | None = None,
    views: int = 8,
    seed: int = 0,
    settings: ImportSettings | None = None,
    limit: int | None = None,
    only: list[str] | None = None,
    progress: bool | None = None,
) -> dict:
    """Every selected real mesh -> ``out`` (our format, resumable: a shape whose ``shape.npz`` exists is
    kept). ``seed`` seeds the points and views (the split is fixed: :data:`SPLIT_SEED`); ``only`` (keys)
    and ``limit`` (the first models by key) build a subset, e.g. in tests; the split is still that of
    the full list. A shape whose ground truth fails the solid checks is written
    but kept out of the splits (listed in ``degenerate``), as the importer does. Returns the summary:
    imported / existing / broken / degenerate / warnings, counts per category and split, seconds."""
    start = time.perf_counter()
    s = replace(settings or ImportSettings(), views=int(views), seed=int(seed), category=SOURCE)
    if views < 1:
        raise InputError(f"--views must be >= 1, got {views}")
    out = prepare_output(out, Workers(int(workers), scheduler))
    root = Path(realdata_root)
    models, skipped = list_real_models(root)
    split_of = split_models(models)
    if only is not None:
        unknown = sorted(set(only) - {m.key for m in models})
        if unknown:
            raise InputError(f"unknown real shape keys: {', '.join(unknown)}")
        models = [m for m in models if m.key in set(only)]
    chosen = models if limit is None else models[: max(0, int(limit))]
    jobs = [(import_real_model, str(out), m.key, m.path, (str(root / m.path), m.rotation, s)) for m in chosen]
    results = run_import_jobs(out, jobs, Workers(int(workers), scheduler), "build realdata", progress)
    return _summarise(out, results, chosen, split_of, skipped, s, start)


def _summarise(out: Path, results: list[tuple], chosen, split_of, skipped, s, start: float) -> dict:
    """The importer's index and summary (degenerate shapes out of the splits, an earlier index merged),
    with this dataset's own fields (licences, held-out classes, each model's file and rotation, the
    pieces skipped) and its counts per category and split."""
    by_key = {m.key: m for m in chosen}
    done = [r[0] for r in results if r[1] in ("imported", "existing")]
    summary = summarise_import(
        out,
        results,
        split_of.__getitem__,
        {m.category: SYNSETS.get(m.category, m.category) for m in chosen},
        s,
        SOURCE,
        start,
        views_per_shape=s.views,
        image_size=s.image_size,
        licences=LICENCES,
        held_out_categories=sorted({m.category for m in chosen if m.held_out}),
        split_seed=SPLIT_SEED,
        models={
            k: {"file": by_key[k].path, "rotation": by_key[k].rotation, "source": by_key[k].source}
            for k in done
        },
        skipped=skipped,
    )
    counts: dict[str, dict[str, int]] = {}
    for split, keys in read_index(out)["splits"].items():
        for key in keys:
            counts.setdefault(key.split("/")[0], dict.fromkeys(splits.SPLIT_NAMES, 0))[split] += 1
    return {**summary, "skipped": skipped, "counts": dict(sorted(counts.items()))}


AZIMUTHS = (0.0, 90.0, 180.0, 270.0)
"""Contact-sheet azimuths: the R2N2 camera at 90 looks at the front (+Z), at 0 from +X."""


def orientation_sheet(realdata_root: str | Path, path: str | Path, size: int = 96) -> Path:
    """PNG record of the orientations: per CAPOD class (its first model) and per furniture category (its
    first piece), the rotated mesh from R2N2 viewpoints (elevation 25) at :data:`AZIMUTHS`, next to
    ``make_shape(category, 0)`` for our categories (blank for held-out classes)."""
    from PIL import Image, ImageDraw

    from ifkd.data.synth.families import make_shape
    from ifkd.geometry.camera import Viewpoint
    from ifkd.render.raycast import render

    root = Path(realdata_root)
    models, _ = list_real_models(root)
    rows: list[tuple[str, RealModel]] = []
    for m in models:  # one per CAPOD class, then one per furniture category
        group = m.path.split("/")[1] if m.source == "capod" else m.category
        if m.source == "capod" and all(m.path.split("/")[1] != r[1].path.split("/")[1] for r in rows):
            rows.append((f"capod {group} -> {m.category}", m))
    for m in models:
        if m.source != "capod" and all(r[1].source == "capod" or r[1].category != m.category for r in rows):
            rows.append((f"{m.source} {m.key.split('/')[1].split('_', 1)[1]} -> {m.category}", m))
    label_w, top = 230, 20
    sheet = Image.new("RGB", (label_w + 8 * size + 10, top + size * len(rows)), "white")
    draw = ImageDraw.Draw(sheet)
    for j, az in enumerate(AZIMUTHS * 2):
        x = label_w + j * size + (10 if j >= 4 else 0)
        draw.text((x + 4, 4), f"{'real' if j < 4 else 'ours'} az {az:g}", fill="black")

    def tiles(mesh, x0: int, y0: int) -> None:
        for j, az in enumerate(AZIMUTHS):
            rgba = render(mesh, view_transform(Viewpoint(az, 25.0, 0.0, 0.75, 25.0)), size).rgba
            tile = Image.new("RGBA", (size, size), (235, 235, 245, 255))
            tile.alpha_composite(Image.fromarray(rgba, "RGBA"))
            sheet.paste(tile.convert("RGB"), (x0 + j * size, y0))

    for i, (label, m) in enumerate(rows):
        y = top + i * size
        draw.text((4, y + size // 2 - 6), label, fill="black")
        tiles(meshes.normalise(rotate(meshes.load_mesh(root / m.path), m.rotation))[0], label_w, y)
        if not m.held_out:
            tiles(make_shape(m.category, 0).to_mesh(), label_w + 4 * size + 10, y)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return Path(path)
