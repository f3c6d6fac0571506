"""The thread variables the benchmark sets before numpy loads (this module imports nothing
that loads numpy)."""

from __future__ import annotations

OP_THREAD_VARS = ("OMP_NUM_THREADS", "TINYGRAD_LENET_NUM_THREADS")
BLAS_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
THREAD_VARS = OP_THREAD_VARS + BLAS_THREAD_VARS
