"""IDX format: round trips (raw and gzipped), and clear errors for malformed files."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from measure import allocation_peak

from tinygrad_lenet.atomic import atomic_write
from tinygrad_lenet.data import IDXError, encode_idx, parse_idx, read_idx, write_idx

IDX_DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]


@given(arr=hnp.arrays(st.sampled_from(IDX_DTYPES), hnp.array_shapes(min_dims=1, max_dims=4, max_side=5)))
def test_encode_parse_round_trip(arr):
    out = parse_idx(encode_idx(arr))
    assert out.dtype == arr.dtype and out.shape == arr.shape
    np.testing.assert_array_equal(out, arr)  # NaNs compare equal here


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_write_read_round_trip(tmp_path, suffix):
    images = np.random.default_rng(0).integers(0, 256, (7, 28, 28), dtype=np.uint8)
    path = write_idx(tmp_path / f"images-idx3-ubyte{suffix}", images)
    if suffix:
        assert path.read_bytes()[:2] == b"\x1f\x8b"  # really gzipped
    else:
        assert path.read_bytes()[:4] == b"\x00\x00\x08\x03"  # uint8, 3 dimensions
    out = read_idx(path)
    assert out.dtype == np.uint8 and out.flags.writeable
    np.testing.assert_array_equal(out, images)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left


def test_header_layout_is_big_endian():
    data = encode_idx(np.array([1, 258], dtype=np.int32))
    assert data == b"\x00\x00\x0c\x01" + struct.pack(">I", 2) + struct.pack(">ii", 1, 258)


@pytest.mark.parametrize("magic", [b"\x01\x00\x08\x01", b"\x00\x00\x07\x01", b"\x00\x00\x08\x00"])
def test_bad_magic_is_rejected(magic):
    with pytest.raises(IDXError, match=r"labels\.idx: bad IDX magic number 0x"):
        parse_idx(magic + struct.pack(">I", 1) + b"\x05", "labels.idx")


def test_truncated_file_names_file_and_sizes(tmp_path):
    path = tmp_path / "t10k-images-idx3-ubyte"
    path.write_bytes(encode_idx(np.zeros((3, 4, 4), np.uint8))[:-5])
    with pytest.raises(IDXError, match=r"t10k-images-idx3-ubyte: IDX file truncated.*needs 64 bytes, the file has 59"):
        read_idx(path)


def test_trailing_bytes_are_rejected():
    with pytest.raises(IDXError, match="has trailing bytes"):
        parse_idx(encode_idx(np.zeros(3, np.uint8)) + b"\x00", "x")


def test_too_short_for_header():
    with pytest.raises(IDXError, match="too short"):
        parse_idx(b"\x00\x00", "x")
    with pytest.raises(IDXError, match="too short for the header of a 3-dimensional"):
        parse_idx(b"\x00\x00\x08\x03\x00\x00\x00\x01", "x")


def test_truncated_gzip_names_the_file(tmp_path):
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(encode_idx(np.arange(1000, dtype=np.int32)))[:-20])
    with pytest.raises(IDXError, match=r"train-labels-idx1-ubyte\.gz: the gzip stream ends early"):
        read_idx(path)


def test_corrupt_gzip_names_the_file(tmp_path):
    path = tmp_path / "x.gz"
    data = bytearray(gzip.compress(encode_idx(np.arange(100, dtype=np.uint8))))
    data[12] ^= 0xFF  # inside the deflate stream
    path.write_bytes(bytes(data))
    with pytest.raises(IDXError, match=r"x\.gz: corrupt gzip data"):
        read_idx(path)


def test_multi_member_gzip_is_read_whole(tmp_path):
    raw = encode_idx(np.arange(50, dtype=np.uint8))
    path = tmp_path / "x.gz"
    path.write_bytes(gzip.compress(raw[:20]) + gzip.compress(raw[20:]))
    np.testing.assert_array_equal(read_idx(path), np.arange(50, dtype=np.uint8))


@pytest.mark.parametrize("arr", [np.zeros(3, np.uint16), np.zeros(3, np.int64), np.zeros(3, bool), np.uint8(1)])
def test_encode_rejects_unsupported_arrays(arr):
    with pytest.raises(IDXError, match="encode_idx: cannot store"):
        encode_idx(arr)


def test_failed_atomic_write_leaves_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "data.bin"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_write(path) as f:
            f.write(b"half of the new cont")
            raise RuntimeError("interrupted")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["data.bin"]


def test_a_header_whose_size_overflows_int64_names_the_file(tmp_path):
    path = tmp_path / "huge-idx3-ubyte"
    path.write_bytes(struct.pack(">BBBB", 0, 0, 0x0E, 3) + struct.pack(">3I", *[2**32 - 1] * 3) + bytes(16))
    with pytest.raises(IDXError, match=rf"{path}: IDX file truncated: shape \(4294967295, 4294967295, 4294967295\) "
                                       r"of float64 needs 633825299671392843082401579016 bytes, the file has 32"):
        read_idx(path)


def test_a_gzip_bomb_is_decompressed_no_further_than_its_header_claims(tmp_path):
    """1 KB of IDX header and data, then 256 MiB of zeros: reading stops past the claimed size."""
    path = tmp_path / "bomb-idx1-ubyte.gz"
    member = gzip.compress(bytes(1 << 24), compresslevel=1)  # 16 MiB of zeros in ~16 KB
    path.write_bytes(gzip.compress(encode_idx(np.arange(1000, dtype=np.uint8) % 10)) + member * 16)
    with allocation_peak() as peak, pytest.raises(IDXError, match=r"bomb-idx1-ubyte.gz: it decompresses to more "
                                                                  r"than the 1,008 bytes its IDX header claims"):
        read_idx(path)
    assert peak.bytes < 8_000_000, f"reading the bomb took {peak.bytes:,} bytes"
