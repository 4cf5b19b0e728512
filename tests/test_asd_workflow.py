"""asd through Snakemake: the smoke DAG end to end in a fresh copy of the repository (InstaFlow's
digits classifier included), determinism of the metrics, and dry runs at mini and full scale."""

from __future__ import annotations

import json

import pytest

from steps.core import metrics
from tests.conftest import ROOT, smoke_copy, snakemake


@pytest.fixture(scope="module")
def asd_smoke(tmp_path_factory):
    return smoke_copy(tmp_path_factory, "asd")


def test_smoke_dag_end_to_end(asd_smoke):
    res = asd_smoke / "results" / "asd"
    comp = metrics.read(res / "composition.json")["values"]
    fstd = metrics.read(res / "fstd.json")["values"]
    assert {"real", "square", "arad", "square_tiled"} <= set(comp)
    assert {"b16x16", "b16x32", "non_square"} <= set(comp["arad"])
    assert {"count_error", "cropped", "prompt_acc", "fid"} <= set(comp["arad"]["non_square"])
    assert {"non_overlap", "overlap", "fstd", "whole"} <= set(fstd)
    assert fstd["fstd"]["calls"] == fstd["non_overlap"]["calls"] < fstd["overlap"]["calls"]
    report = (res / "report.md").read_text()
    assert "these numbers mean nothing" in report and "not testable at smoke" in report
    accounting = report.split("## Accounting")[1].split("\n## ")[0]
    assert "FSTD makes exactly the model calls" in accounting and "**holds**" in accounting
    for fig in ("samples.png", "composition.png", "upscaled.png", "fstd.png"):
        assert (res / "figures" / fig).stat().st_size > 1000
    for job in ("gen_data", "train_gen_square", "train_gen_arad", "train_sr", "sample_eval", "upscale", "report"):
        assert (asd_smoke / "benchmarks" / "asd" / f"{job}.tsv").exists()
        assert "done: work" in (asd_smoke / "logs" / "asd" / f"{job}.log").read_text()
    assert not list((asd_smoke / "models" / "asd").rglob("*.resume.pt"))


def test_call_counts_are_accounting_and_a_claim_over_them_is_refused(asd_smoke):
    """The call counts follow from the tile grid: upscale declares them, and the report refuses
    the old `fstd_calls_as_nonoverlap` (kind claim) over the smoke run's own metrics."""
    from steps.core import claims, declared, report
    from steps.core.errors import PaperzooError

    rec = metrics.read(asd_smoke / "results" / "asd" / "fstd.json")
    assert {"fstd.calls", "non_overlap.calls", "overlap.calls"} <= set(rec["accounting"])
    # what the run declared is what the source declares (read without a run by steps.core.declared)
    assert [set(d.paths) for d in declared.declarations() if d.file == "fstd"] == [set(rec["accounting"])]
    old = "fstd.fstd.calls <= fstd.non_overlap.calls and fstd.fstd.calls >= fstd.non_overlap.calls"
    v = claims.verdicts({"claims": [{"id": "old", "statement": "s", "check": old, "scales": ["smoke"], "source": "x"}]},
                        {"fstd": rec["values"]}, "smoke")
    with pytest.raises(PaperzooError, match="checks only arithmetic of the setup"):
        report.refuse_accounting_claims(v, {"fstd": rec})
    measured = claims.Verdict("new", "s", "fstd.fstd.wall_s <= 1.25 * fstd.non_overlap.wall_s", "holds",
                              {"fstd.fstd.wall_s": 1.0, "fstd.non_overlap.wall_s": 1.0})
    report.refuse_accounting_claims([measured], {"fstd": rec})


def test_rerun_gives_identical_metrics(asd_smoke):
    res = asd_smoke / "results" / "asd"
    before = {n: json.loads((res / f"{n}.json").read_text())["values"] for n in ("composition", "fstd")}
    snakemake(asd_smoke, "-c2", "asd", "--config", "scale=smoke", "--forcerun", "asd_sample_eval", "asd_upscale")
    for n in ("composition", "fstd"):
        after = json.loads((res / f"{n}.json").read_text())["values"]
        if n == "fstd":  # wall times differ from run to run; everything else must not
            for m in ("non_overlap", "overlap", "fstd", "whole"):
                before[n][m].pop("wall_s")
                after[m].pop("wall_s")
            before[n].pop("speedup_overlap_over_fstd")
            after.pop("speedup_overlap_over_fstd")
        assert after == before[n]


def test_a_parameter_change_reruns_only_what_reads_it(asd_smoke):
    res = snakemake(asd_smoke, "-n", "-c2", "asd", "--config", "scale=smoke", "asd=upscale.stride=4")
    out = res.stdout + res.stderr
    planned = {line.split()[1].rstrip(":") for line in out.splitlines() if line.startswith(("rule ", "localrule "))}
    assert planned == {"asd_upscale", "report", "asd"}, out[-2000:]


def test_bad_override_is_one_clear_line(asd_smoke):
    res = snakemake(asd_smoke, "-n", "asd", "--config", "scale=smoke", "asd=train_gen.stepz=3", check=False)
    assert res.returncode != 0 and "train_gen.stepz" in res.stdout + res.stderr


@pytest.mark.parametrize("scale", ["mini", "full"])
def test_dry_run_plans_the_whole_dag(scale):
    res = snakemake(ROOT, "-n", "-q", "rules", "--forceall", "asd", "--config", f"scale={scale}", timeout=120)
    out = res.stdout + res.stderr
    rules = {"mini": ("asd_gen_data", "asd_train_gen", "asd_sample_eval", "asd_train_sr", "asd_upscale", "report"),
             "full": ("asd_fetch", "asd_train_arad", "asd_generate", "asd_fid_clip", "asd_upscale_full", "report")}
    for rule in rules[scale]:
        assert rule in out, out[-2000:]
