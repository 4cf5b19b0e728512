"""TEDDY's mechanism against the formulas of the paper and the official code: the degree score,
nested one-shot edge pruning, the global ℓ0 projection, the distillation loss, the GCN's
normalised adjacency, UGS's exact per-round pruning, the DC-CSBM and the Planetoid reader."""

from __future__ import annotations

import math
import pickle
from collections import defaultdict

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from steps.data import csbm, planetoid
from steps.nn import gcn
from steps.teddy import mechanism, ugs
from steps.teddy.train import Graph, fit, new_model


def test_star_graph_leaf_leaf_edge_scores_highest():
    # spec sanity check: a hub with 5 leaves plus one leaf–leaf edge
    edges = np.array([[0, 0, 0, 0, 0, 1], [1, 2, 3, 4, 5, 2]])
    s = mechanism.edge_score(edges, 6)
    assert np.argmax(s) == 5 and s[5] > s[:5].max()


def test_edge_score_equals_the_dense_formula():
    rng = np.random.default_rng(0)
    n = 30
    a = np.triu(rng.random((n, n)) < 0.15, 1)
    edges = np.stack(np.nonzero(a))
    A = (a | a.T).astype(float)
    d = A.sum(1)
    dinv = np.where(d > 0, 1 / np.maximum(d, 1), 0)
    g = (A @ (np.where(d > 0, 1 / np.sqrt(np.maximum(d, 1)), 0))) * dinv  # g_i = (1/d_i) Σ_j A_ij d_j^{-1/2}
    want = g[edges[0]] * dinv[edges[0]] * g[edges[1]] * dinv[edges[1]]
    assert np.allclose(mechanism.edge_score(edges, n), want)


def test_pruning_is_nested_and_counts_follow_the_schedule():
    rng = np.random.default_rng(1)
    score = rng.random(1000)
    counts = [mechanism.level_count(1000, 0.05, k) for k in (1, 5, 10, 18)]
    assert counts == [50, 226, 401, 603]
    prev = None
    for c in counts:
        mask = mechanism.prune_edges(score, c, prev)
        assert mask.sum() == c and (prev is None or mask[prev].all())
        assert score[mask].max() <= score[~mask].min()
        prev = mask
    with pytest.raises(ValueError, match="already pruned"):
        mechanism.prune_edges(score, 10, prev)


def test_l0_projection_is_global_over_all_parameters():
    big = torch.full((4,), 10.0)
    small = torch.linspace(0.1, 1.0, 16)
    zeroed = mechanism.l0_project([big, small], 0.5)
    assert zeroed == math.ceil(20 * 0.5)
    assert torch.all(big == 10.0)  # per-layer pruning would have cut the big tensor too
    assert int((small == 0).sum()) == 10 and torch.all(small[10:] > 0)


def test_kd_loss_is_kl_teacher_to_student():
    s, t = torch.randn(7, 3), torch.randn(7, 3)
    want = (torch.softmax(t, -1) * (torch.log_softmax(t, -1) - torch.log_softmax(s, -1))).sum() / 7
    assert torch.allclose(mechanism.kd_loss(s, t), want, atol=1e-6)
    assert float(mechanism.kd_loss(t, t)) == pytest.approx(0.0, abs=1e-6)


def test_adjacency_is_gcn_normalisation_and_zero_weight_removes_an_edge():
    edges = np.array([[0, 1, 2], [1, 2, 3]])
    h = torch.randn(4, 3)
    A = np.zeros((4, 4))
    A[edges[0], edges[1]] = A[edges[1], edges[0]] = 1
    A += np.eye(4)
    d = A.sum(1)
    want = torch.tensor((A / np.sqrt(np.outer(d, d))), dtype=torch.float32) @ h
    assert torch.allclose(gcn.Adjacency(edges, 4) @ h, want, atol=1e-6)
    w = torch.tensor([1.0, 0.0, 1.0], requires_grad=True)
    soft = gcn.Adjacency(edges, 4, weights=w)
    hard = gcn.Adjacency(edges[:, [0, 2]], 4)
    assert torch.allclose(soft @ h, hard @ h, atol=1e-6) and hard.nnz == soft.nnz == 2 * 2 + 4
    (soft @ h).sum().backward()
    assert w.grad is not None and w.grad.abs().sum() > 0  # UGS learns its edge mask through this


def test_csbm_has_the_asked_degree_homophily_and_split():
    g = csbm.generate(2000, 5, 32, 8.0, 0.75, 2.5, 1.2, seed=3)
    deg = mechanism.degrees(g["edges"], 2000)
    assert abs(deg.mean() - 8.0) < 1.0 and abs(csbm.homophily(g["edges"], g["y"]) - 0.75) < 0.03
    assert deg.max() > 5 * deg.mean()  # heavy tail: hubs
    assert np.all(g["edges"][0] < g["edges"][1]) and len(np.unique(g["edges"], axis=1).T) == g["edges"].shape[1]
    assert len(g["train"]) == 100 and len(g["val"]) == 500 and len(g["test"]) == 1000
    assert not set(g["train"]) & set(g["val"]) and not set(g["val"]) & set(g["test"])
    assert np.array_equal(csbm.generate(2000, 5, 32, 8.0, 0.75, 2.5, 1.2, seed=3)["edges"], g["edges"])


