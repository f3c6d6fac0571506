"""The digit app: a local web page to draw a digit on, with LeNet-5's prediction and
the feature maps behind it, served by the standard library's `http.server` with bounded threads and timeouts."""

from .drawing import MAX_SIDE, RequestError, parse_drawing
from .predictor import FEATURE_LAYERS, DigitPredictor
from .server import MAX_BODY_BYTES, DigitAppServer, is_loopback_address, make_server

__all__ = ["FEATURE_LAYERS", "MAX_BODY_BYTES", "MAX_SIDE", "DigitAppServer", "DigitPredictor", "RequestError",
           "is_loopback_address", "make_server", "parse_drawing"]
