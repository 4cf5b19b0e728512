"""OneFlow's mechanism: the boxing table and cost model, the planner deriving transfers from
annotations, ring collectives on real gloo processes (bytes exact), the process group always
reaped, the actor runtime's quota, and equivalence with single-process PyTorch."""

from __future__ import annotations

import os
import time

import pytest
import torch
from omegaconf import OmegaConf

from steps.core import spawn
from steps.core.distributed import RankFailure
from steps.oneflow import actors, mlp
from steps.oneflow import gtensor as gt
from steps.oneflow.comm import COUNTER, PlanComm, RingComm
from steps.oneflow.sbp import B, P, S, boxing_bytes, collective, parse, parse_nd, valid_nd

CFG = OmegaConf.create({"dist": {"timeout_s": 20.0}})
DP = {"mesh": [-1], "x": "S(0)", "y": "S(0)", "params": {k: "B" for k in mlp.PARAMS}}
TP = {"mesh": [-1], "x": "B", "y": "B", "params": {"W1": "S(1)", "b1": "S(0)", "W2": "S(0)", "b2": "B", "W3": "B", "b3": "B"}}
HYBRID = {"mesh": [2, -1], "x": ["S(0)", "B"], "y": ["S(0)", "B"],
          "params": {"W1": ["B", "S(1)"], "b1": ["B", "S(0)"], "W2": ["B", "S(0)"], "b2": ["B", "B"], "W3": ["B", "B"], "b3": ["B", "B"]}}


def test_boxing_table_and_cost_model():
    assert collective(P, B) == "all_reduce" and collective(P, S(1)) == "reduce_scatter"
    assert collective(S(0), B) == "all_gather" and collective(S(0), S(1)) == "all_to_all"
    assert {collective(B, S(0)), collective(B, P), collective(S(1), P)} == {"slice", "zero_fill"}
    n, p = 4096, 4
    assert boxing_bytes(P, B, n, p) == 2 * (p - 1) * n
    assert boxing_bytes(P, S(0), n, p) == boxing_bytes(S(0), B, n, p) == (p - 1) * n
    assert boxing_bytes(S(0), S(1), n, p) == (p - 1) * n // p
    assert boxing_bytes(B, S(0), n, p) == boxing_bytes(S(0), P, n, p) == boxing_bytes(P, P, n, p) == 0
    assert parse("S(1)") == S(1) and parse_nd(["S(0)", "B"]) == (S(0), B)
    assert not valid_nd((S(0), S(0)), 2) and valid_nd((S(0), S(1)), 2) and not valid_nd((S(1),), 1)
    with pytest.raises(ValueError, match="unknown SBP"):
        parse("Q")


def test_mesh_coordinates_and_groups():
    assert gt.mesh_coord((2, 2), 3) == (1, 1) and gt.mesh_coord((4,), 2) == (2,)
    assert gt.mesh_group((2, 2), 1, 0) == (1, 3) and gt.mesh_group((2, 2), 1, 1) == (0, 1)
    assert mlp.mesh_of(HYBRID, 4) == (2, 2) and mlp.mesh_of(DP, 3) == (3,)
    with pytest.raises(ValueError, match="does not hold"):
        mlp.mesh_of({"mesh": [3]}, 4)


def _plan(placement, world=4, hidden=16, batch=16):
    X, Y = mlp.digits()
    ctx = gt.Ctx(mlp.mesh_of(placement, world), 0, plan=True)
    mlp.train_sbp(ctx, placement, mlp.init_params(hidden, 0), X, Y, 0, batch, 0.1, 1)
    return [(r.phase, r.op, r.kind) for r in ctx.records]


def test_data_parallel_weight_gradients_come_out_partial():
    """DP: nothing moves forward or backward; every weight gradient is P and the optimizer's
    boxing to B is an all-reduce — derived, not hard-coded (spec: 'grads P -> all-reduce')."""
    plan = _plan(DP)
    assert plan == [("grad_sync", "sgd", "all_reduce")] * 6


