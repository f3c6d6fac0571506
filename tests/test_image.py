"""Reading pictures (Pillow: every common format, decompression bombs refused) and
the MNIST-style preprocessing of a picture of a digit (numpy)."""

from __future__ import annotations

import re
import struct
import zlib

import numpy as np
import pytest
from measure import allocation_peak
from PIL import Image

from tinygrad_lenet.image import (
    MAX_PIXELS,
    ImageError,
    ink_bounding_box,
    ink_map,
    read_digit,
    read_image,
    resize,
    to_grayscale,
    to_mnist,
)
from tinygrad_lenet.image.resize import resample_matrix


def save(path, pixels: np.ndarray, **options) -> None:
    """Write uint8 (H, W) or (H, W, C) pixels with Pillow (format from the suffix)."""
    Image.fromarray(pixels).save(path, **options)


# ---------------------------------------------------------------- reading pictures

def gradient_rgb() -> np.ndarray:
    y, x = np.mgrid[0:24, 0:32]
    return np.stack([x * 8, y * 10, (x + y) * 4], axis=-1).astype(np.uint8)


LOSSLESS = [("png", {}), ("png", {"interlace": 1}), ("bmp", {}), ("ppm", {}), ("tiff", {}), ("webp", {"lossless": True})]


@pytest.mark.parametrize("suffix, options", LOSSLESS)
def test_lossless_formats_read_as_luma(tmp_path, suffix, options):
    rgb = gradient_rgb()
    path = tmp_path / f"picture.{suffix}"
    save(path, rgb, **options)
    expected = rgb.astype(np.float32) / 255 @ np.array([0.299, 0.587, 0.114], np.float32)
    gray = read_image(path)
    assert gray.dtype == np.float32 and gray.shape == (24, 32)
    np.testing.assert_allclose(gray, expected, atol=1e-6)


