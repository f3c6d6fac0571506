"""Read and write an image file whatever its format: PNG or PGM/PPM, told apart by the
file's first bytes when reading and by the extension when writing."""

from __future__ import annotations

import os

import numpy as np

from .netpbm import decode_pgm, is_netpbm, write_pgm
from .png import SIGNATURE, decode_png, write_png
from .raster import Image, ImageError

WRITERS = {".png": write_png, ".pgm": write_pgm, ".ppm": write_pgm, ".pnm": write_pgm}


def decode_image(data: bytes, source: str = "<bytes>") -> Image:
    """Decode PNG or PGM/PPM bytes; `source` names the file in error messages."""
    if data.startswith(SIGNATURE[:4]):
        return decode_png(data, source)
    if is_netpbm(data):
        return decode_pgm(data, source)
    raise ImageError(f"{source}: unknown image format (first bytes {bytes(data[:8])!r}); "
                     "supported: PNG, PGM (P2/P5), PPM (P3/P6)")


def read_image(path: str | os.PathLike) -> Image:
    """Decode the PNG or PGM/PPM file at `path`."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ImageError(f"{os.fspath(path)}: cannot read image: {e.strerror or e}") from None
    return decode_image(data, source=os.fspath(path))


def write_image(path: str | os.PathLike, pixels: np.ndarray) -> None:
    """Write `pixels` to `path` (atomically) as PNG or PGM/PPM, chosen by the extension."""
    ext = os.path.splitext(os.fspath(path))[1].lower()
    if ext not in WRITERS:
        raise ValueError(f"write_image: {os.fspath(path)}: unknown extension {ext!r}; use one of {sorted(WRITERS)}")
    WRITERS[ext](path, pixels)