def test_changing_one_annotation_changes_the_inserted_collective():
    """The spec's pitfall: transfers must follow the annotations. W2 row-split instead of
    replicated turns one gradient all-reduce into a reduce-scatter and adds forward traffic."""
    base = _plan(DP)
    changed = dict(DP, params=dict(DP["params"], W2="S(0)"))
    plan = _plan(changed)
    assert plan != base
    assert ("grad_sync", "sgd", "reduce_scatter") in plan or any(p[0] in ("fwd", "bwd") for p in plan)
    assert _plan(TP) != base and _plan(HYBRID, world=4) != base


def test_planner_picks_the_cheapest_signature():
    ctx = gt.Ctx((4,), 0, plan=True)
    x = ctx.from_full(torch.zeros(8, 4), (S(0),))
    w = ctx.from_full(torch.zeros(4, 8), (B,))
    req, out = ctx.choose("matmul", [x, w], 2)
    assert req == [(S(0),), (B,)] and out == (S(0),)        # no transfer at all
    w2 = ctx.from_full(torch.zeros(4, 8), (S(1),))
    req, out = ctx.choose("matmul", [ctx.from_full(torch.zeros(8, 4), (B,)), w2], 2)
    assert out == (S(1),)                                    # column parallel, free


def test_invalid_annotations_fail_clearly():
    ctx = gt.Ctx((4,), 0, plan=True)
    with pytest.raises(ValueError, match="does not split"):
        ctx.from_full(torch.zeros(6, 4), (S(0),))
    with pytest.raises(ValueError, match="has 2 axes"):
        ctx.from_full(torch.zeros(8, 4), (S(0), B))


def test_single_process_engine_is_bit_exact_with_pytorch():
    X, Y = mlp.digits()
    init = mlp.init_params(16, 3)
    ctx = gt.Ctx((1,), 0)
    single = {"mesh": [1], "x": "B", "y": "B", "params": {k: "B" for k in mlp.PARAMS}}
    a = mlp.train_sbp(ctx, single, init, X, Y, 3, 32, 0.1, 3)
    b = mlp.train_torch(init, X, Y, 3, 32, 0.1, 3)
    assert mlp.max_abs_diff(a, b) == 0.0 and ctx.records == []


def test_plan_comm_shapes():
    c = PlanComm(4, 1)
    t = torch.zeros(8, 4)
    assert c.all_gather(t, 0).shape == (32, 4) and c.reduce_scatter(t, 0).shape == (2, 4)
    assert c.all_to_all(t, 0, 1).shape == (32, 1) and c.all_reduce(t).shape == (8, 4)


# ------------------------------------------------------------------------- real gloo processes

def _collectives(rank, world):
    ring = RingComm(tuple(range(world)), rank)
    g = torch.Generator().manual_seed(rank)
    t = torch.randn(world * 2, world * 3, generator=g)
    out, sent = {}, {}
    for name, fn in (("all_reduce", lambda: ring.all_reduce(t)), ("reduce_scatter", lambda: ring.reduce_scatter(t, 0)),
                     ("all_gather", lambda: ring.all_gather(t, 1)), ("all_to_all", lambda: ring.all_to_all(t, 0, 1)),
                     ("odd_all_reduce", lambda: ring.all_reduce(torch.ones(7)))):
        before = COUNTER.bytes
        out[name] = fn()
        sent[name] = COUNTER.bytes - before
    return out, sent, t


def test_ring_collectives_on_three_processes_are_exact_in_value_and_bytes():
    world = 3
    res = spawn.run_group(_collectives, world, (), CFG, 60)
    ts = [r[2] for r in res]
    total = ts[0] + ts[1] + ts[2]
    n = ts[0].numel() * 4
    for r, (out, _, _) in enumerate(res):
        assert torch.allclose(out["all_reduce"], total, atol=1e-6)
        assert torch.allclose(out["reduce_scatter"], total.chunk(world, 0)[r], atol=1e-6)
        assert torch.equal(out["all_gather"], torch.cat(ts, 1))
        assert torch.equal(out["all_to_all"], torch.cat([t.chunk(world, 1)[r] for t in ts], 0))
        assert torch.equal(out["odd_all_reduce"], torch.full((7,), 3.0))
    sent = {k: sum(r[1][k] for r in res) for k in res[0][1]}
    assert sent["all_reduce"] == boxing_bytes(P, B, n, world)
    assert sent["reduce_scatter"] == boxing_bytes(P, S(0), n, world)
    assert sent["all_gather"] == boxing_bytes(S(1), B, n * world, world)
    assert sent["all_to_all"] == boxing_bytes(S(0), S(1), n * world, world)
    assert sent["odd_all_reduce"] == 2 * (world - 1) * 7 * 4   # any size, chunks uneven


