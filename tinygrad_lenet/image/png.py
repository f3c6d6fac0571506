"""PNG reading and writing with zlib and numpy only.

Reads every non-interlaced PNG: color types gray (bit depth 1, 2, 4, 8, 16), RGB (8, 16),
palette (1, 2, 4, 8), gray+alpha (8, 16) and RGBA (8, 16), all five row filters, and
tRNS transparency (which adds an alpha channel). Checks the signature and every chunk's
CRC. Adam7-interlaced files are refused with a clear error. Writes gray, gray+alpha,
RGB and RGBA at 8 or 16 bits, and gray at 1, 2 or 4 bits.
"""

from __future__ import annotations

import os
import struct
import zlib

import numpy as np

from ..atomic import atomic_write_bytes

from .raster import Image, ImageError, as_pixels

SIGNATURE = b"\x89PNG\r\n\x1a\n"

# color type -> (channels in the pixel data, allowed bit depths)
COLOR_TYPES = {
    0: (1, (1, 2, 4, 8, 16)),  # gray
    2: (3, (8, 16)),           # RGB
    3: (1, (1, 2, 4, 8)),      # palette index
    4: (2, (8, 16)),           # gray + alpha
    6: (4, (8, 16)),           # RGBA
}
_COLOR_TYPE_OF_CHANNELS = {1: 0, 2: 4, 3: 2, 4: 6}
MAX_PIXELS = 1 << 28  # refuse absurd sizes before allocating memory for them


def read_png(path: str | os.PathLike) -> Image:
    """Decode the PNG file at `path`."""
    with open(path, "rb") as f:
        data = f.read()
    return decode_png(data, source=os.fspath(path))


