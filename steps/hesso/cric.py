"""CRIC: the Corrective Redundant Identification Cycle of HESSO (arXiv 2409.09085 §3.3; official
code `only_train_once/optimizer/hesso_cric.py`, read, not copied). It picks the redundant set
before any group is pruned for good, to avoid the irreversible collapse a one-shot saliency
ranking can cause at high sparsity.

1. Cache the model and optimizer state (exact restore: every later trial starts from it).
2. Trial projection: for each family and each trial sparsity (0.25, 0.5, 0.75) project the
   family's lowest-saliency groups onto zero, record loss / reference loss, restore the cache.
3. Cycles (≤ max_cycles): restore the cache; the cycle's *violating* set is the global
   bottom-K by saliency (cycle 1) or the groups that fell into the bottom-K during the last
   cycle and were never violating before; train `sampling_steps` steps while those groups decay
   linearly to zero, recording the saliency of every group at every step. Stop when a new cycle
   would have ≤ `tolerance` new violating groups.
4. Final saliency = the mean of every recorded saliency + loss_weight × (the family's mean trial
   loss ratio) / (groups in the family): a family whose trial projection hurt the loss is
   protected. Its bottom-K is the redundant set; restore the cache. HESSO then decays that set
   linearly to zero over the hybrid-training steps (steps.hesso.hesso with `preselected`).

Ours: the trial and reference losses are measured on one fixed batch of training images
(the official code uses the next training minibatch, so batch noise enters the ratio); the
cycles' exploratory steps are extra steps (the official code counts them in the budget, then
throws their weights away, as we do).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping

import torch

from steps.hesso import saliency
from steps.hesso.groups import Family, offsets, scale_groups
from steps.hesso.hesso import decay_factor, select_lowest, target_count


class Snapshot:
    """An exact copy of a model's and an optimizer's state; restore() puts it back bit for bit."""

    def __init__(self, model: torch.nn.Module, optimizer):
        self.model, self.optimizer = model, optimizer
        self.params = {k: v.detach().clone() for k, v in model.state_dict().items()}
        self.opt = copy.deepcopy(optimizer.state_dict())

    def restore(self) -> None:
        with torch.no_grad():
            for k, v in self.model.state_dict().items():
                v.copy_(self.params[k])
        self.optimizer.load_state_dict(copy.deepcopy(self.opt))
        for p in self.model.parameters():
            p.grad = None

    def identical(self) -> bool:
        return all(torch.equal(v, self.params[k]) for k, v in self.model.state_dict().items())


def run(families: list[Family], model: torch.nn.Module, optimizer,
        train_loss: Callable[[int], torch.Tensor], fixed_loss: Callable[[], torch.Tensor], target: float,
        weights: Mapping[str, float], loss_weight: float = 1.0, trial_sparsities=(0.25, 0.5, 0.75),
        max_cycles: int = 4, sampling_steps: int = 50, tolerance: int = 0, weight_decay: float = 0.0,
        min_keep: int = 1) -> dict:
    """The redundant set (global group indices) and a record of the cycles. `train_loss(i)` is
    the loss on the i-th exploratory minibatch (graph attached), `fixed_loss()` the loss on the
    fixed batch."""
    k = target_count(families, target)
    snap = Snapshot(model, optimizer)

    def scores() -> torch.Tensor:
        return saliency.hybrid(families, weights, weight_decay)

    # 1-2. Reference and trial projections, one family at a time.
    model.zero_grad(set_to_none=True)
    ref = fixed_loss()
    ref.backward()
    ref_loss = float(ref.detach())
    base = scores()
    recorded = [base]
    snap.restore()
    ratios: list[float] = []
    exact = True
    for f, off in zip(families, offsets(families), strict=True):
        fam_ratio = []
        local = base[off:off + f.n]
        order = sorted(range(f.n), key=lambda i: (float(local[i]), i))
        for s in trial_sparsities:
            m = max(1, min(f.n, int(f.n * float(s))))
            scale_groups(families, [off + i for i in order[:m]], 0.0)
            with torch.no_grad():
                fam_ratio.append(float(fixed_loss()) / max(ref_loss, 1e-12))
            snap.restore()
            exact = exact and snap.identical()
        ratios.append(sum(fam_ratio) / len(fam_ratio))

    # 3. Corrective cycles.
    historical: set[int] = set()
    trial: set[int] = set()
    cycles: list[dict] = []
    i = 0
    for c in range(1, max_cycles + 1):
        snap.restore()
        active = set(select_lowest(base, k, families, set(), min_keep)) if c == 1 else trial - historical
        if c > 1 and len(active) <= tolerance:
            cycles.append({"cycle": c, "violating": len(active), "trained": False})
            break
        historical |= active
        trial = set()
        for t in range(sampling_steps):
            optimizer.zero_grad()
            train_loss(i).backward()
            i += 1
            s = scores()
            recorded.append(s)
            bottom = set(select_lowest(s, k, families, set(), min_keep))
            trial |= bottom - active - historical
            optimizer.step()
            scale_groups(families, sorted(active), decay_factor(sampling_steps, t))
        cycles.append({"cycle": c, "violating": len(active), "trained": True})

    # 4. Accumulated saliency plus the trial-loss term; restore the cached state.
    final = torch.stack(recorded).mean(0)
    for f, off, r in zip(families, offsets(families), ratios, strict=True):
        final[off:off + f.n] += float(loss_weight) * r / f.n
    selected = select_lowest(final, k, families, set(), min_keep)
    snap.restore()
    exact = exact and snap.identical()
    return {"selected": selected, "ref_loss": ref_loss, "loss_ratios": ratios, "cycles": cycles,
            "restore_exact": exact, "exploratory_steps": i}
