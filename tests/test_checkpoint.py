"""Tests for `tinygrad_lenet.checkpoint`: round trips of nested trees and of
training state, atomic replacement (an error or a SIGKILL mid-write leaves the
old checkpoint loadable), refusal to unpickle, and clear errors."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tinygrad_lenet import Tensor, manual_seed, nn, optim, random
from tinygrad_lenet import functional as F
from tinygrad_lenet.atomic import atomic_write_text
from tinygrad_lenet.checkpoint import CheckpointError, load, load_checkpoint, save, save_checkpoint
from tinygrad_lenet.optim.lr_scheduler import StepLR

REPO = Path(__file__).resolve().parents[1]


def test_nested_tree_round_trip(tmp_path):
    tree = {
        "weights": {"features.0.weight": np.arange(6, dtype=np.float32).reshape(2, 3),
                    "counts": np.array([1, 2], dtype=np.int64), "mask": np.array([True, False])},
        "list": [np.zeros(2, np.float64), {"deep": np.ones((1, 1), np.float32)}, 3],
        "epoch": 7, "lr": 0.1, "name": "lenet5", "done": False, "nothing": None, "nan": float("nan"),
        "pair": (1, "a"), "big": 2 ** 100, "np_scalar": np.float32(0.5),
        "tensor": Tensor(np.ones(3, np.float32)),
    }
    path = tmp_path / "tree.ckpt"
    save(path, tree)
    out = load(path)
    assert out["weights"]["features.0.weight"].dtype == np.float32
    np.testing.assert_array_equal(out["weights"]["features.0.weight"], tree["weights"]["features.0.weight"])
    assert out["weights"]["counts"].dtype == np.int64 and out["weights"]["mask"].dtype == bool
    np.testing.assert_array_equal(out["list"][1]["deep"], np.ones((1, 1)))
    assert out["list"][2] == 3 and out["list"][0].dtype == np.float64
    assert (out["epoch"], out["lr"], out["name"], out["done"], out["nothing"]) == (7, 0.1, "lenet5", False, None)
    assert np.isnan(out["nan"]) and out["pair"] == [1, "a"] and out["big"] == 2 ** 100
    assert out["np_scalar"] == 0.5 and isinstance(out["np_scalar"], float)
    np.testing.assert_array_equal(out["tensor"], np.ones(3))
    assert list(out) == list(tree)  # order kept
    assert os.listdir(tmp_path) == ["tree.ckpt"]  # no temp file left behind


def test_training_checkpoint_restores_model_optimizer_scheduler_and_rng(tmp_path):
    manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = StepLR(opt, step_size=2, gamma=0.5)
    x, y = Tensor(np.random.default_rng(0).standard_normal((6, 3)).astype(np.float32)), np.array([0, 1] * 3)

    def train_step(m, o, s):
        o.zero_grad()
        F.cross_entropy(m(x), y).backward()
        o.step()
        s.step()

    for _ in range(3):
        train_step(model, opt, sched)
    path = tmp_path / "checkpoint.npz"
    save_checkpoint(path, model_state=model.state_dict(), optimizer_state=opt.state_dict(),
                    scheduler_state=sched.state_dict(),
                    extra={"epoch": 3, "config": {"lr": 0.1}, "rng": random.get_state()})
    rng_draw = random.default_generator().random()
    for _ in range(2):
        train_step(model, opt, sched)

    ckpt = load_checkpoint(path)
    assert ckpt["extra"]["epoch"] == 3 and ckpt["extra"]["config"] == {"lr": 0.1}
    manual_seed(123)
    model2 = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    model2.load_state_dict(ckpt["model_state"])
    opt2 = optim.SGD(model2.parameters(), lr=0.1, momentum=0.9)
    opt2.load_state_dict(ckpt["optimizer_state"])
    sched2 = StepLR(opt2, step_size=2, gamma=0.5)
    sched2.load_state_dict(ckpt["scheduler_state"])
    random.set_state(ckpt["extra"]["rng"])
    assert random.default_generator().random() == rng_draw
    for _ in range(2):
        train_step(model2, opt2, sched2)
    for (k, a), b in zip(model.state_dict().items(), model2.state_dict().values()):
        np.testing.assert_array_equal(a, b, err_msg=k)
    assert sched2.get_last_lr() == sched.get_last_lr()


def test_optional_parts_default_to_none(tmp_path):
    save_checkpoint(tmp_path / "c", model_state={"w": np.ones(1)})
    ckpt = load_checkpoint(tmp_path / "c")
    assert ckpt["optimizer_state"] is None and ckpt["scheduler_state"] is None and ckpt["extra"] == {}


def test_loading_another_architecture_lists_the_mismatches(tmp_path):
    small = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    save_checkpoint(tmp_path / "c", model_state=small.state_dict())
    other = nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 2), nn.ReLU(), nn.Linear(2, 2))
    with pytest.raises(nn.StateDictError) as info:
        other.load_state_dict(load_checkpoint(tmp_path / "c")["model_state"])
    msg = str(info.value)
    assert "missing key: 4.weight" in msg and "missing key: 4.bias" in msg
    assert "size mismatch for 0.weight: expected shape (5, 3), got (4, 3)" in msg
    assert "size mismatch for 2.weight: expected shape (2, 5), got (2, 4)" in msg


# ------------------------------------------------------------------ atomicity
def test_error_mid_write_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "c.npz"
    save(path, {"version": 1, "a": np.zeros(10), "b": np.zeros(10)})
    original = np.lib.format.write_array
    calls = []

    def failing_write_array(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OSError("disk full (simulated)")
        return original(*args, **kwargs)

    monkeypatch.setattr(np.lib.format, "write_array", failing_write_array)
    with pytest.raises(OSError, match="simulated"):
        save(path, {"version": 2, "a": np.ones(10), "b": np.ones(10)})
    assert len(calls) == 2
    assert load(path)["version"] == 1 and not load(path)["a"].any()
    assert os.listdir(tmp_path) == ["c.npz"]  # the temp file was removed


WRITER = """
import sys
import numpy as np
from tinygrad_lenet.checkpoint import save
i = 0
while True:
    i += 1
    save(sys.argv[1], {"step": i, "big": np.full(400_000, i, np.float32), "tail": np.full(1000, i)})
    print(i, flush=True)
