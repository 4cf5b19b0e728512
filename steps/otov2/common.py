"""What every otov2 phase shares: the runs (net × arm × sparsity), the data, the model.

smoke/mini train one network (`model:`), runs named `{arm}_s{pct}`. Full scale trains several
(`nets:` — ResNet50 and VGG16-BN on CIFAR-10, each with its tutorial's settings overriding the
shared sections), runs named `{net}_{arm}_s{pct}`; the ZIG partition file then holds one
partition per net.

Matched arms (`runs.matched`, e.g. [lasso, random]) make the baselines' comparisons like for
like: `lasso_matched_s50` is the lasso baseline pruned to exactly the number of groups that
`dhspg_s50` removed (DHSPG may stop short of its target; its achieved group sparsity, not the
nominal target, is the budget the baselines get). Such a run trains after its DHSPG reference.
"""

from __future__ import annotations

import numpy as np
from omegaconf import DictConfig, OmegaConf

from steps.core.config import plain
from steps.core.errors import ConfigError

ARMS = ("dense", "dhspg", "lasso", "random")
MATCHABLE = ("lasso", "random")  # baselines that can be pruned to DHSPG's achieved group count
MATCHED = tuple(f"{a}_matched" for a in MATCHABLE)
ALL_ARMS = ARMS + MATCHED
ARCHS = ("demo_resnet", "resnet50", "vgg16_bn")
NET_SECTIONS = ("data", "model", "train", "runs", "dhspg", "lasso", "random", "construct", "evaluate")


def run_name(arm: str, sparsity: float, net: str | None = None) -> str:
    name = f"{arm}_s{int(round(float(sparsity) * 100))}"
    return f"{net}_{name}" if net else name


def nets(cfg: DictConfig) -> list[str | None]:
    """The networks of this scale: [None] (the single `model:`) or the names under `nets:`."""
    return list(cfg.get("nets") or {}) or [None]


def for_net(cfg: DictConfig, net: str | None) -> DictConfig:
    """The config one net trains with: cfg, its `nets.<net>` sections merged over the shared ones."""
    if net is None:
        return cfg
    if net not in (cfg.get("nets") or {}):
        raise ConfigError(f"unknown otov2 net {net!r}; nets at this scale: {', '.join(cfg.get('nets') or {}) or 'none'}")
    base = plain(cfg)
    over = plain(cfg["nets"][net])
    bad = sorted(set(over) - set(NET_SECTIONS))
    if bad:
        raise ConfigError(f"nets.{net}.{bad[0]} is not a section a net may override; valid: {', '.join(NET_SECTIONS)}")
    over = {k: v for k, v in over.items() if k in base}  # sections this phase does not read are left out
    _check_keys(over, base, f"nets.{net}")
    merged = OmegaConf.merge(base, over)
    OmegaConf.set_readonly(merged, True)
    return merged


def _check_keys(over: dict, base: dict, where: str) -> None:
    """A net may only override keys the shared sections have (a typo would be silently unused)."""
    for k, v in over.items():
        if not isinstance(base, dict) or k not in base:
            raise ConfigError(f"{where}.{k} overrides no key of the shared config; valid: {', '.join(base) if isinstance(base, dict) else 'none'}")
        if isinstance(v, dict):
            _check_keys(v, base[k], f"{where}.{k}")


def runs(cfg: DictConfig) -> list[tuple[str, float]]:
    """Every (arm, target group sparsity) trained at this scale; the dense reference has 0."""
    out = [("dense", 0.0)] if cfg.runs.dense else []
    for arm in cfg.runs.arms:
        if arm not in ARMS[1:]:
            raise ValueError(f"unknown otov2 arm {arm!r}: use {', '.join(ARMS[1:])}")
        out += [(arm, float(s)) for s in cfg.runs.sparsities]
    matched = list(cfg.runs.get("matched") or [])
    if matched and "dhspg" not in cfg.runs.arms:
        raise ConfigError("runs.matched prunes baselines to DHSPG's achieved group count: runs.arms must include dhspg")
    for arm in matched:
        if arm not in MATCHABLE:
            raise ConfigError(f"runs.matched: unknown arm {arm!r}; use {', '.join(MATCHABLE)}")
        out += [(f"{arm}_matched", float(s)) for s in cfg.runs.sparsities]
    return out


