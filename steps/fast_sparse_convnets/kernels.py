"""Sparse 1×1-convolution kernels in the paper's CHW layout (§3, Fig. 2), compiled with numba.

A 1×1 convolution of a (C_in, H·W) activation is the matrix product Y = W · X with W (C_out, C_in).
The paper's SpMM keeps the activations dense and channel-major: for each output channel it walks
that channel's non-zero weights and accumulates w · X[c, strip] over a contiguous strip of
spatial positions (vector loads; the strip is sized to stay in L1), so each weight and index is
read once per strip. With 1×4 blocks (4 output channels sharing one input channel, §3.2), one
index load and one X-row load serve four accumulators.

Three kernels with the same loop nest over (strip, output channel(s), weight, position), the
weight loop unrolled (several weights per pass over the strip, added in order):
  * `spmm_csr`   — CSR over output channels (unstructured sparsity);
  * `spmm_bsr4`  — 4×1 blocks: rows grouped by 4, one column index per block;
  * `dense_loop` — the same loop nest over every weight (the "dense kernel with the same loop
                   structure"), and `blas` (numpy → OpenBLAS sgemm) as the honest best dense.
Each fuses the bias and the ReLU6 clamp (as XNNPACK's SpMM micro-kernels do with min/max).
All run on one thread; `blas` is pinned to one thread by the caller (threadpoolctl).
"""

from __future__ import annotations

import numpy as np
from numba import njit

_JIT = {"cache": True, "nogil": True, "fastmath": True, "boundscheck": False, "error_model": "numpy"}
# Weights consumed per pass over the accumulator strip (CSR, dense: 4; blocks: 2, i.e. 8 weights):
# one load and store of the strip serves several weights, added in the same order as one at a
# time, so outputs are bit-identical to the one-weight loop and ≈ 1.35× faster (1 thread, AVX-512;
# steps/fast_sparse_convnets/bench_official.py, where torch.sparse's MKL CSR was faster before).
UNROLL = 4


@njit(**_JIT)
def spmm_csr(rowptr, cols, vals, bias, x, y, strip, lo, hi):
    """y[o, :] = clamp(bias[o] + Σ_j vals[j] · x[cols[j], :], lo, hi) for j in row o of the CSR."""
    cout = rowptr.shape[0] - 1
    hw = x.shape[1]
    xf, yf = x.ravel(), y.ravel()  # C-contiguous: views; a row strip is a contiguous slice
    acc = np.empty(strip, np.float32)
    for s0 in range(0, hw, strip):
        n = min(strip, hw - s0)
        for o in range(cout):
            b = bias[o]
            for p in range(n):
                acc[p] = b
            j, end = rowptr[o], rowptr[o + 1]
            while j + UNROLL <= end:  # 4 weights per pass over the strip, added in order
                w0, w1, w2, w3 = vals[j], vals[j + 1], vals[j + 2], vals[j + 3]
                x0 = xf[cols[j] * hw + s0:cols[j] * hw + s0 + n]
                x1 = xf[cols[j + 1] * hw + s0:cols[j + 1] * hw + s0 + n]
                x2 = xf[cols[j + 2] * hw + s0:cols[j + 2] * hw + s0 + n]
                x3 = xf[cols[j + 3] * hw + s0:cols[j + 3] * hw + s0 + n]
                for p in range(n):
                    acc[p] = (((acc[p] + w0 * x0[p]) + w1 * x1[p]) + w2 * x2[p]) + w3 * x3[p]
                j += UNROLL
            for jj in range(j, end):
                w = vals[jj]
                xs = xf[cols[jj] * hw + s0:cols[jj] * hw + s0 + n]
                for p in range(n):
                    acc[p] += w * xs[p]
            off = o * hw + s0
            for p in range(n):
                yf[off + p] = min(max(acc[p], lo), hi)


@njit(**_JIT)
def spmm_bsr4(blockptr, cols, vals, bias, x, y, strip, lo, hi):
    """The same for 4×1 blocks: block row r covers output channels 4r..4r+3, vals is (nnzb, 4)
    (C_out padded to a multiple of 4 by the packer; padded rows are not written)."""
    nrows = blockptr.shape[0] - 1
    cout = y.shape[0]
    hw = x.shape[1]
    xf, yf = x.ravel(), y.ravel()
    acc = np.empty((4, strip), np.float32)
    a0, a1, a2, a3 = acc[0], acc[1], acc[2], acc[3]
    for s0 in range(0, hw, strip):
        n = min(strip, hw - s0)
        for r in range(nrows):
            o = 4 * r
            b0, b1, b2, b3 = bias[o], bias[o + 1], bias[o + 2], bias[o + 3]
            for p in range(n):
                a0[p] = b0
                a1[p] = b1
                a2[p] = b2
                a3[p] = b3
            j, end = blockptr[r], blockptr[r + 1]
            while j + 2 <= end:  # 2 blocks per pass over the strip, added in order
                u0, u1, u2, u3 = vals[j, 0], vals[j, 1], vals[j, 2], vals[j, 3]
                v0, v1, v2, v3 = vals[j + 1, 0], vals[j + 1, 1], vals[j + 1, 2], vals[j + 1, 3]
                xs = xf[cols[j] * hw + s0:cols[j] * hw + s0 + n]  # one index and one strip serve 4 channels
                xt = xf[cols[j + 1] * hw + s0:cols[j + 1] * hw + s0 + n]
                for p in range(n):
                    e, f = xs[p], xt[p]
                    a0[p] = (a0[p] + u0 * e) + v0 * f
                    a1[p] = (a1[p] + u1 * e) + v1 * f
                    a2[p] = (a2[p] + u2 * e) + v2 * f
                    a3[p] = (a3[p] + u3 * e) + v3 * f
                j += 2
            for jj in range(j, end):
                w0, w1, w2, w3 = vals[jj, 0], vals[jj, 1], vals[jj, 2], vals[jj, 3]
                xs = xf[cols[jj] * hw + s0:cols[jj] * hw + s0 + n]
                for p in range(n):
                    v = xs[p]
                    a0[p] += w0 * v
                    a1[p] += w1 * v
                    a2[p] += w2 * v
                    a3[p] += w3 * v
            for k in range(min(4, cout - o)):
                off = (o + k) * hw + s0
                for p in range(n):
                    yf[off + p] = min(max(acc[k, p], lo), hi)