"""


def test_sigkill_during_writes_never_corrupts_the_checkpoint(tmp_path):
    path = tmp_path / "c.npz"
    save(path, {"step": 0, "big": np.zeros(400_000, np.float32), "tail": np.zeros(1000, np.int64)})
    rng = np.random.default_rng(0)
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    for _ in range(2):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, env=env)
        try:
            for _ in range(int(rng.integers(1, 4))):  # let a few saves complete
                assert proc.stdout.readline(), "the writer process died"
            time.sleep(float(rng.uniform(0, 0.004)))
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            proc.stdout.close()
        ckpt = load(path)
        step = ckpt["step"]
        assert step >= 1
        assert (ckpt["big"] == step).all() and (ckpt["tail"] == step).all()
    # Whatever temporary file a killed writer left is removed by the next successful write.
    save(path, {"step": -1})
    assert os.listdir(tmp_path) == ["c.npz"]


def test_stale_temporary_files_of_dead_writers_are_removed_by_the_next_write(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    stale = tmp_path / f".c.npz.{dead_pid}.k2j3h4.tmp"
    live = tmp_path / f".c.npz.{os.getppid()}.a8b9c0.tmp"  # a writer that is still running
    other = tmp_path / f".d.npz.{dead_pid}.zzzzzz.tmp"  # another file's
    for f in (stale, live, other):
        f.write_bytes(b"half a checkpoint")
    save(tmp_path / "c.npz", {"a": 1})
    assert sorted(os.listdir(tmp_path)) == sorted([live.name, other.name, "c.npz"])


def test_written_file_respects_umask(tmp_path):
    atomic_write_text(tmp_path / "metrics.json", '{"a": 1}\n')
    assert (tmp_path / "metrics.json").read_text() == '{"a": 1}\n'
    mask = os.umask(0)
    os.umask(mask)
    assert (tmp_path / "metrics.json").stat().st_mode & 0o777 == 0o666 & ~mask


# -------------------------------------------------------------------- pickle
UNPICKLED: list[str] = []


def _record_unpickling(tag: str) -> str:
    UNPICKLED.append(tag)
    return tag


class _Payload:
    def __reduce__(self):
        return (_record_unpickling, ("payload ran",))


def test_object_arrays_are_refused_on_save(tmp_path):
    with pytest.raises(CheckpointError, match="'weights/w' has dtype object, which would need pickle"):
        save(tmp_path / "c", {"weights": {"w": np.array([{"a": 1}], dtype=object)}})
    assert not os.listdir(tmp_path)


def test_pickled_members_are_never_loaded(tmp_path):
    path = tmp_path / "evil.npz"
    save(path, {"w": np.zeros(2)})
    # Replace the array member with a pickled object array (what np.savez would write).
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.array([_Payload()], dtype=object), allow_pickle=True)
    with zipfile.ZipFile(path) as src:
        members = {n: src.read(n) for n in src.namelist()}
    members["w.npy"] = buf.getvalue()
    with zipfile.ZipFile(path, "w") as dst:
        for n, data in members.items():
            dst.writestr(n, data)
    with pytest.raises(CheckpointError, match="evil.npz"):
        load(path)
    assert UNPICKLED == []


# -------------------------------------------------------------------- errors
def test_missing_file_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="checkpoint file not found: .*nope.npz"):
        load_checkpoint(tmp_path / "nope.npz")
    with pytest.raises(FileNotFoundError, match="directory .*no_dir does not exist"):
        save(tmp_path / "no_dir" / "c.npz", {"a": 1})


@pytest.mark.parametrize("write, message", [
    (lambda p: p.write_text("hello, not a checkpoint"), "not a readable checkpoint"),
    (lambda p: p.write_bytes(b""), "not a readable checkpoint"),
    (lambda p: np.save(p.with_suffix(".npy"), np.zeros(3)) or p.with_suffix(".npy").rename(p),
     "a single .npy array"),
    (lambda p: np.savez(p.with_suffix(".npz"), a=np.zeros(3)) or p.with_suffix(".npz").rename(p),
     "no '__checkpoint__' entry"),
])
def test_non_checkpoint_files_give_a_clear_error(tmp_path, write, message):
    path = tmp_path / "file.ckpt"
    write(path)
    with pytest.raises(CheckpointError, match=message) as info:
        load(path)
    assert str(path) in str(info.value)


def test_a_file_of_another_kind_is_not_reported_as_pickled_data(tmp_path):
    path = tmp_path / "notes.npz"
    path.write_text("hello, not a checkpoint")
    with pytest.raises(CheckpointError, match=r"not a readable checkpoint \(not an \.npz archive: it starts with "
                                              r"b'hello, n'\)") as info:
        load(path)
    assert "pickle" not in str(info.value)


def test_truncated_checkpoint_is_reported(tmp_path):
    path = tmp_path / "c.npz"
    save(path, {"a": np.arange(1000.0), "b": 1})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="c.npz"):
        load(path)


def test_model_state_is_required_by_load_checkpoint(tmp_path):
    save(tmp_path / "c", {"weights": np.ones(1)})
    with pytest.raises(CheckpointError, match="no 'model_state'"):
        load_checkpoint(tmp_path / "c")


@pytest.mark.parametrize("tree, message", [
    ({1: np.zeros(1)}, "keys must be strings, got 1"),
    ({"a": {"b": {1, 2}}}, "cannot store set at 'a/b'"),
    ({"a/b": np.zeros(1), "a": {"b": np.zeros(1)}}, "two arrays map to the member name 'a/b'"),
    ({"__ndarray__": 1}, "reserved"),
])
def test_unstorable_values_are_rejected(tmp_path, tree, message):
    with pytest.raises(CheckpointError, match=message):
        save(tmp_path / "c", tree)
