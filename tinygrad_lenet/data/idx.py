"""The IDX file format of MNIST and Fashion-MNIST: parse, read (raw or gzipped) and write.

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number of
dimensions), one big-endian uint32 per dimension, then the values in C order, big-endian.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from ..atomic import atomic_write_bytes

# Type code -> dtype of the stored values (big-endian, as the format prescribes).
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODE_OF_KIND = {(dt.kind, dt.itemsize): code for code, dt in IDX_DTYPES.items()}


class IDXError(ValueError):
    """A file is not a well-formed IDX file (bad magic, wrong size, undecodable gzip)."""


def gunzip(data: bytes) -> tuple[bytes, str | None]:
    """Decompress gzip `data` as far as it goes: (bytes, None) or (partial bytes, what went wrong).

    Returning the partial output lets a caller report the checksum of a truncated file.
    """
    out: list[bytes] = []
    rest = data
    while rest:
        d = zlib.decompressobj(wbits=31)  # 31: gzip header and trailer
        try:
            out.append(d.decompress(rest))
        except zlib.error as e:
            return b"".join(out), f"corrupt gzip data ({e})"
        if not d.eof:
            return b"".join(out), "the gzip stream ends early (truncated file)"
        rest = d.unused_data  # a further gzip member, as `cat a.gz b.gz` makes
    return b"".join(out), None


def read_idx_bytes(path: str | os.PathLike) -> bytes:
    """The IDX bytes of `path`, gunzipped when its name ends in `.gz`."""
    path = Path(path)
    data = path.read_bytes()
    if path.suffix != ".gz":
        return data
    raw, problem = gunzip(data)
    if problem is not None:
        raise IDXError(f"{path}: {problem}")
    return raw


def parse_idx(data: bytes | bytearray | memoryview, name: str = "<bytes>") -> np.ndarray:
    """The array stored in IDX bytes, in native byte order; `name` labels error messages.

    Checks the magic number and that the byte count matches the dimensions exactly.
    """
    buf = memoryview(data)
    if len(buf) < 4:
        raise IDXError(f"{name}: {len(buf)} bytes is too short for an IDX file (needs a 4-byte magic number)")
    zero0, zero1, code, ndim = buf[0], buf[1], buf[2], buf[3]
    magic = int.from_bytes(buf[:4], "big")
    if zero0 != 0 or zero1 != 0 or code not in IDX_DTYPES or ndim == 0:
        raise IDXError(f"{name}: bad IDX magic number 0x{magic:08X} (expected 0x0000TTDD with type code TT in "
                       f"{{{', '.join(f'0x{c:02X}' for c in IDX_DTYPES)}}} and DD >= 1 dimensions)")
    header = 4 + 4 * ndim
    if len(buf) < header:
        raise IDXError(f"{name}: {len(buf)} bytes is too short for the header of a {ndim}-dimensional IDX file")
    shape = struct.unpack(f">{ndim}I", buf[4:header])
    dtype = IDX_DTYPES[code]
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(buf) != expected:
        what = "truncated" if len(buf) < expected else "has trailing bytes"
        raise IDXError(f"{name}: IDX file {what}: shape {shape} of {dtype.newbyteorder('=')} needs "
                       f"{expected} bytes, the file has {len(buf)}")
    arr = np.frombuffer(buf, dtype=dtype, offset=header).reshape(shape)
    return arr.astype(dtype.newbyteorder("="), copy=True)  # writable, native order, owns its memory


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """The array in the IDX file `path` (raw, or gzipped when the name ends in `.gz`)."""
    return parse_idx(read_idx_bytes(path), str(path))


def encode_idx(array: np.ndarray) -> bytes:
    """IDX bytes of `array` (uint8, int8, int16, int32, float32 or float64; at least 1-D)."""
    arr = np.asarray(array)
    code = _CODE_OF_KIND.get((arr.dtype.kind, arr.dtype.itemsize))
    if code is None or arr.ndim == 0 or arr.ndim > 255:
        raise IDXError(f"encode_idx: cannot store an array of dtype {arr.dtype} and shape {arr.shape} in IDX "
                       "(types: uint8, int8, int16, int32, float32, float64; 1 to 255 dimensions)")
    if any(n >= 2**32 for n in arr.shape):
        raise IDXError(f"encode_idx: shape {arr.shape} has a dimension too large for IDX (max 2**32 - 1)")
    header = struct.pack(">BBBB", 0, 0, code, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + np.ascontiguousarray(arr, dtype=IDX_DTYPES[code]).tobytes()


def write_idx(path: str | os.PathLike, array: np.ndarray) -> Path:
    """Write `array` as an IDX file, gzipped when `path` ends in `.gz`, atomically; returns the path."""
    path = Path(path)
    data = encode_idx(array)
    if path.suffix == ".gz":
        data = gzip.compress(data, compresslevel=6, mtime=0)  # mtime=0: same array, same bytes
    atomic_write_bytes(path, data)
    return path
