"""Count the forward calls a network actually makes, with a forward pre-hook on the module
(torch.nn.Module.register_forward_pre_hook), instead of computing them from the sampler's
arithmetic (tile grid × steps): a claim about model calls then reads what ran.

    with CallCounter(model) as n:
        sample(model, ...)
    n.forwards  # calls of model.forward
    n.rows      # batch rows they evaluated (tiles × canvases for a tiled sampler)
"""

from __future__ import annotations

import torch


class CallCounter:
    """Forward calls of `module` and the batch rows (dim 0 of the first tensor argument) they
    evaluated, while the context is open. Nested calls of submodules are not counted."""

    def __init__(self, module: torch.nn.Module):
        self.module = module
        self.forwards = 0
        self.rows = 0
        self._handle = None

    def _hook(self, _module, args, kwargs):
        first = next((a for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor)), None)
        self.forwards += 1
        self.rows += int(first.shape[0]) if first is not None and first.dim() > 0 else 1

    def __enter__(self) -> CallCounter:
        if self._handle is not None:
            raise RuntimeError("CallCounter is already counting")
        self._handle = self.module.register_forward_pre_hook(self._hook, with_kwargs=True)
        return self

    def __exit__(self, *exc) -> None:
        self._handle.remove()
        self._handle = None
