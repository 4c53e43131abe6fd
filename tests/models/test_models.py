"""Networks: teacher feature sampling (axes, trilinear), student projection through the camera module,
U-Net sizes and skip variants, the decoder, the 6D rotation, KD isolation and a one-batch overfit."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ifkd.config import PRESETS, StudentConfig, TeacherConfig
from ifkd.geometry.camera import Viewpoint, project_to_pixels, view_transform
from ifkd.models.baselines import CameraSVR, rotation_6d_to_matrix
from ifkd.models.decoder import PointDecoder
from ifkd.models.sampling import sample_image, sample_volume
from ifkd.models.student import IFKDStudent, StudentCode, view_centred_points
from ifkd.models.teacher import IFNET_DISPLACEMENT_DISTANCE, VoxelTeacher, teacher_feature_dim
from ifkd.models.unet import SpatialTransformer, UNet

TINY = PRESETS["tiny"]


pytestmark = pytest.mark.usefixtures("one_thread")


def cell_centre(index: int, res: int) -> float:
    return -0.5 + (index + 0.5) / res


def test_sample_volume_single_cell_hand_computed():
    R = 8
    vol = torch.zeros(1, 1, R, R, R)
    i, j, k = 1, 4, 6  # distinct indices: any axis mix-up moves the peak
    vol[0, 0, i, j, k] = 1.0
    c = torch.tensor([cell_centre(i, R), cell_centre(j, R), cell_centre(k, R)])
    h = 0.5 / R  # half a cell
    pts = torch.stack(
        [
            c,  # the centre: exactly 1
            torch.tensor([0.4, -0.4, 0.0]),  # far away: 0
            c + torch.tensor([h, 0.0, 0.0]),  # halfway to the x-neighbour: 0.5
            c + torch.tensor([h, h, 0.0]),  # halfway in x and y: 0.25
            c + torch.tensor([0.0, 0.0, h / 2]),  # a quarter cell in z: 0.75
            torch.tensor([cell_centre(k, R), cell_centre(j, R), cell_centre(i, R)]),  # x <-> z swapped: 0
        ]
    )[None]
    got = sample_volume(vol, pts)[0, :, 0]
    torch.testing.assert_close(got, torch.tensor([1.0, 0.0, 0.5, 0.25, 0.75, 0.0]))


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_teacher_features_follow_axis_order(axis):
    R = 16
    coords = torch.tensor([cell_centre(n, R) for n in range(R)])
    half = (coords > 0).float()
    shape = [1, 1, 1]
    shape[axis] = R
    vox = half.reshape(shape).expand(R, R, R)[None, None].contiguous()  # occupied where p[axis] > 0
    teacher = VoxelTeacher(TINY.teacher).eval()
    pts = torch.rand(1, 200, 3) * 0.8 - 0.4
    with torch.no_grad():
        z2 = teacher.point_features(teacher.encode(vox), pts)
    grid_feature = z2[0, :, 0]  # scale 0 channel 0: the occupancy grid itself
    positive = pts[0, :, axis] > 0.05
    negative = pts[0, :, axis] < -0.05
    assert grid_feature[positive].min() > 0.99
    assert grid_feature[negative].max() < 0.01


def test_teacher_feature_dims_and_displacement():
    cfg = TeacherConfig(kind="ifnet", channels=(2, 3, 4, 5), decoder_hidden=8)
    plain = VoxelTeacher(cfg)
    assert plain.feature_dim == 15 == teacher_feature_dim(cfg)
    near = VoxelTeacher(cfg, displacement=IFNET_DISPLACEMENT_DISTANCE)
    assert near.feature_dim == 15 * 7
    simple = VoxelTeacher(TeacherConfig(kind="simple", channels=(2, 3, 4, 5)))
    assert simple.feature_dim == 5 == teacher_feature_dim(TeacherConfig(kind="simple", channels=(2, 3, 4, 5)))
    vox = (torch.rand(2, 1, 16, 16, 16) > 0.5).float()
    pts = torch.rand(2, 10, 3) - 0.5
    with torch.no_grad():
        z = near.point_features(near.encode(vox), pts)
        assert z.shape == (2, 10, 105)
        # Scale 0 holds the grid sampled at the point, then +-d along x, y, z.
        for n, offset in enumerate(
            [(0, 0, 0), (1, 0, 0), (-1, 0, 0), (0, 1, 0), (0, -1, 0), (0, 0, 1), (0, 0, -1)]
        ):
            shifted = pts + IFNET_DISPLACEMENT_DISTANCE * torch.tensor(offset, dtype=torch.float32)
            torch.testing.assert_close(z[..., n], sample_volume(vox, shifted)[..., 0])
        assert simple.point_features(simple.encode(vox), pts).shape == (2, 10, 5)
        assert plain.decode(plain.encode(vox), pts).shape == (2, 10)


def test_teacher_rejects_bad_voxels():
    teacher = VoxelTeacher(TINY.teacher)
    with pytest.raises(ValueError, match="divide by 8"):
        teacher.encode(torch.zeros(1, 1, 12, 12, 12))
    with pytest.raises(ValueError, match=r"\(B, 1, R, R, R\)"):
        teacher.encode(torch.zeros(1, 12, 12, 12))
    with pytest.raises(ValueError, match="kind"):
        VoxelTeacher(TeacherConfig(kind="pointnet"))


def test_sample_image_bright_pixel():
    fmap = torch.zeros(1, 1, 6, 8)
    fmap[0, 0, 2, 5] = 1.0  # row 2, column 5
    uv = torch.tensor([[[(5.5 / 8) * 2 - 1, (2.5 / 6) * 2 - 1], [-0.9, 0.9]]])
    torch.testing.assert_close(sample_image(fmap, uv)[0, :, 0], torch.tensor([1.0, 0.0]))


def test_student_projection_matches_camera_module():
    """A feature map that stores each pixel's own (column, row) makes z1 read back the pixel coordinate,
    which must equal the full-K projection of the camera module at the image's real E."""
    W = 32
    student = IFKDStudent(TINY.student)
    cols, rows = torch.meshgrid(
        torch.arange(W, dtype=torch.float32), torch.arange(W, dtype=torch.float32), indexing="xy"
    )
    code = StudentCode(torch.stack([cols, rows])[None], None)
    view = Viewpoint(azimuth=40.0, elevation=25.0, distance_ratio=0.75)
    E = view_transform(view)
    pts = np.random.default_rng(0).uniform(-0.3, 0.3, size=(50, 3))
    pixels, _ = project_to_pixels(pts, E, W)
    batch = {
        "points": torch.as_tensor(pts, dtype=torch.float32)[None],
        "E": torch.as_tensor(E, dtype=torch.float32)[None],
    }
    p_view, distance = view_centred_points(batch)
    torch.testing.assert_close(distance, torch.tensor([view.distance], dtype=torch.float32))
    # Pixel i's centre sits at continuous coordinate i + 0.5; bilinear reproduces a linear ramp exactly.
    expected = torch.as_tensor(pixels - 0.5)
    z1 = student.point_features(code, p_view, distance)
    torch.testing.assert_close(z1[0].double(), expected, atol=1e-3, rtol=0)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # coordinates must stay fp32 under autocast
        p_view, distance = view_centred_points(batch)
        z1 = student.point_features(code, p_view, distance)
    torch.testing.assert_close(z1[0].double(), expected, atol=1e-3, rtol=0)


