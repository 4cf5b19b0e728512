"""HESSO: Hybrid Efficient Structured Sparse Optimizer (arXiv 2409.09085 §3; official code
`only_train_once/optimizer/hesso.py`, read, not copied).

HESSO wraps an ordinary optimizer. Every parameter takes its normal step; then

* at the start of each of the P pruning periods (length K steps) the hybrid saliency of every
  group is computed (steps.hesso.saliency) and the lowest-saliency groups not yet pruned are
  made *active redundant*, so that after period p the pruned groups reach p/P of the target
  (the last period takes the remainder);
* during the period, active redundant groups are multiplied after each step by
  (K − t − 1)/(K − t), t = 0..K−1: a linear decay to exactly zero at the period's end
  (the progressive projection; no λ or ε to tune);
* at the period's end they are committed as pruned and kept at zero from then on.

Ours (the official code does it differently, or not at all): the quota is filled from the next
lowest-saliency groups when a family would drop below `min_keep` groups (the official code
keeps the family's last group and prunes fewer than the target instead; we keep the target
exact, which the sanity check asks for).

    pruner = Hesso(families, target=0.7, start=..., pruning_steps=..., periods=3)
    loss.backward(); pruner.before_update(step); opt.step(); pruner.after_update(step)
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from steps.hesso import saliency
from steps.hesso.groups import Family, family_of, scale_groups

DEFAULT_WEIGHTS = {c: 0.2 for c in saliency.CRITERIA}


def target_count(families: list[Family], target: float) -> int:
    """Groups to prune: ⌊G · min(target, 0.999)⌋ (as the official code; + 1e-9 so that a target
    of exactly k/G, a matched run's, gives k despite rounding)."""
    return int(sum(f.n for f in families) * min(float(target), 0.999) + 1e-9)


def period_quotas(k: int, periods: int) -> list[int]:
    """Groups made redundant in each period: ⌊k/P⌋ each, the remainder in the last."""
    q = [k // periods] * periods
    q[-1] = k - sum(q[:-1])
    return q


def decay_factor(k: int, t: int) -> float:
    """The factor applied at step t of a K-step period: (K − t − 1)/(K − t); 0 at t = K − 1."""
    return (k - t - 1.0) / (k - t)


def select_lowest(scores: torch.Tensor, quota: int, families: list[Family], excluded: set[int],
                  min_keep: int = 1) -> list[int]:
    """The `quota` lowest-score groups outside `excluded`, never leaving a family with fewer
    than `min_keep` groups outside `excluded` ∪ selection. Ties break by index (deterministic)."""
    fam = family_of(families)
    left = [f.n for f in families]
    for g in excluded:
        left[int(fam[g])] -= 1
    order = sorted(range(scores.numel()), key=lambda g: (float(scores[g]), g))
    chosen: list[int] = []
    for g in order:
        if len(chosen) >= quota:
            break
        if g in excluded or left[int(fam[g])] <= min_keep:
            continue
        chosen.append(g)
        left[int(fam[g])] -= 1
    return sorted(chosen)


class Hesso:
    """The HESSO projection around any torch optimizer; state_dict() makes it resumable.
    `preselected`: a redundant set chosen elsewhere (CRIC) used instead of saliency."""

    def __init__(self, families: list[Family], target: float, start: int, pruning_steps: int, periods: int = 1,
                 weights: Mapping[str, float] | None = None, weight_decay: float = 0.0, min_keep: int = 1):
        self.families = families
        self.periods = max(1, int(periods))
        self.period_len = int(pruning_steps) // self.periods
        if self.period_len < 1:
            raise ValueError(f"pruning_steps={pruning_steps} is shorter than periods={periods}")
        self.start = int(start)
        self.weights = dict(weights or DEFAULT_WEIGHTS)
        self.weight_decay = float(weight_decay)
        self.min_keep = int(min_keep)
        self.quotas = period_quotas(target_count(families, target), self.periods)
        self.preselected: list[int] | None = None
        self.period = 0              # periods started so far
        self.active: list[int] = []  # active redundant groups (decaying)
        self.pruned: list[int] = []  # committed: exactly zero from now on
        self.history: list[dict] = []

    @property
    def end(self) -> int:
        return self.start + self.periods * self.period_len

    def in_period(self, step: int) -> int | None:
        """t within the current period, or None outside the pruning phase."""
        if self.start <= step < self.end:
            return (step - self.start) % self.period_len
        return None

    def before_update(self, step: int) -> None:
        """After backward, before the optimizer step: open a period (saliency needs the gradient)."""
        t = self.in_period(step)
        if t != 0:
            return
        self._commit()
        quota = self.quotas[self.period]
        if self.preselected is not None:
            todo = [g for g in self.preselected if g not in set(self.pruned)]
            self.active = sorted(todo[:quota] if self.period < self.periods - 1 else todo)
        else:
            scores = saliency.hybrid(self.families, self.weights, self.weight_decay)
            self.active = select_lowest(scores, quota, self.families, set(self.pruned), self.min_keep)
        self.history.append({"step": step, "period": self.period, "selected": len(self.active)})
        self.period += 1

    def after_update(self, step: int) -> None:
        """After the optimizer step: decay the active groups, keep pruned ones at zero."""
        t = self.in_period(step)
        if t is not None and self.active:
            scale_groups(self.families, self.active, decay_factor(self.period_len, t))
        scale_groups(self.families, self.pruned, 0.0)
        if t == self.period_len - 1:
            self._commit()

    def _commit(self) -> None:
        if self.active:
            scale_groups(self.families, self.active, 0.0)
            self.pruned = sorted(set(self.pruned) | set(self.active))
            self.active = []

    def state_dict(self) -> dict:
        return {"period": self.period, "active": list(self.active), "pruned": list(self.pruned),
                "preselected": None if self.preselected is None else list(self.preselected), "history": list(self.history)}

    def load_state_dict(self, state: dict) -> None:
        self.period, self.active, self.pruned = int(state["period"]), list(state["active"]), list(state["pruned"])
        self.preselected = None if state["preselected"] is None else list(state["preselected"])
        self.history = list(state["history"])
