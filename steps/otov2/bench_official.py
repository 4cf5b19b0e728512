"""DHSPG training steps, ours (steps.nn.dhspg over the shared ZIG partition) beside OTOv2's
official optimizer (`only_train_once` 2.x from PyPI: `OTO(model, dummy).dhspg(...)`, its own
ONNX-traced graph and groups) on the same network, weights, minibatches and schedule.
only_train_once 3.x dropped DHSPG, so the 2.x release is given as a folder:

    pip install --no-deps --target /opt/oto2 only_train_once==2.0.16 onnx protobuf ml_dtypes graphviz
    python -m steps.core.bench_official otov2 --official otov2=/opt/oto2

Configuration (mini's network, batch and DHSPG settings, a shortened schedule): DemoResNet
(16, 32, 32) on 14×14 inputs, batch 128, SGD lr 0.1, momentum 0.9, weight decay 1e-4, target
group sparsity 0.7 with tolerance 0.1, λ 0.02, amplify 1.1, λ̂ coefficient 10, ε 0, partition at
step 4, half-space projection from step 10, 24 steps; the penalty stops once the target is
reached (the official behaviour; stop_at_target). One timed run = the 24 training steps; a
second case times the optimizer alone (24 steps on the first batch's gradients).

Shims (ours, outside the package): the TorchScript ONNX aliases and the `.cuda()` no-op of
steps.core.bench_official, and the package's own folder on sys.path — only_train_once 2.x
imports its siblings as top-level modules (`from assets.theme import ...`). Checked: the
parameters after the dense steps (before the partition step) are the same to float32
rounding. After it the two differ by design (the official momentum excludes the group
penalty, ours includes it: steps/nn/dhspg.py), so later weights are not compared; the zero
groups of both are shown.
"""

from __future__ import annotations

import contextlib
import importlib.util
from pathlib import Path

import torch

from steps.core.bench_official import (
    Arm,
    Case,
    add_path,
    cuda_calls_stay_put,
    distribution_version,
    grads_once,
    install_torch_aliases,
    load_official,
    seeded_batches,
)

WIDTHS = (16, 32, 32)
SIZE, BATCH, STEPS = 14, 128, 24
LR, MOMENTUM, WD = 0.1, 0.9, 1e-4
TARGET, TOLERANCE, LMBDA, AMPLIFY, HAT, EPSILON = 0.7, 0.1, 0.02, 1.1, 10.0, 0.0
PARTITION, HSP = 4, 10
SEED = 0


def new_model():
    from steps.nn.demo_resnet import DemoResNet

    torch.manual_seed(SEED)
    return DemoResNet(WIDTHS, 1, 10)


def train(model, opt, batches, fixed_grads: bool) -> list[torch.Tensor]:
    """The shared loop; returns the parameters as they were before the partition step.
    fixed_grads: optimizer steps only, on the gradients already in p.grad."""
    snap = []
    for step, (x, y) in enumerate(batches):
        if step == PARTITION:
            snap = [p.detach().clone() for p in model.parameters()]
        if not fixed_grads:
            loss = torch.nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
        opt.step()
    return snap


def ours_arm(batches, part, fixed_grads: bool = False) -> Arm:
    from steps.nn.dhspg import DHSPG

    def setup():
        model = new_model().train()
        if fixed_grads:
            grads_once(model, batches[0])
        return model, DHSPG(model, part, lr=LR, momentum=MOMENTUM, weight_decay=WD, target_sparsity=TARGET,
                            tolerance=TOLERANCE, lmbda=LMBDA, lmbda_amplify=AMPLIFY, hat_lmbda_coeff=HAT,
                            epsilon=EPSILON, partition_step=PARTITION, hsp_start_step=HSP, stop_at_target=True)

    def run(state):
        model, opt = state
        return {"model": model, "at_partition": train(model, opt, batches, fixed_grads)}

    return Arm(setup, run)


def official_arm(oto_mod, batches, fixed_grads: bool = False) -> Arm:
    def setup():
        model = new_model()
        with cuda_calls_stay_put(), contextlib.redirect_stdout(None):  # the package prints as it traces
            oto = oto_mod.OTO(model=model, dummy_input=torch.zeros(1, 1, SIZE, SIZE))
            opt = oto.dhspg(variant="sgd", lr=LR, lmbda=LMBDA, lmbda_amplify=AMPLIFY, hat_lmbda_coeff=HAT, epsilon=EPSILON,
                            weight_decay=WD, first_momentum=MOMENTUM, target_group_sparsity=TARGET,
                            tolerance_group_sparsity=TOLERANCE, partition_step=PARTITION, half_space_project_steps=HSP)
        model.train()  # the graph tracer left the model in eval mode
        if fixed_grads:
            grads_once(model, batches[0])
        return model, opt

    def run(state):
        model, opt = state
        with cuda_calls_stay_put(), contextlib.redirect_stdout(None):
            return {"model": model, "at_partition": train(model, opt, batches, fixed_grads)}

    return Arm(setup, run)


def check_with(part):
    def check(ours, official) -> tuple[bool, str]:
        from steps.nn.zig import GroupIndex

        diff = max(float((a - b).abs().max()) for a, b in zip(ours["at_partition"], official["at_partition"], strict=True))
        zo = int((GroupIndex(ours["model"], part).norms() == 0).sum())
        zf = int((GroupIndex(official["model"], part).norms() == 0).sum())
        return diff < 1e-5, f"dense steps max abs Δw {diff:.1e}; zero groups ours {zo}, official {zf} of {part.num_groups}"

    return check


def load(official_path: str | None):
    """only_train_once 2.x, with its own folder on sys.path for its top-level sibling imports."""
    install_torch_aliases()
    if official_path:
        add_path(official_path)
    spec = importlib.util.find_spec("only_train_once")
    if spec is None or not spec.submodule_search_locations:
        return None, ("only_train_once is not installed; give a 2.x release with --official otov2=DIR "
                      "(pip install --no-deps --target DIR only_train_once==2.0.16 onnx protobuf ml_dtypes graphviz)")
    add_path(Path(next(iter(spec.submodule_search_locations))))
    with cuda_calls_stay_put(), contextlib.redirect_stdout(None):
        mod, why = load_official("only_train_once", official_path, below="3.0", track_package=True)
    if why and "needs" in why:
        why += " (3.x has no DHSPG: give a 2.x release with --official otov2=DIR)"
    return mod, why


def cases(official_path: str | None = None) -> list[Case]:
    from steps.nn import zig

    mod, why = load(official_path)
    batches = seeded_batches(STEPS, BATCH, (1, SIZE, SIZE), 10, SEED)
    part = zig.partition(new_model(), torch.zeros(1, 1, SIZE, SIZE))
    config = (f"DemoResNet {WIDTHS}, {part.num_groups} ZIGs, batch {BATCH} of {SIZE}×{SIZE}, {STEPS} SGD steps, "
              f"target {TARGET} (+{TOLERANCE}), λ {LMBDA}, partition at step {PARTITION}, projection from {HSP}, 1 thread")
    name = f"only_train_once {distribution_version('only_train_once', mod) if mod else '2.x'} DHSPG"
    return [Case("otov2", label, config + what, name, ours_arm(batches, part, fixed),
                 official_arm(mod, batches, fixed) if mod is not None else None, skip=why, check=check_with(part))
            for fixed, label, what in ((False, "training steps", ""),
                                       (True, "optimizer steps", "; fixed gradients (optimizer only)"))]
