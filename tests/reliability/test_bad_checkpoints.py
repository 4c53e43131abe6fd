"""Bad checkpoints through `ifkd reconstruct/evaluate --model` and `train --resume`; no pickle, ever."""

from __future__ import annotations

import ast
import json
import pickle
import shutil
from pathlib import Path

import pytest
import torch
from corpus import (
    STUDENT,
    MarkerPayload,
    assert_one_line_error,
    pickle_bytes,
    run_cli,
    truncate,
    write_good_image,
)

SRC = Path(__file__).resolve().parents[2] / "src"


def _copy_run(run: Path, dest: Path) -> Path:
    shutil.copytree(run, dest)
    return dest


def _set_config(run: Path, section: str, key: str, value) -> None:
    cfg = json.loads((run / "config.json").read_text())
    if section:
        cfg[section][key] = value
    else:
        cfg[key] = value
    (run / "config.json").write_text(json.dumps(cfg))


def _commands(model: Path, tmp: Path, data: Path) -> dict[str, list]:
    image = write_good_image(tmp / "good.png")
    return {
        "reconstruct": ["reconstruct", image, "--model", model, "--out", tmp / "rec", "--device", "cpu"],
        "evaluate": ["evaluate", "--model", model, "--data", data, "--out", tmp / "ev", "--device", "cpu"],
    }


def _damage_width(run: Path) -> str:
    _set_config(run, "student", "base_channels", 8)  # the weights were trained with 4
    return r"weights do not fit this model.*in file vs .* in model"


def _damage_method(run: Path) -> str:
    _set_config(run, "", "method", "global")
    return r"weights do not fit this model.*missing .*unexpected"


def _truncated(keep: float):
    def damage(run: Path) -> str:
        truncate(run / "checkpoints" / "last.safetensors", keep)
        return r"not a readable safetensors file .*truncated"

    return damage


CHECKPOINT_CASES = {
    "wrong_width": _damage_width,
    "wrong_method": _damage_method,
    "truncated_half": _truncated(0.5),
    "truncated_last_byte": _truncated(0.9999),
    "truncated_in_header": _truncated(0.0005),
}


@pytest.mark.parametrize("verb", ["reconstruct", "evaluate"])
@pytest.mark.parametrize("case", sorted(CHECKPOINT_CASES))
def test_bad_checkpoint_is_one_line(case, verb, tiny_run, small_dataset, tmp_path):
    run = _copy_run(tiny_run, tmp_path / "run")
    pattern = CHECKPOINT_CASES[case](run)
    res = run_cli(_commands(run, tmp_path, small_dataset)[verb])
    assert_one_line_error(res, run / "checkpoints" / "last.safetensors", pattern)


@pytest.mark.parametrize("writer", ["pickle", "torch.save"])
def test_pickle_renamed_to_safetensors_is_refused_never_unpickled(writer, tiny_run, small_dataset, tmp_path):
    marker = tmp_path / "UNPICKLED"
    # The payload is live: unpickling it (here, on purpose, elsewhere) does create its marker file.
    pickle.loads(pickle_bytes(tmp_path / "proof"))
    assert (tmp_path / "proof").exists()

    run = _copy_run(tiny_run, tmp_path / "run")
    weights = run / "checkpoints" / "last.safetensors"
    if writer == "pickle":
        weights.write_bytes(pickle_bytes(marker))
    else:
        torch.save({"state_dict": MarkerPayload(marker)}, weights)  # a zip of pickles
    for argv in _commands(run, tmp_path, small_dataset).values():
        res = run_cli(argv)
        assert_one_line_error(res, weights, "not a readable safetensors file")
    res = run_cli([*STUDENT, "--data", small_dataset, "--out", run, "--resume"])
    assert_one_line_error(res, weights, "not a readable safetensors file")
    assert not marker.exists()


def test_missing_or_broken_run_config_is_one_line(tiny_run, tmp_path):
    image = write_good_image(tmp_path / "good.png")
    for damage, pattern in [
        (lambda p: p.unlink(), "config file not found"),
        (lambda p: p.write_text("{"), "JSON"),
    ]:
        run = _copy_run(tiny_run, tmp_path / f"run{len(pattern)}")
        damage(run / "config.json")
        res = run_cli(["reconstruct", image, "--model", run, "--out", tmp_path / "o", "--device", "cpu"])
        assert_one_line_error(res, run / "config.json", pattern)


def test_resume_refuses_a_checkpoint_of_another_config(tiny_run, small_dataset, tmp_path):
    run = _copy_run(tiny_run, tmp_path / "run")
    _damage_width(run)
    # `--resume` alone: the (edited) config.json is authoritative, and its checkpoint no longer fits it.
    # (The original command again would be refused earlier: it no longer matches config.json.)
    res = run_cli([*STUDENT, "--data", small_dataset, "--out", run, "--resume", "--device", "cpu"])
    assert_one_line_error(res, run / "checkpoints" / "last.safetensors", "another config or method")


# ----------------------------------------------------------------------------------- no pickle in src/


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return node.id if isinstance(node, ast.Name) else ""


def _keyword(call: ast.Call, name: str):
    for kw in call.keywords:
        if kw.arg == name and isinstance(kw.value, ast.Constant):
            return kw.value.value
    return None


def unpickling_calls(source: str, filename: str = "<src>") -> list[str]:
    """Calls that may unpickle: pickle/dill/joblib/cloudpickle loads, torch.load without
    weights_only=True, np.load with allow_pickle=True, yaml.load/unsafe_load."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
            if any(n.split(".")[0] in ("pickle", "dill", "cloudpickle", "joblib", "shelve") for n in names):
                found.append(f"{filename}:{node.lineno}: imports a pickle module")
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func)
        tail = name.rsplit(".", 1)[-1]
        bad = (
            tail in ("loads", "load", "Unpickler")
            and name.split(".")[0] in ("pickle", "dill", "joblib")
            or (name == "torch.load" and _keyword(node, "weights_only") is not True)
            or (tail == "load" and name.split(".")[0] in ("np", "numpy") and _keyword(node, "allow_pickle"))
            or name in ("yaml.load", "yaml.unsafe_load", "yaml.full_load")
        )
        if bad:
            found.append(f"{filename}:{node.lineno}: {name}(...)")
    return found


def test_the_checker_finds_what_it_should():
    src = (
        "import pickle\nimport numpy as np\nimport torch\n"
        "pickle.load(f)\ntorch.load(p)\ntorch.load(p, weights_only=False)\ntorch.load(p, weights_only=True)\n"
        "np.load(p, allow_pickle=True)\nnp.load(p, allow_pickle=False)\nnp.load(p)\n"
    )
    assert [f.split(": ", 1)[1] for f in unpickling_calls(src)] == [
        "imports a pickle module",
        "pickle.load(...)",
        "torch.load(...)",
        "torch.load(...)",
        "np.load(...)",
    ]


def test_no_pickle_is_ever_loaded_by_the_package():
    files = sorted(SRC.rglob("*.py"))
    assert len(files) > 20
    found = [hit for f in files for hit in unpickling_calls(f.read_text(), str(f.relative_to(SRC)))]
    assert found == []
