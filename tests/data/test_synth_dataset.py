"""`ifkd data synth`: silhouettes agree with the R2N2 camera math, determinism, resumability, CLI."""

import numpy as np
from scipy import ndimage

from ifkd.cli import main
from ifkd.data.format import RENDER_DIR, SHAPE_FILE, load_image, read_index, read_shape, read_views
from ifkd.data.synth.generate import SynthSettings, generate_dataset
from ifkd.geometry.camera import project_to_pixels, view_transform


def test_silhouettes_agree_with_r2n2_projection(tiny_dataset):
    """>= 98% of GT surface points project onto alpha > 0, and they cover >= 90% of the mask."""
    index = read_index(tiny_dataset)
    worst_in, worst_cover = 1.0, 1.0
    for key in sum(index["splits"].values(), []):
        folder = tiny_dataset / key
        gt = read_shape(folder / SHAPE_FILE)
        names, views = read_views(folder / RENDER_DIR)
        for name, view in zip(names, views):
            alpha = load_image(folder / RENDER_DIR / name)[..., 3] > 0
            h, w = alpha.shape
            pix, depth = project_to_pixels(gt.surface_points, view_transform(view), w, h)
            assert np.all(depth > 0)
            cols, rows = np.floor(pix[:, 0]).astype(int), np.floor(pix[:, 1]).astype(int)
            ok = (cols >= 0) & (cols < w) & (rows >= 0) & (rows < h)
            inside = np.zeros(len(pix), bool)
            inside[ok] = alpha[rows[ok], cols[ok]]
            hit = np.zeros_like(alpha)
            hit[rows[ok], cols[ok]] = True
            covered = ndimage.binary_dilation(hit, iterations=1)
            worst_in = min(worst_in, inside.mean())
            worst_cover = min(worst_cover, (covered & alpha).sum() / alpha.sum())
    assert worst_in >= 0.98, worst_in
    assert worst_cover >= 0.90, worst_cover


def test_mirrored_camera_would_fail_the_silhouette_check(tiny_dataset):
    """The check has teeth: flipping the image horizontally breaks the agreement for most shapes."""
    index = read_index(tiny_dataset)
    key = index["splits"]["train"][4]  # a chair or similar asymmetric view
    folder = tiny_dataset / key
    gt = read_shape(folder / SHAPE_FILE)
    names, views = read_views(folder / RENDER_DIR)
    fractions = []
    for name, view in zip(names, views):
        alpha = load_image(folder / RENDER_DIR / name)[..., 3][:, ::-1] > 0
        h, w = alpha.shape
        pix, _ = project_to_pixels(gt.surface_points, view_transform(view), w, h)
        c, r = np.clip(pix[:, 0].astype(int), 0, w - 1), np.clip(pix[:, 1].astype(int), 0, h - 1)
        fractions.append(alpha[r, c].mean())
    assert min(fractions) < 0.95


def test_generation_is_byte_identical_and_resumable(tmp_path):
    s = SynthSettings(per_category=2, views=2, seed=5, image_size=32, categories=("chair", "lamp"))
    a, b = tmp_path / "a", tmp_path / "b"
    generate_dataset(a, s)
    # b: simulate a crash after one shape (its metadata present, shape.npz missing) then resume
    generate_dataset(b, s)
    (b / "lamp/0001" / SHAPE_FILE).unlink()
    (b / "index.json").unlink()
    generate_dataset(b, s)
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert files_a == files_b
    for rel in files_a:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel


def test_viewpoints_follow_r2n2_ranges(tiny_dataset):
    index = read_index(tiny_dataset)
    for key in index["splits"]["train"]:
        _, views = read_views(tiny_dataset / key / RENDER_DIR)
        for v in views:
            assert 0 <= v.azimuth < 360 and 25 <= v.elevation <= 30 and v.in_plane == 0
            assert 0.65 <= v.distance_ratio <= 0.9 and v.fov == 25


def test_cli_synth_info_show(tmp_path, capsys):
    out = tmp_path / "ds"
    assert (
        main(
            [
                "data",
                "synth",
                "--out",
                str(out),
                "--per-category",
                "1",
                "--views",
                "2",
                "--categories",
                "table",
                "--image-size",
                "48",
            ]
        )
        == 0
    )
    assert main(["data", "info", str(out), "--json"]) == 0
    assert '"table"' in capsys.readouterr().out
    sheet = tmp_path / "sheet.png"
    assert main(["data", "show", str(out), "table/0000", "--out", str(sheet)]) == 0
    assert sheet.stat().st_size > 1000
    assert main(["data", "synth", "--out", str(out), "--categories", "teapot"]) == 2
    assert main(["data", "info", str(tmp_path / "nowhere")]) == 2


def test_rerun_with_other_settings_is_refused(tmp_path, capsys):
    """A folder is never completed with other settings (mixed view counts and sizes under one index)."""
    from ifkd.cli import main

    out = tmp_path / "ds"
    base = ["data", "synth", "--out", str(out), "--per-category", "1", "--categories", "chair"]
    assert main([*base, "--views", "1", "--image-size", "32"]) == 0
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    for extra in (["--views", "2", "--image-size", "32"], ["--views", "1", "--image-size", "48"]):
        assert main([*base, *extra]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "holds a dataset made with" in err[0] and "nothing was written" in err[0]
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
    assert main([*base, "--views", "1", "--image-size", "32"]) == 0  # the same settings complete it
