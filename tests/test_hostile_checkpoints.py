"""Hostile and broken checkpoints, crafted here from a real one: every loader and
every script that reads checkpoints gives a one-line error naming the file and what
is wrong (exit code 2), never a traceback, and memory stays bounded whatever the
file claims. The checkpoint they start from is written by `scripts/train.py` on a
small synthetic data set, so these tests need no real MNIST."""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from measure import allocation_peak
from script_runner import one_line_error, run_main

from models import CheckpointError as ModelCheckpointError
from models import load_trained_model
from tinygrad_lenet.checkpoint import META_ENTRY, CheckpointError, load_checkpoint
from tinygrad_lenet.data import write_fake_dataset

WEIGHT = "model_state/features.0.weight"


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A 2-epoch run of train.py on synthetic IDX files: its output directory."""
    root = tmp_path_factory.mktemp("hostile")
    write_fake_dataset(root / "data", n_train=64, n_test=32)
    code, _, err = run_main("train", "--dataset", root / "data", "--epochs", "2", "--batch-size", "32",
                            "--out", root / "run", "--no-progress")
    assert code == 0, err
    return root / "run"


# ------------------------------------------------------------------ crafting
def read_members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {info.filename: zf.read(info) for info in zf.infolist()}


def write_members(path: Path, members: dict[str, bytes], deflated: tuple[str, ...] = ()) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data, compress_type=zipfile.ZIP_DEFLATED if name in deflated else zipfile.ZIP_STORED)


def npy(array: np.ndarray, allow_pickle: bool = False) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, array, allow_pickle=allow_pickle)
    return buf.getvalue()


def meta_of(members: dict[str, bytes]) -> dict:
    return json.loads(str(np.load(io.BytesIO(members[META_ENTRY + ".npy"]))[()]))


def with_meta(members: dict[str, bytes], meta: dict | str) -> dict[str, bytes]:
    text = meta if isinstance(meta, str) else json.dumps(meta)
    return {**members, META_ENTRY + ".npy": npy(np.array(text))}


def edit_tree(edit: Callable[[dict], None]) -> Callable[[dict[str, bytes]], dict[str, bytes]]:
    """A crafting step that edits the checkpoint's JSON tree in place."""
    def craft(members: dict[str, bytes]) -> dict[str, bytes]:
        meta = meta_of(members)
        edit(meta["tree"])
        return with_meta(members, meta)
    return craft


def replace_array(name: str, array: np.ndarray, allow_pickle: bool = False):
    return lambda m: {**m, f"{name}.npy": npy(array, allow_pickle)}


def no_npy_suffix(m: dict[str, bytes]) -> dict[str, bytes]:
    m = dict(m)
    m[WEIGHT] = m.pop(WEIGHT + ".npy")
    return m


def huge_claim(m: dict[str, bytes]) -> dict[str, bytes]:
    """A header claiming 10**12 float32 values in front of the real, small data."""
    data = m[WEIGHT + ".npy"]
    header_len = len(npy(np.zeros((6, 1, 5, 5), np.float32))) - 6 * 25 * 4
    header = npy(np.zeros(0, np.float32))  # a valid header to edit
    header = header.replace(b"(0,)", b"(1000000000000,)")
    return {**m, WEIGHT + ".npy": header + data[header_len:]}


def deep_json(m: dict[str, bytes]) -> dict[str, bytes]:
    depth = 100_000
    return with_meta(m, '{"format": "tinygrad_lenet.checkpoint", "version": 1, "tree": '
                        + "[" * depth + "]" * depth + "}")


def shared_member(m: dict[str, bytes]) -> dict[str, bytes]:
    meta = meta_of(m)
    meta["tree"]["extra"]["copies"] = [{"__ndarray__": WEIGHT}] * 2000
    return with_meta(m, meta)


class FileEdit:
    """A crafting step on the checkpoint file's bytes rather than on its members."""

    def __init__(self, edit: Callable[[bytes, dict[str, bytes]], bytes]):
        self.edit = edit


def flip_a_data_byte(data: bytes, members: dict[str, bytes]) -> bytes:
    """One bit of the weight's values flipped inside the archive (its CRC no longer matches)."""
    values = members[WEIGHT + ".npy"][-600:]
    at = data.index(values) + 300
    return data[:at] + bytes([data[at] ^ 0x40]) + data[at + 1:]