def png_file(gray: np.ndarray, interlace: bool = False) -> bytes:
    """An 8-bit grayscale PNG written here (filter 0 on every row), Adam7-interlaced if asked."""
    def chunk(name: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + name + body + struct.pack(">I", zlib.crc32(name + body))
    height, width = gray.shape
    passes = ([(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
              if interlace else [(0, 0, 1, 1)])
    raw = b"".join(b"\0" + row.tobytes() for x0, y0, dx, dy in passes
                   for row in gray[y0::dy, x0::dx] if row.size)
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, int(interlace))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
            + chunk(b"IEND", b""))


def test_interlaced_png_is_read(tmp_path):
    gray = (np.arange(21 * 30) % 251).astype(np.uint8).reshape(21, 30)
    (tmp_path / "adam7.png").write_bytes(png_file(gray, interlace=True))
    np.testing.assert_allclose(read_image(tmp_path / "adam7.png"), gray / np.float32(255), atol=1e-7)


def test_jpeg_and_gif_first_frame(tmp_path):
    rgb = gradient_rgb()
    save(tmp_path / "photo.jpg", rgb, quality=95)
    assert np.abs(read_image(tmp_path / "photo.jpg") - to_grayscale(rgb / np.float32(255))).max() < 0.05
    frames = [Image.fromarray(np.full((8, 8), v, np.uint8)) for v in (10, 200)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    np.testing.assert_allclose(read_image(tmp_path / "anim.gif"), 10 / 255, atol=1e-6)


def test_pgm_8_and_16_bit(tmp_path):
    gray8 = np.array([[0, 128, 255]], np.uint8)
    save(tmp_path / "g8.pgm", gray8)
    np.testing.assert_allclose(read_image(tmp_path / "g8.pgm"), gray8 / np.float32(255), atol=1e-7)
    gray16 = np.array([[0, 1000, 65535]], np.uint16)
    Image.fromarray(gray16).save(tmp_path / "g16.png")
    np.testing.assert_allclose(read_image(tmp_path / "g16.png"), gray16 / 65535, atol=1e-6)


SIX = bytes([0, 50, 100, 150, 200, 250])  # a 3x2 gray map's samples


@pytest.mark.parametrize("name, data, maxval", [
    ("plain header", b"P5\n3 2\n255\n" + SIX, 255),
    ("comments after the magic and inside the header", b"P5#c\n#c\n3#c\n 2 # the height\n255\n" + SIX, 255),
    ("a comment before maxval, CR line ends", b"P5 3 2\r# maxval next\r255\n" + SIX, 255),
    ("maxval 250", b"P5\n3 2\n250\n" + SIX, 250),
    ("16-bit samples", b"P5\n3 2\n65535\n" + b"".join(int(v * 257).to_bytes(2, "big") for v in SIX), 255),
    ("plain (ASCII) with comments", b"P2\n# made by hand\n3 2\n255\n0 50 100 # first row\n150 200\n250\n", 255),
])
def test_pgm_headers_as_the_format_allows(tmp_path, name, data, maxval):
    (tmp_path / "g.pgm").write_bytes(data)
    expected = np.frombuffer(SIX, np.uint8).reshape(2, 3) / np.float32(maxval)
    np.testing.assert_allclose(read_image(tmp_path / "g.pgm"), expected, atol=1e-6, err_msg=name)


def test_ppm_color_maps_are_read_as_luma(tmp_path):
    rgb = gradient_rgb()
    save(tmp_path / "c.ppm", rgb)
    np.testing.assert_allclose(read_image(tmp_path / "c.ppm"), to_grayscale(rgb / np.float32(255)), atol=1e-6)
    (tmp_path / "p3.ppm").write_bytes(b"P3\n2 1\n255\n255 0 0  0 0 255\n")
    np.testing.assert_allclose(read_image(tmp_path / "p3.ppm"), [[0.299, 0.114]], atol=1e-6)


@pytest.mark.parametrize("data, message", [
    (b"P5\n3 2\n100\n" + SIX, "a sample is 250, above the header's maxval 100"),
    (b"P2\n3 2\n100\n0 1 2 3 4 101\n", "a sample is 101, above the header's maxval 100"),
    (b"P5\n3 2\n255\n" + SIX[:4], "truncated: 6 bytes of samples expected, 4 found"),
    (b"P5\n3 x\n255\n" + SIX, "invalid header: expected height, found 'x'"),
    (b"P5\n3 2\n0\n" + SIX, "invalid header: width 3, height 2, maxval 0"),
    (b"P5\n100000 100000\n255\n", "picture of 100000x100000 = 10,000,000,000 pixels is larger than the limit"),
    (b"P5\n3 2\n255", "invalid header: no whitespace after maxval"),
    (b"P2\n3 2\n255\n0 1 2 3 4 -5\n", "invalid sample '-5'"),
])
def test_malformed_pgm_files_are_clear_errors(tmp_path, data, message):
    (tmp_path / "bad.pgm").write_bytes(data)
    with pytest.raises(ImageError, match=re.escape(f"{tmp_path / 'bad.pgm'}: {message}")):
        read_image(tmp_path / "bad.pgm")


def test_palette_with_transparency_is_composited(tmp_path):
    """A palette PNG whose background index is transparent: strokes stay visible."""
    image = Image.new("P", (10, 10), 0)
    image.putpalette([0, 0, 0, 0, 0, 0] + [0] * 762)
    image.putpixel((5, 5), 1)  # black stroke; index 0 is black too, but transparent
    image.info["transparency"] = 0
    image.save(tmp_path / "palette.png", transparency=0)
    gray = read_image(tmp_path / "palette.png")
    assert gray[5, 5] == 0 and gray[0, 0] == 1  # transparent background laid over white


def bomb_png(width: int, height: int) -> bytes:
    """A valid PNG header claiming width x height 8-bit gray pixels, with one compressed
    row of zeros (the whole picture would be width * height bytes)."""
    def chunk(name: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + name + body + struct.pack(">I", zlib.crc32(name + body))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * (width + 1)))
            + chunk(b"IEND", b""))


@pytest.mark.parametrize("side", [4097, 9000, 16384, 60000])
def test_decompression_bomb_is_refused_from_its_header(tmp_path, side):
    """Refused before any pixel is decoded: a 16384x16384 picture would take 268 MB as
    bytes and over 1 GB as floats; the refusal allocates neither."""
    path = tmp_path / "bomb.png"
    path.write_bytes(bomb_png(side, side))
    with allocation_peak() as peak, pytest.raises(ImageError, match=rf"bomb.png: picture of ({side}x{side} = )?"
                                                                    rf"{side * side:,} pixels is larger than the "
                                                                    rf"limit of 16,777,216 pixels"):
        read_image(path)
    assert peak.bytes < 10_000_000, f"refusing a {side}x{side} header took {peak.bytes:,} bytes"
    assert MAX_PIXELS == 4096 * 4096


