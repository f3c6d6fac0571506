"""Netpbm gray and color maps (PGM P2/P5, PPM P3/P6) read to the letter of the format:
a comment ("#" to the end of the line) may stand anywhere in the header, as the format
allows and Pillow's reader does not, and a sample above the header's maxval is an error
(Pillow clips it). The header is bounded (MAX_HEADER_BYTES) and the pixel count is
checked before the raster is read, so a hostile file costs little.
"""

from __future__ import annotations

import numpy as np

MAGICS = {b"P2": (1, False), b"P3": (3, False), b"P5": (1, True), b"P6": (3, True)}  # channels, binary
MAX_HEADER_BYTES = 64 * 1024
WHITESPACE = b" \t\n\v\f\r"


class NetpbmError(ValueError):
    """A malformed gray or color map: says what is wrong (the caller names the file)."""


def is_netpbm(head: bytes) -> bool:
    """Whether a file starting with `head` is a PGM/PPM this module reads."""
    return head[:2] in MAGICS


def read_netpbm(f, max_pixels: int) -> np.ndarray:
    """(H, W, C) float32 in [0, 1] of the PGM/PPM open in binary `f` (C = 1 or 3)."""
    header = f.read(MAX_HEADER_BYTES)
    channels, binary = MAGICS.get(header[:2], (0, False))
    if not channels:
        raise NetpbmError("not a PGM or PPM file (no P2, P3, P5 or P6 magic number)")
    values, at = _header_numbers(header, 2, 3)
    width, height, maxval = values
    if width < 1 or height < 1 or not 1 <= maxval <= 65535:
        raise NetpbmError(f"invalid header: width {width}, height {height}, maxval {maxval} (1..65535)")
    if width * height > max_pixels:
        raise NetpbmError(f"picture of {width}x{height} = {width * height:,} pixels is larger than the limit of "
                          f"{max_pixels:,} pixels")
    count = width * height * channels
    dtype = np.dtype(np.uint8) if maxval < 256 else np.dtype(">u2")
    size = count * dtype.itemsize if binary else count * 12 + MAX_HEADER_BYTES  # ASCII: digits, spaces, comments
    raster = header[at + 1:] + f.read(max(0, size - (len(header) - at - 1)))  # one whitespace ends the header
    if binary:
        if len(raster) < size:
            raise NetpbmError(f"truncated: {size:,} bytes of samples expected, {len(raster):,} found")
        samples = np.frombuffer(raster, dtype=dtype, count=count)
    else:
        samples = _ascii_samples(raster, count)
    top = int(samples.max(initial=0))
    if top > maxval:
        raise NetpbmError(f"a sample is {top}, above the header's maxval {maxval}")
    return (samples.astype(np.float32) / np.float32(maxval)).reshape(height, width, channels)


def _header_numbers(data: bytes, at: int, count: int) -> tuple[list[int], int]:
    """`count` decimal numbers from data[at:], with whitespace and comments between them;
    returns them and the position just after the last one."""
    numbers = []
    while len(numbers) < count:
        at = _skip_space_and_comments(data, at)
        start = at
        while at < len(data) and data[at:at + 1].isdigit():
            at += 1
        if at == start:
            what = "the end of the file" if at >= len(data) else repr(data[at:at + 1].decode("latin-1"))
            raise NetpbmError(f"invalid header: expected {('width', 'height', 'maxval')[len(numbers)]}, found {what}")
        if at - start > 9:
            raise NetpbmError(f"invalid header: number {data[start:at][:20].decode()}... is too large")
        numbers.append(int(data[start:at]))
    if at >= len(data) or data[at] not in WHITESPACE:
        raise NetpbmError("invalid header: no whitespace after maxval")
    return numbers, at


def _skip_space_and_comments(data: bytes, at: int) -> int:
    while at < len(data):
        if data[at] in WHITESPACE:
            at += 1
        elif data[at:at + 1] == b"#":
            end = min((i for i in (data.find(b"\n", at), data.find(b"\r", at)) if i >= 0), default=len(data))
            at = end
        else:
            break
    return at


def _ascii_samples(data: bytes, count: int) -> np.ndarray:
    """The first `count` decimal samples of a plain (P2/P3) raster, comments allowed."""
    lines = [line.split(b"#", 1)[0] for line in data.splitlines()]
    tokens = b" ".join(lines).split()
    if len(tokens) < count:
        raise NetpbmError(f"truncated: {count:,} samples expected, {len(tokens):,} found")
    bad = next((t for t in tokens[:count] if not t.isdigit() or len(t) > 9), None)
    if bad is not None:
        raise NetpbmError(f"invalid sample {bad[:20].decode('latin-1')!r}")
    return np.array([int(t) for t in tokens[:count]], dtype=np.int64)
