"""The bad-input corpus of tests/reliability: generators that write each case into a tmp folder.

Nothing binary is committed: every image, dataset damage and checkpoint below is made on demand, so
the corpus is readable code (what each case *is*) and costs milliseconds.
"""

from __future__ import annotations

import contextlib
import io
import json
import pickle
import re
import shutil
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ifkd.data.format import METADATA_FILE, RENDER_DIR, SHAPE_FILE
from ifkd.data.synth.generate import SynthSettings
from ifkd.geometry.voxels import pack_voxels
from ifkd.io import atomic_save_npz

# ----------------------------------------------------------------------------------- PNG by hand


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def png_bytes(width: int, height: int, bit_depth: int, color_type: int, rows: bytes | None = None) -> bytes:
    """A PNG written field by field (Pillow cannot write 16-bit RGBA, nor lie about its size).

    ``rows``: the raw, unfiltered scanline bytes (filter byte 0 is added per row); None -> an IDAT of
    one empty row, so the file claims ``width x height`` but holds almost nothing (a bomb header).
    """
    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    if rows is None:
        payload = zlib.compress(b"\x00")
    else:
        stride = len(rows) // height
        scanlines = (b"\x00" + rows[i * stride : (i + 1) * stride] for i in range(height))
        payload = zlib.compress(b"".join(scanlines))
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", payload) + _chunk(b"IEND", b"")


def disc_rgba(size: int = 48) -> np.ndarray:
    """(size, size, 4) uint8: a red disc on a transparent background (an object-like input)."""
    yy, xx = np.mgrid[:size, :size]
    inside = (xx - size / 2 + 0.5) ** 2 + (yy - size / 2 + 0.5) ** 2 < (size / 3) ** 2
    rgba = np.zeros((size, size, 4), np.uint8)
    rgba[inside] = (200, 30, 30, 255)
    return rgba


def _save(path: Path, image: Image.Image, **kwargs) -> None:
    image.save(path, **kwargs)


def _truncated_png(path: Path) -> None:
    buf = io.BytesIO()
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(noise).save(buf, format="PNG")
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])


def _rgba16_png(path: Path) -> None:
    rgba = disc_rgba().astype(">u2") * 257  # 8-bit -> 16-bit, big-endian as PNG stores it
    path.write_bytes(png_bytes(rgba.shape[1], rgba.shape[0], 16, 6, rgba.tobytes()))


def _palette_png(path: Path) -> None:
    img = Image.fromarray(disc_rgba()[..., :3]).convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
    background = int(np.asarray(img)[0, 0])
    _save(path, img, transparency=background)  # tRNS: the background palette entry is transparent


def exif_jpeg(path: Path, orientation: int | None) -> None:
    """A 32x16 JPEG stored sideways: left half red, right half blue; EXIF orientation 6 (or none)."""
    arr = np.zeros((16, 32, 3), np.uint8)
    arr[:, :16] = (255, 0, 0)
    arr[:, 16:] = (0, 0, 255)
    img = Image.fromarray(arr)
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation  # 6: the stored image must be turned 90 deg clockwise for display
    _save(path, img, format="JPEG", quality=95, exif=exif.tobytes())


