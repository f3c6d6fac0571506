"""The body of a POST /predict request: a drawing as JSON grayscale pixels.

    {"width": 280, "height": 280, "pixels": "<base64 of width*height bytes, row by row>"}

Each byte is a gray level, 0 black to 255 white; either polarity works (the MNIST-style
preprocessing finds the ink). Raw pixels, unlike a PNG of the canvas, need no decoding.
"""

from __future__ import annotations

import base64
import binascii
import json

import numpy as np

MAX_SIDE = 1024  # pixels per side; the page's canvas has 280


class RequestError(ValueError):
    """A request the app cannot serve; `status` is its HTTP status code (4xx)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def parse_drawing(body: bytes) -> np.ndarray:
    """The drawing in a request body as float32 (height, width) gray levels in [0, 1]."""
    try:
        payload = json.loads(body)
    except RecursionError:
        raise RequestError(400, "request body is JSON nested too deeply") from None
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError, an integer of over 4300 digits
        raise RequestError(400, f"request body is not valid JSON: {str(e)[:200]}") from None
    if not isinstance(payload, dict):
        raise RequestError(400, f"request body must be a JSON object with width, height and pixels, "
                                f"got {type(payload).__name__}")
    width, height = (_side(payload, key) for key in ("width", "height"))
    pixels = payload.get("pixels")
    if not isinstance(pixels, str):
        raise RequestError(400, f"pixels must be a base64 string of width*height bytes, got {type(pixels).__name__}")
    try:
        raw = base64.b64decode(pixels, validate=True)
    except (binascii.Error, ValueError) as e:
        raise RequestError(400, f"pixels is not valid base64: {e}") from None
    if len(raw) != width * height:
        raise RequestError(400, f"pixels holds {len(raw)} bytes, expected width*height = {width}*{height} "
                                f"= {width * height}")
    return np.frombuffer(raw, np.uint8).reshape(height, width).astype(np.float32) / np.float32(255)


def _side(payload: dict, key: str) -> int:
    value = payload.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_SIDE:
        raise RequestError(400, f"{key} must be an integer in 1..{MAX_SIDE}, got {value!r}")
    return value