@njit(**_JIT)
def dense_loop(w, bias, x, y, strip, lo, hi):
    """The CSR kernel's loop nest over every weight of a dense W (zeros included)."""
    cout, cin = w.shape
    hw = x.shape[1]
    xf, yf = x.ravel(), y.ravel()
    acc = np.empty(strip, np.float32)
    for s0 in range(0, hw, strip):
        n = min(strip, hw - s0)
        for o in range(cout):
            b = bias[o]
            for p in range(n):
                acc[p] = b
            c = 0
            while c + UNROLL <= cin:
                w0, w1, w2, w3 = w[o, c], w[o, c + 1], w[o, c + 2], w[o, c + 3]
                x0 = xf[c * hw + s0:c * hw + s0 + n]
                x1 = xf[(c + 1) * hw + s0:(c + 1) * hw + s0 + n]
                x2 = xf[(c + 2) * hw + s0:(c + 2) * hw + s0 + n]
                x3 = xf[(c + 3) * hw + s0:(c + 3) * hw + s0 + n]
                for p in range(n):
                    acc[p] = (((acc[p] + w0 * x0[p]) + w1 * x1[p]) + w2 * x2[p]) + w3 * x3[p]
                c += UNROLL
            for cc in range(c, cin):
                wv = w[o, cc]
                xs = xf[cc * hw + s0:cc * hw + s0 + n]
                for p in range(n):
                    acc[p] += wv * xs[p]
            off = o * hw + s0
            for p in range(n):
                yf[off + p] = min(max(acc[p], lo), hi)


def blas(w, bias, x, y, lo, hi):
    """Dense reference: one sgemm (numpy → BLAS), then bias and clamp in place."""
    np.matmul(w, x, out=y)
    y += bias[:, None]
    np.clip(y, lo, hi, out=y)


# ---------------------------------------------------------------------------------------------
# Packing a dense weight matrix into the kernels' formats.


def to_csr(w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rowptr int32, cols int32, vals float32) of the non-zeros of w, row by row."""
    w = np.asarray(w, np.float32)
    nz = w != 0
    rowptr = np.zeros(w.shape[0] + 1, np.int32)
    rowptr[1:] = np.cumsum(nz.sum(1))
    rows, cols = np.nonzero(nz)
    return rowptr, cols.astype(np.int32), np.ascontiguousarray(w[rows, cols], np.float32)


def to_bsr4(w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(blockptr, cols, vals (nnzb, 4)) of w's 4×1 blocks (4 consecutive output channels, one
    input channel) that hold any non-zero; C_out is zero-padded to a multiple of 4."""
    w = np.asarray(w, np.float32)
    cout, cin = w.shape
    pad = (-cout) % 4
    wp = np.concatenate([w, np.zeros((pad, cin), np.float32)]) if pad else w
    blocks = wp.reshape(-1, 4, cin).transpose(0, 2, 1)  # (rows, cin, 4)
    keep = np.any(blocks != 0, axis=2)
    blockptr = np.zeros(blocks.shape[0] + 1, np.int32)
    blockptr[1:] = np.cumsum(keep.sum(1))
    r, c = np.nonzero(keep)
    return blockptr, c.astype(np.int32), np.ascontiguousarray(blocks[r, c], np.float32)


def pad_bias4(bias: np.ndarray) -> np.ndarray:
    b = np.asarray(bias, np.float32)
    pad = (-len(b)) % 4
    return np.concatenate([b, np.zeros(pad, np.float32)]) if pad else b


class Conv1x1:
    """One packed 1×1 layer, run by kernel `kind` ('csr', 'bsr4', 'dense_loop', 'blas')."""

    KINDS = ("csr", "bsr4", "dense_loop", "blas")

    def __init__(self, w: np.ndarray, bias: np.ndarray, kind: str, strip: int, lo: float, hi: float):
        if kind not in self.KINDS:
            raise ValueError(f"unknown kernel {kind!r}; one of {', '.join(self.KINDS)}")
        self.kind, self.strip, self.lo, self.hi = kind, int(strip), float(lo), float(hi)
        self.cout = w.shape[0]
        self.w = np.ascontiguousarray(w, np.float32)
        self.bias = np.ascontiguousarray(bias, np.float32)
        if kind == "csr":
            self.packed = to_csr(self.w)
        elif kind == "bsr4":
            self.packed = to_bsr4(self.w)
            self.bias = pad_bias4(self.bias)

    def __call__(self, x: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
        if y is None:
            y = np.empty((self.cout, x.shape[1]), np.float32)
        if self.kind == "csr":
            spmm_csr(*self.packed, self.bias, x, y, self.strip, self.lo, self.hi)
        elif self.kind == "bsr4":
            spmm_bsr4(*self.packed, self.bias, x, y, self.strip, self.lo, self.hi)
        elif self.kind == "dense_loop":
            dense_loop(self.w, self.bias, x, y, self.strip, self.lo, self.hi)
        else:
            blas(self.w, self.bias, x, y, self.lo, self.hi)
        return y
