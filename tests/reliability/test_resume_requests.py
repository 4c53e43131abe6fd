"""`train --resume` continues a run exactly as its config.json says: the same command again (what a
killed run needs) or no options at all work; any other request is refused in one line (it used to be
ignored: `train teacher --resume` on a student run continued the student, exit 0)."""

from __future__ import annotations

import pytest

from ifkd.cli import main

TINY = ["--preset", "tiny", "--set", "train.max_steps=1", "--set", "train.val_shapes=0"]
STUDENT = ["train", "student", "--method", "ifkd-nokd"]


@pytest.fixture(scope="module")
def student_run(tiny_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "s"
    argv = [*STUDENT, "--data", str(tiny_dataset), "--out", str(out), *TINY, "--device", "cpu"]
    assert main(argv) == 0
    return out


@pytest.mark.parametrize(
    "argv, asked",
    [
        (["train", "teacher"], "not with method teacher"),
        (["train", "student", "--method", "global"], "not with method global"),
        ([*STUDENT, "--preset", "cpu"], "(the run has"),
        ([*STUDENT, *TINY, "--set", "train.max_steps=5"], "train.max_steps=5 (the run has 1)"),
        ([*STUDENT, *TINY, "--seed", "7"], "train.seed=7 (the run has 0)"),
    ],
)
def test_resume_refuses_what_it_would_not_honour(student_run, tiny_dataset, capsys, argv, asked):
    rest = ["--data", str(tiny_dataset), "--out", str(student_run), "--resume", "--device", "cpu"]
    assert main([*argv, *rest]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds a ifkd-nokd run" in err[0] and asked in err[0], err


def test_resume_as_it_is_still_works(student_run, tiny_dataset):
    """Both ways a user resumes: the same command again with --resume, and --resume with no options."""
    argv = [*STUDENT, "--data", str(tiny_dataset), "--out", str(student_run)]
    assert main([*argv, *TINY, "--resume", "--device", "cpu"]) == 0
    assert main([*argv, "--resume", "--device", "cpu"]) == 0