def set_config(**values):
    return edit_tree(lambda t: t["extra"]["config"].update(values))


def set_extra(key, value):
    return edit_tree(lambda t: t["extra"].__setitem__(key, value))


def optimizer_group(**values):
    return edit_tree(lambda t: t["optimizer_state"]["param_groups"][0].update(values))


def drop_weight(m: dict[str, bytes]) -> dict[str, bytes]:
    meta = meta_of(m)
    del meta["tree"]["model_state"]["features.0.weight"]
    return with_meta({k: v for k, v in m.items() if k != WEIGHT + ".npy"}, meta)


class Payload:
    def __reduce__(self):
        return (print, ("unpickled!",))


# Every case: (crafting step, what the error says). Each is refused by load_trained_model,
# evaluate.py, predict.py, visualize.py, digit_app.py and train.py --resume.
MODEL_CASES: dict[str, tuple[Callable, str]] = {
    "member without .npy": (no_npy_suffix, "archive member 'model_state/features.0.weight' is not an .npy array"),
    "header claims 10**12 floats": (huge_claim, r"member 'model_state/features.0.weight' claims 4,000,000,000,000 "
                                                r"bytes \(shape \(1000000000000,\), float32\) but holds \d+"),
    "JSON nested 100,000 deep": (deep_json, "its JSON document nests too deeply"),
    "extra is a list": (edit_tree(lambda t: t.__setitem__("extra", [1, 2])), "its 'extra' is a list, not a mapping"),
    "normalize_std 0": (set_config(normalize_std=0.0), "normalize_std"),
    "array referenced 2000 times": (shared_member, "array member 'model_state/features.0.weight' is referenced twice"),
    "flipped data byte": (FileEdit(flip_a_data_byte), r"corrupted checkpoint \(BadZipFile: Bad CRC-32"),
    "weight of another shape": (replace_array(WEIGHT, np.zeros((7, 1, 5, 5), np.float32)),
                                r"size mismatch for features.0.weight: expected shape \(6, 1, 5, 5\), got \(7, 1, 5, 5\)"),
    "weight missing": (drop_weight, r"1 missing key \(features.0.weight\)"),
    "weight of strings": (replace_array(WEIGHT, np.full((6, 1, 5, 5), "x")),
                          "features.0.weight: expected a numeric array, got dtype <U1"),
    "pickled member": (replace_array(WEIGHT, np.array([Payload()], dtype=object), allow_pickle=True),
                       "holds Python objects"),
    "NaN weights": (replace_array(WEIGHT, np.full((6, 1, 5, 5), np.nan, np.float32)), "non-finite values"),
    "metadata not a string": (replace_array(META_ENTRY, np.zeros(3)), "'__checkpoint__' is not a JSON string"),
    "unknown model": (set_config(model="no_such_model"), "no_such_model"),
    "model_state a list": (edit_tree(lambda t: t.__setitem__("model_state", [])), "'model_state' is a list"),
    "trained weights a list": (edit_tree(lambda t: t.__setitem__("training_model_state", [])),
                               "'training_model_state' is a list"),
}

# Broken only in what resuming training reads: the optimizer's and scheduler's state and the history.
RESUME_CASES: dict[str, tuple[Callable, str]] = {
    "optimizer buffer of another shape": (
        replace_array("optimizer_state/state/0/momentum_buffer", np.zeros((3, 3), np.float32)),
        r"'momentum_buffer' of parameter 0 has shape \(3, 3\)"),
    "optimizer lr a string": (optimizer_group(lr="fast"), "invalid hyperparameters: lr='fast'"),
    "optimizer momentum infinite": (optimizer_group(momentum=float("inf")), "momentum=inf"),
    "history of strings": (set_extra("history", ["a", "b"]), "history entry 0 is not an epoch record"),
    "epoch beyond history": (set_extra("epoch", 5), r"its epoch \(5\) and history \(2 entries\) disagree"),
    "no trained weights beside the average": (edit_tree(lambda t: t.pop("training_model_state")),
                                              "holds no training weights beside the averaged ones"),
    "NaN trained weights beside the average": (
        replace_array("training_model_state/" + WEIGHT.split("/", 1)[1], np.full((6, 1, 5, 5), np.nan, np.float32)),
        "non-finite values"),
}