def _bomb_solid(path: Path, side: int = 4100) -> None:
    """A real, fully decodable 1-bit PNG of side^2 pixels (> MAX_IMAGE_PIXELS) that zips to ~2 kB."""
    path.write_bytes(png_bytes(side, side, 1, 0, bytes(((side + 7) // 8) * side)))


BAD_IMAGES: dict[str, tuple[Callable[[Path], None], str]] = {
    "zero_byte.png": (lambda p: p.write_bytes(b""), "empty file"),
    "truncated.png": (_truncated_png, "truncated"),
    "text.png": (lambda p: p.write_text("this is not a picture\n"), "not an image"),
    "bomb_header.png": (lambda p: p.write_bytes(png_bytes(5000, 5000, 8, 2)), "exceeds the limit"),
    "bomb_huge.png": (lambda p: p.write_bytes(png_bytes(100_000, 100_000, 8, 2)), "exceeds the limit"),
    "bomb_solid.png": (_bomb_solid, "exceeds the limit"),
}
"""file name -> (writer, regex the one-line error must match)."""

ODD_IMAGES: dict[str, Callable[[Path], None]] = {
    "rgba16.png": _rgba16_png,
    "gray16.png": lambda p: _save(p, Image.fromarray(disc_rgba()[..., 0].astype(np.uint16) * 257)),
    "palette.png": _palette_png,
    "gray.png": lambda p: _save(p, Image.fromarray(disc_rgba()).convert("L")),
    "gray_alpha.png": lambda p: _save(p, Image.fromarray(disc_rgba()).convert("LA")),
    "cmyk.jpg": lambda p: _save(p, Image.fromarray(disc_rgba()[..., :3]).convert("CMYK"), quality=95),
    "exif_rotated.jpg": lambda p: exif_jpeg(p, 6),
    "one_pixel.png": lambda p: _save(p, Image.new("RGB", (1, 1), (90, 90, 90))),
}
"""Valid-but-odd images that must load and reconstruct."""


def write_images(folder: Path, cases: dict) -> dict[str, Path]:
    """Write every case of ``cases`` (BAD_IMAGES or ODD_IMAGES) into ``folder``; name -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, case in cases.items():
        writer = case[0] if isinstance(case, tuple) else case
        writer(folder / name)
        out[name] = folder / name
    return out


def write_good_image(path: Path) -> Path:
    Image.fromarray(disc_rgba(), mode="RGBA").save(path)
    return path


# ----------------------------------------------------------------------------------- datasets


def first_key(root: Path, split: str = "train") -> str:
    return json.loads((root / "index.json").read_text())["splits"][split][0]


def _rewrite_shape(root: Path, key: str, change: Callable[[dict[str, np.ndarray]], None]) -> Path:
    path = root / key / SHAPE_FILE
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    change(arrays)
    atomic_save_npz(path, **arrays)
    return path


def _set(arrays: dict[str, np.ndarray], name: str, row: int, value: float) -> None:
    arrays[name] = arrays[name].copy()
    arrays[name][row] = value


def _missing_index(root: Path, split: str) -> Path:
    (root / "index.json").unlink()
    return root / "index.json"


def _truncated_shape(root: Path, split: str) -> Path:
    path = root / first_key(root, split) / SHAPE_FILE
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _nan_points(root: Path, split: str) -> Path:
    return _rewrite_shape(root, first_key(root, split), lambda a: _set(a, "points", 3, np.nan))


def _inf_surface(root: Path, split: str) -> Path:
    return _rewrite_shape(root, first_key(root, split), lambda a: _set(a, "surface_points", 0, np.inf))


def _wrong_voxels(root: Path, split: str) -> Path:
    def change(arrays: dict[str, np.ndarray]) -> None:
        arrays["voxels_32"] = pack_voxels(np.ones((16, 16, 16), bool))  # a 16^3 grid under the 32^3 name

    return _rewrite_shape(root, first_key(root, split), change)


def _bad_metadata(root: Path, split: str) -> Path:
    path = root / first_key(root, split) / RENDER_DIR / METADATA_FILE
    lines = path.read_text().splitlines()
    lines[1] = " ".join(lines[1].split()[:4])  # 4 numbers where R2N2 has 5
    path.write_text("\n".join(lines) + "\n")
    return path


def _escaping_key(root: Path, split: str) -> Path:
    index = json.loads((root / "index.json").read_text())
    index["splits"][split].append("../../x")
    (root / "index.json").write_text(json.dumps(index))
    return root / "index.json"


BAD_DATASETS: dict[str, tuple[Callable[[Path, str], Path], str]] = {
    "missing_index": (_missing_index, "missing dataset index"),
    "truncated_shape": (_truncated_shape, "unreadable or truncated npz"),
    "nan_points": (_nan_points, "'points' has 1 rows with NaN/Inf"),
    "inf_surface_points": (_inf_surface, "'surface_points' has 1 rows with NaN/Inf"),
    "wrong_voxel_shape": (_wrong_voxels, "voxels_32"),
    "metadata_columns": (_bad_metadata, "line 2.*expected 5 numbers"),
    "escaping_key": (_escaping_key, r"'\.\./\.\./x' is not of the form"),
}
"""case -> (damage(root, split) -> the damaged file, regex of the one-line error)."""


def damaged_copy(source: Path, dest: Path, case: str, split: str = "train") -> Path:
    """Copy the dataset ``source`` to ``dest`` and apply one damage; returns the damaged file."""
    shutil.copytree(source, dest)
    return BAD_DATASETS[case][0](dest, split)


# ----------------------------------------------------------------------------------- checkpoints


class MarkerPayload:
    """Unpickling this object creates ``marker`` -- proof that someone ran pickle on our file."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def pickle_bytes(marker: Path) -> bytes:
    return pickle.dumps({"state_dict": MarkerPayload(marker)}, protocol=4)


def truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


# ----------------------------------------------------------------------------------- running the CLI

SMALL = SynthSettings(per_category=3, views=4, seed=5, image_size=32, categories=("chair", "table"))
"""The tests' dataset: 2 categories x 3 shapes (train/val/test 1 each) x 4 views at 32 px."""

TINY_TRAIN = ["--preset", "tiny", "--set", "train.val_shapes=0", "--device", "cpu"]
"""Arguments every tiny training run in these tests shares."""

STUDENT = ["train", "student", "--method", "ifkd-nokd"]
"""The camera-free student without distillation: trains without a teacher run."""


@dataclass
class CliResult:
    rc: int
    out: str
    err: str


def run_cli(argv: list[str]) -> CliResult:
    """``ifkd.cli.main(argv)`` in this process, with stdout/stderr captured."""
    from ifkd.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main([str(a) for a in argv])
    return CliResult(rc, out.getvalue(), err.getvalue())


def assert_one_line_error(res: CliResult, path: Path | str, pattern: str) -> str:
    """Exit status 2, no traceback, and an ``ifkd: error:`` line naming ``path`` and matching ``pattern``."""
    assert res.rc == 2, (res.rc, res.err[-2000:])
    assert "Traceback" not in res.err and "Traceback" not in res.out, res.err
    lines = [ln for ln in res.err.splitlines() if ln.startswith("ifkd: error:")]
    assert len(lines) == 1, res.err
    assert str(path) in lines[0], (str(path), lines[0])
    assert re.search(pattern, lines[0]), (pattern, lines[0])
    return lines[0]
