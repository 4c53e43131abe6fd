"""Training augmentations (background, colour jitter, framing jitter) and the procedural + real training mix:
determinism per (seed, epoch, index), the paper preset untouched, the framing's geometry, and a resumed run.
"""

from __future__ import annotations

from dataclasses import fields, replace
from pathlib import Path

import numpy as np
import pytest
import torch

from ifkd.config import DataConfig, get_preset
from ifkd.data.format import RENDER_DIR, load_image, shape_dir
from ifkd.data.loader import (
    IDENTITY_FRAMING,
    Augmentation,
    augment_image,
    augmentations_on,
    draw_augmentation,
    framed_for_model,
    image_to_tensor,
    make_dataset,
    premultiplied,
    reframe,
)
from ifkd.data.mix import MixedDataset, make_training_set
from ifkd.data.synth.generate import SynthSettings, generate_dataset
from ifkd.geometry.camera import fixed_camera_matrix, project
from ifkd.models.student import StudentCode, pixel_aligned_features

AUG_FIELDS = [f.name for f in fields(DataConfig) if f.name.startswith("aug_")]
JITTERED = DataConfig(
    image_size=32,
    points_per_shape=64,
    aug_background_white=0.3,
    aug_background_colour=0.3,
    aug_brightness=0.2,
    aug_contrast=0.2,
    aug_saturation=0.2,
    aug_scale=0.2,
    aug_shift=0.1,
)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def second_dataset(tmp_path_factory) -> Path:
    """A small second synth dataset standing in for the real one (2 categories, 2 views)."""
    root = tmp_path_factory.mktemp("second_dataset")
    settings = SynthSettings(per_category=3, views=2, seed=5, image_size=64, categories=("chair", "lamp"))
    generate_dataset(root, settings, workers=1, progress=False)
    return root


