"""HESSO training steps, ours (steps.hesso: plain SGD + the Hesso projection over the shared ZIG
partition) beside the official optimizer (`only_train_once` ≥ 3 from PyPI: `OTO(model,
dummy).hesso(...)`, its own graph and groups) on the same network, weights, minibatches and
schedule.

    pip install "only_train_once>=3"        # or: pip install -e ".[bench-official]"
    python -m steps.core.bench_official hesso
    python -m steps.core.bench_official hesso --official hesso=/opt/oto3   # pip install --target /opt/oto3 ...

Configuration (mini's network and batch, a shortened schedule): DemoResNet (16, 32, 32) on
14×14 single-channel inputs (160 ZIGs in 6 families), batch 128, SGD lr 0.1, momentum 0.9,
weight decay 5e-4, target group sparsity 0.7, pruning from step 4 over 15 steps in 3 periods,
24 steps in all. One timed run = the 24 training steps (forward, loss, backward, optimizer and
projection); building the model, the partition and the optimizer is setup, untimed.

Running the official package on this torch needs two shims, both ours and both outside the
package: only_train_once 3.0.1 imports `torch.onnx._globals` and calls `torch.onnx._optimize_graph`,
which torch ≥ 2.9 moved under `torch.onnx._internal.torchscript_exporter` (aliased back here), and
its HESSO optimizer builds its masks with `.cuda()` (on a machine without CUDA that call is made
a no-op while the official arm runs). Checked: the parameters after the dense steps (before
pruning starts) are the same to float32 rounding, and both reach the same number of zero groups.
The official schedule differs from ours by a step (its decay uses t = (step − start) mod K
after incrementing the step, ours t = 0 on the period's first step), so the pruned sets and
later weights are not compared.
"""

from __future__ import annotations

import contextlib
import math

import torch

from steps.core.bench_official import (
    Arm,
    Case,
    cuda_calls_stay_put,
    distribution_version,
    grads_once,
    install_torch_aliases,
    load_official,
    seeded_batches,
)

WIDTHS = (16, 32, 32)
SIZE, BATCH, STEPS = 14, 128, 24
LR, MOMENTUM, WD = 0.1, 0.9, 5e-4
TARGET, START, PRUNING_STEPS, PERIODS = 0.7, 4, 15, 3
SEED = 0


def new_model():
    from steps.nn.demo_resnet import DemoResNet

    torch.manual_seed(SEED)
    return DemoResNet(WIDTHS, 1, 10)


def lr_at(step: int) -> float:
    return 0.5 * LR * (1.0 + math.cos(math.pi * step / STEPS))


def ours_arm(batches, part, fixed_grads: bool = False) -> Arm:
    """Ours; fixed_grads: optimizer and projection only, every step on the first batch's gradients."""
    from steps.hesso.groups import families_from_partition
    from steps.hesso.hesso import Hesso
    from steps.hesso.sgd import SGD

    def setup():
        model = new_model().train()
        fams = families_from_partition(model, part)
        opt = SGD(model.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WD)
        if fixed_grads:
            grads_once(model, batches[0])
        return model, fams, opt, Hesso(fams, TARGET, start=START, pruning_steps=PRUNING_STEPS, periods=PERIODS, weight_decay=WD)

    def run(state):
        model, fams, opt, pruner = state
        loss_fn = torch.nn.CrossEntropyLoss()
        snap = None
        for step, (x, y) in enumerate(batches):
            if step == START:
                snap = [p.detach().clone() for p in model.parameters()]
            opt.lr = lr_at(step)
            if not fixed_grads:
                loss = loss_fn(model(x), y)
                opt.zero_grad()
                loss.backward()
            pruner.before_update(step)
            opt.step()
            pruner.after_update(step)
        return {"model": model, "fams": fams, "at_start": snap}

    return Arm(setup, run)


def official_arm(oto_mod, batches, part, fixed_grads: bool = False) -> Arm:
    """The official HESSO optimizer on the same model, batches and schedule."""
    from steps.hesso.groups import families_from_partition

    def setup():
        model = new_model()
        with cuda_calls_stay_put(), contextlib.redirect_stdout(None):  # the package prints as it builds
            oto = oto_mod.OTO(model=model, dummy_input=torch.zeros(1, 1, SIZE, SIZE))
            opt = oto.hesso(variant="sgd", lr=LR, weight_decay=WD, first_momentum=MOMENTUM, target_group_sparsity=TARGET,
                            start_pruning_step=START, pruning_steps=PRUNING_STEPS, pruning_periods=PERIODS)
        model.train()  # OTO's graph puts the model in eval mode
        if fixed_grads:
            grads_once(model, batches[0])
        return model, families_from_partition(model, part), opt

    def run(state):
        model, fams, opt = state
        loss_fn = torch.nn.CrossEntropyLoss()
        snap = None
        with cuda_calls_stay_put(), contextlib.redirect_stdout(None):
            for step, (x, y) in enumerate(batches):
                if step == START:
                    snap = [p.detach().clone() for p in model.parameters()]
                opt.set_learning_rate(lr_at(step))
                if not fixed_grads:
                    loss = loss_fn(model(x), y)
                    opt.zero_grad()
                    loss.backward()
                opt.step()
        return {"model": model, "fams": fams, "at_start": snap}

    return Arm(setup, run)


def check(ours, official) -> tuple[bool, str]:
    """Same weights after the dense steps (to float32 rounding); the zero-group counts are shown,
    not compared: the official code stops short of the target where a family would lose its
    last group (docs/papers/hesso.md), ours fills the quota from the next groups."""
    from steps.hesso.groups import group_norms

    diff = max(float((a - b).abs().max()) for a, b in zip(ours["at_start"], official["at_start"], strict=True))
    zo = int((group_norms(ours["fams"]) == 0).sum())
    zf = int((group_norms(official["fams"]) == 0).sum())
    n = group_norms(ours["fams"]).numel()
    return diff < 1e-5, f"dense steps max abs Δw {diff:.1e}; zero groups ours {zo}, official {zf} (target {int(n * TARGET)} of {n})"


def cases(official_path: str | None = None) -> list[Case]:
    from steps.nn import zig

    install_torch_aliases()
    with cuda_calls_stay_put(), contextlib.redirect_stdout(None):
        mod, why = load_official("only_train_once", official_path, min_version="3.0", track_package=True)
    name = f"only_train_once {distribution_version('only_train_once', mod) if mod else '≥ 3'} HESSO"
    batches = seeded_batches(STEPS, BATCH, (1, SIZE, SIZE), 10, SEED)
    part = zig.partition(new_model(), torch.zeros(1, 1, SIZE, SIZE))
    config = (f"DemoResNet {WIDTHS}, {part.num_groups} ZIGs, batch {BATCH} of {SIZE}×{SIZE}, {STEPS} SGD steps, "
              f"target {TARGET} from step {START} over {PRUNING_STEPS} steps in {PERIODS} periods, 1 thread")
    out = []
    for fixed, label, what in ((False, "training steps", ""), (True, "optimizer steps", "; fixed gradients (optimizer and projection only)")):
        official = official_arm(mod, batches, part, fixed) if mod is not None else None
        out.append(Case("hesso", label, config + what, name, ours_arm(batches, part, fixed), official, skip=why, check=check))
    return out