def craft(run: Path, tmp_path: Path, step: Callable | FileEdit) -> Path:
    path, base = tmp_path / "crafted.npz", run / "checkpoint.npz"
    if isinstance(step, FileEdit):
        path.write_bytes(step.edit(base.read_bytes(), read_members(base)))
    else:
        write_members(path, step(read_members(base)))
    return path


def test_the_base_checkpoint_loads(run):
    assert load_trained_model(run / "checkpoint.npz").config.epochs == 2


@pytest.mark.parametrize("case", sorted(MODEL_CASES))
def test_loading_a_crafted_checkpoint_is_a_clear_error(run, tmp_path, case, capsys):
    step, message = MODEL_CASES[case]
    path = craft(run, tmp_path, step)
    with pytest.raises((CheckpointError, ModelCheckpointError), match=message) as info:
        load_trained_model(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    assert "unpickled" not in capsys.readouterr().out


@pytest.mark.parametrize("case", sorted(MODEL_CASES))
def test_every_script_refuses_a_crafted_checkpoint_in_one_line(run, tmp_path, case):
    path = craft(run, tmp_path, MODEL_CASES[case][0])
    for script, args in [("evaluate", ["--checkpoint", path]), ("predict", ["--checkpoint", path, "--index", "0"]),
                         ("visualize", ["--checkpoint", path, "--out", tmp_path / "g.svg"]),
                         ("digit_app", ["--checkpoint", path, "--port", "0"]), ("train", ["--resume", path])]:
        code, _, err = run_main(script, *args)
        assert code == 2, (script, err)
        assert str(path) in one_line_error(script, err), (script, err)
    assert not (tmp_path / "g.svg").exists()


@pytest.mark.parametrize("case", sorted(RESUME_CASES))
def test_resuming_from_a_crafted_checkpoint_is_a_clear_error(run, tmp_path, case):
    step, message = RESUME_CASES[case]
    path = craft(run, tmp_path, step)
    before = path.read_bytes()
    code, _, err = run_main("train", "--resume", path, "--no-progress")
    assert code == 2, err
    line = one_line_error("train", err)
    assert str(path) in line and re.search(message, line), line
    assert path.read_bytes() == before  # nothing was written over it


def test_a_deflate_bomb_is_refused_unread(run, tmp_path):
    """A 256 MiB member deflated into a ~256 KB file: refused from its claimed size."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, np.lib.format.header_data_from_array_1_0(np.zeros(1 << 26, np.float32)))
    path = tmp_path / "bomb.npz"
    write_members(path, read_members(run / "checkpoint.npz"))
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        with zf.open("extra/bomb.npy", "w", force_zip64=True) as member:
            member.write(header.getvalue())
            zeros = bytes(1 << 20)
            for _ in range(256):
                member.write(zeros)
    assert path.stat().st_size < 2_000_000
    with allocation_peak() as peak, pytest.raises(CheckpointError, match=r"bomb.npz: its members claim 26\d,\d{3},"
                                                                         r"\d{3} bytes uncompressed, more than a "
                                                                         r"[\d,]+-byte checkpoint may hold"):
        load_checkpoint(path)
    assert peak.bytes < 5_000_000, f"refusing the bomb took {peak.bytes:,} bytes"


def test_an_array_referenced_many_times_costs_nothing(run, tmp_path):
    path = craft(run, tmp_path, shared_member)
    with allocation_peak() as peak, pytest.raises(CheckpointError, match="referenced twice"):
        load_checkpoint(path)
    assert peak.bytes < 5_000_000, f"took {peak.bytes:,} bytes"


def test_fortran_ordered_and_non_contiguous_arrays_round_trip(tmp_path):
    from tinygrad_lenet.checkpoint import load, save
    a = np.asfortranarray(np.arange(12.0).reshape(3, 4))
    b = np.arange(20, dtype=np.int16).reshape(4, 5)[:, ::2]
    save(tmp_path / "c.npz", {"a": a, "b": b, "s": np.array(["x", "yz"]), "e": np.zeros((0, 3), np.float32)})
    out = load(tmp_path / "c.npz")
    np.testing.assert_array_equal(out["a"], a)
    np.testing.assert_array_equal(out["b"], b)
    assert list(out["s"]) == ["x", "yz"] and out["e"].shape == (0, 3) and out["e"].dtype == np.float32


# ------------------------------------------------------------------ code a checkpoint names
def code_cases(tmp_path: Path) -> dict[str, dict]:
    """Run configs naming code that would create `tmp_path/MARKER` if it ran."""
    marker = tmp_path / "MARKER"
    evil = tmp_path / "evil.py"
    evil.write_text(f"open({str(marker)!r}, 'w').close()\n\ndef Net():\n    open({str(marker)!r}, 'w').close()\n")
    return {
        "os:system": dict(model="os:system", model_args={"command": f"touch {marker}"}),
        "subprocess:call": dict(model="subprocess:call", model_args={"args": ["touch", str(marker)]}),
        "builtins:eval": dict(model="builtins:eval", model_args={"source": f"open({str(marker)!r}, 'w')"}),
        "a model file": dict(model=f"{evil}:Net", model_args={}),
        "a relative module": dict(model="..os:system", model_args={"command": f"touch {marker}"}),
        "a hidden module": dict(model=".hidden:X", model_args={}),
        "a path without .py": dict(model="../../etc/passwd:X", model_args={}),
    }


CODE_MESSAGES = {
    "os:system": r"it names model code \(os:system\), and loading it would import and run that code; to run the code "
                 r"a checkpoint names, pass --trust-checkpoint-code",
    "subprocess:call": r"it names model code \(subprocess:call\)",
    "builtins:eval": r"it names model code \(builtins:eval\)",
    "a model file": r"evil.py is your model file, name it with --model .*evil.py:Net",
    "a relative module": r"'..os' is a relative module path",
    "a hidden module": r"'.hidden' is a relative module path",
    "a path without .py": r"'../../etc/passwd' is neither a module path \(package.module, Python names joined by dots\) "
                          r"nor a .py file",
}


@pytest.mark.parametrize("case", sorted(CODE_MESSAGES))
def test_a_checkpoint_naming_code_runs_none_of_it(run, tmp_path, case):
    path = craft(run, tmp_path, set_config(model_sha256=None, **code_cases(tmp_path)[case]))
    with pytest.raises(ModelCheckpointError, match=CODE_MESSAGES[case]) as info:
        load_trained_model(path)
    assert str(info.value).startswith(f"cannot load {path}: ") and "\n" not in str(info.value)
    from viz.app import DigitPredictor
    with pytest.raises(ModelCheckpointError, match=CODE_MESSAGES[case]):
        DigitPredictor.from_checkpoint(path)
    for script, args in [("evaluate", ["--checkpoint", path]), ("predict", ["--checkpoint", path, "--index", "0"]),
                         ("export", ["--checkpoint", path, "--out", tmp_path / "m.onnx"]),
                         ("visualize", ["--checkpoint", path, "--out", tmp_path / "g.svg"]),
                         ("digit_app", ["--checkpoint", path, "--port", "0"]), ("train", ["--resume", path])]:
        code, _, err = run_main(script, *args)
        assert code == 2, (script, err)
        line = one_line_error(script, err)
        assert str(path) in line and re.search(CODE_MESSAGES[case], line), (script, line)
    assert not (tmp_path / "MARKER").exists()
    assert not (tmp_path / "m.onnx").exists() and not (tmp_path / "g.svg").exists()


def test_trusting_a_checkpoint_runs_the_code_it_names_and_naming_the_model_replaces_it(run, tmp_path):
    """The two ways to load code deliberately: the caller names the model, or trusts the file."""
    path = craft(run, tmp_path, set_config(model_sha256=None, **code_cases(tmp_path)["a model file"]))
    assert load_trained_model(path, model="lenet5").config.model == "lenet5"  # evil.py is never imported
    code, out, err = run_main("evaluate", "--checkpoint", path, "--model", "lenet5", "--test-subset", "8",
                              "--no-plots", "--data-dir", run.parent / "data")
    assert code == 0 and "accuracy:" in out, err
    assert not (tmp_path / "MARKER").exists()

    with pytest.raises(ModelCheckpointError, match="cannot rebuild its model"):  # evil.Net returns None
        load_trained_model(path, trust_code=True)
    assert (tmp_path / "MARKER").exists()  # consent given: the named file was imported
