"""PGM (and PPM) reading and writing: plain (P2/P3, ASCII) and raw (P5/P6, binary),
maxval 1..65535, `#` comments in the header. A raw file holding several images yields
the first."""

from __future__ import annotations

import os
import re

import numpy as np

from ..atomic import atomic_write_bytes

from .raster import Image, ImageError, as_pixels

# magic -> (channels, binary)
FORMATS = {b"P2": (1, False), b"P3": (3, False), b"P5": (1, True), b"P6": (3, True)}
_OTHER_NETPBM = {b"P1": "PBM (plain bitmap)", b"P4": "PBM (raw bitmap)", b"P7": "PAM"}
_TOKEN = re.compile(rb"(?:\s|#[^\n\r]*+)*+([^\s#]+)")  # a token, after whitespace and comments


def is_netpbm(data: bytes) -> bool:
    return data[:1] == b"P" and data[1:2] in b"1234567" and len(data) >= 2


def read_pgm(path: str | os.PathLike) -> Image:
    """Decode the PGM (or PPM) file at `path`."""
    with open(path, "rb") as f:
        data = f.read()
    return decode_pgm(data, source=os.fspath(path))


def decode_pgm(data: bytes, source: str = "<bytes>") -> Image:
    """Decode PGM/PPM bytes; `source` names the file in error messages."""
    magic = data[:2]
    if magic in _OTHER_NETPBM:
        raise ImageError(f"{source}: {_OTHER_NETPBM[magic]} files are not supported; use PGM (P2/P5) or PPM (P3/P6)")
    if magic not in FORMATS:
        raise ImageError(f"{source}: not a PGM/PPM file (magic {bytes(magic)!r}, expected P2, P3, P5 or P6)")
    channels, binary = FORMATS[magic]
    pos, values = 2, []
    for what in ("width", "height", "maxval"):
        match = _TOKEN.match(data, pos)
        if match is None:
            raise ImageError(f"{source}: PGM header is truncated (no {what})")
        token = match.group(1)
        if not token.isdigit():
            raise ImageError(f"{source}: PGM header {what} is {token[:20]!r}, not a positive integer")
        values.append(int(token))
        pos = match.end()
    width, height, maxval = values
    if width < 1 or height < 1:
        raise ImageError(f"{source}: invalid PGM size {width}x{height}")
    if not 1 <= maxval <= 65535:
        raise ImageError(f"{source}: PGM maxval {maxval} is not in 1..65535")
    count = width * height * channels
    dtype = np.dtype(np.uint8) if maxval < 256 else np.dtype(np.uint16)
    if binary:
        if pos >= len(data) or not data[pos:pos + 1].isspace():
            raise ImageError(f"{source}: PGM header must end with one whitespace byte before the pixel data")
        start = pos + 1
        body = data[start:start + count * dtype.itemsize]
        if len(body) < count * dtype.itemsize:
            raise ImageError(f"{source}: PGM pixel data is truncated ({len(body)} of {count * dtype.itemsize} bytes)")
        samples = np.frombuffer(body, ">u2" if dtype.itemsize == 2 else np.uint8).astype(dtype)
    else:
        tokens = data[pos:].split(None, count)[:count]
        if len(tokens) < count or not all(t.isdigit() for t in tokens):
            bad = next((t for t in tokens if not t.isdigit()), None)
            detail = f"non-numeric sample {bad[:20]!r}" if bad is not None else f"{len(tokens)} of {count} samples"
            raise ImageError(f"{source}: plain PGM pixel data is invalid ({detail})")
        big = np.array([int(t) for t in tokens], dtype=np.int64)
        if int(big.max()) > maxval:
            raise ImageError(f"{source}: PGM sample {int(big.max())} exceeds maxval {maxval}")
        samples = big.astype(dtype)
    if binary and int(samples.max()) > maxval:
        raise ImageError(f"{source}: PGM sample {int(samples.max())} exceeds maxval {maxval}")
    return Image(samples.reshape(height, width, channels), maxval)


def encode_pgm(pixels: np.ndarray, maxval: int | None = None, plain: bool = False) -> bytes:
    """PGM bytes of grayscale `pixels` (H, W) or (H, W, 1), or PPM bytes of RGB (H, W, 3);
    uint8 or uint16. `maxval` defaults to 255 (uint8) or 65535 (uint16); `plain` writes
    ASCII (P2/P3) instead of binary (P5/P6)."""
    arr = as_pixels(pixels, "encode_pgm")
    height, width, channels = arr.shape
    if channels not in (1, 3):
        raise ValueError(f"encode_pgm: PGM/PPM store gray (1 channel) or RGB (3), got {channels} channels")
    if maxval is None:
        maxval = int(np.iinfo(arr.dtype).max)
    if not 1 <= maxval <= 65535:
        raise ValueError(f"encode_pgm: maxval must be in 1..65535, got {maxval}")
    if int(arr.max()) > maxval:
        raise ValueError(f"encode_pgm: value {int(arr.max())} exceeds maxval {maxval}")
    magic = {(1, False): b"P5", (3, False): b"P6", (1, True): b"P2", (3, True): b"P3"}[channels, plain]
    header = b"%s\n%d %d\n%d\n" % (magic, width, height, maxval)
    if plain:
        lines = (" ".join(map(str, row)) for row in arr.reshape(height, -1).tolist())
        return header + "\n".join(lines).encode("ascii") + b"\n"
    return header + arr.astype(">u2" if maxval > 255 else np.uint8).tobytes()


def write_pgm(path: str | os.PathLike, pixels: np.ndarray, maxval: int | None = None, plain: bool = False) -> None:
    """Write `pixels` (see `encode_pgm`) to `path` atomically."""
    atomic_write_bytes(path, encode_pgm(pixels, maxval, plain))
