"""Pictures of digits: read any common format (Pillow) and turn it into an
MNIST-style 28x28 input (numpy)."""

from .mnist_style import POLARITY, PREPROCESSING, ink_bounding_box, ink_map, read_digit, to_mnist
from .read import MAX_PIXELS, ImageError, read_image, to_grayscale
from .resize import resize

__all__ = ["MAX_PIXELS", "POLARITY", "PREPROCESSING", "ImageError", "ink_bounding_box", "ink_map", "read_digit",
           "read_image", "resize", "to_grayscale", "to_mnist"]
