"""What TEDDY's phases share: loading the graph file and the arms' names."""

from __future__ import annotations

from steps.core.io import load_npz

# The arms of the sweep: TEDDY, its two ablations, and the two baselines (spec "Mini reproduction").
ARMS = ("teddy", "teddy_no_kd", "inverted", "random", "ugs")
# The arms that read the dense teacher (distillation, and its training time in a ticket's cost).
TEACHER_ARMS = ("teddy", "teddy_no_kd", "inverted")


def load_graph(path):
    """The graph file as a steps.teddy.train.Graph (imports torch)."""
    from steps.teddy.train import Graph

    return Graph.from_arrays(load_npz(path, "graph"))


def levels(cfg) -> list[int]:
    """The rounds k whose tickets are evaluated, increasing."""
    ks = sorted(int(k) for k in cfg.levels.ks)
    if not ks or ks[0] < 1:
        from steps.core.errors import ConfigError

        raise ConfigError(f"teddy levels.ks must be rounds k >= 1, got {list(cfg.levels.ks)}")
    return ks


def sparsity(rate: float, k: int) -> float:
    """The schedule's sparsity after k rounds: 1 − (1 − rate)^k."""
    return 1.0 - (1.0 - rate) ** k
