"""Checkpoints: nested dicts of numpy arrays and JSON values in an .npz file,
written atomically and read without pickle.

Layout: every array is a `.npy` member of the zip, named by its key path joined
with "/" (`model_state/features.0.weight`); everything else (numbers, strings,
lists, None, e.g. epoch, config, RNG state) lives in one JSON document stored
as the string array `__checkpoint__`, where each array appears as
`{"__ndarray__": "<member name>"}`. Tuples come back as lists.

Writes go to a temporary file in the target's directory, which is flushed,
fsynced and then renamed over the target with `os.replace`, so a crash or kill
mid-write leaves the previous checkpoint intact (a stray hidden `.<name>.*.tmp`
file left by a killed write is removed by the next successful write).

Reading trusts nothing in the file: members are parsed with numpy's header reader
(never unpickled) and checked against their stored sizes before memory is
allocated (see `load`), and every problem is a `CheckpointError` naming the file.
"""

from __future__ import annotations

import json
import math
import os
import zipfile
from typing import Any, Mapping

import numpy as np

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
    as numpy arrays, tuples as lists.

    A hostile file costs bounded memory: every member's header is checked against
    its stored size before an array is allocated, all members together may claim
    at most MAX_EXPANSION times the file's size (checkpoints are written
    uncompressed, so a deflate bomb is refused unread), each array is referenced
    once, and the JSON document may nest at most MAX_DEPTH levels."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint file not found: {path}")
    with open(path, "rb") as f:
        head = f.read(8)
        f.seek(0)
        if head.startswith(_NPY_MAGIC):
            raise CheckpointError(f"{path}: not a tinygrad_lenet checkpoint (a single .npy array, not an .npz archive)")
        if not head.startswith(_ZIP_MAGIC):
            raise CheckpointError(f"{path}: not a readable checkpoint (not an .npz archive: it starts with {head!r})")
        try:
            with zipfile.ZipFile(f) as zf:
                return _Reader(path, zf, os.fstat(f.fileno()).st_size).read()
        except CheckpointError:
            raise
        except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError, RecursionError) as e:
            raise CheckpointError(f"{path}: corrupted checkpoint ({type(e).__name__}: {e})") from None


MAX_EXPANSION = 4  # members may claim this many times the file's size (stored members claim about 1x)
MAX_EXPANSION_SLACK = 1 << 20  # ... plus this many bytes, for tiny files
MAX_MEMBERS = 100_000
MAX_DEPTH = 64
_READ_CHUNK = 1 << 20