def _train(rank, world, placement):
    X, Y = mlp.digits()
    ctx = gt.Ctx(mlp.mesh_of(placement, world), rank)
    params = mlp.train_sbp(ctx, placement, mlp.init_params(8, 1), X, Y, 1, 16, 0.1, 3)
    return params, ctx.records


@pytest.mark.parametrize("name", ["tp", "hybrid"])
def test_placements_train_like_one_process_and_bytes_match(name):
    placement = {"tp": TP, "hybrid": HYBRID}[name]
    res = spawn.run_group(_train, 4, (placement,), CFG, 90)
    X, Y = mlp.digits()
    ref = mlp.train_torch(mlp.init_params(8, 1), X, Y, 1, 16, 0.1, 3)
    assert all(mlp.max_abs_diff(p, ref) < 1e-5 for p, _ in res)
    from steps.oneflow.common import tally

    t = tally([r for _, r in res], 3)
    assert t["transfers"] > 0 and t["max_abs_mismatch"] == 0


def _fails(rank, world):
    if rank == 1:
        raise RuntimeError("boom on purpose")
    import torch.distributed as dist

    dist.recv(torch.empty(1), 1)  # waits for a rank that died
    return os.getpid()


def _hangs(rank, world, pidfile):
    with open(f"{pidfile}.{rank}", "w") as f:
        f.write(str(os.getpid()))
    time.sleep(60)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split()[2] != "Z"


def test_a_failing_rank_stops_the_group_with_one_line():
    with pytest.raises(RankFailure, match="rank 1 failed: RuntimeError: boom on purpose"):
        spawn.run_group(_fails, 2, (), CFG, 30)
    import multiprocessing as mp

    assert mp.active_children() == []


def test_a_hanging_group_is_killed_at_the_deadline(tmp_path):
    t0 = time.monotonic()
    with pytest.raises(RankFailure, match="did not finish within 2 s"):
        spawn.run_group(_hangs, 2, (str(tmp_path / "pid"),), CFG, 2)
    assert time.monotonic() - t0 < 15
    pids = [int((tmp_path / f"pid.{r}").read_text()) for r in range(2)]
    assert not any(_alive(p) for p in pids)


def _pipe(rank, world, m, q):
    X, Y = mlp.digits()
    stage = actors.Stage(rank, world, mlp.init_params(8, 2), 8, 16)
    peak = 0
    for step in range(2):
        idx = mlp.batch_indices(2, step, 16, len(Y))
        st = stage.step(list(X[idx].chunk(m)), list(Y[idx].chunk(m)), q, 0.1)
        peak = max(peak, st.peak_inflight)
        assert {e[0] for e in st.events} == {"F", "B"} and len(st.events) == 2 * m
    return {k: v.detach() for k, v in stage.params.items()}, peak, stage.records


@pytest.mark.parametrize("q", [1, 2])
def test_actor_pipeline_respects_the_quota_and_trains_like_one_process(q):
    res = spawn.run_group(_pipe, 2, (4, q), CFG, 60)
    params = {}
    for p, peak, _ in res:
        params.update(p)
        assert peak <= q
    X, Y = mlp.digits()
    ref = mlp.train_torch(mlp.init_params(8, 2), X, Y, 2, 16, 0.1, 2, micro_batches=4)
    assert mlp.max_abs_diff(params, ref) < 1e-6
    assert all(r.measured == r.predicted for _, _, recs in res for r in recs)
    assert actors.stage_blocks(0, 2) == [0, 1] and actors.stage_blocks(3, 4) == [3]