@pytest.mark.parametrize("content, message", [
    (b"", "not a picture Pillow can read"),
    (b"GIF89a garbage", "not a picture Pillow can read|corrupt|cannot read"),
    (b"hello, world", "not a picture Pillow can read"),
])
def test_unreadable_files_name_the_file(tmp_path, content, message):
    path = tmp_path / "bad.png"
    path.write_bytes(content)
    with pytest.raises(ImageError, match=f"bad.png: ({message})"):
        read_image(path)


def test_truncated_png_is_an_image_error(tmp_path):
    save(tmp_path / "whole.png", gradient_rgb())
    (tmp_path / "cut.png").write_bytes((tmp_path / "whole.png").read_bytes()[:60])
    with pytest.raises(ImageError, match="cut.png"):
        read_image(tmp_path / "cut.png")


def test_missing_file(tmp_path):
    with pytest.raises(ImageError, match="nope.png: no such file"):
        read_image(tmp_path / "nope.png")


# ---------------------------------------------------------------- resizing

@pytest.mark.parametrize("n_in, n_out", [(7, 3), (3, 7), (60, 20), (20, 20), (1, 20), (25, 1)])
def test_resample_rows_are_weights_summing_to_one(n_in, n_out):
    w = resample_matrix(n_in, n_out)
    assert w.shape == (n_out, n_in) and w.dtype == np.float32 and (w >= 0).all()
    np.testing.assert_allclose(w.sum(axis=1), 1, rtol=1e-6)


def test_area_downscale_by_an_integer_factor_is_the_block_mean():
    x = np.random.default_rng(0).random((6, 9), dtype=np.float32)
    expected = x.reshape(2, 3, 3, 3).mean(axis=(1, 3))
    np.testing.assert_allclose(resize(x, (2, 3)), expected, rtol=1e-5)


def test_area_downscale_keeps_a_thin_line():
    x = np.zeros((40, 40), np.float32)
    x[:, 17] = 1  # one pixel wide, shrunk 4x: it must not fall between samples
    out = resize(x, (10, 10))
    np.testing.assert_allclose(out[:, 4], 0.25, rtol=1e-6)
    np.testing.assert_allclose(out.sum(), x.sum() / 16, rtol=1e-5)


def test_bilinear_upscale_interpolates_between_centers():
    out = resize(np.array([[0.0, 1.0]], np.float32), (1, 4))
    np.testing.assert_allclose(out, [[0, 0.25, 0.75, 1]], atol=1e-6)


# ---------------------------------------------------------------- MNIST-style preprocessing

def draw_seven(height: int, width: int, top: int, left: int, size: int) -> np.ndarray:
    """A float32 canvas (0 background) with a '7' of height `size` (width 0.6 * size) at (top, left)."""
    canvas = np.zeros((height, width), np.float32)
    thick = max(1, size // 8)
    w = int(size * 0.6)
    canvas[top:top + thick, left:left + w] = 1
    for row in range(size):
        col = left + w - thick - int(row * (w - thick) / (size * 1.2))
        canvas[top + row, col:col + thick] = 1
    return canvas


def test_dark_on_light_and_light_on_dark_give_the_same_digit(tmp_path):
    ink = draw_seven(90, 70, 10, 15, 60)
    save(tmp_path / "light.png", np.rint(ink * 255).astype(np.uint8))
    save(tmp_path / "dark.pgm", np.rint((1 - ink) * 255).astype(np.uint8))
    light, dark = read_digit(tmp_path / "light.png"), read_digit(tmp_path / "dark.pgm")
    assert light.shape == (28, 28) and light.dtype == np.uint8
    assert light.max() == 255 and light[0].max() == 0  # white ink on black, like MNIST
    np.testing.assert_array_equal(light, dark)


def center_of_mass(image: np.ndarray) -> tuple[float, float]:
    w = image.astype(np.float64)
    return (w.sum(axis=1) @ np.arange(w.shape[0])) / w.sum(), (w.sum(axis=0) @ np.arange(w.shape[1])) / w.sum()


def bounding_box_size(image: np.ndarray) -> tuple[int, int]:
    rows, cols = np.flatnonzero(image.any(axis=1)), np.flatnonzero(image.any(axis=0))
    return int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1)


def test_small_digit_in_a_big_canvas_is_scaled_and_centered():
    gray = 1 - 0.8 * draw_seven(300, 400, 230, 20, 40)  # small, near a corner, gray ink on white
    out = to_mnist(gray)
    assert bounding_box_size(out)[0] == 20 and bounding_box_size(out)[1] <= 20
    cy, cx = center_of_mass(out)
    assert abs(cy - 14) <= 0.5 and abs(cx - 14) <= 0.5


