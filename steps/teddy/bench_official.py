"""TEDDY, ours (steps.teddy, steps.nn.gcn) beside the official code (github.com/hyunjin72/TEDDY,
given as a folder; it needs torch_geometric, torch_sparse and torch_scatter) on the same graph.

    python -m steps.core.bench_official teddy --official teddy=/path/to/TEDDY

Configuration: mini's graph (params/teddy: degree-corrected CSBM, 2000 nodes, 5 classes, 32-d
features, mean degree 8) and GCN (2 layers, hidden 64, dropout 0.5, no bias).

* `edge score`: the degree-based score of every edge, ours (`mechanism.edge_score`, numpy over
  the unique undirected edges) against the official `pruning.compute_edge_score` (torch_sparse
  over the symmetric SparseTensor); 100 calls a run. Checked: the same score for each edge
  (both directions), to 1e-5 relative (the official score is float32).
* `training run`: one TEDDY ticket at level k = 18 (60 % of the edges pruned by the score, 90 %
  of the weights kept at zero by the ℓ0 projection, CE + 0.1·KD to fixed teacher logits), 50
  epochs of full-batch Adam, each followed by an eval-mode forward, through our loop
  (`steps.teddy.train.fit`) for both: ours on our GCN (`Â` a CSR product), the official
  `net_teddy.GCN` (PyG GCNConv over a torch_sparse SparseTensor that its forward builds and
  normalises on every call) behind a two-line adapter. The official epoch loop lives in
  `main_teddy.py`, which imports wandb and its dataset loader at the top, so it is not run; the
  loop's work besides the model (Adam, the projection, accuracies) is the same code on both
  sides. Checked: same initial weights give the same logits, and both runs the same best
  validation accuracy.
"""

from __future__ import annotations

import types

import numpy as np

from steps.core.bench_official import Arm, Case, add_path, load_official

CSBM = {"n": 2000, "classes": 5, "dim": 32, "mean_degree": 8.0, "homophily": 0.75, "pareto_alpha": 2.5,
        "mean_norm": 1.2, "seed": 2402, "train_per_class": 20, "val": 500, "test": 1000}
HIDDEN, LAYERS, DROPOUT = 64, 2, 0.5
LR, WD, EPOCHS, KD = 0.01, 5e-4, 50, 0.1
EDGE_RATE, WEIGHT_RATE, LEVEL = 0.05, 0.12, 18
SCORE_CALLS, SEED = 100, 0


def graph() -> dict:
    from steps.data import csbm

    c = CSBM
    return csbm.generate(c["n"], c["classes"], c["dim"], c["mean_degree"], c["homophily"], c["pareto_alpha"],
                         c["mean_norm"], c["seed"], c["train_per_class"], c["val"], c["test"])


def symmetric(edges: np.ndarray):
    """Both directions of every unique edge, as the official loader's adj_t holds them."""
    import torch

    e = torch.as_tensor(edges, dtype=torch.long)
    return torch.cat([e[0], e[1]]), torch.cat([e[1], e[0]])


def score_cases(official, g: dict) -> Case:
    from steps.teddy import mechanism

    edges, n = np.asarray(g["edges"]), len(g["y"])
    ours = Arm(lambda: None, lambda _: [mechanism.edge_score(edges, n) for _ in range(SCORE_CALLS)][-1])
    arm, check = None, None
    if official is not None:
        from torch_sparse import SparseTensor

        row, col = symmetric(edges)
        adj_t = SparseTensor(row=row, col=col, sparse_sizes=(n, n))
        pruning = official["pruning"]
        arm = Arm(lambda: None, lambda _: [pruning.compute_edge_score(adj_t, None) for _ in range(SCORE_CALLS)][-1])

        def check(a, b):
            r, c, _ = adj_t.coo()
            mine = {(int(i), int(j)): s for (i, j), s in zip(edges.T, a, strict=True)}
            ref = np.array([mine[(min(i, j), max(i, j))] for i, j in zip(r.tolist(), c.tolist(), strict=True)])
            err = float(np.max(np.abs(ref - b.double().numpy()) / np.abs(ref).clip(1e-30)))
            return err < 1e-5, f"{len(ref)} directed edges, max relative Δ {err:.1e}"

    config = f"DC-CSBM {n} nodes, {edges.shape[1]} edges, {SCORE_CALLS} calls, 1 thread"
    return Case("teddy", "edge score", config, "TEDDY pruning.compute_edge_score (torch_sparse)", ours, arm,
                skip=None if arm else official_skip(), check=check)