def test_student_bright_pixel_reaches_its_point():
    student = IFKDStudent(TINY.student)
    fmap = torch.zeros(1, TINY.student.feature_channels, 32, 32)
    fmap[0, :, 10, 20] = 1.0
    code = StudentCode(fmap, None)
    d = 1.4
    # Unproject the centre of pixel (row 10, col 20) at depth d + 0.1, then centre the point.
    u, v = (20.5 / 32) * 2 - 1, (10.5 / 32) * 2 - 1
    depth = d + 0.1
    f = float(student.M_c[0, 0])
    hit = torch.tensor([u * depth / f, v * depth / f, 0.1])
    miss = torch.tensor([-0.2, 0.2, 0.0])  # projects to about (row 21, column 11)
    z1 = student.point_features(code, torch.stack([hit, miss])[None], torch.tensor([d]))
    torch.testing.assert_close(z1[0, 0], torch.ones(TINY.student.feature_channels), atol=1e-4, rtol=0)
    assert z1[0, 1].abs().max() < 1e-6


@pytest.mark.parametrize("size", [(37, 37), (64, 64), (137, 137), (37, 50)])
def test_unet_output_matches_input_size(size):
    net = UNet(3, base=4, depth=4, feature_channels=5)
    fmap, bottleneck = net(torch.rand(1, 3, *size))
    assert fmap.shape == (1, 5, *size)
    assert bottleneck.shape[1] == net.bottleneck_channels == 64


