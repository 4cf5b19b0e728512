"""OneFlow's throughput phase: the arms (ours and PyTorch's DDP, DTensor TP, pipelining) compute
the same training as one process on real gloo processes, the order of the arms rotates, and the
summaries and paired ratios are computed right. Nothing here asserts a timing."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf

from steps.core import spawn
from steps.oneflow import actors, arms, armset, mlp, throughput
from tests.test_oneflow import DP, TP

CFG = OmegaConf.create({"dist": {"timeout_s": 30.0}})
HIDDEN, BATCH, SEED, LR, STEPS = 8, 16, 4, 0.1, 2


def test_rotation_puts_every_arm_first_once():
    names = armset.arm_names(["dp", "tp", "pp"])
    assert names == ["ours_dp", "ddp", "ours_tp", "torch_tp", "ours_pp", "torch_pp_gpipe", "torch_pp_1f1b"]
    orders = [throughput.rotated(names, r) for r in range(len(names))]
    assert sorted(o[0] for o in orders) == sorted(names)
    assert all(sorted(o) == sorted(names) for o in orders)


def test_summary_reference_and_paired_ratio():
    s = throughput.summary([1.0, 3.0, 2.0])
    assert (s["median"], s["min"], s["max"], s["mean"]) == (2.0, 1.0, 3.0, 2.0) and s["std"] == pytest.approx(1.0)
    assert throughput.summary([5.0])["std"] == 0.0
    tput = {"torch_pp_gpipe": [1.0, 9.0, 2.0], "torch_pp_1f1b": [3.0, 3.0, 3.0]}
    assert throughput.reference(tput, ("torch_pp_gpipe", "torch_pp_1f1b")) == "torch_pp_1f1b"  # by median, not max
    r = throughput.paired_ratio([2.0, 6.0, 3.0], [4.0, 3.0, 3.0])
    assert r["per_repeat"] == [0.5, 2.0, 1.0] and (r["median"], r["min"], r["max"]) == (1.0, 0.5, 2.0)


def test_modules_hold_our_parameters_both_ways():
    init = mlp.init_params(HIDDEN, SEED)
    for blocks in ([0, 1, 2], [0], [1, 2, 3]):
        module = arms.sequential(init, blocks)
        back = arms.ours_from_module(module, blocks)
        for k, v in back.items():
            assert torch.equal(v, init[k]), k
    assert isinstance(arms.sequential(init, [3]), torch.nn.Identity)  # a stage holding only the loss
    X, Y = mlp.digits()
    module = arms.sequential(init, [0, 1, 2])
    h1 = torch.relu(X[:5] @ init["W1"] + init["b1"])
    ref = torch.relu(h1 @ init["W2"] + init["b2"]) @ init["W3"] + init["b3"]
    assert torch.allclose(module(X[:5]), ref, atol=1e-6)


ALL = armset.arm_names(["dp", "tp", "pp"])


def _arms(rank, world):
    X, Y = mlp.digits()
    data = arms.Data(X, Y, SEED, BATCH)
    spec = {"lr": LR, "hidden": HIDDEN, "pp": {"micro_batches": 4, "quota": 2}, "placements": {"dp": DP, "tp": TP}}
    out = {}
    for name in ALL:
        arm = throughput.build(name, rank, world, data, mlp.init_params(HIDDEN, SEED), spec)
        for i in range(STEPS):
            arm.step(i)
        out[name] = arm.params()
    return {"params": out}


@pytest.fixture(scope="module")
def trained():
    """Every arm, one after the other on one group of 2 gloo processes (as the phase runs them)."""
    import torch.distributed.pipelining  # noqa: F401  (imported once, before the fork)
    import torch.distributed.tensor.parallel  # noqa: F401

    return spawn.run_group(_arms, 2, (), CFG, 120)


@pytest.mark.parametrize("name", ALL)
def test_every_arm_trains_like_one_process(trained, name):
    X, Y = mlp.digits()
    micro = 4 if "pp" in name else 1  # the pipelines accumulate over 4 micro-batches
    ref = mlp.train_torch(mlp.init_params(HIDDEN, SEED), X, Y, SEED, BATCH, LR, STEPS, micro_batches=micro)
    got = throughput.merged(trained, name)
    assert mlp.max_abs_diff(got, ref) < 1e-6
    assert mlp.max_abs_diff(got, mlp.init_params(HIDDEN, SEED)) > 1e-4  # it did train


def test_agreement_sets_the_difference_against_the_update():
    init = mlp.init_params(HIDDEN, SEED)
    X, Y = mlp.digits()
    trained = mlp.train_torch(init, X, Y, SEED, BATCH, LR, STEPS)
    same = [{"params": {"ours_dp": trained, "ddp": trained}}]
    a = throughput.agreement(same, "dp", init, X, Y)
    assert a["max_abs_diff"] == 0 and a["loss_rel_diff"] == 0 and a["max_abs_update"] > 0
    idle = [{"params": {"ours_dp": trained, "ddp": init}}]  # PyTorch's arm did not train
    assert throughput.agreement(idle, "dp", init, X, Y)["diff_over_update"] == pytest.approx(1.0)
    with pytest.raises(RuntimeError, match="no rank returned"):
        throughput.merged([{"params": {"ddp": {"W1": init["W1"]}}}], "ddp")


def test_pipeline_stage_split_is_shared():
    """Both pipeline arms split the blocks the same way (actors.stage_blocks)."""
    assert [actors.stage_blocks(s, 4) for s in range(4)] == [[0], [1], [2], [3]]
    assert [actors.stage_blocks(s, 2) for s in range(2)] == [[0, 1], [2, 3]]


def test_the_phase_writes_its_metrics_and_figure(tmp_path):
    """The step itself at tiny sizes (its rule runs at mini only): metrics for every arm and
    placement, the arms agreeing, and the report's figure drawn from them."""
    from pathlib import Path

    from steps.core import metrics
    from steps.core.cli import load
    from steps.oneflow import figures

    out = tmp_path / "throughput.json"
    cfg = load("oneflow", "throughput", ["scale=smoke", f"io.metrics={out}", "throughput.batch=32", "throughput.hidden=8",
                                          "throughput.steps=1", "throughput.warmup=1", "throughput.repeats=2",
                                          "throughput.pp.micro_batches=4", "throughput.pp.quota=2"])
    values = throughput.main(cfg)
    assert set(values["arms"]) == set(ALL) and all(len(a["samples_per_s"]) == 2 for a in values["arms"].values())
    assert set(values["ratio"]) == {"dp", "tp", "pp"} and values["same_max_diff_over_update"] < 1e-3
    assert metrics.read(out)["extra"]["reference_arm"]["dp"] == "ddp"
    made = figures.make(OmegaConf.create({"scale": "smoke"}), Path(tmp_path), {"throughput": values})
    assert made and (tmp_path / made[0][1]).exists()
