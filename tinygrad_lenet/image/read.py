"""Reading picture files with Pillow: PNG (every kind, interlaced too), JPEG, BMP,
GIF (first frame), TIFF, WebP, PGM/PPM, ... as float32 grayscale in [0, 1].

PGM and PPM files are read by `netpbm` (comments anywhere in the header, samples
checked against maxval). Decompression bombs are refused from the header, before any pixel is decoded:
a picture of more than `MAX_PIXELS` pixels is an `ImageError` naming the file
and its size, whatever its file size.
"""

from __future__ import annotations

import os
import re
import struct
import warnings

import numpy as np
from PIL import Image, UnidentifiedImageError

from .netpbm import NetpbmError, is_netpbm, read_netpbm

# 4096 x 4096: far more than a photo of a digit needs (the model sees 28x28), and
# the decoded picture stays under 70 MB as float32 RGBA.
MAX_PIXELS = 4096 * 4096

# ITU-R BT.601 luma weights, as in Pillow's convert("L").
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


class ImageError(ValueError):
    """A picture that cannot be read: missing, not an image, corrupt, or too large."""


def read_image(path: str | os.PathLike, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """The picture at `path` as float32 (H, W) grayscale in [0, 1] (see `to_grayscale`
    for color and transparency)."""
    source = os.fspath(path)
    try:
        with open(source, "rb") as f:
            if is_netpbm(f.read(2)):
                f.seek(0)
                return to_grayscale(read_netpbm(f, max_pixels))
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source) as image:
                return to_grayscale(_as_array(image, source, max_pixels))
    except ImageError:
        raise
    except FileNotFoundError:
        raise ImageError(f"{source}: no such file") from None
    except NetpbmError as e:
        raise ImageError(f"{source}: {e}") from None
    except UnidentifiedImageError:
        raise ImageError(f"{source}: not a picture Pillow can read (unknown or corrupt format)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        # Pillow refused it while reading the header (its own limit is above ours)
        raise ImageError(f"{source}: picture of {_pixel_count(str(e))} pixels is larger than the limit of "
                         f"{max_pixels:,} pixels") from None
    except OSError as e:  # truncated data, unreadable file, ...
        raise ImageError(f"{source}: cannot read picture: {e.strerror or e}") from None
    except (ValueError, SyntaxError, struct.error) as e:  # Pillow's parsers raise these on malformed headers
        raise ImageError(f"{source}: corrupt picture: {e}") from None


def _pixel_count(message: str) -> str:
    """The pixel count in Pillow's decompression-bomb message ("Image size (N pixels) ...")."""
    found = re.search(r"\((\d+) pixels\)", message)
    return f"{int(found.group(1)):,}" if found else "more"


def _as_array(image: Image.Image, source: str, max_pixels: int) -> np.ndarray:
    """(H, W, C) float32 in [0, 1], C = 1 (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA),
    of the first frame; an ImageError before decoding when it has too many pixels."""
    width, height = image.size
    if width * height > max_pixels:
        raise ImageError(f"{source}: picture of {width}x{height} = {width * height:,} pixels is larger than "
                         f"the limit of {max_pixels:,} pixels")
    image.seek(0)
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I"):  # 16- and 32-bit grayscale
        arr = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if arr.max(initial=0) <= 65535 else float(arr.max())
        return (arr / peak).astype(np.float32)[:, :, None]
    if mode == "F":
        arr = np.asarray(image, dtype=np.float32)
        return np.clip(arr, 0, 1)[:, :, None]
    has_alpha = mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in image.info
    if mode in ("1", "L"):
        target = "LA" if has_alpha else "L"
    elif mode == "LA":
        target = "LA"
    else:
        target = "RGBA" if has_alpha else "RGB"
    arr = np.asarray(image.convert(target), dtype=np.float32) / np.float32(255)
    return arr if arr.ndim == 3 else arr[:, :, None]


def to_grayscale(pixels: np.ndarray) -> np.ndarray:
    """(H, W) float32 in [0, 1] from (H, W, C) float32 pixels in [0, 1]: luma of RGB,
    with transparency composited.

    Transparent pixels are laid over the background that contrasts with the visible
    content: white under dark strokes, black under light ones, so a digit drawn on a
    transparent canvas stays visible whichever color its strokes are and whatever
    color the invisible pixels happen to store.
    """
    channels = pixels.shape[2]
    gray = pixels[:, :, :3] @ LUMA if channels >= 3 else pixels[:, :, 0]
    if channels not in (2, 4):
        return np.ascontiguousarray(gray, dtype=np.float32)
    alpha = pixels[:, :, -1]
    total = alpha.sum()
    if total == 0:  # fully transparent: nothing is drawn
        return np.ones_like(gray)
    content = (alpha * gray).sum() / total
    background = np.float32(1.0 if content < 0.5 else 0.0)
    return (alpha * gray + (np.float32(1) - alpha) * background).astype(np.float32)