def test_stn_starts_as_identity_and_matches_plain_skip():
    stn = SpatialTransformer(6)
    x = torch.rand(2, 6, 9, 13)
    torch.testing.assert_close(stn(x), x, atol=1e-5, rtol=0)
    torch.manual_seed(0)
    plain = UNet(3, base=4, depth=3, feature_channels=5, skip="skip").eval()
    with_stn = UNet(3, base=4, depth=3, feature_channels=5, skip="stn").eval()
    missing, unexpected = with_stn.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and all(".localisation." in k or ".theta." in k for k in missing)
    img = torch.rand(2, 3, 24, 24)
    torch.testing.assert_close(with_stn(img)[0], plain(img)[0], atol=1e-5, rtol=0)


@pytest.mark.parametrize("norm", ["batch", "group", "none"])
def test_unet_norm_variants(norm):
    """GroupNorm and no norm keep no running statistics: eval mode gives the same map as train mode."""
    torch.manual_seed(0)
    net = UNet(3, base=8, depth=2, feature_channels=5, skip="cnn5", norm=norm)
    img = torch.rand(2, 3, 20, 20)
    train_out = net.train()(img)[0]
    assert train_out.shape == (2, 5, 20, 20)
    has_bn = any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
    assert has_bn == (norm == "batch")
    if norm != "batch":
        torch.testing.assert_close(net.eval()(img)[0], train_out)
    with pytest.raises(ValueError, match="group"):
        UNet(norm="layer")


def test_unknown_skip_variant():
    with pytest.raises(ValueError, match="cnn5"):
        UNet(skip="attention")


def test_decoder_shapes():
    dec = PointDecoder(7, 16)
    assert dec(torch.rand(3, 11, 7)).shape == (3, 11)
    assert sum(isinstance(m, torch.nn.Linear) for m in dec.modules()) == 5
    with pytest.raises(ValueError, match="7 input features"):
        dec(torch.rand(3, 11, 6))


def test_rotation_6d_gives_rotations():
    R = rotation_6d_to_matrix(torch.randn(10, 6))
    torch.testing.assert_close(R @ R.transpose(1, 2), torch.eye(3).expand(10, 3, 3), atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.linalg.det(R), torch.ones(10), atol=1e-5, rtol=0)
    torch.testing.assert_close(
        rotation_6d_to_matrix(torch.tensor([[2.0, 0, 0, 0.5, 3.0, 0]])), torch.eye(3)[None]
    )


def random_batch(cfg, B: int = 2, N: int = 64) -> dict[str, torch.Tensor]:
    S, R = cfg.data.image_size, cfg.data.voxel_resolution
    views = [Viewpoint(azimuth=30.0 * i + 10, elevation=20.0, distance_ratio=0.8) for i in range(B)]
    return {
        "image": torch.rand(B, 3, S, S),
        "points": torch.rand(B, N, 3) - 0.5,
        "occ": (torch.rand(B, N) > 0.5).float(),
        "E": torch.as_tensor(np.stack([view_transform(v) for v in views]), dtype=torch.float32),
        "voxels": (torch.rand(B, 1, R, R, R) > 0.7).float(),
        "category": torch.zeros(B, dtype=torch.long),
    }


