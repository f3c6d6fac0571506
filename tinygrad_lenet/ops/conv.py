"""2-D convolution (cross-correlation, as in PyTorch) on NCHW tensors via im2col
and matrix products.

Internally the batch axis is innermost ("CHWN" memory order): the patch matrix
is (kh*C*kw, Ho*Wo*N), so building it, and adding patch gradients back (col2im),
moves runs of Wo*N contiguous numbers instead of runs of Wo. It never exists
whole: each output row's part is a slice of the input's kw column-shifted
copies, and all of them one strided stack of matrices that a single np.matmul
call multiplies (numpy loops over the stack in C); backward rebuilds it from the
saved padded input for the weight gradient. A column may instead cover 4 output
rows (`RowGroups`), where that measured faster (a single-channel layer's weight
gradient with the AVX2 kernels): products with 4 times the rows. The input
gradient multiplies, for each output position, the output gradients that reach
an input column through the kernel's columns, slices of the padded output
gradient (`conv_input_grad_by_shifted_columns`), leaving only the kh row shifts
to add.
The output is the (O, Ho, Wo, N) product seen through a transposed view: an
ordinary (N, O, Ho, Wo) array whose memory happens to be CHWN. Elementwise ops
and pooling keep that memory order, so the next convolution (and the backward
pass) finds its input already batch-innermost and skips the transposing copy.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ..autograd import Function
from ..errors import ShapeError
from .blas import has_avx512_kernels
from .layout import copy_batch_innermost
from .parallel import get_num_threads, parallel_map

# OpenBLAS multiplies without packing its operands when M*N*K is at most 1e6
# ("small matrix" kernels); for LeNet's skinny products (6 or 16 rows, 25 or
# 150 deep, 10^4-10^5 columns) running the product in such column blocks
# measured up to 2x faster than a single call.
_SMALL_GEMM = 1_000_000
_MIN_BLOCK = 256
# Patch matrices are built and consumed in blocks of about this size, so that
# each block is still in the (1 MiB) L2 cache when it is multiplied.
_BLOCK_BYTES = 512 * 1024
# The input gradient is computed in this many groups of input channels (fixed,
# so results do not depend on the number of threads).
_INPUT_GRAD_GROUPS = 2
# Patch matrices of several output rows per column (`RowGroups`) with at least this
# many values are slices of the input's shifted copies rather than copies of their
# own; of one row per column they always are (one stacked product). Measured on the
# AVX2 kernels' 4-row weight gradient of LeNet-5's first layer: copies faster at
# batches 16 and 32 (0.10 against 0.14 ms, 0.19 against 0.21 ms).
_MIN_VIEW_ELEMENTS = 65536
# Blocks whose product is smaller than this many floating-point operations run in
# the calling thread even when more threads are allowed: every numpy call hands the
# GIL over, and for blocks under about 20 microseconds the handovers cost more than
# a second core gains. The AVX-512 kernels multiply about twice as fast, so their
# blocks need twice the work. Measured on LeNet-5 with 2 threads: with the AVX2
# kernels, blocks of 2.6 MFLOP and more ran 15-30% faster than on one thread;
# with the AVX-512 kernels, blocks of 1.1 MFLOP (the first layer) ran 25-35%
# slower and of 3-4.3 MFLOP (the second layer at batch 64) 20-70% slower, while
# those of 6 MFLOP and more (batch 128) ran 15-25% faster.
_MIN_PARALLEL_FLOPS = 2_000_000
_MIN_PARALLEL_FLOPS_AVX512 = 5_000_000


def conv_output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """The output length of a convolution or pooling window along one axis."""
    return (size + 2 * padding - kernel) // stride + 1


def check_conv2d_shapes(x_shape, w_shape, b_shape, stride, padding) -> None:
    """ValueError naming the shapes when a conv2d cannot be computed."""
    if len(x_shape) != 4:
        raise ShapeError(f"conv2d: input must be 4-D (N, C, H, W), got shape {x_shape}")
    if len(w_shape) != 4:
        raise ShapeError(f"conv2d: weight must be 4-D (out, in, kh, kw), got shape {w_shape}")
    if x_shape[1] != w_shape[1]:
        raise ShapeError(f"conv2d: input has {x_shape[1]} channels but weight {w_shape} expects "
                         f"{w_shape[1]} (input shape {x_shape})")
    if b_shape is not None and tuple(b_shape) != (w_shape[0],):
        raise ShapeError(f"conv2d: bias shape {tuple(b_shape)} does not match {w_shape[0]} output channels")
    if min(w_shape) < 1 or x_shape[1] < 1:
        raise ShapeError(f"conv2d: the weight {w_shape} and the input's channels {x_shape[1]} must not be "
                         f"empty (input shape {x_shape})")
    (sh, sw), (ph, pw) = stride, padding
    if sh < 1 or sw < 1 or ph < 0 or pw < 0:
        raise ShapeError(f"conv2d: stride {stride} must be >= 1 and padding {padding} >= 0")
    hp, wp = x_shape[2] + 2 * ph, x_shape[3] + 2 * pw
    if w_shape[2] > hp or w_shape[3] > wp:
        raise ShapeError(f"conv2d: kernel {tuple(w_shape[2:])} is bigger than the padded input "
                         f"({hp}, {wp}) (input shape {x_shape}, padding {padding})")


def matmul_wide(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """a (M, K) @ b (K, P) for P much larger than M and K, in column blocks small
    enough for the BLAS's unpacked kernels (see _SMALL_GEMM); into `out` if given.
    Blocks of equal width (`column_block`) are one stacked product, which numpy
    loops over in C; otherwise a Python loop multiplies block by block."""
    m, k = a.shape
    p = b.shape[1]
    if out is None:
        out = np.empty((m, p), dtype=np.result_type(a, b))
    block = _SMALL_GEMM // max(m * k, 1)
    if block < _MIN_BLOCK:
        block = max(p, 1)
    width = column_block(p, block) if p > block else None
    if width is not None and b.strides[1] == b.itemsize and out.strides[1] == out.itemsize:
        np.matmul(a, column_blocks(b, width), out=column_blocks(out, width, writeable=True))
        return out
    for s in range(0, p, block):
        np.matmul(a, b[:, s:s + block], out=out[:, s:s + block])
    return out


def column_blocks(x: np.ndarray, width: int, writeable: bool = False) -> np.ndarray:
    """A 2-D array's columns in blocks of `width` (which divides them), as a
    (columns // width, rows, width) view: a stack of matrices for np.matmul."""
    s0, s1 = x.strides
    return as_strided(x, shape=(x.shape[1] // width, x.shape[0], width), strides=(width * s1, s0, s1),
                      writeable=writeable)


def matmul_deep(a: np.ndarray, b_t: np.ndarray) -> np.ndarray:
    """a (M, P) @ b_t.T for b_t (K, P) with P much larger than M and K (a sum over
    the long axis, as in a weight gradient), accumulated over blocks of P.
    Computed as (b_t @ a.T).T, the orientation that measured fastest. np.matmul
    keeps the GIL for products of at most 500 outputs, so threads computing small
    blocks take turns; np.dot releases it but measured 2-9x slower on them."""
    m, p = a.shape
    k = b_t.shape[0]
    block = _SMALL_GEMM // max(m * k, 1)
    if block < _MIN_BLOCK or p <= block:
        return (b_t @ a.T).T
    out = b_t[:, :block] @ a[:, :block].T
    for s in range(block, p, block):
        out += b_t[:, s:s + block] @ a[:, s:s + block].T
    return out.T


def to_chwn(x: np.ndarray, ph: int, pw: int) -> np.ndarray:
    """NCHW `x`, zero-padded, as a contiguous (C, H + 2ph, W + 2pw, N) array
    (no copy when x is unpadded and already batch-innermost in memory)."""
    xt = x.transpose(1, 2, 3, 0)
    if not (ph or pw):
        return xt if xt.flags.c_contiguous else copy_batch_innermost(x, np.empty_like(xt, order="C"))
    c, h, w, n = xt.shape
    out = np.zeros((c, h + 2 * ph, w + 2 * pw, n), dtype=x.dtype)
    copy_batch_innermost(x, out[:, ph:ph + h, pw:pw + w])
    return out


def patch_view(xt: np.ndarray, kh: int, kw: int, sh: int, sw: int, ho: int, wo: int) -> np.ndarray:
    """Read-only (C, kh, kw, Ho, Wo, N) view of a padded (C, Hp, Wp, N) array:
    [c, i, j, y, x, n] is xt[c, y*sh + i, x*sw + j, n]. Copying a block of it
    is im2col for that block of output rows."""
    s = xt.strides
    return as_strided(xt, shape=(xt.shape[0], kh, kw, ho, wo, xt.shape[3]),
                      strides=(s[0], s[1], s[2], s[1] * sh, s[2] * sw, s[3]), writeable=False)


def threads_for(blocks: list[tuple[int, int]], flops_per_row: int) -> int | None:
    """`parallel_map`'s max_threads for blocks of output rows: 1 when the average
    block's product is under _MIN_PARALLEL_FLOPS (for the BLAS's kernels), else no limit."""
    rows = sum(b - a for a, b in blocks)
    minimum = _MIN_PARALLEL_FLOPS_AVX512 if has_avx512_kernels() else _MIN_PARALLEL_FLOPS
    return 1 if flops_per_row * rows < minimum * len(blocks) else None


def row_blocks(ho: int, columns_per_row: int, rows_of_matrix: int, itemsize: int) -> list[tuple[int, int]]:
    """Output-row ranges whose patch block (rows_of_matrix x columns) fits _BLOCK_BYTES."""
    per_row = rows_of_matrix * columns_per_row * itemsize
    step = max(1, _BLOCK_BYTES // max(per_row, 1))
    return [(y, min(ho, y + step)) for y in range(0, ho, step)]


def rows_per_column(out_channels: int, in_channels: int, ho: int, weight_grad: bool = False) -> int:
    """How many output rows one patch-matrix column computes (see `RowGroups`), as
    measured on LeNet-5's convolutions (1 -> 6 and 6 -> 16 channels, batches 16-256)
    with each kind of OpenBLAS float32 kernel numpy may run (see
    `has_avx512_kernels`). One row per column gives patch matrices that are slices
    of the input's shifted copies, multiplied as one stacked product
    (`stacked_row_products`): fastest in every case measured but one, the AVX2
    kernels' weight gradient of a single-channel layer, where columns of 4 rows
    (products with 4 times the rows) were faster: 0.69 against 0.90 ms at batch 128,
    0.10 against 0.14 ms at batch 16. The input gradient does not use row groups."""
    single_channel_grad = weight_grad and out_channels * in_channels <= 8
    if single_channel_grad and ho >= 4 and not has_avx512_kernels():
        return 4
    return 1


def slices_patches(depth: int, row: int, rows: int) -> bool:
    """Whether patch matrices of `depth` rows and `row` columns per output row,
    with `rows` output rows per column, are slices of the input's shifted copies
    rather than copies in a cache-sized buffer (see `RowGroups`)."""
    return rows == 1 or depth * row >= _MIN_VIEW_ELEMENTS


def column_block(columns: int, limit: int) -> int | None:
    """The widest block of columns that divides `columns` into equal blocks of at
    most `limit` (None when such blocks would be narrower than _MIN_BLOCK, or for
    no columns)."""
    if columns < 1:
        return None
    parts = max(1, -(-columns // max(limit, 1)))
    while columns // parts >= min(_MIN_BLOCK, columns):
        if columns % parts == 0:
            return columns // parts
        parts += 1
    return None


def row_spans(rows: int, parts: int) -> list[tuple[int, int]]:
    """`rows` split into at most `parts` consecutive ranges of nearly equal length."""
    parts = max(1, min(parts, rows))
    return [(rows * k // parts, rows * (k + 1) // parts) for k in range(parts)]


class RowGroups:
    """Patch matrices whose columns cover `rows` vertically adjacent output rows.

    With 1 row a column is one output position's C*kh*kw patch, and the product
    has as many rows as output channels: 6 or 16 in LeNet, too few for the
    BLAS's kernels. A column covering R rows holds the R patches' union, kr*C*kw
    values with kr = (R-1)*sh + kh, and the weight becomes (R*O, kr*C*kw), each
    output row's copy of it shifted down by sh and zero elsewhere: the product
    has R times the rows, and the patch matrix fewer values per output.
    Output row y = g*R + r is row r of group g; the input is padded at the bottom
    with zeros when R does not divide Ho (the extra rows are computed and dropped).

    Patch rows are ordered (input row i, channel c, kernel column j). That order
    lets a group's patch matrix be a slice of one array instead of a copy: the
    input in kw column-shifted copies, `shifted[y, c, j] = x[c, y, j::sw]` (Hp*C*kw
    rows of Wo*N), holds group g's matrix as its consecutive rows from input row
    g*R*sh on. Building it copies the input kw times, against kh*kw times for
    im2col. With 1 row per column all groups' matrices are one strided stack
    (`stacked`), multiplied in one call; with more rows, products of at least
    _MIN_VIEW_ELEMENTS patch values use the slices (`sliced`) and smaller ones copy
    blocks of several groups into a cache-sized buffer, fewer and wider products."""

    def __init__(self, xt: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int], ho: int, wo: int, rows: int):
        (kh, kw), (sh, sw) = kernel, stride
        self.rows, self.ho, self.wo, self.sh, self.dtype = rows, ho, wo, sh, xt.dtype
        self.groups = -(-ho // rows)
        self.kr = (rows - 1) * sh + kh
        needed = (self.groups - 1) * rows * sh + self.kr
        if needed > xt.shape[1]:
            grown = np.zeros((xt.shape[0], needed, *xt.shape[2:]), dtype=xt.dtype)
            grown[:, :xt.shape[1]] = xt
            xt = grown
        c, hp, _, n = xt.shape
        self.depth = self.kr * c * kw  # rows of the patch matrix
        self.row = wo * n  # columns per output row (Wo * N)
        self.sliced = slices_patches(self.depth, self.row, rows)
        if self.sliced:
            shifted = np.empty((hp, c, kw, wo, n), dtype=xt.dtype)
            for j in range(kw):
                shifted[:, :, j] = xt[:, :, j:j + sw * (wo - 1) + 1:sw].transpose(1, 0, 2, 3)
            self.shifted = shifted.reshape(hp * c * kw, self.row)
            self.group_start = sh * rows * c * kw  # rows of `shifted` between groups
            self.blocks = [(g, g + 1) for g in range(self.groups)]
        else:
            self.patches = patch_view(xt, self.kr, kw, sh * rows, sw, self.groups, wo).transpose(1, 0, 2, 3, 4, 5)
            self.blocks = row_blocks(self.groups, self.row, self.depth, xt.itemsize)
        self.groups_per_block = max(g1 - g0 for g0, g1 in self.blocks)

    def stacked(self, width: int) -> np.ndarray:
        """Every group's patch matrix in column blocks of `width`, as one read-only
        (groups, row // width, depth, width) view of the shifted input (sliced
        grids): [g, k] is block k of group g's matrix."""
        s0, s1 = self.shifted.strides
        return as_strided(self.shifted, shape=(self.groups, self.row // width, self.depth, width),
                          strides=(self.group_start * s0, width * s1, s0, s1), writeable=False)

    def buffer(self) -> np.ndarray | None:
        """A per-thread buffer for one block's patch matrix (None when sliced)."""
        if self.sliced:
            return None
        shape = self.patches.shape
        return np.empty(shape[:3] + (self.groups_per_block,) + shape[4:], dtype=self.patches.dtype)

    def fill(self, buf: np.ndarray | None, block: tuple[int, int]) -> np.ndarray:
        """The (depth, groups_in_block * Wo * N) patch matrix of a block of groups:
        a slice of the shifted input, or copied into `buf` (im2col)."""
        g0, g1 = block
        if self.sliced:
            return self.shifted[g0 * self.group_start:g0 * self.group_start + self.depth]
        blk = buf[:, :, :, :g1 - g0]
        blk[...] = self.patches[:, :, :, g0:g1]
        return blk.reshape(self.depth, -1)

    def weight(self, w: np.ndarray) -> np.ndarray:
        """The (R*O, kr*C*kw) weight in patch-row order: row block r is w shifted down by r*sh rows."""
        o, c, kh, kw = w.shape
        wide = np.zeros((self.rows, o, self.kr, c, kw), dtype=w.dtype)
        for r in range(self.rows):
            wide[r, :, r * self.sh:r * self.sh + kh] = w.transpose(0, 2, 1, 3)
        return wide.reshape(self.rows * o, -1)

    def fold_weight(self, wide: np.ndarray, w_shape: tuple[int, ...]) -> np.ndarray:
        """The inverse of `weight` for gradients: each shifted copy's share summed back."""
        o, c, kh, kw = w_shape
        wide = wide.reshape(self.rows, o, self.kr, c, kw)
        out = wide[0, :, :kh].copy()
        for r in range(1, self.rows):
            out += wide[r, :, r * self.sh:r * self.sh + kh]
        return np.ascontiguousarray(out.transpose(0, 2, 1, 3))

    def output_rows(self, block: tuple[int, int], r: int) -> tuple[slice, int]:
        """The output rows that row r of the block's groups computes (a strided slice),
        and how many of them exist (the last group may run past Ho)."""
        g0, g1 = block
        first = g0 * self.rows + r
        count = len(range(first, min(self.ho, g1 * self.rows), self.rows))
        return slice(first, first + self.rows * (count - 1) + 1 if count else first, self.rows), count


def stacked_row_products(run_rows: Callable[[tuple[int, int]], None], grid: RowGroups, flops_per_row: int) -> None:
    """Runs `run_rows((y0, y1))`, one stacked product over output rows y0..y1 (numpy
    loops over the stack in C, without a Python call per product), on the whole
    range, or on a share of it per thread when the products are large enough
    (`threads_for`). Measured on LeNet-5's layers at batch 128 against a Python
    loop over rows: the second layer's forward pass 0.51 -> 0.31 ms (AVX-512
    kernels) and 0.78 -> 0.68 ms (AVX2), its weight gradient 0.53 -> 0.47 and 0.78
    -> 0.69 ms, the first layer's forward pass 0.31 -> 0.25 ms (AVX-512)."""
    threads = threads_for(grid.blocks, flops_per_row)
    parallel_map(run_rows, row_spans(grid.ho, get_num_threads() if threads is None else 1), max_threads=threads)


def stack_width(row: int, weight_size: int, grid: RowGroups) -> int | None:
    """The column block of the stacked products over output rows: small enough for the
    BLAS's unpacked kernels when the weight is small (see _SMALL_GEMM); for a larger
    weight, blocks whose patch matrix fits _BLOCK_BYTES."""
    width = column_block(row, _SMALL_GEMM // max(weight_size, 1))
    if width is None and weight_size * row >= _SMALL_GEMM:
        width = column_block(row, _BLOCK_BYTES // (grid.depth * grid.dtype.itemsize)) or row
    return width


def conv_forward_chwn(xt: np.ndarray, w: np.ndarray, b: np.ndarray | None, sh: int, sw: int,
                      ho: int, wo: int, rows: int | None = None, grid: RowGroups | None = None) -> np.ndarray:
    """conv2d of a padded (C, Hp, Wp, N) input as an (O, Ho*Wo*N) array. The
    patch matrix is multiplied a few output rows at a time (see `RowGroups`; `grid`
    if made already) and never exists whole."""
    o, c, kh, kw = w.shape
    if grid is None:
        grid = RowGroups(xt, (kh, kw), (sh, sw), ho, wo, rows or rows_per_column(o, c, ho))
    rows = grid.rows
    w2 = grid.weight(w)
    row = grid.row
    out = np.empty((o, ho, row), dtype=np.result_type(xt, w))
    bias = None if b is None else b[:, None, None]
    width = stack_width(row, w2.size, grid) if grid.sliced and rows == 1 else None
    if width is not None:
        patches = grid.stacked(width)  # (Ho, blocks, depth, width)
        dest = out.reshape(o, ho, -1, width).transpose(1, 2, 0, 3)  # (Ho, blocks, O, width)

        def run_rows(span: tuple[int, int]) -> None:
            y0, y1 = span
            np.matmul(w2, patches[y0:y1], out=dest[y0:y1])
            if bias is not None:
                out[:, y0:y1] += bias

        stacked_row_products(run_rows, grid, 2 * w2.size * row)
        return out.reshape(o, -1)

    def run(block: tuple[int, int], bufs: tuple[np.ndarray, np.ndarray]) -> None:
        g0, g1 = block
        patches = grid.fill(bufs[0], block)
        if rows == 1:
            dest = out.reshape(o, -1)[:, g0 * row:g1 * row]
            matmul_wide(w2, patches, out=dest)
            if b is not None:
                dest += b[:, None]
            return
        product = matmul_wide(w2, patches, out=bufs[1][:, :patches.shape[1]]).reshape(rows, o, g1 - g0, row)
        for r in range(rows):
            where, count = grid.output_rows(block, r)
            if bias is None:
                out[:, where] = product[r, :, :count]
            else:
                np.add(product[r, :, :count], bias, out=out[:, where])

    def buffers() -> tuple[np.ndarray | None, np.ndarray]:
        cols = grid.groups_per_block * row
        return grid.buffer(), np.empty((w2.shape[0], cols if rows > 1 else 0), dtype=out.dtype)

    parallel_map(run, grid.blocks, buffers, threads_for(grid.blocks, 2 * w2.size * row))
    return out.reshape(o, -1)


def conv_weight_grad_chwn(g: np.ndarray, xt: np.ndarray | None, w_shape: tuple[int, ...], sh: int, sw: int,
                          ho: int, wo: int, rows: int | None = None, grid: RowGroups | None = None) -> np.ndarray:
    """d/dw from g (O, Ho*Wo*N): g @ patches.T, the patch matrix rebuilt block by
    block from the saved padded input `xt`, or read from the forward pass's `grid`
    (its shifted copies, kept). The per-block products are summed in block order
    (deterministic)."""
    o, c, kh, kw = w_shape
    if grid is None:
        grid = RowGroups(xt, (kh, kw), (sh, sw), ho, wo, rows or rows_per_column(o, c, ho, weight_grad=True))
    rows = grid.rows
    row = grid.row
    width = stack_width(row, o * grid.depth, grid) if grid.sliced and rows == 1 else None
    if width is not None:
        patches = grid.stacked(width)  # (Ho, blocks, depth, width)
        grads = g.reshape(o, ho, -1, width).transpose(1, 2, 3, 0)  # (Ho, blocks, width, O)
        parts = np.empty(patches.shape[:3] + (o,), dtype=np.result_type(grid.dtype, g))

        def run_rows(span: tuple[int, int]) -> None:
            y0, y1 = span
            np.matmul(patches[y0:y1], grads[y0:y1], out=parts[y0:y1])

        stacked_row_products(run_rows, grid, 2 * o * grid.depth * row)
        # one sum over all blocks' products, in the same order whatever the threads did
        return grid.fold_weight(parts.sum(axis=(0, 1)).T, tuple(w_shape))
    g3 = g.reshape(o, ho, row)

    def run(block: tuple[int, int], bufs: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        g0, g1 = block
        patches = grid.fill(bufs[0], block)
        if rows == 1:
            return matmul_deep(g[:, g0 * row:g1 * row], patches)
        grads = bufs[1][:, :, :g1 - g0]  # (R, O, groups, row): the rows each group's column computed
        for r in range(rows):
            where, count = grid.output_rows(block, r)
            grads[r, :, :count] = g3[:, where]
            grads[r, :, count:] = 0
        return matmul_deep(grads.reshape(rows * o, -1), patches)

    def buffers() -> tuple[np.ndarray | None, np.ndarray]:
        return grid.buffer(), np.empty((rows, o, grid.groups_per_block if rows > 1 else 0, row), dtype=g.dtype)

    parts = parallel_map(run, grid.blocks, buffers, threads_for(grid.blocks, 2 * rows * o * grid.depth * row))
    gw = parts[0].copy()
    for part in parts[1:]:
        gw += part
    return grid.fold_weight(gw, tuple(w_shape))


def conv_input_grad_chwn(g: np.ndarray, w: np.ndarray, padded_shape: tuple[int, ...], sh: int, sw: int,
                         ho: int, wo: int) -> np.ndarray:
    """Gradient of the padded (C, Hp, Wp, N) input from g (O, Ho*Wo*N): each
    patch's gradient w.T @ g added back to where the patch came from (col2im;
    overlapping patches accumulate). With horizontal stride 1 the sum over a
    kernel row's taps is taken inside one product; otherwise one kernel row at
    a time. Threads take disjoint groups of input channels for the adds; the
    groups do not depend on the thread count, so every count computes the same
    products and gets bit-identical results."""
    if sw == 1:
        return conv_input_grad_by_shifted_columns(g, w, padded_shape, sh, ho, wo)
    return conv_input_grad_by_kernel_rows(g, w, padded_shape, sh, sw, ho, wo)


def channel_groups(channels: int) -> list[tuple[int, int]]:
    """The input gradient's fixed split of input channels between threads."""
    groups = min(channels, _INPUT_GRAD_GROUPS)
    return [(channels * k // groups, channels * (k + 1) // groups) for k in range(groups)]


def conv_input_grad_by_shifted_columns(g: np.ndarray, w: np.ndarray, padded_shape: tuple[int, ...], sh: int,
                                       ho: int, wo: int) -> np.ndarray:
    """conv_input_grad_chwn for horizontal stride 1. For each input column x the
    windows cover (Wc = Wo + kw - 1 of them) and output row y, the output gradients
    that reach it through the kernel's columns, g[o, y, x - (kw - 1 - j), n] (zero
    outside), form a (kw*O, N) matrix; multiplied by the column-flipped weight (C*kh,
    kw*O) it gives the input column's sum over a kernel row's taps, for every kernel
    row at once, and only the kh row shifts are left to add. Measured on LeNet's
    6 -> 16 layer: 16-21% faster than a kernel row at a time (1/5 the adds, for a
    product 40% wider with twice the rows, which BLAS kernels prefer).
    With g zero-padded by kw - 1 columns on each side in (Ho, Wo + 2(kw - 1), O, N)
    layout, position (y, x)'s matrix is a slice of it (rows j, o at one stride: the
    next column holds the next j), so all Ho*Wc matrices are one strided stack for
    a single np.matmul call and nothing is copied kw times: at batch 128, 0.62 ->
    0.45 ms with the AVX-512 kernels, 1.05 -> 0.97 ms with AVX2."""
    o, c, kh, kw = w.shape
    n = g.shape[1] // (ho * wo)
    cols = wo + kw - 1
    padded = np.zeros((ho, wo + 2 * (kw - 1), o, n), dtype=g.dtype)
    padded[:, kw - 1:kw - 1 + wo] = g.reshape(o, ho, wo, n).transpose(1, 2, 0, 3)
    s = padded.strides
    # [y, x, (j, o), n] = padded[y, x + j, o, n] = g[o, y, x - (kw - 1 - j), n]
    shifted = as_strided(padded, shape=(ho, cols, kw * o, n), strides=s, writeable=False)
    flipped = np.ascontiguousarray(w[:, :, :, ::-1].transpose(1, 2, 3, 0)).reshape(c * kh, kw * o)
    product = np.empty((c * kh, ho, cols, n), dtype=np.result_type(flipped, g))
    dest = product.transpose(1, 2, 0, 3)  # (Ho, Wc, C*kh, N): position (y, x)'s product

    def multiply(span: tuple[int, int]) -> None:
        y0, y1 = span
        np.matmul(flipped, shifted[y0:y1], out=dest[y0:y1])

    flops_per_row = 2 * flipped.size * cols * n
    threads = threads_for([(y, y + 1) for y in range(ho)], flops_per_row)  # the adds are as small as the products
    parallel_map(multiply, row_spans(ho, get_num_threads() if threads is None else 1), max_threads=threads)
    product = product.reshape(c, kh, ho, cols, n)
    out = np.zeros(padded_shape, dtype=product.dtype)

    def add(channels: tuple[int, int]) -> None:
        c0, c1 = channels
        for i in range(kh):
            out[c0:c1, i:i + sh * (ho - 1) + 1:sh, :cols] += product[c0:c1, i]

    parallel_map(add, channel_groups(c), max_threads=threads)
    return out


def conv_input_grad_by_kernel_rows(g: np.ndarray, w: np.ndarray, padded_shape: tuple[int, ...], sh: int, sw: int,
                                   ho: int, wo: int) -> np.ndarray:
    """conv_input_grad_chwn for any stride: one kernel row at a time, so each
    block of patch gradients is added while it is still in cache (a BLAS may
    round a product differently for a different number of rows, hence the fixed
    channel groups)."""
    o, c, kh, kw = w.shape
    n = padded_shape[3]
    w_rows = np.ascontiguousarray(w.transpose(1, 2, 3, 0))  # (C, kh, kw, O)
    out = np.zeros(padded_shape, dtype=g.dtype)

    def run(channels: tuple[int, int]) -> None:
        c0, c1 = channels
        for i in range(kh):
            w_i = w_rows[c0:c1, i].reshape((c1 - c0) * kw, o)  # rows (c, j)
            part = matmul_wide(w_i, g).reshape(c1 - c0, kw, ho, wo, n)
            for j in range(kw):
                out[c0:c1, i:i + sh * ho:sh, j:j + sw * wo:sw] += part[:, j]

    parallel_map(run, channel_groups(c))
    return out


class Conv2d(Function):
    name = "conv2d"

    @staticmethod
    def forward(ctx, x, w, b=None, *, stride, padding):
        check_conv2d_shapes(x.shape, w.shape, None if b is None else b.shape, stride, padding)
        (sh, sw), (ph, pw) = stride, padding
        n, _, h, wd = x.shape
        o, _, kh, kw = w.shape
        ho, wo = conv_output_size(h, kh, sh, ph), conv_output_size(wd, kw, sw, pw)
        xt = to_chwn(x, ph, pw)
        grid = RowGroups(xt, (kh, kw), (sh, sw), ho, wo, rows_per_column(o, x.shape[1], ho))
        out = conv_forward_chwn(xt, w, b, sh, sw, ho, wo, grid=grid)
        ctx.save_for_backward(x, w)
        if ctx.needs_input_grad[1] and grid.sliced and grid.rows == rows_per_column(o, x.shape[1], ho, True):
            ctx.remember(grid=grid)  # its shifted copies of x serve the weight gradient as they are
        else:
            ctx.remember(padded=xt)  # x in the kernels' layout, for the weight gradient to rebuild them
        return out.reshape(o, ho, wo, n).transpose(3, 0, 1, 2)

    @staticmethod
    def backward(ctx, grad):
        x, w = ctx.saved_tensors
        stride, padding = ctx.attrs["stride"], ctx.attrs["padding"]
        g = grad_rows(np.asarray(grad))  # the kernels' layout of grad, shared by both gradients
        gx = gw = gb = None
        if ctx.needs_input_grad[0]:
            gx = Conv2dInputGrad.call(grad, w, stride=stride, padding=padding, x_shape=x.shape, grad_matrix=g)
        if ctx.needs_input_grad[1]:
            gw = Conv2dWeightGrad.call(x, grad, stride=stride, padding=padding, w_shape=w.shape, grad_matrix=g,
                                       padded_input=ctx.values.get("padded"), patch_grid=ctx.values.get("grid"))
        if len(ctx.parents) == 3:
            gb = bias_grad(grad, g) if ctx.needs_input_grad[2] else None
            return gx, gw, gb
        return gx, gw


def bias_grad(grad, g: np.ndarray):
    """d conv2d / d bias: `grad` summed over all but the channel axis. On arrays, as
    the product of its (O, Ho*Wo*N) matrix `g` with a vector of ones: the BLAS's
    matrix-vector product measured 2.5x faster than numpy's pairwise sum on LeNet's
    first layer (0.033 against 0.081 ms at batch 128) for an error of a few float32
    roundings (2.9e-7 against 9.2e-8 relative), like the weight gradient's products.
    On Tensors (a recorded backward), a sum."""
    if not isinstance(grad, np.ndarray):
        return grad.sum(axis=(0, 2, 3))
    return g @ np.ones(g.shape[1], dtype=g.dtype)


def grad_rows(grad: np.ndarray) -> np.ndarray:
    """An (N, O, Ho, Wo) output gradient as the kernels' contiguous (O, Ho*Wo*N) matrix."""
    rows = grad.transpose(1, 2, 3, 0)
    if not rows.flags.c_contiguous:
        rows = copy_batch_innermost(grad, np.empty_like(rows, order="C"))
    return rows.reshape(grad.shape[1], -1)


class Conv2dInputGrad(Function):
    """d conv2d / d input: `grad` (N, O, Ho, Wo) sent back through weight `w` to an
    input of `x_shape` (a transposed convolution). Linear in both: its gradients are
    conv2d (for grad) and conv2d_weight_grad (for w)."""
    name = "conv2d_input_grad"

    @staticmethod
    def forward(ctx, grad, w, *, stride, padding, x_shape, grad_matrix=None):
        (sh, sw), (ph, pw) = stride, padding
        n, c, h, wd = x_shape
        ctx.save_for_backward(grad, w)
        g = grad_matrix if grad_matrix is not None else grad_rows(grad)
        gxt = conv_input_grad_chwn(g, w, (c, h + 2 * ph, wd + 2 * pw, n), sh, sw, grad.shape[2], grad.shape[3])
        return gxt[:, ph:ph + h, pw:pw + wd].transpose(3, 0, 1, 2)

    @staticmethod
    def backward(ctx, grad):
        g, w = ctx.saved_tensors
        stride, padding = ctx.attrs["stride"], ctx.attrs["padding"]
        d_grad = None
        if ctx.needs_input_grad[0]:
            d_grad = _crop_to(Conv2d.call(grad, w, stride=stride, padding=padding), g.shape)
        d_w = Conv2dWeightGrad.call(grad, g, stride=stride, padding=padding, w_shape=w.shape) \
            if ctx.needs_input_grad[1] else None
        return d_grad, d_w


class Conv2dWeightGrad(Function):
    """d conv2d / d weight: the correlation of input `x` with `grad` (N, O, Ho, Wo),
    shaped `w_shape`. Linear in both: its gradients are conv2d_input_grad (for x)
    and conv2d (for grad)."""
    name = "conv2d_weight_grad"

    @staticmethod
    def forward(ctx, x, grad, *, stride, padding, w_shape, grad_matrix=None, padded_input=None, patch_grid=None):
        (sh, sw), (ph, pw) = stride, padding
        ctx.save_for_backward(x, grad)
        g = grad_matrix if grad_matrix is not None else grad_rows(grad)
        if patch_grid is not None:
            return conv_weight_grad_chwn(g, None, tuple(w_shape), sh, sw, grad.shape[2], grad.shape[3], grid=patch_grid)
        xt = padded_input if padded_input is not None else to_chwn(x, ph, pw)
        return conv_weight_grad_chwn(g, xt, tuple(w_shape), sh, sw, grad.shape[2], grad.shape[3])

    @staticmethod
    def backward(ctx, grad):
        x, g = ctx.saved_tensors
        stride, padding = ctx.attrs["stride"], ctx.attrs["padding"]
        d_x = Conv2dInputGrad.call(g, grad, stride=stride, padding=padding, x_shape=x.shape) \
            if ctx.needs_input_grad[0] else None
        d_grad = Conv2d.call(x, grad, stride=stride, padding=padding) if ctx.needs_input_grad[1] else None
        return d_x, d_grad if d_grad is None else _crop_to(d_grad, g.shape)


def _crop_to(d_grad, shape):
    """A conv2d over an input with rows past its last window (a transposed convolution's
    output_padding >= stride) gives more positions than the gradient it stands for; those reach nothing."""
    return d_grad if d_grad.shape[2:] == tuple(shape[2:]) else d_grad[:, :, :shape[2], :shape[3]]