class OfficialGCN:
    """Adapter: the official GCN behind our fit()'s `model(x, adj)` call, on the pruned graph."""

    def __new__(cls, net_teddy, g, keep, weights):
        import torch

        row, col = symmetric(np.asarray(g.edges)[:, keep])
        args = types.SimpleNamespace(n_nodes=g.n)
        model = net_teddy.GCN(g.x.shape[1], HIDDEN, g.classes, LAYERS, DROPOUT, args)
        with torch.no_grad():
            for conv, w in zip(model.convs, weights, strict=True):
                conv.lin.weight.copy_(w)
        edge_index, values = torch.stack([row, col]), torch.ones(len(row))
        forward = model.forward
        model.forward = lambda x, adj: forward(x, edge_index, values)
        return model


def train_case(official, g_arrays: dict) -> Case:
    import torch
    from omegaconf import OmegaConf

    from steps.nn import gcn
    from steps.teddy import mechanism, train

    g = train.Graph.from_arrays(g_arrays)
    score = mechanism.edge_score(g.edges, g.n)
    n_prune = mechanism.level_count(g.edges.shape[1], EDGE_RATE, LEVEL)
    keep = ~mechanism.prune_edges(score, n_prune)
    p_w = 1.0 - (1.0 - WEIGHT_RATE) ** LEVEL
    cfg = OmegaConf.create({"lr": LR, "weight_decay": WD, "epochs": EPOCHS, "hidden": HIDDEN, "layers": LAYERS, "dropout": DROPOUT})
    teacher = torch.randn(g.n, g.classes, generator=torch.Generator().manual_seed(SEED))
    init = [lin.weight.detach().clone() for lin in train.new_model(g, cfg, SEED).lins]
    adj = gcn.Adjacency(g.edges[:, keep], g.n)

    def fit(model, a):
        return train.fit(g, model, a, cfg, SEED, teacher=teacher, kd_lambda=KD, weight_sparsity=p_w)

    ours = Arm(lambda: train.new_model(g, cfg, SEED), lambda m: fit(m, adj) | {"first": m})
    arm, check = None, None
    if official is not None:
        arm = Arm(lambda: OfficialGCN(official["net_teddy"], g, keep, init), lambda m: fit(m, None))

        def check(a, b):
            m0, m1 = train.new_model(g, cfg, SEED).eval(), OfficialGCN(official["net_teddy"], g, keep, init).eval()
            with torch.no_grad():
                d = float((m0(g.x, adj) - m1(g.x, None)).abs().max())
            return d < 1e-4 and a["val"] == b["val"], (f"initial logits max abs Δ {d:.1e}; best val accuracy ours {a['val']:.3f}, "
                                                       f"official {b['val']:.3f} (epochs {a['epoch']}, {b['epoch']})")

    config = (f"DC-CSBM {g.n} nodes, {int(keep.sum())} of {len(keep)} edges kept (k = {LEVEL}), weights {p_w:.0%} zero, "
              f"GCN {LAYERS}×{HIDDEN}, {EPOCHS} epochs + KD, 1 thread")
    return Case("teddy", "training run", config, "TEDDY net_teddy.GCN (PyG GCNConv, torch_sparse)", ours, arm,
                skip=None if arm else official_skip(), check=check)


_WHY: list[str] = []


def official_skip() -> str:
    return _WHY[0] if _WHY else "official TEDDY code not given"


def load(path: str | None) -> dict | None:
    """The official modules from the TEDDY checkout at `path` (None, with the reason kept, when
    the path is missing or its dependencies do not import)."""
    _WHY.clear()
    if not path:
        _WHY.append("official TEDDY code not given: --official teddy=/path/to/TEDDY (a checkout of github.com/hyunjin72/TEDDY)")
        return None
    mods = {}
    for name in ("pruning", "net_teddy"):
        mod, why = load_official(name, path)
        if mod is None:
            _WHY.append(why + " (it needs torch_geometric, torch_sparse and torch_scatter)")
            return None
        mods[name] = mod
    add_path(path)
    return mods


def cases(official_path: str | None = None) -> list[Case]:
    official = load(official_path)
    g = graph()
    return [score_cases(official, g), train_case(official, g)]
