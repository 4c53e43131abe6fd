"""The real-shape dataset (ifkd.data.realsets): the CAPOD/furniture tables, the split, a small build, and an
automatic up-axis check of every CAPOD class's rotation.

Up-axis check (why it is robust): each class states two physical facts seen in its renders, checked on
the class mean of 12 models (normalised surface samples, so one odd pose cannot flip it):
  * which mean bounding-box extents exceed which (by >= 0.05 of the diagonal): "y>x" for a standing
    human, "z>x" for a car's length; a rotation that lays the object on its side swaps y with x or z;
  * whether the object rests on a base: the x-z footprint of its lowest band of height ("foot") versus
    its highest band ("crown"), as a share of the whole footprint: legs, wheels, paws and stands make
    the bottom band wide and the top narrow (base); a revolver's barrel above its grip and a vase's
    mouth above its foot make the top wider (top). Turning the object upside down swaps the two.
The meta-test applies each of the five wrong up axes (90/180 degrees about x, 90 about z) after the
table's rotation and asserts that every one breaks at least one fact, so the facts do pin the up axis.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import trimesh

from ifkd.data import realsets
from ifkd.data.format import check_shape, read_index
from ifkd.data.shapenet.convert import ImportSettings
from ifkd.data.shapenet.meshes import load_mesh
from ifkd.data.shapenet.occupancy import INSIDE_TEST_VERSION
from ifkd.io import InputError

ROOT = realsets.DEFAULT_ROOT
pytestmark = pytest.mark.skipif(not (ROOT / "capod").is_dir(), reason="realdata not present")

FACTS: dict[str, tuple[tuple[str, ...], str, float]] = {
    # class: (extent relations, "base"|"top", band of height)
    "airplane": (("z>y", "x>y"), "base", 0.1),  # wings and wheels low, the fin tip alone at the top
    "car": (("z>x", "x>y"), "base", 0.2),  # wheels and sills span the footprint, the roof does not
    "chair": (("y>x", "y>z"), "base", 0.1),  # four legs vs the top of the backrest
    "desktop_computer": (("z>x", "x>y"), "base", 0.1),  # desk-level case and keyboard vs monitor top
    "dog": (("y>x", "z>x"), "base", 0.03),  # paws at four corners vs an ear tip (y ~ z: thin band)
    "dolphin": (("z>y", "y>x"), "base", 0.1),  # flippers and flukes low, the dorsal fin's tip on top
    "guitar": (("y>x", "x>z"), "base", 0.1),  # stands on its body, headstock up
    "gun": (("z>y", "y>x"), "top", 0.1),  # revolver: barrel above the grip
    "hand": (("y>x", "x>z"), "base", 0.1),  # wrist vs fingertips
    "horse": (("z>y", "y>x"), "base", 0.1),  # four hooves vs head/back
    "human": (("y>x", "x>z"), "base", 0.1),  # two feet vs the head
    "piano": (("z>x", "x>y"), "base", 0.1),  # legs and stool vs the lid
    "spider": (("z>y", "x>y"), "base", 0.1),  # eight legs vs the body's top
    "tree": (("y>x", "y>z"), "base", 0.3),  # a conifer: crown widest low (the bottom 10% is trunk only)
    "vase": (("x>y", "x>z"), "top", 0.1),  # mouth and handles above a narrower foot
}
"""Per CAPOD class: facts of the upright object (see the module docstring)."""

WRONG_UPS = {
    "x+90": np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]]),
    "x-90": np.array([[1.0, 0, 0], [0, 0, 1], [0, -1, 0]]),
    "x180": np.diag([1.0, -1.0, -1.0]),
    "z+90": np.array([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]]),
    "z-90": np.array([[0.0, 1, 0], [-1, 0, 0], [0, 0, 1]]),
}
MARGIN, RATIO = 0.05, 1.25
SMALL = ImportSettings(n_points=1000, surface_points=2048, voxel_resolutions=(32,), views=2, iou_points=2000)


def _descriptor(points: np.ndarray, band: float) -> np.ndarray:
    """(extent x, y, z as shares of the diagonal, foot, crown): foot/crown = x-z box area of the lowest /
    highest ``band`` of the height over the whole x-z box area."""
    lo, hi = points.min(0), points.max(0)
    t = (points[:, 1] - lo[1]) / (hi[1] - lo[1])
    whole = np.ptp(points[:, 0]) * np.ptp(points[:, 2])

    def footprint(q: np.ndarray) -> float:
        return float(np.ptp(q[:, 0]) * np.ptp(q[:, 2]) / whole) if len(q) > 1 else 0.0

    return np.array(
        [*(hi - lo) / np.linalg.norm(hi - lo), footprint(points[t < band]), footprint(points[t > 1 - band])]
    )


def _violations(desc: np.ndarray, facts: tuple[tuple[str, ...], str, float]) -> list[str]:
    relations, rest, _ = facts
    axis = {"x": 0, "y": 1, "z": 2}
    bad = [r for r in relations if not desc[axis[r[0]]] >= desc[axis[r[2]]] + MARGIN]
    foot, crown = desc[3], desc[4]
    if rest == "base" and not foot >= RATIO * crown or rest == "top" and not crown >= RATIO * foot:
        bad.append(f"{rest} (foot {foot:.2f}, crown {crown:.2f})")
    return bad


@pytest.fixture(scope="module")
def capod_samples() -> dict[str, list[np.ndarray]]:
    """Per CAPOD class: 3000 surface samples of each model after the table's rotation (seeded)."""
    models, _ = realsets.list_real_models(ROOT)
    out: dict[str, list[np.ndarray]] = {}
    for m in models:
        if m.source == "capod":
            mesh = realsets.rotate(load_mesh(ROOT / m.path), m.rotation)
            out.setdefault(Path(m.path).parent.name, []).append(
                trimesh.sample.sample_surface(mesh, 3000, seed=0)[0]
            )
    return out


