"""Batch-1 CHW inference of an exported network with every 1×1 convolution routed to one
kernel (steps.fast_sparse_convnets.kernels): the latency the paper measures is of the whole
network, with the dense stem, depthwise convolutions and classifier in every arm (§5).

The stem and depthwise 3×3 convolutions are direct numba loops (pad 1, fused bias + ReLU6),
identical in every arm, so arms differ only in the 1×1 kernel.
"""

from __future__ import annotations

import time

import numpy as np
from numba import njit

from steps.fast_sparse_convnets.kernels import Conv1x1

RELU6 = (0.0, 6.0)
_JIT = {"cache": True, "nogil": True, "fastmath": True, "boundscheck": False, "error_model": "numpy"}


@njit(**_JIT)
def conv3x3(x, w, b, stride, y):
    """Dense 3×3 convolution, pad 1: x (C_in, H, W), w (C_out, C_in, 3, 3), y (C_out, H', W')."""
    cin, h, wd = x.shape
    cout, ho, wo = y.shape
    for o in range(cout):
        for i in range(ho):
            for j in range(wo):
                acc = b[o]
                for c in range(cin):
                    for di in range(3):
                        r = i * stride + di - 1
                        if r < 0 or r >= h:
                            continue
                        for dj in range(3):
                            q = j * stride + dj - 1
                            if q >= 0 and q < wd:
                                acc += w[o, c, di, dj] * x[c, r, q]
                y[o, i, j] = min(max(acc, 0.0), 6.0)


@njit(**_JIT)
def dw3x3(x, w, b, stride, y):
    """Depthwise 3×3 convolution, pad 1: x (C, H, W), w (C, 3, 3), y (C, H', W')."""
    c_, h, wd = x.shape
    _, ho, wo = y.shape
    for c in range(c_):
        for i in range(ho):
            for j in range(wo):
                acc = b[c]
                for di in range(3):
                    r = i * stride + di - 1
                    if r < 0 or r >= h:
                        continue
                    for dj in range(3):
                        q = j * stride + dj - 1
                        if q >= 0 and q < wd:
                            acc += w[c, di, dj] * x[c, r, q]
                y[c, i, j] = min(max(acc, 0.0), 6.0)


def out_size(n: int, stride: int) -> int:
    return (n + 2 - 3) // stride + 1


class Engine:
    """An exported network (model.export) with its 1×1 layers packed for kernel `kind`."""

    def __init__(self, net: dict, kind: str, strip: int, in_shape: tuple[int, int, int]):
        self.net, self.kind = net, kind
        c, h, w = in_shape
        s = net["stem_stride"]
        h, w = out_size(h, s), out_size(w, s)
        self.stem_out = np.empty((net["stem_w"].shape[0], h, w), np.float32)
        self.layers = []
        c = net["stem_w"].shape[0]
        for blk in net["blocks"]:
            h, w = out_size(h, blk["stride"]), out_size(w, blk["stride"])
            dw_out = np.empty((c, h, w), np.float32)
            pw = Conv1x1(blk["pw_w"], blk["pw_b"], kind, strip, *RELU6)
            pw_out = np.empty((pw.cout, h * w), np.float32)
            self.layers.append((blk, dw_out, pw, pw_out))
            c = pw.cout

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Logits of one image x (C, H, W) float32."""
        net = self.net
        conv3x3(x, net["stem_w"], net["stem_b"], net["stem_stride"], self.stem_out)
        a = self.stem_out
        for blk, dw_out, pw, pw_out in self.layers:
            dw3x3(a, blk["dw_w"], blk["dw_b"], blk["stride"], dw_out)
            pw(dw_out.reshape(dw_out.shape[0], -1), pw_out)
            a = pw_out.reshape(pw_out.shape[0], *dw_out.shape[1:])
        pooled = a.reshape(a.shape[0], -1).mean(1)
        return net["fc_w"] @ pooled + net["fc_b"]


def median_latency(fn, x, repeats: int, warmup: int) -> dict:
    """Median and quartiles (seconds) of `repeats` timed calls fn(x) after `warmup` untimed ones
    (the JIT compiles, caches warm up)."""
    for _ in range(warmup):
        fn(x)
    times = np.empty(repeats)
    for i in range(repeats):
        t0 = time.perf_counter()
        fn(x)
        times[i] = time.perf_counter() - t0
    q1, med, q3 = np.percentile(times, [25, 50, 75])
    return {"median_s": float(med), "iqr_s": float(q3 - q1), "runs": int(repeats)}


def interleaved_latency(fns: dict, x, repeats: int, warmup: int) -> dict:
    """median_latency of several functions timed round-robin (one call of each per round), so
    that load from other processes on a shared machine falls on every arm alike."""
    for _ in range(warmup):
        for fn in fns.values():
            fn(x)
    times = {k: np.empty(repeats) for k in fns}
    for i in range(repeats):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn(x)
            times[k][i] = time.perf_counter() - t0
    out = {}
    for k, t in times.items():
        q1, med, q3 = np.percentile(t, [25, 50, 75])
        out[k] = {"median_s": float(med), "iqr_s": float(q3 - q1), "min_s": float(t.min()), "runs": int(repeats)}
    return out