def _tiny_graph(seed=0) -> Graph:
    return Graph.from_arrays(csbm.generate(120, 3, 8, 5.0, 0.8, 2.5, 2.0, seed, 5, 30, 60))


CFG = OmegaConf.create({"model": {"hidden": 8, "layers": 2, "dropout": 0.5},
                        "train": {"lr": 0.01, "weight_decay": 5e-4, "epochs": 15},
                        "levels": {"edge_rate": 0.2, "weight_rate": 0.3},
                        "ugs": {"lambda_edge": 1e-4, "lambda_weight": 1e-4, "mask_noise": 1e-5}})


def test_training_is_deterministic_and_projection_holds_the_sparsity():
    g = _tiny_graph()
    adj = gcn.Adjacency(g.edges, g.n)
    a = fit(g, new_model(g, CFG.model, 0), adj, CFG.train, 0, weight_sparsity=0.6)
    b = fit(g, new_model(g, CFG.model, 0), adj, CFG.train, 0, weight_sparsity=0.6)
    assert a["test"] == b["test"] and torch.equal(a["logits"], b["logits"])
    total = sum(v.numel() for v in a["state"].values())
    zeros = sum(int((v == 0).sum()) for v in a["state"].values())
    assert zeros == math.ceil(total * 0.6)


def test_ugs_rounds_prune_exactly_and_nested():
    g = _tiny_graph(1)
    rows = ugs.run(g, CFG, seed=0, levels=[1, 2])
    n_e = g.edges.shape[1]
    for r in rows:
        assert round(r["edge_sparsity"] * n_e) == mechanism.level_count(n_e, 0.2, r["k"])
    assert set(rows[1]["kept_edges"]) <= set(rows[0]["kept_edges"])  # pruned edges stay pruned
    assert rows[1]["wall_s"] > rows[0]["wall_s"]  # the cost accumulates over rounds


def _write_planetoid(root, name="cora"):
    import scipy.sparse as sp

    rng = np.random.default_rng(0)
    n_train, n_all, n_test, f, c = 3, 6, 2, 4, 2
    onehot = np.eye(c)[rng.integers(0, c, n_all + n_test)]
    dense = rng.integers(0, 2, (n_all + n_test, f)).astype(float)
    dense[:, 0] += 1.0  # no empty feature row
    feats = sp.csr_matrix(dense)
    parts = {"x": feats[:n_train], "y": onehot[:n_train], "allx": feats[:n_all], "ally": onehot[:n_all],
             "tx": feats[n_all:], "ty": onehot[n_all:]}
    graph = defaultdict(list, {0: [1, 2], 1: [0], 2: [0, 7], 6: [7], 7: [6, 2, 7]})  # 7–7 is a self-loop
    parts["graph"] = graph
    for part, obj in parts.items():
        with open(root / f"ind.{name}.{part}", "wb") as fh:
            pickle.dump(obj, fh)
    (root / f"ind.{name}.test.index").write_text("7\n6\n")
    return onehot


def test_planetoid_reader_reorders_test_nodes_and_dedupes_edges(tmp_path):
    onehot = _write_planetoid(tmp_path)
    g = planetoid.read(tmp_path, "cora")
    assert g["x"].shape == (8, 4) and np.allclose(g["x"].sum(1), 1.0)  # row-normalised
    # the test file lists node 7 first: its label is the first test row's
    assert g["y"][7] == onehot[6].argmax() and g["y"][6] == onehot[7].argmax()
    assert g["edges"].T.tolist() == [[0, 1], [0, 2], [2, 7], [6, 7]]
    assert g["train"].tolist() == [0, 1, 2] and g["test"].tolist() == [6, 7]
    (tmp_path / "ind.cora.graph").write_bytes(b"not a pickle")
    from steps.core.errors import ArtifactError

    with pytest.raises(ArtifactError, match="cannot be read"):
        planetoid.read(tmp_path, "cora")


def test_fetch_step_downloads_records_digests_and_parses(tmp_path):
    from steps.core.cli import load
    from steps.teddy import fetch

    src = tmp_path / "mirror"
    src.mkdir()
    _write_planetoid(src)
    cfg = load("teddy", "fetch", ["scale=full", f"graph.planetoid.url='file://{src}/ind.{{name}}.{{part}}'",
                                  f"io.out={tmp_path / 'raw'}", f"io.lock={tmp_path / 'lock.json'}"])
    out = fetch.main(cfg)
    assert len(out["files"]) == 8 and all(len(v["sha256"]) == 64 for v in out["files"].values())
    assert (tmp_path / "lock.json").exists() and (tmp_path / "raw" / "ind.cora.test.index").exists()
