"""Our sparse 1×1-convolution kernels (steps.fast_sparse_convnets.kernels: numba, CHW, bias
and ReLU6 fused) beside library sparse × dense products on the same matrices: scipy.sparse
(CSR; BSR with 4×1 blocks) and torch.sparse (CSR; BSR 4×1), each followed by the same bias
and ReLU6 clamp. The paper's own kernels live in XNNPACK (C, reached through TF-Lite's
delegate, not from Python), so libraries stand in for it.

    python -m steps.core.bench_official fast_sparse_convnets

Configuration: the mini kernel benchmark's first shape (params/fast_sparse_convnets: C_out =
C_in = 256, 196 positions = the width-2 net's widest 1×1 layer at 14×14), unstructured masks
for CSR and 1×4-block masks for BSR at 70 % and 90 % sparsity, strip 128 (kernels.strip; CSR
against torch also with one 196-position strip); one timed run = 100 calls on the same
buffers. Checked: both outputs equal the float64 product to 1e-4.
"""

from __future__ import annotations

import warnings

import numpy as np

from steps.core.bench_official import Arm, Case

SHAPE = (256, 256, 196)   # C_out, C_in, H·W (params/fast_sparse_convnets/base.yaml kernels.shapes[0])
SPARSITIES = (0.7, 0.9)
CALLS = 100
STRIP = 128               # kernels.strip
LO, HI = 0.0, 6.0         # ReLU6, as in the inference engine
SEED = 0


def problem(sparsity: float, block: int, seed: int = SEED) -> dict:
    """Random activations, weights masked at `sparsity` (unstructured, or 4×1 blocks along
    output channels as bench_kernels.masks), bias, and the float64 reference output."""
    cout, cin, hw = SHAPE
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((cin, hw)).astype(np.float32)
    w = rng.standard_normal((cout, cin)).astype(np.float32) / np.sqrt(cin)
    b = rng.standard_normal(cout).astype(np.float32)
    if block == 1:
        mask = rng.random((cout, cin)) >= sparsity
    else:
        mask = np.repeat(rng.random((cout // 4, cin)) >= sparsity, 4, axis=0)
    wm = (w * mask).astype(np.float32)
    ref = np.clip(wm.astype(np.float64) @ x.astype(np.float64) + b[:, None], LO, HI)
    return {"x": x, "w": wm, "b": b, "ref": ref}


def ours_arm(p: dict, kind: str, strip: int = STRIP) -> Arm:
    from steps.fast_sparse_convnets.kernels import Conv1x1

    layer = Conv1x1(p["w"], p["b"], kind, strip, LO, HI)
    y = np.empty((p["w"].shape[0], p["x"].shape[1]), np.float32)

    def run(_):
        for _ in range(CALLS):
            layer(p["x"], y)
        return y.copy()

    return Arm(lambda: None, run)


def scipy_arm(p: dict, block: int) -> Arm:
    import scipy.sparse as sp

    a = sp.csr_matrix(p["w"]) if block == 1 else sp.bsr_matrix(p["w"], blocksize=(4, 1))
    x, b = p["x"], p["b"][:, None]

    def run(_):
        for _ in range(CALLS):
            y = a @ x
            y += b
            np.clip(y, LO, HI, out=y)
        return y

    return Arm(lambda: None, run)


def torch_arm(p: dict, block: int) -> Arm:
    import torch

    w = torch.from_numpy(p["w"])
    with warnings.catch_warnings():  # "sparse CSR/BSR support is in beta"
        warnings.simplefilter("ignore", UserWarning)
        a = w.to_sparse_csr() if block == 1 else w.to_sparse_bsr((4, 1))
    x, b = torch.from_numpy(p["x"]), torch.from_numpy(p["b"])[:, None]

    def run(_):
        for _ in range(CALLS):
            y = torch.addmm(b, a, x).clamp_(LO, HI)
        return y.numpy()

    return Arm(lambda: None, run)


def checker(ref: np.ndarray, tol: float = 1e-4):
    def check(ours, official) -> tuple[bool, str]:
        e1, e2 = float(np.abs(ours - ref).max()), float(np.abs(official - ref).max())
        return max(e1, e2) <= tol, f"max abs Δ to float64: ours {e1:.1e}, official {e2:.1e}"

    return check


def torch_bsr_supported() -> str | None:
    """None when torch multiplies a BSR matrix by a dense one on this CPU, else why not."""
    import torch

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            torch.addmm(torch.zeros(4, 1), torch.eye(4).to_sparse_bsr((4, 1)), torch.ones(4, 2))
    except (RuntimeError, NotImplementedError) as e:
        return f"torch {torch.__version__} has no CPU BSR × dense ({str(e).splitlines()[0][:80]})"
    return None


def cases(official_path: str | None = None) -> list[Case]:
    """CSR and 1×4-block kernels against scipy.sparse and torch.sparse (official_path unused:
    both libraries are dependencies of the project). CSR against torch also with one strip per
    feature map (strip = H·W): MKL's CSR product takes a whole output row at once."""
    import scipy
    import torch

    out = []
    bsr_skip = torch_bsr_supported()
    tv = torch.__version__.split("+")[0]
    for s in SPARSITIES:
        config = f"{SHAPE[0]}×{SHAPE[1]} · {SHAPE[2]} positions, {s:.0%} sparse, {CALLS} calls, 1 thread"
        p1, p4 = problem(s, 1), problem(s, 4)
        out += [
            Case("fast_sparse_convnets", "csr vs scipy", config, f"scipy {scipy.__version__} CSR", ours_arm(p1, "csr"),
                 scipy_arm(p1, 1), check=checker(p1["ref"])),
            Case("fast_sparse_convnets", "csr vs torch", config, f"torch {tv} CSR (MKL)", ours_arm(p1, "csr"),
                 torch_arm(p1, 1), check=checker(p1["ref"])),
            Case("fast_sparse_convnets", f"csr (strip {SHAPE[2]}) vs torch", config, f"torch {tv} CSR (MKL)",
                 ours_arm(p1, "csr", SHAPE[2]), torch_arm(p1, 1), check=checker(p1["ref"])),
            Case("fast_sparse_convnets", "bsr4 vs scipy", config, f"scipy {scipy.__version__} BSR 4×1", ours_arm(p4, "bsr4"),
                 scipy_arm(p4, 4), check=checker(p4["ref"])),
        ]
        if not bsr_skip:
            out.append(Case("fast_sparse_convnets", "bsr4 vs torch", config, f"torch {tv} BSR 4×1", ours_arm(p4, "bsr4"),
                            torch_arm(p4, 4), check=checker(p4["ref"])))
    if bsr_skip:
        out.append(Case("fast_sparse_convnets", "bsr4 vs torch", "any", f"torch {tv} BSR 4×1", ours_arm(problem(0.9, 4), "bsr4"),
                        skip=bsr_skip))
    return out
