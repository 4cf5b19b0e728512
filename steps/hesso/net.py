"""The network and its groups: the shared DemoResNet (steps.nn.demo_resnet: a residual add and a
channel concat) and the shared ZIG partition (steps.nn.zig), seen as HESSO's families."""

from __future__ import annotations

import torch
from torch import nn

from steps.hesso.groups import Family, families_from_partition


def build(model_cfg) -> nn.Module:
    """model.arch: demo_resnet (smoke, mini) or resnet18 (full: CIFAR ResNet18, width-scalable
    so that tests run the full-scale code path on a tiny random model)."""
    if model_cfg.arch == "demo_resnet":
        from steps.nn.demo_resnet import DemoResNet

        return DemoResNet(tuple(int(w) for w in model_cfg.widths), int(model_cfg.in_channels), int(model_cfg.classes))
    if model_cfg.arch == "resnet18":
        from steps.nn.resnet_cifar import ResNet18

        return ResNet18(int(model_cfg.classes), int(model_cfg.in_channels), float(model_cfg.width))
    from steps.core.errors import ConfigError

    raise ConfigError(f"model.arch must be demo_resnet or resnet18, got {model_cfg.arch!r}")


def example(model_cfg, size: int) -> torch.Tensor:
    return torch.zeros(1, int(model_cfg.in_channels), size, size)


def partition(model: nn.Module, model_cfg, size: int):
    from steps.nn import zig

    return zig.partition(model, example(model_cfg, size))


def load_partition(path):
    """The Partition written by the partition phase (no tracing: torch.fx's shape propagation
    imports sympy, seconds of start-up a training job need not pay)."""
    from steps.core.errors import ArtifactError
    from steps.core.io import read_json
    from steps.nn.zig import Partition

    d = read_json(path, "ZIG partition")
    try:
        return Partition.from_dict(d["partition"])
    except (KeyError, TypeError, ValueError) as e:
        raise ArtifactError(f"ZIG partition {path} is malformed ({e.__class__.__name__}: {e}); rerun the partition rule") from None


def families(model: nn.Module, part) -> list[Family]:
    """HESSO's families over a partition of this model."""
    return families_from_partition(model, part)
