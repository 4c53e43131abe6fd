"""`--device` through every command: one function decides, bad or absent devices are one line and exit 2,
checked before any output exists."""

from __future__ import annotations

import re

import pytest
import torch
from corpus import STUDENT, TINY_TRAIN, assert_one_line_error, run_cli, write_good_image

import ifkd.reconstruct
import ifkd.train.distributed
from ifkd.device import resolve_device
from ifkd.io import InputError

HAS_CUDA = torch.cuda.is_available()
HAS_MPS = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()

NOT_A_DEVICE = r"not a device \(use auto, cpu, cuda, cuda:N, mps\)$"
NO_CUDA = r"CUDA is not available on this machine \(torch .+\); use --device cpu or auto$"
BAD = {
    "nonsense": NOT_A_DEVICE,
    "cuda:x": NOT_A_DEVICE,
    "gpu": NOT_A_DEVICE,
    "": NOT_A_DEVICE,
    **({} if HAS_CUDA else {"cuda": NO_CUDA, "cuda:1": NO_CUDA}),
    **({} if HAS_MPS else {"mps": r"MPS \(Apple GPU\) is not available on this machine"}),
}


def test_one_resolver_for_every_command():
    assert ifkd.reconstruct.resolve_device is resolve_device
    assert ifkd.train.distributed.resolve_device is resolve_device


@pytest.mark.parametrize("spec", ["cpu", "CPU", " cpu ", torch.device("cpu")])
def test_cpu_spellings(spec):
    assert resolve_device(spec) == torch.device("cpu")


def test_auto_is_cuda_when_present_else_cpu():
    assert resolve_device("auto").type == ("cuda" if HAS_CUDA else "cpu")


def test_cuda_indices_are_checked_against_the_devices_present(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert resolve_device("cuda") == torch.device("cuda", 0)
    assert resolve_device("cuda:0") == torch.device("cuda", 0)
    assert resolve_device("auto", local_rank=0) == torch.device("cuda", 0)
    missing = r"^--device cuda:1: no CUDA device 1 on this machine \(1 found: cuda:0\)"
    with pytest.raises(InputError, match=missing):
        resolve_device("cuda:1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(InputError, match=NO_CUDA):
        resolve_device("cuda")


@pytest.mark.parametrize("spec", sorted(BAD))
def test_bad_device_message(spec):
    with pytest.raises(InputError) as caught:
        resolve_device(spec)
    message = str(caught.value)
    assert message.startswith(f"--device {spec}: ") and "\n" not in message
    assert re.search(BAD[spec], message), message


def _argv(verb: str, out, data, run, image) -> list:
    return {
        "reconstruct": ["reconstruct", image, "--model", run, "--out", out],
        "evaluate": ["evaluate", "--model", run, "--data", data, "--out", out],
        "bench generalise": ["bench", "generalise", "--protocol", "real", "--model", "pretrained"]
        + ["--budget", "smoke", "--meshes", data, "--out", out],
        "bench quality": ["bench", "quality", "--out", out],
        "train": [*STUDENT, "--data", data, "--out", out, *TINY_TRAIN[:-2]],
        "report": ["report", run, "--out", out],
        "demo": ["demo", "--quick", "--out", out],
    }[verb]


VERBS = ["reconstruct", "evaluate", "bench generalise", "bench quality", "train", "report", "demo"]


@pytest.mark.parametrize("verb", VERBS)
@pytest.mark.parametrize("spec", sorted(set(BAD) & {"nonsense", "cuda", "cuda:1", "mps"}))
def test_every_command_refuses_a_bad_device_before_writing(verb, spec, small_dataset, tiny_run, tmp_path):
    image = write_good_image(tmp_path / "good.png")
    out = tmp_path / "out"
    res = run_cli([*_argv(verb, out, small_dataset, tiny_run, image), "--device", spec])
    assert_one_line_error(res, f"--device {spec}:", BAD[spec])
    assert not out.exists()  # nothing made: no half-made data_real/, no empty run folder
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.png"]