def test_wide_digit_fits_the_box_on_its_long_side():
    gray = np.zeros((50, 120), np.float32)
    gray[20:26, 10:110] = 1  # a horizontal bar: 100 wide, 6 high
    out = to_mnist(gray)
    assert bounding_box_size(out) == (1, 20)
    assert (out[out > 0] == 255).all()


def test_tiny_image_is_enlarged():
    gray = np.ones((3, 3), np.float32)
    gray[1, 1] = 0  # one dark pixel
    out = to_mnist(gray)
    assert bounding_box_size(out) == (20, 20)
    assert np.isin(out, [0, 255]).all() and out.sum() == 400 * 255
    cy, cx = center_of_mass(out)
    assert abs(cy - 14) <= 0.5 and abs(cx - 14) <= 0.5


@pytest.mark.parametrize("value", [0.0, 0.5, 1.0])
def test_blank_image_is_an_error(value):
    with pytest.raises(ImageError, match="blank.png: no ink found"):
        to_mnist(np.full((30, 20), value, np.float32), source="blank.png")


def test_faint_noise_does_not_stretch_the_box():
    rng = np.random.default_rng(0)
    gray = rng.random((100, 100), dtype=np.float32) * 0.05  # noise on black
    gray[40:60, 45:55] = 1
    top, bottom, left, right = ink_bounding_box(ink_map(gray), 0.1)
    assert (top, bottom, left, right) == (40, 60, 45, 55)


def test_ink_map_rejects_bad_input():
    with pytest.raises(ValueError, match="expected a non-empty 2-D float32"):
        ink_map(np.zeros((2, 2, 3), np.float32))
    with pytest.raises(ValueError, match=r"in \[0, 1\], got \[0.0, 255.0\]"):
        ink_map(np.array([[0, 255]], np.float32))


def test_grayscale_uses_luma():
    pixels = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255]]], np.uint8)
    np.testing.assert_allclose(to_grayscale(pixels.astype(np.float32) / 255), [[0.299, 0.587, 0.114]], rtol=1e-6)


@pytest.mark.parametrize("stroke", [0, 255])
@pytest.mark.parametrize("hidden_rgb", [0, 255])
def test_strokes_on_a_transparent_canvas(stroke, hidden_rgb):
    """Dark or light strokes on a transparent background, whatever color the transparent
    pixels store, read as the same digit as an opaque drawing."""
    ink = draw_seven(40, 40, 5, 8, 30)
    alpha = np.rint(ink * 255).astype(np.uint8)
    rgba = np.empty((40, 40, 4), np.uint8)
    rgba[:, :, :3] = np.where(ink[:, :, None] > 0, stroke, hidden_rgb)
    rgba[:, :, 3] = alpha
    expected = to_mnist(ink)
    np.testing.assert_array_equal(to_mnist(to_grayscale(rgba.astype(np.float32) / 255)), expected)
    la = np.stack([rgba[:, :, 0], alpha], axis=-1)
    np.testing.assert_array_equal(to_mnist(to_grayscale(la.astype(np.float32) / 255)), expected)


def test_fully_transparent_image_has_no_ink():
    with pytest.raises(ImageError, match="no ink found"):
        to_mnist(to_grayscale(np.zeros((5, 5, 4), np.float32)))


@pytest.fixture(scope="module")
def mnist_test_images(real_mnist_dir: str) -> np.ndarray:
    from tinygrad_lenet.data import load_mnist
    return load_mnist("test", root=real_mnist_dir, download=False)[0][:100]


def test_real_mnist_digits_survive_a_file_round_trip(mnist_test_images, tmp_path):
    """An MNIST digit saved as a file (as is, or inverted), read back and preprocessed is
    the original up to 1 gray level: the pipeline reproduces MNIST's own normalization
    (20x20 box, center of mass at (14, 14))."""
    for i, digit in enumerate(mnist_test_images):
        path = tmp_path / (f"{i}.png" if i % 2 else f"{i}.pgm")
        save(path, digit if i % 3 else 255 - digit)
        out = read_digit(path)
        diff = np.abs(out.astype(np.int16) - digit.astype(np.int16)).max()
        assert diff <= 1, f"test image {i}: max difference {diff}"
