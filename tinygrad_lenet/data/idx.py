"""The IDX file format of MNIST and Fashion-MNIST: parse, read (raw or gzipped) and write.

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number of
dimensions), one big-endian uint32 per dimension, then the values in C order, big-endian.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from pathlib import Path
from typing import Callable

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


class GunzipStream:
    """Decompress gzip data fed in pieces (several concatenated members allowed, as
    `cat a.gz b.gz` makes), handing the output to `sink` and never producing more
    than `limit` + 1 bytes: a decompression bomb stops at its expected size. After
    `finish()`, `problem` says what went wrong (None when the stream was whole)."""

    def __init__(self, sink: Callable[[bytes], object], limit: int | None = None):
        self.sink, self.limit = sink, limit
        self.size, self.problem = 0, None
        self._d, self._started = zlib.decompressobj(wbits=31), False  # 31: gzip header and trailer

    def feed(self, data: bytes) -> None:
        """Decompress the next chunk of the gzip stream, within the output limit."""
        while data and self.problem is None:
            self._started = True
            room = 0 if self.limit is None else self.limit + 1 - self.size
            try:
                out = self._d.decompress(data, room)
            except zlib.error as e:
                self.problem = f"corrupt gzip data ({e})"
                return
            self.size += len(out)
            self.sink(out)
            if self.limit is not None and self.size > self.limit:
                self.problem = f"it decompresses to more than the expected {self.limit:,} bytes"
                return
            data = self._d.unconsumed_tail
            if self._d.eof:  # a further member may follow
                data = self._d.unused_data
                self._d, self._started = zlib.decompressobj(wbits=31), False

    def finish(self) -> str | None:
        """What went wrong with the whole stream, or None."""
        if self.problem is None and self._started:
            self.problem = "the gzip stream ends early (truncated file)"
        return self.problem


def gunzip(data: bytes, limit: int | None = None) -> tuple[bytes, str | None]:
    """Decompress gzip `data` as far as it goes (at most `limit` + 1 bytes):
    (bytes, None) or (partial bytes, what went wrong).

    Returning the partial output lets a caller report the checksum of a truncated file.
    """
    out: list[bytes] = []
    stream = GunzipStream(out.append, limit)
    stream.feed(data)
    return b"".join(out), stream.finish()


def idx_size(header: bytes | bytearray | memoryview) -> int | None:
    """The total byte count an IDX file claims in its header, or None while the
    header is incomplete or not IDX (parse_idx then says what is wrong)."""
    if len(header) < 4 or header[0] or header[1] or header[2] not in IDX_DTYPES or header[3] == 0:
        return None
    ndim = header[3]
    if len(header) < 4 + 4 * ndim:
        return None
    shape = struct.unpack(f">{ndim}I", header[4:4 + 4 * ndim])
    return 4 + 4 * ndim + math.prod(shape) * IDX_DTYPES[header[2]].itemsize


def read_idx_bytes(path: str | os.PathLike) -> bytes:
    """The IDX bytes of `path`, gunzipped when its name ends in `.gz`. A gzipped file
    is decompressed in pieces, no further than the size its IDX header claims."""
    path = Path(path)
    if path.suffix != ".gz":
        return path.read_bytes()
    out = bytearray()
    stream = GunzipStream(out.extend)
    with open(path, "rb") as f:
        # small pieces until the header is known (so a bomb cannot expand far), then large ones
        while stream.problem is None and (chunk := f.read(256 if stream.limit is None else 1 << 20)):
            stream.feed(chunk)
            if stream.limit is None and (claimed := idx_size(out)) is not None:
                stream.limit = claimed  # checked again by parse_idx
                if len(out) > claimed:
                    stream.problem = f"it decompresses to more than the {claimed:,} bytes its IDX header claims"
    problem = stream.finish()
    if problem is not None:
        raise IDXError(f"{path}: {problem}")
    return bytes(out)


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
    expected = header + math.prod(shape) * dtype.itemsize  # Python ints: no overflow
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