def test_kd_leaves_teacher_untouched():
    torch.manual_seed(0)
    teacher = VoxelTeacher(TINY.teacher).eval()
    student = IFKDStudent(TINY.student, teacher_dim=teacher.feature_dim)
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    # Even an optimiser that (wrongly) holds the teacher's parameters must find no gradient there.
    opt = torch.optim.Adam(list(student.parameters()) + list(teacher.parameters()), lr=1e-2)
    out = student.training_losses(random_batch(TINY), kd_active=True, teacher=teacher)
    out["loss"].backward()
    assert out["kd"] > 0
    assert all(p.grad is None for p in teacher.parameters())
    assert student.kd_head.weight.grad.abs().sum() > 0
    opt.step()
    for k, v in teacher.state_dict().items():
        torch.testing.assert_close(v, before[k], atol=0, rtol=0)


@pytest.mark.parametrize("kd_feature", ["pixel", "point"])
def test_kd_feature_choice_routes_the_gradient(kd_feature):
    """'pixel' distils z1 (constant along a ray): KD reaches the U-Net, not the decoder; 'point' distils
    the decoder's first hidden layer, which depends on the point: KD reaches the decoder's first layer."""
    from dataclasses import replace

    torch.manual_seed(0)
    teacher = VoxelTeacher(TINY.teacher).eval()
    cfg = replace(TINY.student, kd_feature=kd_feature)
    student = IFKDStudent(cfg, teacher_dim=teacher.feature_dim)
    width = cfg.feature_channels if kd_feature == "pixel" else cfg.decoder_hidden
    assert student.kd_head.in_features == width
    out = student.training_losses(random_batch(TINY), kd_active=True, teacher=teacher)
    out["kd"].backward()
    first = student.decoder.net[0].weight.grad
    assert (first is not None and first.abs().sum() > 0) == (kd_feature == "point")
    assert student.decoder.net[-1].weight.grad is None  # KD never reaches the output layer
    assert student.unet.head.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="kd_feature"):
        IFKDStudent(replace(TINY.student, kd_feature="logit"), teacher_dim=5)


def test_kd_needs_frozen_teacher():
    teacher = VoxelTeacher(TINY.teacher)  # left in training mode
    student = IFKDStudent(TINY.student, teacher_dim=teacher.feature_dim)
    with pytest.raises(ValueError, match="eval"):
        student.training_losses(random_batch(TINY), kd_active=True, teacher=teacher)
    with pytest.raises(ValueError, match="teacher"):
        IFKDStudent(TINY.student).training_losses(random_batch(TINY), kd_active=True, teacher=teacher.eval())


def test_camera_baseline_pose_learns_from_cam_loss_only():
    model = CameraSVR(TINY.student)
    out = model.training_losses(random_batch(TINY))
    assert set(out) == {"loss", "recon", "cam"} and out["cam"] > 0
    out["recon"].backward()  # the projection uses the detached estimate
    assert model.camera_out.weight.grad is None or model.camera_out.weight.grad.abs().sum() == 0
    model.zero_grad()
    model.training_losses(random_batch(TINY))["cam"].backward()
    assert model.camera_out.weight.grad.abs().sum() > 0


def test_student_overfits_one_batch():
    torch.manual_seed(0)
    cfg = StudentConfig(base_channels=4, depth=2, feature_channels=8, decoder_hidden=32)
    student = IFKDStudent(cfg)
    batch = random_batch(TINY, B=2, N=256)
    # Two learnable shapes told apart by the image only: a small and a large ball.
    batch["image"] = torch.stack([torch.zeros(3, 32, 32), torch.ones(3, 32, 32)])
    radius = torch.tensor([[0.2], [0.4]])
    batch["occ"] = (batch["points"].norm(dim=-1) < radius).float()
    opt = torch.optim.Adam(student.parameters(), lr=3e-3)
    losses = []
    for _ in range(100):
        loss = student.training_losses(batch)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 5, (losses[0], losses[-1])
    student.eval()
    with torch.no_grad():
        acc = ((student.predict(batch) > 0.5).float() == batch["occ"]).float().mean()
    assert acc > 0.9
