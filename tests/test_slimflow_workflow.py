"""The SlimFlow DAG through Snakemake: the smoke run end to end in a fresh copy of the
repository (InstaFlow's teacher, digits and FID classifier built as declared inputs), determinism
of its training and evaluation, and one-line errors for bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from steps.core import metrics
from tests.conftest import ROOT, patient, smoke_copy, snakemake

METRICS = ("fid", "params", "straightness", "schedule")


@pytest.fixture(scope="module")
def slimflow_smoke(tmp_path_factory):
    return smoke_copy(tmp_path_factory, "slimflow", timeout=900)


def test_smoke_dag_end_to_end(slimflow_smoke):
    res = slimflow_smoke / "results" / "slimflow"
    for name in METRICS:
        rec = metrics.read(res / f"{name}.json")
        assert rec["scale"] == "smoke" and rec["paper"] == "slimflow"
    fid = metrics.read(res / "fid.json")["values"]
    assert set(fid["one_step"]) == {"scratch", "standard", "anneal", "independent", "rf1_small", "naive", "fgd"}
    assert {"instaflow_student", "teacher_n1", "floor", "noise"} <= set(fid["reference"])
    report = (res / "report.md").read_text()
    assert "| **holds** |" in report and "not testable at smoke" in report
    for fig in ("fid_one_step", "fid_vs_steps", "params_vs_fid", "beta_schedule", "samples"):
        assert (res / "figures" / f"{fig}.png").exists(), fig
    for arm in ("scratch", "standard", "anneal", "independent"):
        assert (slimflow_smoke / "benchmarks" / "slimflow" / f"reflow_{arm}_s0.tsv").exists()
    assert "done" in (slimflow_smoke / "logs" / "slimflow" / "evaluate.log").read_text()


def test_parameter_counts_are_accounting_and_the_old_size_claim_is_refused(slimflow_smoke):
    """The size ratio follows from the two architectures' configs: evaluate declares it, and the
    report refuses the old `small_student_close_to_large` (the ratio ANDed with a measured FID)."""
    from steps.core import claims, declared, report
    from steps.core.errors import PaperzooError

    res = slimflow_smoke / "results" / "slimflow"
    records = {n: metrics.read(res / f"{n}.json") for n in ("params", "fid")}
    assert set(records["params"]["accounting"]) == {"teacher", "student", "instaflow_student", "teacher_over_student"}
    # what the run declared is what the source declares (read without a run by steps.core.declared)
    assert [set(d.paths) for d in declared.declarations() if d.module == "steps.slimflow.evaluate"] == \
        [set(records["params"]["accounting"])]
    old = "params.teacher_over_student >= 8 and fid.one_step.fgd.mean <= 1.5 * fid.reference.instaflow_student"
    v = claims.verdicts({"claims": [{"id": "old", "statement": "s", "check": old, "scales": ["mini"], "source": "x"}]},
                        {n: r["values"] for n, r in records.items()}, "smoke")
    with pytest.raises(PaperzooError, match="teacher_over_student >= 8"):
        report.refuse_accounting_claims(v, records)
    current = claims.load(ROOT / "params" / "slimflow" / "claims.yaml")
    report.refuse_accounting_claims(claims.verdicts(current, {n: r["values"] for n, r in records.items()}, "smoke"), records)


def _step(work, module, *args, check=True):
    env = {"PYTHONPATH": str(work), "PAPERZOO_ROOT": str(work), "PATH": "/usr/bin:/bin"}
    res = subprocess.run([sys.executable, "-m", f"steps.slimflow.{module}", "scale=smoke", *args], cwd=work,
                         env=env, capture_output=True, text=True, timeout=patient(120))
    if check and res.returncode != 0:
        raise AssertionError(res.stderr[-2000:])
    return res


def test_training_and_evaluation_are_deterministic(slimflow_smoke, tmp_path):
    w = slimflow_smoke
    io = [f"io.pairs={w}/data/slimflow/pairs.npz", f"io.digits={w}/data/instaflow/digits.npz",
          f"io.captions={w}/data/instaflow/caption_emb.npz"]
    _step(w, "reflow", "seed=0", "reflow.arm=anneal", *io, f"io.out={tmp_path}/again.pt")
    a = torch.load(w / "models/slimflow/2rf_small_anneal_s0.pt", weights_only=False)["state"]["model"]
    b = torch.load(tmp_path / "again.pt", weights_only=False)["state"]["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    out = tmp_path / "results"
    _step(w, "evaluate", f"io.digits={w}/data/instaflow/digits.npz", f"io.captions={w}/data/instaflow/caption_emb.npz",
          f"io.caption_table={w}/data/instaflow/captions.parquet", f"io.fid_clf={w}/models/instaflow/fid_clf.pt",
          f"io.teacher={w}/models/instaflow/rf1_s0.pt", f"io.instaflow_student={w}/models/instaflow/distill_rf2_s0.pt",
          f"io.models={w}/models/slimflow", f"io.results={out}")
    for name in METRICS:
        first = json.loads((w / "results" / "slimflow" / f"{name}.json").read_text())
        second = json.loads((out / f"{name}.json").read_text())
        assert first["values"] == second["values"] and first["config_hash"] == second["config_hash"], name


def test_bad_input_is_one_line(slimflow_smoke, tmp_path):
    w = slimflow_smoke
    res = _step(w, "reflow", "reflow.arm=zz", f"io.pairs={w}/data/slimflow/pairs.npz",
                f"io.digits={w}/data/instaflow/digits.npz", f"io.captions={w}/data/instaflow/caption_emb.npz",
                f"io.out={tmp_path}/x.pt", check=False)
    assert res.returncode == 2 and res.stderr.strip().splitlines()[-1].startswith('error: slimflow: reflow.arm = "zz" is not valid')
    bad = tmp_path / "pairs.npz"
    bad.write_bytes(b"not an npz")
    res = _step(w, "distill", f"io.init={w}/models/slimflow/2rf_small_anneal_s0.pt", f"io.pairs={bad}",
                f"io.digits={w}/data/instaflow/digits.npz", f"io.captions={w}/data/instaflow/caption_emb.npz",
                f"io.out={tmp_path}/y.pt", check=False)
    assert res.returncode == 3 and "teacher pairs" in res.stderr.strip().splitlines()[-1]
    res = snakemake(ROOT, "-n", "slimflow", "--config", "slimflow=reflow.stps=3", check=False)
    assert res.returncode != 0 and "error: unknown key 'reflow.stps' for slimflow" in res.stdout + res.stderr
    res = snakemake(ROOT, "-n", "slimflow", "--config", "slimflow=distill.steps=many", check=False)
    assert res.returncode != 0 and "error: distill.steps expects int" in res.stdout + res.stderr
