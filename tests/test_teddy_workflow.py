"""teddy through Snakemake: the smoke DAG end to end in a fresh copy of the repository, a
resumed sweep, bad input, and dry runs of the DAG at mini and full scale."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from steps.core import metrics
from tests.conftest import ROOT, smoke_copy, snakemake

ARMS = ("teddy", "teddy_no_kd", "inverted", "random", "ugs")


@pytest.fixture(scope="module")
def teddy_smoke(tmp_path_factory):
    return smoke_copy(tmp_path_factory, "teddy")


def test_smoke_dag_end_to_end(teddy_smoke):
    res = teddy_smoke / "results" / "teddy"
    for name in ("graph", "dense", "score", "frontier", *(f"sweep_{a}" for a in ARMS)):
        rec = metrics.read(res / f"{name}.json")  # validates against the schema
        assert rec["scale"] == "smoke" and rec["paper"] == "teddy"
    fr = json.loads((res / "frontier.json").read_text())["values"]
    assert set(fr["levels"]) == {"k1", "k2"} and set(fr["levels"]["k2"]["arms"]) == set(ARMS)
    assert fr["sparsity_error"]["edge_max"] <= 0.005
    report = (res / "report.md").read_text()
    assert "these numbers mean nothing" in report and "not testable at smoke" in report
    for fig in ("frontier.png", "score.png"):
        assert (res / "figures" / fig).stat().st_size > 1000
    assert "done: work" in (teddy_smoke / "logs" / "teddy" / "sweep_ugs.log").read_text()
    assert not list((teddy_smoke / "results" / "teddy").rglob("*.resume.pt"))


def test_sweep_resumes_from_its_checkpoint_to_the_same_numbers(teddy_smoke, monkeypatch):
    """A sweep killed after its first (seed, level) run resumes from it: same metrics as a whole run."""
    from steps.core.cli import load
    from steps.teddy import sweep

    monkeypatch.chdir(teddy_smoke)
    out = teddy_smoke / "results" / "teddy" / "sweep_random.json"
    whole = json.loads(out.read_text())["values"]
    cfg = load("teddy", "sweep", ["scale=smoke", "ckpt.every_steps=1", "io.arm=random", "io.graph=data/teddy/graph.npz",
                                  "io.score=data/teddy/edge_score.npz", "io.dense=models/teddy/dense.pt",
                                  f"io.out={teddy_smoke / 'resumed.json'}"])
    real, calls = sweep.one_shot, []

    def dies_on_second(*a, **kw):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt("killed")
        return real(*a, **kw)

    monkeypatch.setattr(sweep, "one_shot", dies_on_second)
    with pytest.raises(KeyboardInterrupt):
        sweep.main(cfg)
    assert (teddy_smoke / "resumed.json.resume.pt").exists()
    monkeypatch.setattr(sweep, "one_shot", real)
    resumed = sweep.main(cfg)
    assert resumed["runs"].keys() == whole["runs"].keys()
    for key, run in whole["runs"].items():  # the resumed level came from the checkpoint, the other was trained now
        assert {k: v for k, v in resumed["runs"][key].items() if k not in ("train_s", "wall_s")} == \
            {k: v for k, v in run.items() if k not in ("train_s", "wall_s")}
    assert not (teddy_smoke / "resumed.json.resume.pt").exists()


def test_unknown_arm_is_one_clear_error(teddy_smoke):
    res = subprocess.run([sys.executable, "-m", "steps.teddy.sweep", "scale=smoke", "io.arm=lottery", "io.graph=x",
                          "io.score=y", "io.dense=z", "io.out=o.json"], cwd=teddy_smoke, capture_output=True, text=True)
    assert res.returncode != 0 and "io.arm must be one of" in res.stderr and "Traceback" not in res.stderr


@pytest.mark.parametrize("scale", ["mini", "full"])
def test_dry_run_plans_the_whole_dag(scale):
    res = snakemake(ROOT, "-n", "-q", "rules", "--forceall", "teddy", "--config", f"scale={scale}", timeout=120)
    out = res.stdout + res.stderr
    for rule in ("teddy_graph", "teddy_dense", "teddy_score", "teddy_sweep", "teddy_compare", "report"):
        assert rule in out, out[-2000:]
    assert ("teddy_fetch" in out) == (scale == "full")
