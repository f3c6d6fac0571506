"""Image files (PNG, PGM/PPM) with numpy and the standard library only, and the
preprocessing that turns a picture of a digit into an MNIST-style 28x28 input."""

from .codecs import decode_image, read_image, write_image
from .mnist_style import ink_map, read_digit, to_grayscale, to_mnist
from .netpbm import decode_pgm, encode_pgm, read_pgm, write_pgm
from .png import decode_png, encode_png, read_png, write_png
from .raster import Image, ImageError
from .resize import resize

__all__ = ["Image", "ImageError", "decode_image", "decode_pgm", "decode_png", "encode_pgm", "encode_png",
           "ink_map", "read_digit", "read_image", "read_pgm", "read_png", "resize", "to_grayscale", "to_mnist",
           "write_image", "write_pgm", "write_png"]