def _class_descriptor(samples: list[np.ndarray], band: float, Q: np.ndarray | None = None) -> np.ndarray:
    return np.mean([_descriptor(p if Q is None else p @ Q.T, band) for p in samples], axis=0)


def test_table_covers_every_capod_class_folder():
    folders = sorted(p.name for p in (ROOT / "capod").iterdir() if p.is_dir())
    assert folders == sorted(realsets.CAPOD_CLASSES) == sorted(FACTS)
    mapped = {k: c.category for k, c in realsets.CAPOD_CLASSES.items() if not c.held_out}
    assert mapped == {
        "airplane": "airplane",
        "car": "car",
        "chair": "chair",
        "gun": "rifle",
        "desktop_computer": "display",
    }
    held = {k: c.category for k, c in realsets.CAPOD_CLASSES.items() if c.held_out}
    assert held == {k: k for k in "human dolphin tree vase hand dog guitar piano spider horse".split()}
    for key in realsets.CAPOD_MODEL_ROTATIONS:
        assert (ROOT / "capod" / f"{key}.obj").is_file()


def test_rotations_are_proper_rotations():
    specs = [c.rotation for c in realsets.CAPOD_CLASSES.values()]
    specs += list(realsets.CAPOD_MODEL_ROTATIONS.values())
    specs += [k["rotation"] for k in realsets.FURNITURE_KITS.values()]
    for spec in specs:
        R = realsets.rotation_matrix(spec)
        assert np.allclose(R @ R.T, np.eye(3)) and np.isclose(np.linalg.det(R), 1.0), spec
    assert np.array_equal(realsets.rotation_matrix("x,z,-y") @ [0, 0, 1], [0, 1, 0])  # Z-up file -> Y up
    for bad in ("x,y,-z", "x,x,z", "x,y", "a,b,c", "x,--y,z"):
        with pytest.raises(InputError):
            realsets.rotation_matrix(bad)


@pytest.mark.parametrize("cls", sorted(FACTS))
def test_up_axis_facts_hold_after_rotation(capod_samples, cls):
    facts = FACTS[cls]
    desc = _class_descriptor(capod_samples[cls], facts[2])
    assert _violations(desc, facts) == [], f"{cls}: {np.round(desc, 2)}"