def same_items(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ----------------------------------------------------------------------------------- presets
def test_paper_preset_is_unaugmented_and_its_items_are_unchanged(tiny_dataset):
    paper, cpu, tiny = (get_preset(n).data for n in ("paper", "cpu", "tiny"))
    assert AUG_FIELDS and all(getattr(paper, f) == 0 for f in AUG_FIELDS) and not augmentations_on(paper)
    assert not augmentations_on(tiny) and augmentations_on(cpu)
    assert paper.extra_roots == () and paper.source_weights == ()
    data = replace(paper, points_per_shape=256)
    train = make_dataset(tiny_dataset, "train", data, seed=4, augment=True, with_voxels=False)
    plain = make_dataset(tiny_dataset, "train", data, seed=4, with_voxels=False)
    assert not train.augment
    for epoch in (0, 2):
        train.set_epoch(epoch)
        plain.set_epoch(epoch)
        for i in (0, 7, len(plain) - 1):
            item = train[i]
            assert same_items(item, plain[i])
            assert torch.equal(item["framing"], torch.tensor(IDENTITY_FRAMING))
            # the image is exactly the inference input, as before augmentations existed
            key, view = plain.items[i]
            rgba = load_image(shape_dir(plain.root, key) / RENDER_DIR / plain.views[key][0][view])
            ref = (image_to_tensor(rgba, data.image_size, data.background) * 255).round() / 255
            assert torch.equal(item["image"], ref)


def test_augmentation_is_deterministic_per_seed_epoch_index_and_leaves_the_points(tiny_dataset):
    def ds(seed: int = 0):
        return make_dataset(tiny_dataset, "train", JITTERED, seed=seed, augment=True, with_voxels=False)

    a, b = ds(), ds()
    plain = make_dataset(tiny_dataset, "train", JITTERED, seed=0, with_voxels=False)
    assert a.augment and not plain.augment
    first = [a[i] for i in range(6)]
    assert all(same_items(first[i], b[i]) for i in range(6))  # another instance, another order
    assert all(same_items(first[i], a[i]) for i in reversed(range(6)))
    assert all(torch.equal(first[i]["points"], plain[i]["points"]) for i in range(6))  # own RNG stream
    framings = torch.stack([it["framing"] for it in first])
    assert len({tuple(f.tolist()) for f in framings}) == 6
    assert (framings[:, 0] - 1).abs().max() <= 0.2 + 1e-6 and framings[:, 1:].abs().max() <= 0.1 + 1e-6
    a.set_epoch(1)
    assert not torch.equal(a[0]["framing"], first[0]["framing"])
    assert not torch.equal(ds(seed=1)[0]["framing"], first[0]["framing"])
    for it in first:
        assert (
            it["image"].shape == (3, 32, 32)
            and 0 <= float(it["image"].min()) <= float(it["image"].max()) <= 1
        )


def test_background_and_jitter_draws():
    cfg = replace(JITTERED, aug_background_white=0.5, aug_background_colour=0.25, background=0.5)
    draws = [draw_augmentation(cfg, np.random.default_rng([0, 0, i, 1])) for i in range(2000)]
    white = np.mean([d.background == (1.0, 1.0, 1.0) for d in draws])
    grey = np.mean([d.background == (0.5, 0.5, 0.5) for d in draws])
    assert white == pytest.approx(0.5, abs=0.04) and grey == pytest.approx(0.25, abs=0.04)
    for name, bound in [("brightness", 0.2), ("contrast", 0.2), ("saturation", 0.2), ("scale", 0.2)]:
        values = np.array([getattr(d, name) for d in draws])
        assert values.min() >= 1 - bound and values.max() <= 1 + bound and values.std() > bound / 3
    # all off: the identity, whatever the generator
    off = draw_augmentation(DataConfig(), np.random.default_rng(3))
    assert off == Augmentation((1.0, 1.0, 1.0)) and torch.equal(off.framing, torch.tensor(IDENTITY_FRAMING))


# ----------------------------------------------------------------------------------- framing geometry
def _dot_image(size: int, uv: np.ndarray, radius: float = 1.5) -> np.ndarray:
    """A transparent RGBA image with an opaque red dot (anti-aliased disc) centred at normalised ``uv``."""
    px = (uv + 1.0) * 0.5 * size  # continuous pixel coordinates (pixel i covers [i, i + 1))
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    cover = np.clip(radius + 0.5 - np.hypot(xx - px[0], yy - px[1]), 0.0, 1.0)
    rgba = np.zeros((size, size, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[..., 3] = np.round(cover * 255).astype(np.uint8)
    return rgba


def _centroid(weight: torch.Tensor) -> np.ndarray:
    """The weighted centre of a (H, W) map in normalised [-1, 1] coordinates (u right, v down)."""
    h, w = weight.shape
    ys, xs = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing="ij")
    total = weight.sum()
    px = np.array([float((weight * xs).sum() / total), float((weight * ys).sum() / total)])
    return px / np.array([w, h]) * 2.0 - 1.0


@pytest.mark.parametrize("scale, dx, dy", [(1.0, 0.0, 0.0), (1.2, 0.1, -0.06), (0.8, -0.1, 0.08)])
def test_framing_keeps_each_point_on_its_image_content(scale, dx, dy):
    """A dot drawn where M_c projects a point sits at s u + d after reframing, and the student's projection
    with ``framing`` samples the dot there, while the unframed projection misses it."""
    size = 64
    p_cam = torch.tensor([[[0.12, -0.08, 1.4]]])  # camera frame, in front of M_c
    uv = project(p_cam.numpy()[0], None, fixed_camera_matrix())[0][0]
    rgb, alpha = premultiplied(_dot_image(size, uv), size)
    premul = torch.from_numpy(np.concatenate([rgb, alpha], -1).transpose(2, 0, 1).copy())
    aug = Augmentation((1.0, 1.0, 1.0), scale=scale, dx=dx, dy=dy)
    image = augment_image(premul, aug)  # red dot on white
    redness = 1.0 - image[1]  # 0 on white, 1 on the red dot
    expected = scale * uv + np.array([dx, dy])
    assert np.abs(_centroid(redness) - expected).max() < 0.25 / size  # a quarter pixel
    code = StudentCode(image[None], None)
    framing = aug.framing[None]
    at_point = pixel_aligned_features(
        code.features, p_cam, torch.as_tensor(fixed_camera_matrix()).float(), framing
    )
    assert float(at_point[0, 0, 1]) < 0.2  # green ~ 0: on the red dot
    if (scale, dx, dy) != (1.0, 0.0, 0.0):
        unframed = pixel_aligned_features(
            code.features, p_cam, torch.as_tensor(fixed_camera_matrix()).float()
        )
        assert float(unframed[0, 0, 1]) > 0.8  # the identity projection lands on the white background


def test_methods_that_project_apply_the_batch_framing(monkeypatch):
    """IFKDStudent and CameraSVR pass ``batch['framing']`` to the projection in training and validation;
    ``decode`` without it (inference) projects unframed."""
    import ifkd.models.baselines as baselines
    import ifkd.models.student as student
    from ifkd.methods import build_method

    seen: list = []
    real = student.pixel_aligned_features

    def spy(fmap, points_cam, M_c, framing=None):
        seen.append(framing)
        return real(fmap, points_cam, M_c, framing)

    monkeypatch.setattr(student, "pixel_aligned_features", spy)
    monkeypatch.setattr(baselines, "pixel_aligned_features", spy)
    cfg = get_preset("tiny")
    framing = torch.tensor([[1.1, 0.05, -0.02], [0.9, 0.0, 0.03]])
    batch = {
        "image": torch.rand(2, 3, 32, 32),
        "points": torch.rand(2, 16, 3) - 0.5,
        "occ": torch.zeros(2, 16),
        "E": torch.eye(4).repeat(2, 1, 1),
        "framing": framing,
    }
    batch["E"][:, 2, 3] = 1.3
    for name in ("ifkd-nokd", "camera"):
        method = build_method(name, cfg)
        seen.clear()
        method.training_losses(batch)
        method.eval()
        method.predict(batch)
        assert len(seen) == 2 and all(f is framing for f in seen), name
        seen.clear()
        method.decode(method.encode(batch["image"]), batch["points"])
        assert seen == [None], name


# ----------------------------------------------------------------------------------- the training mix
def test_mix_draws_each_source_by_weight_reproducibly(tiny_dataset, second_dataset):
    data = replace(JITTERED, extra_roots=(str(second_dataset),), source_weights=(0.5, 2.5))
    mix = make_training_set(tiny_dataset, data, seed=7, augment=True, with_voxels=False)
    assert isinstance(mix, MixedDataset)
    n0, n1 = (len(s) for s in mix.sources)
    assert mix.counts == [int(np.floor(0.5 * n0 + 0.5)), int(np.floor(2.5 * n1 + 0.5))]
    assert len(mix) == sum(mix.counts)
    # proportions over an epoch, in the order the trainer's sampler visits it
    from ifkd.train.distributed import DistContext, ResumableSampler

    sampler = ResumableSampler(mix, DistContext(), seed=7)
    for epoch in range(3):
        sampler.set_epoch(epoch)
        mix.set_epoch(epoch)
        order = list(sampler)
        assert sorted(order) == list(range(len(mix)))
        sources = np.array([int(mix[k]["source"]) for k in order])
        expected = 2.5 * n1 / (0.5 * n0 + 2.5 * n1)
        assert sources.mean() == pytest.approx(expected, abs=1.0 / len(mix))
        picked = mix.plan(epoch)
        # weight 2.5: every item twice, plus half of them; weight 0.5: half of the items, no repeats
        counts1 = np.bincount(picked[picked[:, 0] == 1, 1], minlength=n1)
        assert set(counts1.tolist()) <= {2, 3} and counts1.sum() == mix.counts[1]
        assert len(set(picked[picked[:, 0] == 0, 1].tolist())) == mix.counts[0]
    assert not np.array_equal(mix.plan(0), mix.plan(1))  # a fresh subset each epoch ...
    again = make_training_set(tiny_dataset, data, seed=7, augment=True, with_voxels=False)
    assert np.array_equal(again.plan(2), mix.plan(2))  # ... the same one for the same (seed, epoch)
    mix.set_epoch(1)
    again.set_epoch(1)
    for k in (0, len(mix) // 2, len(mix) - 1):
        assert same_items(mix[k], again[k])
    mix.set_epoch(2)
    assert not same_items(mix[0], again[0])
    other_seed = make_training_set(tiny_dataset, data, seed=8, augment=True, with_voxels=False)
    assert not np.array_equal(
        other_seed.plan(0), make_training_set(tiny_dataset, data, seed=7, with_voxels=False).plan(0)
    )


def test_mix_categories_are_the_union(tiny_dataset, second_dataset):
    data = replace(get_preset("tiny").data, extra_roots=(str(tiny_dataset),))
    mix = make_training_set(second_dataset, data, seed=0, with_voxels=False, with_images=False)
    first = mix.sources[0].categories
    assert mix.categories[: len(first)] == first == ["chair", "lamp"]
    assert sorted(mix.categories) == sorted(mix.sources[1].categories)  # all 13, each once
    for k in range(len(mix)):
        item = mix[k]
        src = mix.sources[int(item["source"])]
        key, _ = src.items[int(item["index"])]
        assert mix.categories[int(item["category"])] == key.split("/")[0]
    # one source at weight 1 is the plain dataset, exactly as before mixes existed
    plain = make_training_set(second_dataset, get_preset("tiny").data, seed=0, with_voxels=False)
    assert not isinstance(plain, MixedDataset)


def test_tiny_training_run_on_a_mix_saves_and_resumes_bit_identically(tiny_dataset, second_dataset, tmp_path):
    from ifkd.config import load_config
    from ifkd.methods import method_config
    from ifkd.train.checkpoint import RunDir, load_model, read_metrics
    from ifkd.train.run import train

    base = method_config("ifkd-nokd", get_preset("tiny"))
    aug = {f: getattr(JITTERED, f) for f in AUG_FIELDS}
    data = replace(
        base.data, extra_roots=(str(second_dataset),), source_weights=(0.1, 1.0), val_extra=True, **aug
    )
    cfg = replace(base, data=data, train=replace(base.train, batch_size=4, val_shapes=1, max_steps=3))
    # 39 x 0.1 -> 4 procedural + 4 'real' items: 2 steps per epoch, so step 3 is past an epoch end

    def run(out: Path, max_steps: int, resume: bool = False) -> dict:
        c = replace(cfg, train=replace(cfg.train, max_steps=max_steps))
        return train(c, tiny_dataset, out, resume=resume, device="cpu", progress=False, log_every=1)

    assert run(tmp_path / "a", 3)["global_step"] == 3
    assert run(tmp_path / "b", 1)["global_step"] == 1
    assert run(tmp_path / "b", 3, resume=True)["global_step"] == 3
    saved = load_config(tmp_path / "b")
    assert saved.data.extra_roots == (str(second_dataset),) and saved.data.source_weights == (0.1, 1.0)
    straight, _ = load_model(tmp_path / "a", "last")
    resumed, _ = load_model(tmp_path / "b", "last")
    a, b = straight.state_dict(), resumed.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    records = read_metrics(RunDir(tmp_path / "b"))
    assert records[0]["val_iou"] is not None and "val_iou_extra1" in records[0]
    log = RunDir(tmp_path / "a").log.read_text()
    assert "training mix of 8 items per epoch" in log and "validation ('best') on" in log


# ----------------------------------------------------------------------- training in the inference framing
def test_the_inference_framing_affine_reproduces_frame_image(tiny_dataset):
    """``aug_frame`` moves a training render by the same canvas rule as ``frame_image(mode="always")``:
    the render reframed by the affine and the framed picture resized to the same size cover the same
    pixels (box within a pixel, mask IoU >= 0.9), for every view of a few shapes."""
    from ifkd.framing import always_framing_affine, bounding_box, frame_image

    ds = make_dataset(tiny_dataset, "train", DataConfig(image_size=64), with_voxels=False)
    for key in ds.shape_keys[:4]:
        names, _ = ds.views[key]
        for name in names:
            rgba = load_image(shape_dir(tiny_dataset, key) / RENDER_DIR / name)
            affine = always_framing_affine(rgba[..., 3])
            assert affine is not None and 0.5 < affine[0] < 2.0
            rgb, alpha = premultiplied(rgba, 64)
            premul = torch.from_numpy(np.concatenate([rgb, alpha], -1).transpose(2, 0, 1).copy())
            ours = reframe(premul, *affine)[3].numpy() > 0.5
            framed, _ = frame_image(rgba, mode="always")
            _, framed_alpha = premultiplied(framed, 64)
            theirs = framed_alpha[..., 0] > 0.5
            iou = (ours & theirs).sum() / max((ours | theirs).sum(), 1)
            assert iou >= 0.9, (key, name, iou)
            assert np.abs(np.subtract(bounding_box(ours), bounding_box(theirs))).max() <= 1, (key, name)


def test_aug_frame_composes_with_the_jitter_and_sets_the_items_framing(tiny_dataset):
    from ifkd.framing import always_framing_affine

    aug = Augmentation((1.0, 1.0, 1.0), scale=1.1, dx=0.05, dy=-0.02)
    s, dx, dy = aug.with_framing((1.2, 0.1, -0.3)).framing.tolist()
    u = np.array([0.3, -0.4])
    expected = 1.1 * (1.2 * u + np.array([0.1, -0.3])) + np.array([0.05, -0.02])
    assert np.allclose(s * u + np.array([dx, dy]), expected, atol=1e-6)

    framed_only = DataConfig(image_size=32, points_per_shape=64, aug_frame=1.0)
    assert augmentations_on(framed_only) and not augmentations_on(DataConfig())
    ds = make_dataset(tiny_dataset, "train", framed_only, augment=True, with_voxels=False)
    for i in range(4):
        key, view = ds.items[i]
        alpha = load_image(shape_dir(tiny_dataset, key) / RENDER_DIR / ds.views[key][0][view])[..., 3]
        assert np.allclose(ds[i]["framing"].numpy(), always_framing_affine(alpha), atol=1e-6)
    off = make_dataset(
        tiny_dataset, "train", replace(framed_only, aug_frame=0.0, aug_shift=0.1), augment=True
    )
    assert all(abs(float(off[i]["framing"][0]) - 1.0) < 1e-6 for i in range(4))  # no framing drawn


def test_validation_and_evaluation_show_a_framed_models_renders_framed(tiny_dataset):
    """A model trained with aug_frame = 1 is validated and evaluated on renders framed as inference frames
    them (no jitter drawn); the others on the renders as stored."""
    from ifkd.framing import always_framing_affine

    framed = DataConfig(image_size=32, points_per_shape=64, aug_frame=1.0, aug_shift=0.2)
    ds = make_dataset(tiny_dataset, "val", framed, with_voxels=False)  # augment=False: as validation reads
    plain = make_dataset(tiny_dataset, "val", replace(framed, aug_frame=0.5), with_voxels=False)
    for i in range(2):
        key, view = ds.items[i]
        alpha = load_image(shape_dir(tiny_dataset, key) / RENDER_DIR / ds.views[key][0][view])[..., 3]
        affine = always_framing_affine(alpha)
        assert np.allclose(ds[i]["framing"].numpy(), affine, atol=1e-6)  # the framing alone: no shift drawn
        assert np.allclose(ds[i]["framing"].numpy(), ds[i]["framing"].numpy())  # deterministic
        assert torch.equal(plain[i]["framing"], torch.tensor([1.0, 0.0, 0.0]))
        assert not torch.allclose(ds[i]["image"], plain[i]["image"])
        rgba = load_image(shape_dir(tiny_dataset, key) / RENDER_DIR / ds.views[key][0][view])
        image, framing = framed_for_model(rgba, framed)  # the one rule evaluation and several views use
        assert torch.equal(image, ds[i]["image"]) and torch.equal(framing, ds[i]["framing"])


def test_a_framed_models_known_pose_reconstruction_projects_through_the_framing(tiny_dataset):
    """reconstruct_views (what `ifkd evaluate` and several views use) shows a model trained with
    aug_frame = 1 each picture framed and hands the framing to its decoder, as validation does."""
    from ifkd.data.format import read_views
    from ifkd.methods import build_method, method_config
    from ifkd.reconstruct import Reconstructor

    cfg = method_config("ifkd-nokd", get_preset("tiny"))
    cfg = replace(cfg, data=replace(cfg.data, aug_frame=1.0))
    model = build_method("ifkd-nokd", cfg).eval()
    seen = []
    decode = model.decode

    def spy(code, points, distance=None, framing=None):
        seen.append(framing)
        return decode(code, points, distance, framing)

    model.decode = spy
    key = make_dataset(tiny_dataset, "val", cfg.data).shape_keys[0]
    names, views = read_views(shape_dir(tiny_dataset, key) / RENDER_DIR)
    rgba = load_image(shape_dir(tiny_dataset, key) / RENDER_DIR / names[0])
    Reconstructor(model, cfg).reconstruct_views([rgba], [views[0]], resolution=8)
    expected = framed_for_model(rgba, cfg.data)[1]
    assert seen and all(f is not None and torch.allclose(f[0].cpu(), expected) for f in seen)
    seen.clear()
    plain = replace(cfg, data=replace(cfg.data, aug_frame=0.0))
    Reconstructor(model, plain).reconstruct_views([rgba], [views[0]], resolution=8)
    assert seen and all(f is None for f in seen)  # the others read pictures as they are


def test_a_model_trained_on_framed_pictures_frames_every_picture(tiny_dataset):
    from ifkd.reconstruct import Reconstructor

    def reconstructor(aug_frame: float) -> Reconstructor:
        cfg = get_preset("tiny")
        cfg = replace(cfg, data=replace(cfg.data, aug_frame=aug_frame))
        return Reconstructor(torch.nn.Identity(), cfg)

    rgba = load_image(
        shape_dir(tiny_dataset, make_dataset(tiny_dataset, "train", DataConfig()).shape_keys[0])
        / RENDER_DIR
        / "00.png"
    )
    assert reconstructor(1.0).framing_mode == "always" and reconstructor(0.5).framing_mode == "auto"
    _, info = reconstructor(1.0).prepare_framed(rgba)
    assert info.mode == "always" and not (info.kept_centre or info.kept_size)
    _, info = reconstructor(0.0).prepare_framed(rgba, reframe_mode="always")
    assert info.mode == "always"
