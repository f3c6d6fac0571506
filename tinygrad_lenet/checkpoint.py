"""Checkpoints: nested dicts of numpy arrays and JSON values in an .npz file,
written atomically and read without pickle.

Layout: every array is a `.npy` member of the zip, named by its key path joined
with "/" (`model_state/features.0.weight`); everything else (numbers, strings,
lists, None, e.g. epoch, config, RNG state) lives in one JSON document stored
as the string array `__checkpoint__`, where each array appears as
`{"__ndarray__": "<member name>"}`. Tuples come back as lists.

Writes go to a temporary file in the target's directory, which is flushed,
fsynced and then renamed over the target with `os.replace`, so a crash or kill
mid-write leaves the previous checkpoint intact (at worst a stray hidden
`.<name>.*.tmp` file remains).
"""

from __future__ import annotations

import json
import os
import zipfile
from typing import Any, Mapping

import numpy as np
from numpy.lib.npyio import NpzFile

from .atomic import atomic_write
from .tensor import Tensor

FORMAT = "tinygrad_lenet.checkpoint"
VERSION = 1
META_ENTRY = "__checkpoint__"
_ARRAY_MARK = "__ndarray__"
_SEP = "/"
_ZIP_MAGIC, _NPY_MAGIC = b"PK\x03\x04", b"\x93NUMPY"

PathLike = str | os.PathLike


class CheckpointError(ValueError):
    """The file is not a readable checkpoint, or a value cannot be stored in one."""


# ------------------------------------------------------------------ encoding
def _encode(node: Any, path: str, arrays: dict[str, np.ndarray]) -> Any:
    """The JSON skeleton of `node`, moving arrays into `arrays` by key path."""
    if isinstance(node, Tensor):
        node = node.data
    if isinstance(node, np.ndarray):
        if node.dtype.hasobject:
            raise CheckpointError(f"checkpoint: the array at '{path}' has dtype object, which would need pickle")
        if path in arrays:
            raise CheckpointError(f"checkpoint: two arrays map to the member name '{path}'; "
                                  f"avoid '{_SEP}' in keys")
        arrays[path] = node
        return {_ARRAY_MARK: path}
    if isinstance(node, Mapping):
        out = {}
        for k, v in node.items():
            if not isinstance(k, str):
                raise CheckpointError(f"checkpoint: keys must be strings, got {k!r} ({type(k).__name__}) "
                                      f"under '{path or '<root>'}'")
            if k == _ARRAY_MARK:
                raise CheckpointError(f"checkpoint: the key '{_ARRAY_MARK}' is reserved (under '{path or '<root>'}')")
            out[k] = _encode(v, f"{path}{_SEP}{k}" if path else k, arrays)
        return out
    if isinstance(node, (list, tuple)):
        return [_encode(v, f"{path}{_SEP}{i}", arrays) for i, v in enumerate(node)]
    if isinstance(node, np.generic):
        return node.item()
    if node is None or isinstance(node, (bool, int, float, str)):
        return node
    raise CheckpointError(f"checkpoint: cannot store {type(node).__name__} at '{path}' (allowed: numpy arrays, "
                          "Tensors, dicts with string keys, lists, tuples, numbers, strings, None)")


def _decode(node: Any, npz: Any, path: str) -> Any:
    if isinstance(node, dict):
        if set(node) == {_ARRAY_MARK}:
            member = node[_ARRAY_MARK]
            if member not in npz.files:
                raise CheckpointError(f"{path}: array member '{member}' is missing (corrupted checkpoint)")
            return npz[member]
        return {k: _decode(v, npz, path) for k, v in node.items()}
    if isinstance(node, list):
        return [_decode(v, npz, path) for v in node]
    return node


# ------------------------------------------------------------------ save/load
def save(path: PathLike, tree: Mapping[str, Any]) -> None:
    """Write a nested dict of arrays and JSON values to `path` (exactly that name), atomically."""
    if not isinstance(tree, Mapping):
        raise CheckpointError(f"checkpoint: save({os.fspath(path)!r}) needs a dict, got {type(tree).__name__}")
    arrays: dict[str, np.ndarray] = {}
    skeleton = _encode(tree, "", arrays)
    if META_ENTRY in arrays:
        raise CheckpointError(f"checkpoint: the key '{META_ENTRY}' is reserved")
    meta = json.dumps({"format": FORMAT, "version": VERSION, "tree": skeleton})

    with atomic_write(path) as f:
        with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
            for name, arr in [*arrays.items(), (META_ENTRY, np.array(meta))]:
                with zf.open(name + ".npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, np.asanyarray(arr), allow_pickle=False)


def load(path: PathLike) -> dict[str, Any]:
    """Read a file written by `save` (never unpickling anything); arrays come back
    as numpy arrays, tuples as lists."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint file not found: {path}")
    with open(path, "rb") as f:  # our handle, so it is closed even when np.load fails
        head = f.read(8)
        f.seek(0)
        if head and not head.startswith((_ZIP_MAGIC, _NPY_MAGIC)):  # else numpy's error suggests allow_pickle
            raise CheckpointError(f"{path}: not a readable checkpoint (not an .npz archive: it starts with {head!r})")
        try:
            archive = np.load(f, allow_pickle=False)
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
            raise CheckpointError(f"{path}: not a readable checkpoint ({type(e).__name__}: {e})") from e
        if not isinstance(archive, NpzFile):
            raise CheckpointError(f"{path}: not a tinygrad_lenet checkpoint (a single .npy array, not an .npz archive)")
        with archive as npz:
            if META_ENTRY not in npz.files:
                raise CheckpointError(f"{path}: not a tinygrad_lenet checkpoint (no '{META_ENTRY}' entry)")
            try:
                meta = json.loads(str(npz[META_ENTRY][()]))
                if not isinstance(meta, dict) or meta.get("format") != FORMAT:
                    raise CheckpointError(f"{path}: not a tinygrad_lenet checkpoint (format {meta!r:.80})")
                if meta.get("version") != VERSION:
                    raise CheckpointError(f"{path}: checkpoint version {meta.get('version')!r} is not supported "
                                          f"(this code reads version {VERSION})")
                return _decode(meta["tree"], npz, path)
            except CheckpointError:
                raise
            except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError) as e:
                raise CheckpointError(f"{path}: corrupted checkpoint ({type(e).__name__}: {e})") from e


def save_checkpoint(path: PathLike, *, model_state: Mapping[str, Any], optimizer_state: Mapping[str, Any] | None = None,
                    scheduler_state: Mapping[str, Any] | None = None, extra: Mapping[str, Any] | None = None) -> None:
    """Save a training checkpoint: model (and optionally optimizer and scheduler)
    state dicts plus `extra` metadata such as epoch, config and RNG state."""
    tree: dict[str, Any] = {"model_state": model_state}
    for key, value in (("optimizer_state", optimizer_state), ("scheduler_state", scheduler_state), ("extra", extra)):
        if value is not None:
            tree[key] = value
    save(path, tree)


def load_checkpoint(path: PathLike) -> dict[str, Any]:
    """Read a checkpoint written by `save_checkpoint`: a dict with "model_state",
    "optimizer_state" and "scheduler_state" (None when not saved) and "extra" ({} when not saved)."""
    tree = load(path)
    if "model_state" not in tree:
        raise CheckpointError(f"{os.fspath(path)}: no 'model_state' in this checkpoint (keys: {sorted(tree)})")
    return {"model_state": tree["model_state"], "optimizer_state": tree.get("optimizer_state"),
            "scheduler_state": tree.get("scheduler_state"), "extra": tree.get("extra", {})}