@pytest.mark.parametrize("cls", sorted(FACTS))
def test_every_wrong_up_axis_breaks_a_fact(capod_samples, cls):
    facts = FACTS[cls]
    for name, Q in WRONG_UPS.items():
        desc = _class_descriptor(capod_samples[cls], facts[2], Q)
        assert _violations(desc, facts), f"{cls} turned {name} still passes: {np.round(desc, 2)}"


def test_furniture_mapping():
    assert realsets.furniture_category("lamp_table.glb") == "lamp"
    assert realsets.furniture_category("chair_desk_a") == "chair"
    assert realsets.furniture_category("cabinetBedDrawerTable") == "cabinet"
    assert realsets.furniture_category("sideTableDrawers") == "table"
    assert realsets.furniture_category("televisionVintage") == "display"
    assert realsets.furniture_category("speakerSmall") == "loudspeaker"
    assert realsets.furniture_category("couch_pillows") == "sofa"
    assert realsets.furniture_category("benchCushionLow") == "bench"
    assert realsets.furniture_category("bedDouble") is None
    assert realsets.furniture_category("shelf_a_big") is None  # excluded: a wall shelf
    models, skipped = realsets.list_real_models(ROOT)
    furniture = [m for m in models if m.source != "capod"]
    n_files = sum(1 for _ in (ROOT / "furniture_cc0").rglob("*.glb"))
    assert len(furniture) + len(skipped) == n_files
    assert all(s["reason"] for s in skipped)
    assert {m.category for m in furniture} <= set(realsets.SYNSETS)
    assert len([m for m in models if m.source == "capod"]) == 180


def test_split_is_deterministic_and_by_model():
    models, _ = realsets.list_real_models(ROOT)
    a = realsets.split_models(models)
    b = realsets.split_models(list(reversed(models)))  # order does not matter
    assert a == b and set(a) == {m.key for m in models}  # every model in exactly one split
    assert set(a.values()) == {"train", "val", "test"}
    for m in models:
        if m.held_out:
            assert a[m.key] == "test"
    chairs = [m.key for m in models if m.category == "chair"]
    counts = {s: sum(a[k] == s for k in chairs) for s in ("train", "val", "test")}
    assert counts == {"train": round(0.7 * len(chairs)), "val": round(0.1 * len(chairs)), "test": 7}
    assert realsets.split_models(models, seed=1) != a  # the seed is what fixes it


def test_small_build_writes_a_valid_dataset(tmp_path):
    only = ["chair/kenney_chair", "rifle/capod_m158", "vase/capod_m64"]
    out = tmp_path / "ds"
    summary = realsets.build_real_dataset(out, ROOT, views=2, settings=SMALL, only=only, progress=False)
    assert sorted(summary["imported"]) == sorted(only) and not summary["broken"]
    index = read_index(out)
    assert index["source"] == "realdata" and index["inside_test_version"] == INSIDE_TEST_VERSION
    assert "Papadakis" in index["licences"]["capod"]["citation"] and index["licences"]["kenney"]["licence"]
    assert index["categories"] == {"chair": "03001627", "rifle": "04090263", "vase": "vase"}
    assert index["held_out_categories"] == ["vase"] and index["views_per_shape"] == 2
    degenerate = {d["key"] for d in summary["degenerate"]}
    listed = {k for keys in index["splits"].values() for k in keys}
    assert listed == set(only) - degenerate and set(index["degenerate"]) == degenerate
    split = realsets.split_models(realsets.list_real_models(ROOT)[0])
    for name, keys in index["splits"].items():
        assert all(split[k] == name for k in keys)
    for key in listed:
        check_shape(out, key)
    again = realsets.build_real_dataset(out, ROOT, views=2, settings=SMALL, only=only[:1], progress=False)
    assert again["existing"] == only[:1] and not again["imported"]  # resumable
    assert {k for keys in read_index(out)["splits"].values() for k in keys} == listed  # merged, not lost