def decode_png(data: bytes, source: str = "<bytes>") -> Image:
    """Decode PNG bytes; `source` names the file in error messages."""
    chunks = _read_chunks(data, source)
    header = _parse_header(chunks, source)
    width, height, depth, color_type = header
    palette, transparency = None, None
    idat = []
    for name, body in chunks[1:]:
        if name == b"PLTE":
            palette = _parse_palette(body, source)
        elif name == b"tRNS":
            transparency = body
        elif name == b"IDAT":
            idat.append(body)
        elif name[0:1].isupper() and name not in (b"IEND",):
            raise ImageError(f"{source}: unsupported critical PNG chunk {name.decode('latin-1')!r}")
    if not idat:
        raise ImageError(f"{source}: PNG has no image data (no IDAT chunk)")
    if color_type == 3 and palette is None:
        raise ImageError(f"{source}: palette PNG has no PLTE chunk")

    channels = COLOR_TYPES[color_type][0]
    stride = (width * channels * depth + 7) // 8
    bpp = max(1, channels * depth // 8)  # bytes per complete pixel, as the filters see it
    raw = _inflate(b"".join(idat), height * (stride + 1), source)
    rows = _unfilter(raw.reshape(height, stride + 1), bpp, source)
    samples = _samples(rows, width, channels, depth)
    return _to_image(samples, depth, color_type, palette, transparency, source)


def _read_chunks(data: bytes, source: str) -> list[tuple[bytes, bytes]]:
    """(type, body) of every chunk up to IEND, with lengths and CRCs checked."""
    if not data.startswith(SIGNATURE):
        raise ImageError(f"{source}: not a PNG file (bad signature {bytes(data[:8])!r})")
    chunks, pos = [], len(SIGNATURE)
    while True:
        if pos + 8 > len(data):
            raise ImageError(f"{source}: PNG is truncated (no IEND chunk after {len(chunks)} chunks)")
        length, name = struct.unpack(">I4s", data[pos:pos + 8])
        if length > 0x7FFFFFFF or not name.isalpha():
            raise ImageError(f"{source}: corrupt PNG chunk header at byte {pos} (type {name!r}, length {length})")
        end = pos + 8 + length
        if end + 4 > len(data):
            raise ImageError(f"{source}: PNG is truncated inside chunk {name.decode('latin-1')!r} at byte {pos}")
        body = data[pos + 8:end]
        stored = struct.unpack(">I", data[end:end + 4])[0]
        computed = zlib.crc32(body, zlib.crc32(name))
        if stored != computed:
            raise ImageError(f"{source}: CRC mismatch in PNG chunk {name.decode('latin-1')!r} at byte {pos} "
                             f"(stored 0x{stored:08x}, computed 0x{computed:08x}): the file is corrupt")
        chunks.append((name, body))
        pos = end + 4
        if name == b"IEND":
            return chunks


def _parse_header(chunks: list[tuple[bytes, bytes]], source: str) -> tuple[int, int, int, int]:
    name, body = chunks[0]
    if name != b"IHDR" or len(body) != 13:
        raise ImageError(f"{source}: PNG does not start with a 13-byte IHDR chunk (got {name!r}, {len(body)} bytes)")
    width, height, depth, color_type, compression, filter_method, interlace = struct.unpack(">IIBBBBB", body)
    if color_type not in COLOR_TYPES:
        raise ImageError(f"{source}: invalid PNG color type {color_type}")
    if depth not in COLOR_TYPES[color_type][1]:
        raise ImageError(f"{source}: invalid PNG bit depth {depth} for color type {color_type} "
                         f"(allowed: {COLOR_TYPES[color_type][1]})")
    if not (1 <= width <= 0x7FFFFFFF and 1 <= height <= 0x7FFFFFFF):
        raise ImageError(f"{source}: invalid PNG size {width}x{height}")
    if width * height > MAX_PIXELS:
        raise ImageError(f"{source}: PNG of {width}x{height} pixels is larger than the {MAX_PIXELS} pixels supported")
    if compression != 0 or filter_method != 0:
        raise ImageError(f"{source}: unknown PNG compression/filter method {compression}/{filter_method}")
    if interlace == 1:
        raise ImageError(f"{source}: Adam7-interlaced PNG is not supported; save it without interlacing")
    if interlace != 0:
        raise ImageError(f"{source}: invalid PNG interlace method {interlace}")
    return width, height, depth, color_type


def _parse_palette(body: bytes, source: str) -> np.ndarray:
    if len(body) % 3 or not 3 <= len(body) <= 768:
        raise ImageError(f"{source}: PNG palette (PLTE) length {len(body)} is not 3..768 and a multiple of 3")
    return np.frombuffer(body, np.uint8).reshape(-1, 3)


def _inflate(compressed: bytes, expected: int, source: str) -> np.ndarray:
    """The zlib stream's first `expected` bytes; an error if it is corrupt or too short."""
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(compressed, expected)
    except zlib.error as e:
        raise ImageError(f"{source}: corrupt PNG image data ({e})") from None
    if len(raw) < expected:
        raise ImageError(f"{source}: PNG image data is truncated ({len(raw)} of {expected} bytes)")
    return np.frombuffer(raw, np.uint8)


def _unfilter(filtered: np.ndarray, bpp: int, source: str) -> np.ndarray:
    """Undo the per-row filters (None, Sub, Up, Average, Paeth) of (H, 1 + stride) bytes."""
    height, stride = filtered.shape[0], filtered.shape[1] - 1
    kinds = filtered[:, 0]
    bad = np.flatnonzero(kinds > 4)
    if bad.size:
        raise ImageError(f"{source}: invalid PNG filter type {kinds[bad[0]]} on row {bad[0]}")
    out = np.empty((height, stride), np.uint8)
    prev = np.zeros(stride, np.uint8)
    for y in range(height):
        line, kind = filtered[y, 1:], kinds[y]
        if kind == 0:
            cur = line
        elif kind == 1:  # Sub: running sum of each byte lane, modulo 256
            cur = _sub(line, bpp)
        elif kind == 2:  # Up
            cur = line + prev
        elif kind == 3:
            cur = np.frombuffer(_average(line.tobytes(), prev.tobytes(), bpp), np.uint8)
        else:
            cur = np.frombuffer(_paeth(line.tobytes(), prev.tobytes(), bpp), np.uint8)
        out[y] = cur
        prev = out[y]
    return out


def _sub(line: np.ndarray, bpp: int) -> np.ndarray:
    n = line.size
    padded = np.zeros(-(-n // bpp) * bpp, np.uint8)
    padded[:n] = line
    return np.cumsum(padded.reshape(-1, bpp), axis=0, dtype=np.uint8).reshape(-1)[:n]


def _average(line: bytes, prev: bytes, bpp: int) -> bytearray:
    cur = bytearray(line)
    for i in range(min(bpp, len(cur))):
        cur[i] = (cur[i] + (prev[i] >> 1)) & 0xFF
    for i in range(bpp, len(cur)):
        cur[i] = (cur[i] + ((cur[i - bpp] + prev[i]) >> 1)) & 0xFF
    return cur


def _paeth(line: bytes, prev: bytes, bpp: int) -> bytearray:
    cur = bytearray(line)
    for i in range(min(bpp, len(cur))):  # no left neighbour: the predictor is the byte above
        cur[i] = (cur[i] + prev[i]) & 0xFF
    for i in range(bpp, len(cur)):
        a, b, c = cur[i - bpp], prev[i], prev[i - bpp]
        pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
        if pa <= pb and pa <= pc:
            pred = a
        elif pb <= pc:
            pred = b
        else:
            pred = c
        cur[i] = (cur[i] + pred) & 0xFF
    return cur


def _samples(rows: np.ndarray, width: int, channels: int, depth: int) -> np.ndarray:
    """Unfiltered rows -> (H, W, channels) samples as uint8 (depth <= 8) or uint16."""
    height = rows.shape[0]
    if depth == 8:
        return rows.reshape(height, width, channels)
    if depth == 16:
        return rows.view(">u2").astype(np.uint16).reshape(height, width, channels)
    bits = np.unpackbits(rows, axis=1)[:, :width * depth].reshape(height, width, depth)
    weights = (1 << np.arange(depth - 1, -1, -1)).astype(np.uint8)
    return (bits * weights).sum(axis=2, dtype=np.uint8)[:, :, None]


def _to_image(samples: np.ndarray, depth: int, color_type: int, palette: np.ndarray | None,
              transparency: bytes | None, source: str) -> Image:
    if color_type == 3:
        assert palette is not None
        index = samples[:, :, 0]
        if int(index.max()) >= len(palette):
            raise ImageError(f"{source}: PNG palette index {int(index.max())} is out of range "
                             f"(palette has {len(palette)} entries)")
        if transparency is None:
            return Image(palette[index], 255)
        if len(transparency) > len(palette):
            raise ImageError(f"{source}: PNG tRNS has {len(transparency)} entries for a {len(palette)}-color palette")
        alpha = np.full(len(palette), 255, np.uint8)
        alpha[:len(transparency)] = np.frombuffer(transparency, np.uint8)
        return Image(np.concatenate([palette, alpha[:, None]], axis=1)[index], 255)

    max_value = (1 << depth) - 1
    if transparency is not None and color_type in (0, 2):
        # tRNS: one color (2 bytes per channel) is fully transparent; everything else opaque.
        channels = samples.shape[2]
        if len(transparency) != 2 * channels:
            raise ImageError(f"{source}: PNG tRNS chunk has {len(transparency)} bytes, expected {2 * channels}")
        key = np.array(struct.unpack(f">{channels}H", transparency)) & max_value
        opaque = (samples != key).any(axis=2)
        alpha = np.where(opaque, max_value, 0).astype(samples.dtype)
        samples = np.concatenate([samples, alpha[:, :, None]], axis=2)
    return Image(samples, max_value)


def encode_png(pixels: np.ndarray, bit_depth: int | None = None) -> bytes:
    """PNG bytes of `pixels`: (H, W) or (H, W, C) with C = 1 gray, 2 gray+alpha, 3 RGB,
    4 RGBA; uint8 (8-bit), uint16 (16-bit) or bool (1-bit gray). `bit_depth` 1, 2 or 4
    packs a uint8 grayscale image whose values fit in that many bits."""
    arr = as_pixels(pixels, "encode_png")
    height, width, channels = arr.shape
    if bit_depth is None:
        bit_depth = 1 if np.asarray(pixels).dtype == np.bool_ else 8 * arr.dtype.itemsize
    if bit_depth not in (1, 2, 4, 8, 16):
        raise ValueError(f"encode_png: bit_depth must be 1, 2, 4, 8 or 16, got {bit_depth}")
    if (bit_depth == 16) != (arr.dtype == np.uint16):
        raise ValueError(f"encode_png: bit_depth {bit_depth} does not match {arr.dtype} pixels "
                         "(16 bits need uint16; 1, 2, 4 and 8 bits need uint8 or bool)")
    if bit_depth == 16:
        rows = arr.astype(">u2").view(np.uint8).reshape(height, -1)
    elif bit_depth == 8:
        rows = arr.reshape(height, -1)
    else:
        if channels != 1:
            raise ValueError(f"encode_png: bit depth {bit_depth} is only for grayscale, got {channels} channels")
        if int(arr.max()) >= 1 << bit_depth:
            raise ValueError(f"encode_png: value {int(arr.max())} does not fit in {bit_depth} bits")
        shifts = np.arange(bit_depth - 1, -1, -1, dtype=np.uint8)
        bits = ((arr[:, :, 0, None] >> shifts) & 1).reshape(height, width * bit_depth)
        rows = np.packbits(bits, axis=1)
    # Filter "Up" on every row: difference with the row above, modulo 256.
    filtered = np.diff(rows, axis=0, prepend=np.zeros((1, rows.shape[1]), np.uint8))
    raw = np.concatenate([np.full((height, 1), 2, np.uint8), filtered], axis=1).tobytes()
    header = struct.pack(">IIBBBBB", width, height, bit_depth, _COLOR_TYPE_OF_CHANNELS[channels], 0, 0, 0)
    return SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(raw, 9)) + _chunk(b"IEND", b"")


def _chunk(name: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + name + body + struct.pack(">I", zlib.crc32(body, zlib.crc32(name)))


def write_png(path: str | os.PathLike, pixels: np.ndarray, bit_depth: int | None = None) -> None:
    """Write `pixels` (see `encode_png`) to `path` atomically."""
    atomic_write_bytes(path, encode_png(pixels, bit_depth))
