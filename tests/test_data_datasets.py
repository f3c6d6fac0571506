"""load_mnist on small fake data sets: search order, checksums, consistency checks, errors."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import os
import socket
from pathlib import Path

import numpy as np
import pytest

from tinygrad_lenet.data import (
    DATASETS,
    ENV_VAR,
    ChecksumError,
    DatasetNotFoundError,
    IDXError,
    cache_dir,
    encode_idx,
    get_dataset_spec,
    load_mnist,
    locate_files,
    write_fake_dataset,
    write_idx,
)


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    """No real data, cache or network: env var unset, cache in tmp, the real specs restorable."""
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    for name, spec in list(DATASETS.items()):  # no real mirror or system directory is ever touched
        monkeypatch.setitem(DATASETS, name, dataclasses.replace(spec, mirrors=(), system_dirs=()))


def fake(monkeypatch, directory, dataset="mnist", **kw):
    spec = write_fake_dataset(directory, dataset, **kw)
    monkeypatch.setitem(DATASETS, spec.name, spec)
    return spec


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


@pytest.mark.parametrize("gz", [True, False])
def test_loads_fake_dataset_from_root(tmp_path, monkeypatch, gz):
    fake(monkeypatch, tmp_path / "d", n_train=30, n_test=10, gz=gz)
    images, labels = load_mnist("train", root=tmp_path / "d")
    assert images.shape == (30, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (30,) and labels.dtype == np.uint8 and labels.max() < 10
    test_images, test_labels = load_mnist("test", root=tmp_path / "d")
    assert test_images.shape == (10, 28, 28) and test_labels.shape == (10,)


def test_search_order_root_then_env_then_cache_then_system(tmp_path, monkeypatch):
    places = {k: tmp_path / k for k in ("root", "env", "system")}
    places["cache"] = cache_dir("mnist")
    for d in places.values():
        spec = write_fake_dataset(d, "mnist")  # same seed: the same (valid) files everywhere
    monkeypatch.setitem(DATASETS, "mnist", dataclasses.replace(spec, system_dirs=(str(places["system"]),)))
    monkeypatch.setenv(ENV_VAR, str(places["env"]))

    def source():
        return locate_files("test", download=False)[0].parent

    assert locate_files("test", root=places["root"], download=False)[0].parent == places["root"]
    assert source() == places["env"]
    monkeypatch.delenv(ENV_VAR)
    assert source() == places["cache"]
    for f in places["cache"].iterdir():
        f.unlink()
    assert source() == places["system"]


def test_dataset_subdirectory_is_preferred(tmp_path, monkeypatch):
    fake(monkeypatch, tmp_path / "mnist", seed=0)
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    assert locate_files("train", download=False)[0].parent == tmp_path / "mnist"


def test_root_without_files_falls_back_to_the_next_places(tmp_path, monkeypatch):
    fake(monkeypatch, tmp_path / "env")
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "env"))
    empty = tmp_path / "empty"
    assert locate_files("train", root=empty, download=False)[0].parent == tmp_path / "env"
    monkeypatch.delenv(ENV_VAR)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "no-cache"))
    with pytest.raises(DatasetNotFoundError) as e:
        load_mnist("train", root=empty, download=False)
    message = str(e.value)
    assert f"{empty} (root argument)" in message and "no-cache" in message
    assert "download=False" in message


def test_checksum_mismatch_names_file_and_both_checksums(tmp_path, monkeypatch):
    spec = fake(monkeypatch, tmp_path)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    images = np.zeros((40, 28, 28), np.uint8)
    images[0, 0, 0] = 1
    write_idx(path, images)  # well-formed, but not the expected bytes
    actual = hashlib.sha256(encode_idx(images)).hexdigest()
    with pytest.raises(ChecksumError) as e:
        load_mnist("train", root=tmp_path)
    message = str(e.value)
    assert str(path) in message and spec.files["train"][0].sha256 in message and actual in message
    assert "truncated or corrupted" in message


def test_real_checksum_constant_is_checked(tmp_path):
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(10000, np.uint8))
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", np.zeros((10000, 28, 28), np.uint8))
    expected = get_dataset_spec("mnist").files["test"][0].sha256
    assert expected == "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"
    with pytest.raises(ChecksumError, match=f"t10k-images-idx3-ubyte.gz: .*expected {expected}"):
        load_mnist("test", root=tmp_path, download=False)


def test_truncated_gzip_is_a_checksum_error_naming_the_file(tmp_path, monkeypatch):
    spec = fake(monkeypatch, tmp_path)
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-12])
    with pytest.raises(ChecksumError) as e:
        load_mnist("train", root=tmp_path)
    message = str(e.value)
    assert message.startswith(f"{path}: checksum mismatch")
    assert f"expected {spec.files['train'][1].sha256}" in message and "gzip stream ends early" in message


def test_truncated_raw_file_is_a_checksum_error(tmp_path, monkeypatch):
    fake(monkeypatch, tmp_path, gz=False)
    path = tmp_path / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(ChecksumError, match=r"t10k-images-idx3-ubyte: checksum mismatch.*\(1000 bytes\)"):
        load_mnist("test", root=tmp_path)


def test_image_and_label_counts_must_match(tmp_path, monkeypatch):
    spec = write_fake_dataset(tmp_path, "mnist", n_train=12)
    labels = np.zeros(11, np.uint8)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", labels)
    raw = encode_idx(labels)
    lbl = dataclasses.replace(spec.files["train"][1], sha256=hashlib.sha256(raw).hexdigest())
    monkeypatch.setitem(DATASETS, "mnist", dataclasses.replace(
        spec, files={**spec.files, "train": (spec.files["train"][0], lbl)}))
    with pytest.raises(IDXError, match=r"has 12 images but .*train-labels-idx1-ubyte.gz has 11 labels"):
        load_mnist("train", root=tmp_path)


def test_bad_magic_in_a_verified_file_is_reported(tmp_path, monkeypatch):
    spec = write_fake_dataset(tmp_path, "mnist")
    bad = b"\x00\x00\x08\x09" + b"\x00" * 40  # 9 dimensions: header too short
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(bad))
    lbl = dataclasses.replace(spec.files["test"][1], sha256=hashlib.sha256(bad).hexdigest(), size=len(bad))
    monkeypatch.setitem(DATASETS, "mnist", dataclasses.replace(
        spec, files={**spec.files, "test": (spec.files["test"][0], lbl)}))
    with pytest.raises(IDXError, match="t10k-labels-idx1-ubyte.gz"):
        load_mnist("test", root=tmp_path)


def test_other_datasets_directory_is_skipped_in_search_but_an_error_as_root(tmp_path, monkeypatch):
    fake(monkeypatch, tmp_path / "fashion", "fashion-mnist", seed=1)
    fake(monkeypatch, cache_dir("mnist"), "mnist", seed=2)
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "fashion"))  # same file names, other data set
    assert locate_files("train", download=False)[0].parent == cache_dir("mnist")
    with pytest.raises(ChecksumError, match="holds Fashion-MNIST's train-images-idx3-ubyte, not MNIST's"):
        load_mnist("train", root=tmp_path / "fashion")


def test_offline_error_lists_places_and_mirrors_and_leaves_nothing(tmp_path, monkeypatch):
    url = closed_port_url()
    spec = DATASETS["mnist"]
    monkeypatch.setitem(DATASETS, "mnist", dataclasses.replace(spec, mirrors=(url,)))
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "nowhere"))
    with pytest.raises(DatasetNotFoundError) as e:
        load_mnist("train", progress=False)
    message = str(e.value)
    for expected in (str(tmp_path / "nowhere"), str(cache_dir("mnist")), url + "train-images-idx3-ubyte.gz",
                     ENV_VAR, "train-labels-idx1-ubyte.gz", "--data-dir <directory> in the scripts"):
        assert expected in message
    assert not cache_dir("mnist").exists()  # the directory made for the download is removed again


def test_offline_error_says_env_var_is_unset():
    with pytest.raises(DatasetNotFoundError, match=rf"\${ENV_VAR}: not set"):
        load_mnist("test")


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown split 'val'"):
        load_mnist("val")
    with pytest.raises(ValueError, match="unknown dataset 'cifar'"):
        load_mnist("train", dataset="cifar")
    assert get_dataset_spec("Fashion_MNIST").name == "fashion-mnist"


def test_cache_dir_respects_xdg_and_home(tmp_path, monkeypatch):
    assert cache_dir("fashion-mnist") == tmp_path / "xdg" / "tinygrad_lenet" / "fashion-mnist"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir("mnist") == Path(tmp_path / "home" / ".cache" / "tinygrad_lenet" / "mnist")
    assert os.path.isabs(cache_dir())
