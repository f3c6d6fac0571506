"""Image files (PNG, PGM/PPM) and MNIST-style preprocessing.

PNG decoding is checked three ways: round trips through our writer (every color type
and bit depth), PNG bytes built here from zlib with an independent, vectorized
implementation of the five row filters, and files written by libpng (ImageMagick,
with its adaptive filter choice and ancillary chunks), embedded below.
"""

from __future__ import annotations

import base64
import struct
import zlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tinygrad_lenet.image import (Image, ImageError, decode_image, decode_pgm, decode_png, encode_pgm, encode_png,
                                  ink_map, read_digit, read_image, resize, to_grayscale, to_mnist, write_image,
                                  write_png)
from tinygrad_lenet.image.mnist_style import ink_bounding_box
from tinygrad_lenet.image.resize import resample_matrix


# ---------------------------------------------------------------- PNG building blocks, written independently


def png_chunk(name: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + name + body + struct.pack(">I", zlib.crc32(name + body))


def filter_rows(rows: np.ndarray, bpp: int, kinds: list[int]) -> np.ndarray:
    """Apply PNG filter `kinds[y]` to each row of raw bytes (the encoder's direction, which
    sees every original byte and so needs no loop over pixels)."""
    height, n = rows.shape
    x = rows.astype(np.int64)
    up = np.vstack([np.zeros((1, n), np.int64), x[:-1]])
    left = np.hstack([np.zeros((height, bpp), np.int64), x[:, :-bpp]])
    up_left = np.hstack([np.zeros((height, bpp), np.int64), up[:, :-bpp]])
    p = left + up - up_left
    pa, pb, pc = np.abs(p - left), np.abs(p - up), np.abs(p - up_left)
    paeth = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, up_left))
    predictions = [np.zeros_like(x), left, up, (left + up) // 2, paeth]
    out = np.empty((height, n + 1), np.uint8)
    for y, kind in enumerate(kinds):
        out[y, 0] = kind
        out[y, 1:] = (x[y] - predictions[kind][y]) % 256
    return out


def build_png(rows: np.ndarray, width: int, depth: int, color_type: int, kinds: list[int], bpp: int,
              extra_chunks: list[tuple[bytes, bytes]] = (), interlace: int = 0, idat_parts: int = 1) -> bytes:
    header = struct.pack(">IIBBBBB", width, rows.shape[0], depth, color_type, 0, 0, interlace)
    data = zlib.compress(filter_rows(rows, bpp, kinds).tobytes())
    cut = np.linspace(0, len(data), idat_parts + 1).astype(int)
    idats = b"".join(png_chunk(b"IDAT", data[a:b]) for a, b in zip(cut[:-1], cut[1:]))
    extras = b"".join(png_chunk(name, body) for name, body in extra_chunks)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + extras + idats + png_chunk(b"IEND", b"")


def pack_bits(samples: np.ndarray, depth: int) -> np.ndarray:
    """(H, W) samples of `depth` < 8 bits -> (H, ceil(W * depth / 8)) bytes, first pixel in the high bits."""
    height, width = samples.shape
    per_byte = 8 // depth
    padded = np.zeros((height, -(-width // per_byte) * per_byte), np.int64)
    padded[:, :width] = samples
    groups = padded.reshape(height, -1, per_byte)
    shifts = depth * np.arange(per_byte - 1, -1, -1)
    return (groups << shifts).sum(axis=2).astype(np.uint8)


ALL_FILTERS = [0, 1, 2, 3, 4, 4, 3, 2, 1, 0, 3, 1, 4, 2]  # every filter, after every other one


@pytest.mark.parametrize("levels", [256, 6])  # few levels: many ties between the Paeth predictors
def test_hand_built_rgb8_with_every_filter(levels):
    rng = np.random.default_rng(levels)
    pixels = rng.integers(0, levels, (len(ALL_FILTERS), 31, 3), dtype=np.uint8)
    data = build_png(pixels.reshape(len(ALL_FILTERS), -1), 31, 8, 2, ALL_FILTERS, bpp=3, idat_parts=3)
    image = decode_png(data)
    assert image.mode == "RGB" and image.max_value == 255
    np.testing.assert_array_equal(image.pixels, pixels)


@pytest.mark.parametrize("kind", range(5))
def test_hand_built_gray_alpha_16bit_single_filter(kind):
    rng = np.random.default_rng(kind)
    pixels = rng.integers(0, 65536, (6, 5, 2), dtype=np.uint16)
    rows = pixels.astype(">u2").view(np.uint8).reshape(6, -1)
    image = decode_png(build_png(rows, 5, 16, 4, [kind] * 6, bpp=4))
    assert image.mode == "LA" and image.max_value == 65535 and image.pixels.dtype == np.uint16
    np.testing.assert_array_equal(image.pixels, pixels)


@pytest.mark.parametrize("depth", [1, 2, 4])
def test_hand_built_low_bit_depth_gray_with_every_filter(depth):
    rng = np.random.default_rng(depth)
    samples = rng.integers(0, 1 << depth, (len(ALL_FILTERS), 11))  # 11 pixels: the last byte is padded
    image = decode_png(build_png(pack_bits(samples, depth), 11, depth, 0, ALL_FILTERS, bpp=1))
    assert image.mode == "L" and image.max_value == (1 << depth) - 1
    np.testing.assert_array_equal(image.pixels[:, :, 0], samples)


def test_hand_built_palette_with_transparency():
    palette = np.array([[255, 255, 255], [0, 0, 0], [200, 10, 30], [5, 250, 90], [1, 2, 3]], np.uint8)
    alpha = np.array([0, 255, 128], np.uint8)  # entries past tRNS are opaque
    index = np.array([[0, 1, 2, 3, 4, 0, 1], [4, 3, 2, 1, 0, 4, 3], [1, 1, 1, 0, 0, 2, 2]])
    chunks = [(b"PLTE", palette.tobytes()), (b"tRNS", alpha.tobytes()), (b"tEXt", b"Comment\x00ignored")]
    image = decode_png(build_png(pack_bits(index, 4), 7, 4, 3, [0, 4, 3], bpp=1, extra_chunks=chunks))
    expected_alpha = np.array([0, 255, 128, 255, 255])[index]
    assert image.mode == "RGBA"
    np.testing.assert_array_equal(image.pixels[:, :, :3], palette[index])
    np.testing.assert_array_equal(image.pixels[:, :, 3], expected_alpha)

    no_alpha = decode_png(build_png(index.astype(np.uint8), 7, 8, 3, [1, 2, 1], bpp=1, extra_chunks=chunks[:1]))
    assert no_alpha.mode == "RGB"
    np.testing.assert_array_equal(no_alpha.pixels, palette[index])


def test_hand_built_color_key_transparency():
    gray = np.array([[7, 9, 7], [9, 9, 7]], np.uint8)
    image = decode_png(build_png(gray, 3, 8, 0, [0, 0], bpp=1, extra_chunks=[(b"tRNS", struct.pack(">H", 7))]))
    assert image.mode == "LA"
    np.testing.assert_array_equal(image.pixels[:, :, 1], np.where(gray == 7, 0, 255))

    rgb = np.array([[[1, 2, 3], [1, 2, 4]]], np.uint16) * 1000
    rows = rgb.astype(">u2").view(np.uint8).reshape(1, -1)
    key = [(b"tRNS", struct.pack(">3H", 1000, 2000, 3000))]
    image = decode_png(build_png(rows, 2, 16, 2, [1], bpp=6, extra_chunks=key))
    assert image.mode == "RGBA"
    np.testing.assert_array_equal(image.pixels[0, :, 3], [0, 65535])


# Written by ImageMagick 6 (libpng, adaptive filters); contents given by formulas below.
LIBPNG_GRAY_16x10 = (  # rows filtered None, Up and Paeth
    "iVBORw0KGgoAAAANSUhEUgAAABAAAAAKCAAAAACY1YFAAAAABGdBTUEAALGPC/xhBQAAAAJiS0dEAP+Hj8y/AAAATUlEQVQI12NgYBXR"
    "Dajd8tVh6pfYC75XUpmY0QATJxpg4WflRwFMomiARZqVX1IaCTApogEWdVZ+SWV1c3UYYNJFAyzGrPySxrrGcAAAc0UVpyviGqsAAAAA"
    "SUVORK5CYII=")
LIBPNG_RGB_16x10 = (  # rows filtered Sub and Paeth
    "iVBORw0KGgoAAAANSUhEUgAAABAAAAAKCAIAAAAy3EnLAAAABGdBTUEAALGPC/xhBQAAACBjSFJNAAB6JgAAgIQAAPoAAACA6AAAdTAA"
    "AOpgAAA6mAAAF3CculE8AAAABmJLR0QA/wD/AP+gvaeTAAABM0lEQVQY02XGMW6kQBBA0er5QAEFBZgpWyv3Jm61ZBFYmoyMzNmewNlm"
    "vv8FHGy40gteEpGapCK1lapSB6kmdZa6SN2k7lJD6ovUX1Jfpf6WxpAp6Yw6uqAruqFP6I7e0UCf0RfU0Amd0cYQT7rhd3zEZ3zFO3zA"
    "J/yGt3iPG+74hjeGrEl7XIgnYiRuxAcxEQ3xTDjREUZ8ED3RGNImnfCdmMlKdnJPXsgDGfJI3sjGV0ueyI0h96QrPhE9eaPMlIHSUpwy"
    "8tlRbhSj3CkrpTFkSKp4S0B2yhvHyNFz7hwbx8Ixc7xxDBzKd2OIJTXcCCMbxTiMx3++/qUxZE664Buxk3vKyDnxcE44W07lz8BpnDPn"
    "wtkYckva4SPh5FfKwDHz2Dh7ronPleudy7hu/O24fgBy5hw5D7mzwQAAAABJRU5ErkJggg==")


def test_files_written_by_libpng():
    y, x = np.mgrid[0:10, 0:16]
    gray = decode_png(base64.b64decode(LIBPNG_GRAY_16x10), "libpng-gray.png")
    assert gray.mode == "L"
    np.testing.assert_array_equal(gray.pixels[:, :, 0], (x * x * 5 + y * y * 3) % 256)
    rgb = decode_png(base64.b64decode(LIBPNG_RGB_16x10), "libpng-rgb.png")
    expected = np.stack([(x * 37 + y * 11 + (y * y * x) % 13) % 256, (x * x + 3 * y) % 256, (x * y * 7) % 256], -1)
    assert rgb.mode == "RGB"
    np.testing.assert_array_equal(rgb.pixels, expected)


# ---------------------------------------------------------------- PNG writer round trips

ROUND_TRIPS = [  # (channels, dtype, bit_depth)
    (1, np.uint8, 1), (1, np.uint8, 2), (1, np.uint8, 4), (1, np.uint8, 8), (1, np.uint16, 16),
    (2, np.uint8, 8), (2, np.uint16, 16), (3, np.uint8, 8), (3, np.uint16, 16), (4, np.uint8, 8), (4, np.uint16, 16),
]


@pytest.mark.parametrize("channels, dtype, depth", ROUND_TRIPS)
def test_png_round_trip(tmp_path, channels, dtype, depth):
    rng = np.random.default_rng(depth * 10 + channels)
    pixels = rng.integers(0, 1 << depth, (5, 9, channels)).astype(dtype)
    path = tmp_path / "x.png"
    write_png(path, pixels if channels > 1 else pixels[:, :, 0], bit_depth=depth if depth < 8 else None)
    assert path.read_bytes()[24] == depth  # IHDR bit depth
    image = read_image(path)
    assert image.max_value == (1 << depth) - 1 and image.pixels.dtype == dtype
    np.testing.assert_array_equal(image.pixels, pixels)


def test_png_writes_bool_as_one_bit():
    mask = np.array([[True, False, True], [False, False, True]])
    data = encode_png(mask)
    assert data[24] == 1
    np.testing.assert_array_equal(decode_png(data).pixels[:, :, 0], mask)


@given(hnp.arrays(st.sampled_from([np.uint8, np.uint16]),
                  st.tuples(st.integers(1, 12), st.integers(1, 12), st.integers(1, 4))))
def test_png_round_trip_any_shape(pixels):
    np.testing.assert_array_equal(decode_png(encode_png(pixels)).pixels, pixels)


def test_png_writer_rejects_what_it_cannot_store():
    with pytest.raises(ValueError, match="encode_png: pixels must be uint8, uint16 or bool, got float32"):
        encode_png(np.zeros((2, 2), np.float32))
    with pytest.raises(ValueError, match=r"shape \(H, W\) or \(H, W, C\).*\(2, 2, 5\)"):
        encode_png(np.zeros((2, 2, 5), np.uint8))
    with pytest.raises(ValueError, match="value 4 does not fit in 2 bits"):
        encode_png(np.full((2, 2), 4, np.uint8), bit_depth=2)
    with pytest.raises(ValueError, match="bit_depth 8 does not match uint16"):
        encode_png(np.zeros((2, 2), np.uint16), bit_depth=8)
    with pytest.raises(ValueError, match="only for grayscale"):
        encode_png(np.zeros((2, 2, 3), np.uint8), bit_depth=4)


# ---------------------------------------------------------------- PNG errors name the file and the problem

def good_png() -> bytes:
    return encode_png(np.arange(12, dtype=np.uint8).reshape(3, 4))


def with_chunk_body(data: bytes, offset: int, new_body: bytes) -> bytes:
    """`data` with the chunk at `offset` given `new_body` and a correct CRC."""
    length, name = struct.unpack(">I4s", data[offset:offset + 8])
    return data[:offset] + png_chunk(name, new_body) + data[offset + 12 + length:]


def corrupt(kind: str) -> bytes:
    data = good_png()
    idat = data.index(b"IDAT") - 4
    if kind == "signature":
        return data[:4] + b"\r\r\x1a\n" + data[8:]  # what a text-mode transfer does
    if kind == "crc":
        body = bytearray(data)
        body[idat + 9] ^= 0x40  # a bit flip in the compressed data, CRC left as it was
        return bytes(body)
    if kind == "truncated":
        return data[:idat + 10]
    if kind == "short-data":
        return with_chunk_body(data, idat, zlib.compress(b"\x00" * 7))
    if kind == "bad-zlib":
        return with_chunk_body(data, idat, b"not zlib at all")
    if kind == "filter":
        return with_chunk_body(data, idat, zlib.compress(b"\x07" + b"\x00" * 14))
    if kind == "critical":
        return data[:idat] + png_chunk(b"ABCD", b"?") + data[idat:]
    if kind == "interlaced":
        return with_chunk_body(data, 8, data[16:28] + b"\x01")
    if kind == "depth":
        return with_chunk_body(data, 8, data[16:24] + b"\x03" + data[25:29])
    raise AssertionError(kind)


@pytest.mark.parametrize("kind, message", [
    ("signature", "not a PNG file"),
    ("crc", r"CRC mismatch in PNG chunk 'IDAT'.*stored 0x[0-9a-f]{8}, computed 0x[0-9a-f]{8}"),
    ("truncated", "PNG is truncated"),
    ("short-data", r"image data is truncated \(7 of 15 bytes\)"),
    ("bad-zlib", "corrupt PNG image data"),
    ("filter", "invalid PNG filter type 7 on row 0"),
    ("critical", "unsupported critical PNG chunk 'ABCD'"),
    ("interlaced", "Adam7-interlaced PNG is not supported"),
    ("depth", r"invalid PNG bit depth 3 for color type 0"),
])
def test_png_errors_name_the_file(tmp_path, kind, message):
    assert decode_png(good_png()).width == 4  # the unmodified file is fine
    path = tmp_path / f"{kind}.png"
    path.write_bytes(corrupt(kind))
    with pytest.raises(ImageError, match=message) as info:
        read_image(path)
    assert str(info.value).startswith(str(path))


def test_palette_index_out_of_range():
    data = build_png(np.array([[0, 3]], np.uint8), 2, 8, 3, [0], bpp=1,
                     extra_chunks=[(b"PLTE", bytes(6))])
    with pytest.raises(ImageError, match=r"palette index 3 is out of range \(palette has 2 entries\)"):
        decode_png(data, "p.png")


# ---------------------------------------------------------------- PGM / PPM

def test_plain_pgm_with_comments():
    text = b"P2\n# made by hand\n4 # width\n2\n# maxval next\n1000\n0 1 2 3\n 999 1000\n500 7\n"
    image = decode_pgm(text)
    assert image.mode == "L" and image.max_value == 1000 and image.pixels.dtype == np.uint16
    np.testing.assert_array_equal(image.pixels[:, :, 0], [[0, 1, 2, 3], [999, 1000, 500, 7]])


def test_raw_pgm_8_and_16_bit():
    image = decode_pgm(b"P5 3 1 255\n" + bytes([0, 128, 255]))
    np.testing.assert_array_equal(image.pixels[0, :, 0], [0, 128, 255])
    image = decode_pgm(b"P5\n#c\n2 1\n65535\n" + struct.pack(">2H", 258, 65535))
    assert image.max_value == 65535
    np.testing.assert_array_equal(image.pixels[0, :, 0], [258, 65535])


@pytest.mark.parametrize("plain", [False, True])
@pytest.mark.parametrize("channels, dtype, maxval", [(1, np.uint8, None), (1, np.uint16, None), (1, np.uint16, 999),
                                                    (3, np.uint8, None), (3, np.uint8, 100)])
def test_pgm_ppm_round_trip(tmp_path, plain, channels, dtype, maxval):
    rng = np.random.default_rng(channels)
    top = maxval if maxval is not None else np.iinfo(dtype).max
    pixels = rng.integers(0, top + 1, (4, 6, channels)).astype(dtype)
    data = encode_pgm(pixels, maxval=maxval, plain=plain)
    assert data[:2] == {(1, True): b"P2", (1, False): b"P5", (3, True): b"P3", (3, False): b"P6"}[channels, plain]
    image = decode_image(data)
    assert image.max_value == top
    np.testing.assert_array_equal(image.pixels, pixels)
    path = tmp_path / ("x.pgm" if channels == 1 else "x.ppm")
    write_image(path, pixels)
    np.testing.assert_array_equal(read_image(path).pixels, pixels)


@pytest.mark.parametrize("data, message", [
    (b"P5 3 2 255\n" + bytes(5), r"pixel data is truncated \(5 of 6 bytes\)"),
    (b"P2 2 1 10 3 11", "sample 11 exceeds maxval 10"),
    (b"P5 1 1 10\n" + bytes([11]), "sample 11 exceeds maxval 10"),
    (b"P2 2 1 10 3", r"\(1 of 2 samples\)"),
    (b"P2 2 1 10 3 x", "non-numeric sample b'x'"),
    (b"P2 2 # no height", r"header is truncated \(no height\)"),
    (b"P5 2 1 70000\n", "maxval 70000 is not in 1..65535"),
    (b"P5 0 1 255\n", "invalid PGM size 0x1"),
    (b"P4 1 1\n\x00", "PBM .* not supported"),
    (b"GIF89a", "unknown image format"),
])
def test_bad_pgm_and_unknown_formats(tmp_path, data, message):
    path = tmp_path / "bad.pgm"
    path.write_bytes(data)
    with pytest.raises(ImageError, match=message) as info:
        read_image(path)
    assert str(info.value).startswith(str(path))


def test_missing_file_and_unknown_extension(tmp_path):
    with pytest.raises(ImageError, match="nope.png: cannot read image"):
        read_image(tmp_path / "nope.png")
    with pytest.raises(ValueError, match="unknown extension '.jpg'"):
        write_image(tmp_path / "x.jpg", np.zeros((2, 2), np.uint8))


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
    write_image(tmp_path / "light.png", np.rint(ink * 255).astype(np.uint8))
    write_image(tmp_path / "dark.pgm", np.rint((1 - ink) * 255).astype(np.uint8))
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
    np.testing.assert_allclose(to_grayscale(Image(pixels, 255)), [[0.299, 0.587, 0.114]], rtol=1e-6)


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
    np.testing.assert_array_equal(to_mnist(to_grayscale(Image(rgba, 255))), expected)
    la = np.stack([rgba[:, :, 0], alpha], axis=-1)
    np.testing.assert_array_equal(to_mnist(to_grayscale(Image(la, 255))), expected)


def test_fully_transparent_image_has_no_ink():
    with pytest.raises(ImageError, match="no ink found"):
        to_mnist(to_grayscale(Image(np.zeros((5, 5, 4), np.uint8), 255)))


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
        write_image(path, digit if i % 3 else 255 - digit)
        out = read_digit(path)
        diff = np.abs(out.astype(np.int16) - digit.astype(np.int16)).max()
        assert diff <= 1, f"test image {i}: max difference {diff}"