def reference(arm: str, sparsity: float, net: str | None = None) -> str | None:
    """The DHSPG run whose achieved group count a matched arm is pruned to (None for other arms)."""
    return run_name("dhspg", sparsity, net) if arm in MATCHED else None


def references(cfg: DictConfig) -> dict[str, str]:
    """{matched run name: its DHSPG reference run name} over the nets of this scale."""
    return {name: reference(arm, s, net) for net, arm, s, name in all_runs(cfg) if arm in MATCHED}


def all_runs(cfg: DictConfig) -> list[tuple[str | None, str, float, str]]:
    """Every (net, arm, sparsity, run name) over the nets of this scale."""
    return [(net, arm, s, run_name(arm, s, net)) for net in nets(cfg) for arm, s in runs(for_net(cfg, net))]


def parse_run(name: str) -> tuple[str, float]:
    """(arm, target sparsity) of a run name, with or without a net prefix."""
    head, _, s = name.rpartition("_s")
    arm = next((a for a in sorted(ALL_ARMS, key=len, reverse=True) if head == a or head.endswith(f"_{a}")), None)
    if arm is None:
        raise ValueError(f"{name!r} is not an otov2 run name")
    return arm, int(s) / 100


def load_partition(path, net: str | None):
    """The ZIG partition of `net` from the zig_partition phase's file."""
    from steps.core.io import read_json
    from steps.nn import zig

    d = read_json(path, "ZIG partition")
    if net is not None:
        if net not in d.get("nets", {}):
            raise ConfigError(f"{path} has no partition of net {net!r}: rerun otov2_zig_partition at this scale")
        d = d["nets"][net]
    return zig.Partition.from_dict(d)


def data(cfg: DictConfig, split: str):
    """(x, y) torch tensors: Fashion-MNIST (smoke/mini; subset and size from params) or CIFAR-10
    from the fetched release in io.raw (full), standardised with data.mean/std."""
    import torch

    d = cfg.data
    n = d.n_train if split == "train" else d.n_test
    n = None if n is None else int(n)
    if d.source == "fashion_mnist":
        from steps.data import fashion_mnist

        x, y = fashion_mnist.load(split, n=n, size=int(d.size), seed=int(d.seed))
    elif d.source == "cifar10":
        from steps.core.cli import need_io
        from steps.data import cifar10

        (raw,) = need_io(cfg, "raw")
        x, y = cifar10.load(raw, split, n=n, seed=int(d.seed), mean=tuple(d.mean), std=tuple(d.std))
    else:
        raise ConfigError(f"data.source must be fashion_mnist or cifar10, got {d.source!r}")
    return torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(y)


def model(cfg: DictConfig):
    """The network of model.arch: the spec's DemoResNet (smoke/mini), or the CIFAR ResNet50 /
    VGG16-BN of the official tutorials 03/04 (full; model.width scales every layer)."""
    m, ch = cfg.model, int(cfg.data.channels)
    if m.arch == "demo_resnet":
        from steps.nn.demo_resnet import DemoResNet

        return DemoResNet(tuple(m.widths), in_channels=ch, classes=10)
    if m.arch in ("resnet50", "vgg16_bn"):
        from steps.nn.resnet_cifar import VGG16BN, ResNet50

        cls = ResNet50 if m.arch == "resnet50" else VGG16BN
        return cls(classes=10, in_channels=ch, width=float(m.width))
    raise ConfigError(f"model.arch must be one of {', '.join(ARCHS)}, got {m.arch!r}")


def accuracy(net, x, y, batch: int = 1000) -> float:
    import torch

    was = net.training
    net.eval()
    dev = next(net.parameters()).device
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            correct += int((net(x[i:i + batch].to(dev)).argmax(1) == y[i:i + batch].to(dev)).sum())
    net.train(was)
    return correct / len(x)
