"""TextAtlas5M's smoke DAG end to end through Snakemake: every metrics file validates, the
report lists the paper's numbers and verdicts, figures exist, and a bad override is one line."""

from __future__ import annotations

import json

import pytest

from steps.core import metrics
from tests.conftest import smoke_copy, snakemake


@pytest.fixture(scope="module")
def ta_smoke(tmp_path_factory):
    return smoke_copy(tmp_path_factory, "textatlas5m")


def test_smoke_dag_end_to_end(ta_smoke):
    res = ta_smoke / "results" / "textatlas5m"
    for name in ("dataset_stats", "ocr_on_gt", "difficulty", "generation"):
        rec = metrics.read(res / f"{name}.json")
        assert rec["scale"] == "smoke" and rec["paper"] == "textatlas5m"
    # the degraded-image difficulty follows from the render settings: declared accounting
    assert metrics.read(res / "difficulty.json")["accounting"] == ["degraded"]
    gen = json.loads((res / "generation.json").read_text())["values"]
    assert set(gen["ocr"]) == {"short", "atlas"} and set(gen["per_seed"]["atlas"]) == {"s0"}
    for arm in ("short", "atlas"):
        assert {"short", "clean", "blend", "styled", "dense"} <= set(gen["ocr"][arm])
        assert 0 <= gen["ocr"][arm]["dense"]["f1"] <= 1 and gen["fid_ocr_features"][arm] >= 0
    stats = json.loads((res / "dataset_stats.json").read_text())["values"]
    assert stats["eval_texts_in_train"] == 0
    report = (res / "report.md").read_text()
    assert "not testable at smoke" in report and "TextAtlasEval human-improved test cases" in report
    for fig in ("dataset_stats.png", "ocr_difficulty.png", "generation_f1.png", "samples.png"):
        assert (res / "figures" / fig).stat().st_size > 1000


def test_bad_override_is_one_line(ta_smoke):
    r = snakemake(ta_smoke, "-n", "textatlas5m", "--config", "scale=smoke", "textatlas5m=gen.stepz=3", check=False)
    assert r.returncode != 0 and "gen.stepz" in (r.stdout + r.stderr)
