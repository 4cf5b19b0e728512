"""Does mixed precision do what steps.core.distributed promises? One training step's forward
and backward through distributed.backward (the call every training step makes) in fp32 and in
the precision under test, from the same weights and batch:

* `precision(name, device)` resolves as documented (auto: bf16 on a CUDA GPU that has it);
* under bf16 the linear layers really compute in bf16 (their outputs' dtype, seen by hooks);
* the weights' gradients stay fp32 and finite (autocast keeps fp32 master weights);
* loss and gradient agree with fp32's: relative loss difference ≤ rtol, gradient cosine ≥ min_cos.

Part (b) of `python -m steps.core.gpu_check`, beside the InstaFlow phases
(steps.instaflow.precision_check).
"""

from __future__ import annotations

import math


def backward_check(device, precision: str = "auto", width: int = 256, batch: int = 64, rtol: float = 0.05,
                   min_cos: float = 0.99) -> dict:
    """One row {phase, asked, resolved, linear_dtypes, grad_dtype, loss_fp32, loss, rel_diff, grad_cos, ok}."""
    import torch

    from steps.core import distributed

    dev = torch.device(device)
    resolved = distributed.precision(precision, dev)
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(batch, width, generator=g).to(dev), torch.randn(batch, width, generator=g).to(dev)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(width, 4 * width), torch.nn.GELU(), torch.nn.Linear(4 * width, width)).to(dev)
    dtypes: set[str] = set()
    for m in net:
        if isinstance(m, torch.nn.Linear):
            m.register_forward_hook(lambda mod, inp, out: dtypes.add(str(out.dtype).removeprefix("torch.")))
    dist = distributed.Dist(device=dev)
    plan = distributed.batch_plan(batch, batch // 2, 1)  # two micro-batches: accumulation too

    def step(prec: str) -> tuple[float, torch.Tensor]:
        net.zero_grad(set_to_none=True)
        dtypes.clear()
        loss = distributed.backward(dist, net, plan, prec, dev,
                                    lambda i, sl: torch.nn.functional.mse_loss(net(x[sl]), y[sl]))
        return loss, torch.cat([p.grad.flatten() for p in net.parameters()])

    loss_ref, grad_ref = step("fp32")
    loss, grad = step(resolved)
    seen = sorted(dtypes)
    rel = abs(loss - loss_ref) / max(abs(loss_ref), 1e-12)
    cos = float(torch.nn.functional.cosine_similarity(grad.double(), grad_ref.double(), dim=0))
    finite = math.isfinite(loss) and bool(torch.isfinite(grad).all())
    want = ["bfloat16"] if resolved == "bf16" else ["float32"]
    ok = finite and seen == want and grad.dtype == torch.float32 and rel <= rtol and cos >= min_cos
    return {"phase": "core.distributed.backward", "asked": precision, "resolved": resolved, "linear_dtypes": seen,
            "grad_dtype": str(grad.dtype).removeprefix("torch."), "loss_fp32": loss_ref, "loss": loss,
            "rel_diff": rel, "rtol": rtol, "grad_cos": cos, "finite": finite, "ok": ok}
