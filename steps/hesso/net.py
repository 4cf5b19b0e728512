"""The network and its groups: the shared DemoResNet (steps.nn.demo_resnet: a residual add and a
channel concat) and the shared ZIG partition (steps.nn.zig), seen as HESSO's families."""

from __future__ import annotations

import torch
from torch import nn

from steps.hesso.groups import Family, families_from_partition


def build(model_cfg) -> nn.Module:
    from steps.nn.demo_resnet import DemoResNet

    return DemoResNet(tuple(int(w) for w in model_cfg.widths), 1, int(model_cfg.classes))


def example(size: int) -> torch.Tensor:
    return torch.zeros(1, 1, size, size)


def partition(model: nn.Module, size: int):
    from steps.nn import zig

    return zig.partition(model, example(size))


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
