"""lrd_balmer through Snakemake: the smoke DAG end to end in a fresh copy of the repository
(with the earlier spectrum models the claims' history is measured on), determinism, the dry run
at every scale (64 CPU chunk jobs at full, no GPU), and one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from steps.core import metrics
from tests.conftest import ROOT, smoke_copy, snakemake

METRICS = ("atomic", "levels", "balmer", "balmer_registered", "balmer_series40")
EARLIER = ("registered", "series40")


@pytest.fixture(scope="module")
def lrd_smoke(tmp_path_factory):
    return smoke_copy(tmp_path_factory, "lrd_balmer")


def test_smoke_dag_end_to_end(lrd_smoke):
    res = lrd_smoke / "results" / "lrd_balmer"
    for name in METRICS:
        rec = metrics.read(res / f"{name}.json")
        assert rec["scale"] == "smoke" and rec["paper"] == "lrd_balmer"
    balmer = json.loads((res / "balmer.json").read_text())["values"]
    assert set(balmer["fiducial"]["B"]) == {"lg7_0", "lg10_0", "lg12_0"}
    report = (res / "report.md").read_text()
    assert "these numbers mean nothing" in report and "not testable at smoke" in report
    assert "Substitute: CLOUDY" in report
    for fig in ("break_vs_density.png", "n2_vs_density.png", "optical_depths.png", "spectra.png"):
        assert (res / "figures" / fig).stat().st_size > 1000
    for name in EARLIER:                                       # the earlier spectrum models, for the claims' history
        rec = metrics.read(res / f"balmer_{name}.json")
        assert set(rec["values"]["fiducial"]["B"]) == set(balmer["fiducial"]["B"])
        assert rec["extra"]["model"]["occupation"] is False
    assert json.loads((res / "balmer.json").read_text())["extra"]["model"]["occupation"] is True
    for job in ("atomic", "solve_levels_0", "solve_levels_1", "synthesize", "earlier_model_registered",
                "earlier_model_series40", "report"):
        assert (lrd_smoke / "benchmarks" / "lrd_balmer" / f"{job}.tsv").exists()
        assert "done: work" in (lrd_smoke / "logs" / "lrd_balmer" / f"{job}.log").read_text()


def _run_steps(out):
    """The smoke DAG's steps in-process (no Snakemake): atomic, both chunks, synthesize."""
    from steps.core.cli import load
    from steps.lrd_balmer import atomic, earlier_model, solve_levels, synthesize

    atom, lv, res = out / "atomic.json", out / "levels", out / "results"
    atomic.main(load("lrd_balmer", "atomic", ["scale=smoke", f"io.out={atom}", f"io.metrics={res}/atomic.json"]))
    for k in (0, 1):
        solve_levels.main(load("lrd_balmer", "solve_levels", ["scale=smoke", f"io.atom={atom}", f"io.chunk={k}",
                                                               f"io.out={lv}/chunk{k}.npz"]))
    synthesize.main(load("lrd_balmer", "synthesize", ["scale=smoke", f"io.atom={atom}", f"io.levels={lv}", f"io.results={res}"]))
    for name in EARLIER:
        earlier_model.main(load("lrd_balmer", "earlier_model", ["scale=smoke", f"io.model={name}", f"io.atom={atom}",
                                                                f"io.levels={lv}", f"io.out={res}/balmer_{name}.json"]))
    return res


def test_two_runs_give_identical_metrics(lrd_smoke, tmp_path):
    """Determinism: the steps run again (in-process) give the Snakemake run's metrics exactly."""
    res = _run_steps(tmp_path)
    for name in METRICS:
        a = json.loads((lrd_smoke / "results" / "lrd_balmer" / f"{name}.json").read_text())
        b = json.loads((res / f"{name}.json").read_text())
        assert a["values"] == b["values"] and a["config_hash"] == b["config_hash"]


@pytest.mark.parametrize(("scale", "chunks"), [pytest.param("mini", 2, marks=pytest.mark.slow), ("full", 64)])
def test_dry_run_plans_the_whole_dag(scale, chunks):
    res = snakemake(ROOT, "-n", "--forceall", "lrd_balmer", "--config", f"scale={scale}", timeout=120)
    out = res.stdout + res.stderr
    jobs = {line.split()[0]: line.split()[1] for line in out.splitlines() if line.startswith("lrd_balmer_")}
    assert jobs.get("lrd_balmer_solve_levels") == str(chunks), out[-2000:]
    assert {"lrd_balmer_atomic", "lrd_balmer_synthesize"} <= set(jobs)
    assert jobs.get("lrd_balmer_earlier_model") == str(len(EARLIER)), out[-2000:]
    if scale == "full":
        assert "gpu" not in out.split("Job stats")[0].split("resources:")[-1] and "gpu=" not in out


def test_bad_inputs_give_one_error_line(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def step(*args):
        r = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, env=env)
        return r.returncode, r.stderr.strip().splitlines()

    rc, err = step("steps.lrd_balmer.solve_levels", "scale=smoke", f"io.atom={tmp_path}/none.json", "io.chunk=0",
                   f"io.out={tmp_path}/c.npz")
    assert rc == 3 and err[-1].startswith("error: missing model atom")
    rc, err = step("steps.lrd_balmer.solve_levels", "scale=smoke", f"io.atom={tmp_path}/none.json", "io.chunk=7",
                   f"io.out={tmp_path}/c.npz")
    assert rc == 2 and err[-1] == "error: io.chunk=7 is outside 0..1 (grid.chunks)"
    rc, err = step("steps.lrd_balmer.atomic", "scale=smoke", "atom.n_maxx=3", f"io.out={tmp_path}/a.json",
                   f"io.metrics={tmp_path}/m.json")
    assert rc == 2 and "unknown key 'atom.n_maxx'" in err[-1]
    rc, err = step("steps.lrd_balmer.atomic", "scale=smoke", "atom.n_max=three", f"io.out={tmp_path}/a.json",
                   f"io.metrics={tmp_path}/m.json")
    assert rc == 2 and "atom.n_max expects int" in err[-1]
    rc, err = step("steps.lrd_balmer.earlier_model", "scale=smoke", "io.model=latest", f"io.atom={tmp_path}/a.json",
                   f"io.levels={tmp_path}", f"io.out={tmp_path}/b.json")
    assert rc == 2 and err[-1] == "error: io.model='latest' is not in earlier_models; valid: registered, series40"
