"""The UGS baseline (Chen et al., ICML 2021, "A Unified Lottery Ticket Hypothesis for Graph Neural
Networks"), as TEDDY's baseline code runs it: per round, train the GCN with learnable masks on the
edges (m_g) and on every weight (m_θ) under an ℓ1 penalty, take the masks of the best-validation
epoch, prune the lowest-|m| share of the *remaining* edges and weights, rewind the weights to their
initialisation, repeat; a graph lottery ticket is evaluated by training the rewound weights with the
fixed masks. Reaching round k costs k mask-learning trainings; TEDDY needs one.
"""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F

from steps.core.progress import log
from steps.nn import gcn
from steps.nn.optim import Adam
from steps.teddy import mechanism
from steps.teddy.train import Graph, accuracy, fit, new_model


def _prune_lowest(scores: torch.Tensor, alive: torch.Tensor, target_pruned: int) -> torch.Tensor:
    """`alive` with the lowest-|score| alive entries switched off until `target_pruned` are off."""
    more = target_pruned - int((~alive).sum())
    if more <= 0:
        return alive
    s = scores.detach().abs().clone()
    s[~alive] = float("inf")
    out = alive.clone()
    out[torch.argsort(s, stable=True)[:more]] = False
    return out


def learn_masks(g: Graph, model: gcn.GCN, alive_e: torch.Tensor, alive_w: list[torch.Tensor], train_cfg, ucfg,
                seed: int) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """One UGS round: joint training of weights and masks; the best-validation epoch's masks."""
    gen = torch.Generator().manual_seed(seed)
    noise = float(ucfg.mask_noise)
    dev = g.device
    m_e = torch.nn.Parameter(alive_e.float() * (1 + noise * torch.rand(len(alive_e), generator=gen).to(dev)))
    m_w = [torch.nn.Parameter(a.float() * (1 + noise * torch.rand(a.shape, generator=gen).to(dev))) for a in alive_w]
    # Adam is per parameter: one optimizer per weight-decay group = torch.optim's two param groups.
    opts = (Adam(model.parameters(), lr=float(train_cfg.lr), weight_decay=float(train_cfg.weight_decay)),
            Adam([m_e, *m_w], lr=float(train_cfg.lr)))
    edges = torch.as_tensor(g.edges).to(dev)
    best_val, best = -1.0, (m_e.detach().clone(), [m.detach().clone() for m in m_w])
    for _ in range(int(train_cfg.epochs)):
        model.train()
        for opt in opts:
            opt.zero_grad(set_to_none=True)
        adj = gcn.Adjacency(edges, g.n, weights=m_e * alive_e)
        out = model(g.x, adj, [m * a for m, a in zip(m_w, alive_w, strict=True)])
        loss = (F.cross_entropy(out[g.train], g.y[g.train]) + float(ucfg.lambda_edge) * m_e.abs().sum()
                + float(ucfg.lambda_weight) * sum(m.abs().sum() for m in m_w))
        loss.backward()
        for opt in opts:
            opt.step()
        model.eval()
        with torch.no_grad():
            adj = gcn.Adjacency(edges, g.n, weights=(m_e * alive_e).detach(), csr=False)
            val = accuracy(model(g.x, adj, [(m * a).detach() for m, a in zip(m_w, alive_w, strict=True)]), g.y, g.val)
        if val >= best_val:
            best_val, best = val, (m_e.detach().clone(), [m.detach().clone() for m in m_w])
    return best


def run(g: Graph, cfg, seed: int, levels: list[int], on_level=None) -> list[dict]:
    """UGS rounds 1..max(levels); at each k in `levels` the ticket's accuracy, its sparsities and the
    wall time spent since round 1 (mask learning of every round so far + this ticket's training)."""
    model = new_model(g, cfg.model, seed)
    theta0 = {k: v.clone() for k, v in model.state_dict().items()}
    n_edges = g.edges.shape[1]
    alive_e = torch.ones(n_edges, dtype=torch.bool, device=g.device)
    alive_w = [torch.ones_like(p, dtype=torch.bool) for p in model.parameters()]
    total_w = sum(a.numel() for a in alive_w)
    rows, spent = [], 0.0
    for k in range(1, max(levels) + 1):
        t0 = time.perf_counter()
        model.load_state_dict(theta0)
        m_e, m_w = learn_masks(g, model, alive_e, alive_w, cfg.train, cfg.ugs, seed * 1000 + k)
        alive_e = _prune_lowest(m_e, alive_e, mechanism.level_count(n_edges, float(cfg.levels.edge_rate), k))
        flat_alive = _prune_lowest(torch.cat([m.reshape(-1) for m in m_w]), torch.cat([a.reshape(-1) for a in alive_w]),
                                   mechanism.level_count(total_w, float(cfg.levels.weight_rate), k))
        alive_w, start = [], 0
        for p in model.parameters():
            alive_w.append(flat_alive[start:start + p.numel()].view_as(p))
            start += p.numel()
        spent += time.perf_counter() - t0
        log.info(f"UGS seed {seed} round {k}/{max(levels)}: edges {1 - float(alive_e.float().mean()):.3f} and weights "
                 f"{1 - float(flat_alive.float().mean()):.3f} pruned, {spent:.1f} s so far")
        if k in levels:
            model.load_state_dict(theta0)  # rewind, then train the ticket with fixed masks
            adj = gcn.Adjacency(g.edges[:, alive_e.cpu().numpy()], g.n, device=g.device)
            res = fit(g, model, adj, cfg.train, seed, weight_masks=[a.float() for a in alive_w])
            spent += res["wall_s"]
            row = {"k": k, "seed": seed, "val": res["val"], "test": res["test"], "epoch": res["epoch"],
                   "edge_sparsity": 1 - float(alive_e.float().mean()), "weight_sparsity": 1 - float(flat_alive.float().mean()),
                   "wall_s": spent, "rounds": k, "kept_edges": np.flatnonzero(alive_e.cpu().numpy()),
                   "flops": gcn.flops(model, g.n, adj.nnz)["sparse"],
                   "nonzero_params": int(sum(int(torch.count_nonzero(p)) for p in model.parameters()))}
            rows.append(row)
            if on_level:
                on_level(row)
    return rows