class _Reader:
    """One checkpoint archive being read: checks the members' claims, then decodes the tree."""

    def __init__(self, path: str, zf: zipfile.ZipFile, file_size: int):
        self.path, self.zf = path, zf
        infos = zf.infolist()
        if len(infos) > MAX_MEMBERS:
            raise CheckpointError(f"{path}: {len(infos)} archive members, more than a checkpoint may hold ({MAX_MEMBERS})")
        self.members: dict[str, zipfile.ZipInfo] = {}
        for info in infos:
            if not info.filename.endswith(".npy"):
                raise CheckpointError(f"{path}: archive member {info.filename!r} is not an .npy array "
                                      "(not a tinygrad_lenet checkpoint)")
            self.members[info.filename[:-4]] = info
        claimed = sum(info.file_size for info in infos)
        budget = MAX_EXPANSION * file_size + MAX_EXPANSION_SLACK
        if claimed > budget:
            raise CheckpointError(f"{path}: its members claim {claimed:,} bytes uncompressed, more than a "
                                  f"{file_size:,}-byte checkpoint may hold ({budget:,}); refused unread")
        self.used: set[str] = set()

    def read(self) -> dict[str, Any]:
        if META_ENTRY not in self.members:
            raise CheckpointError(f"{self.path}: not a tinygrad_lenet checkpoint (no '{META_ENTRY}' entry)")
        meta_array = self.array(META_ENTRY)
        if meta_array.shape != () or meta_array.dtype.kind != "U":
            raise CheckpointError(f"{self.path}: '{META_ENTRY}' is not a JSON string "
                                  f"(a {meta_array.dtype} array of shape {meta_array.shape})")
        try:
            meta = json.loads(str(meta_array[()]))
        except RecursionError:
            raise CheckpointError(f"{self.path}: its JSON document nests too deeply") from None
        except ValueError as e:
            raise CheckpointError(f"{self.path}: its JSON document is invalid ({e})") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise CheckpointError(f"{self.path}: not a tinygrad_lenet checkpoint (format {meta!r:.80})")
        if meta.get("version") != VERSION:
            raise CheckpointError(f"{self.path}: checkpoint version {meta.get('version')!r} is not supported "
                                  f"(this code reads version {VERSION})")
        tree = self.decode(meta.get("tree"), 0)
        if not isinstance(tree, dict):
            raise CheckpointError(f"{self.path}: its tree is a {type(tree).__name__}, not a mapping")
        return tree

    def decode(self, node: Any, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise CheckpointError(f"{self.path}: its tree nests deeper than {MAX_DEPTH} levels")
        if isinstance(node, dict):
            if set(node) == {_ARRAY_MARK}:
                return self.array(node[_ARRAY_MARK], referenced=True)
            return {k: self.decode(v, depth + 1) for k, v in node.items()}
        if isinstance(node, list):
            return [self.decode(v, depth + 1) for v in node]
        return node

    def array(self, name: Any, referenced: bool = False) -> np.ndarray:
        """Member `name` as an array, allocated only once its header agrees with its stored size."""
        if not isinstance(name, str) or name not in self.members:
            raise CheckpointError(f"{self.path}: array member {name!r:.80} is missing (corrupted checkpoint)")
        if referenced:
            if name in self.used:
                raise CheckpointError(f"{self.path}: array member '{name}' is referenced twice (corrupted checkpoint)")
            self.used.add(name)
        info = self.members[name]
        with self.zf.open(info) as member:
            version = np.lib.format.read_magic(member)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(member)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(member)
            else:
                raise CheckpointError(f"{self.path}: member '{name}' has .npy format {version}, not 1.0 or 2.0")
            if dtype.hasobject:
                raise CheckpointError(f"{self.path}: member '{name}' holds Python objects (dtype {dtype}), which "
                                      "would need pickle; refused")
            claimed = math.prod(shape) * dtype.itemsize
            stored = info.file_size - member.tell()
            if claimed != stored:
                raise CheckpointError(f"{self.path}: member '{name}' claims {claimed:,} bytes (shape {shape}, "
                                      f"{dtype}) but holds {stored:,} (corrupted checkpoint)")
            out = np.empty(shape[::-1] if fortran else shape, dtype=dtype)
            view, filled = memoryview(out.reshape(-1).view(np.uint8)), 0
            while filled < claimed:
                chunk = member.read(min(_READ_CHUNK, claimed - filled))
                if not chunk:
                    raise CheckpointError(f"{self.path}: member '{name}' ends early (truncated checkpoint)")
                view[filled:filled + len(chunk)] = chunk
                filled += len(chunk)
            member.read(1)  # reaching the end makes zipfile check the CRC
        return out.T if fortran else out


def save_checkpoint(path: PathLike, *, model_state: Mapping[str, Any], optimizer_state: Mapping[str, Any] | None = None,
                    scheduler_state: Mapping[str, Any] | None = None, extra: Mapping[str, Any] | None = None,
                    training_model_state: Mapping[str, Any] | None = None) -> None:
    """Save a training checkpoint: model (and optionally optimizer and scheduler)
    state dicts plus `extra` metadata such as epoch, config and RNG state. When the model
    saved is an average of the trained weights, `training_model_state` holds those
    (what training continues from)."""
    tree: dict[str, Any] = {"model_state": model_state}
    for key, value in (("optimizer_state", optimizer_state), ("scheduler_state", scheduler_state), ("extra", extra),
                       ("training_model_state", training_model_state)):
        if value is not None:
            tree[key] = value
    save(path, tree)


def load_checkpoint(path: PathLike) -> dict[str, Any]:
    """Read a checkpoint written by `save_checkpoint`: a dict with "model_state",
    "optimizer_state", "scheduler_state" and "training_model_state" (None when not saved)
    and "extra" ({} when not saved)."""
    tree = load(path)
    if "model_state" not in tree:
        raise CheckpointError(f"{os.fspath(path)}: no 'model_state' in this checkpoint (keys: {sorted(tree)})")
    parts = {"model_state": tree["model_state"], "optimizer_state": tree.get("optimizer_state"),
             "scheduler_state": tree.get("scheduler_state"), "extra": tree.get("extra", {}),
             "training_model_state": tree.get("training_model_state")}
    optional = ("optimizer_state", "scheduler_state", "training_model_state")
    for key, value in parts.items():
        if not isinstance(value, dict) and not (value is None and key in optional):
            raise CheckpointError(f"{os.fspath(path)}: its '{key}' is a {type(value).__name__}, not a mapping")
    for key in ("model_state", "training_model_state"):
        bad = [k for k, v in (parts[key] or {}).items() if not isinstance(v, np.ndarray)]
        if bad:
            raise CheckpointError(f"{os.fspath(path)}: its '{key}' holds {type(parts[key][bad[0]]).__name__} "
                                  f"at '{bad[0]}', not an array")
    return parts
