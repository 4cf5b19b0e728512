"""steps.core.claims: verdicts computed from hand-made metrics (never from a real run), and
every paper's claims.yaml is valid and names metrics its report reads."""

from __future__ import annotations

import pytest
import yaml

from steps.core import claims
from steps.core.config import compose
from steps.core.errors import ConfigError
from tests.conftest import ROOT

PAPERS = yaml.safe_load((ROOT / "workflow" / "papers.yaml").read_text())["papers"]

METRICS = {
    "fid": {"one_step": {"a": {"mean": 10.0}, "b": {"mean": 20.0}}, "ms": {"n1": {"mean": 30.0}, "n2": {"mean": 25.0}}},
    "s": {"rf1": {"mean": 1.0}, "rf2": {"mean": 0.2}},
}


def claim(check, scales=("mini",), **kw):
    return {"claims": [{"id": "c", "statement": "s", "check": check, "scales": list(scales), "source": "x", **kw}]}


@pytest.mark.parametrize(
    "check, verdict",
    [
        ("fid.one_step.a.mean < fid.one_step.b.mean", "holds"),
        ("fid.one_step.b.mean < fid.one_step.a.mean", "fails"),
        ("s.rf2.mean < 0.3 * s.rf1.mean", "holds"),
        ("s.rf2.mean < 0.1 * s.rf1.mean", "fails"),
        ("fid.ms.n1.mean > fid.ms.n2.mean > fid.one_step.b.mean", "holds"),
        ("fid.ms.n1.mean > fid.ms.n2.mean > fid.one_step.b.mean > 100", "fails"),
        ("min(fid.one_step.a.mean, fid.one_step.b.mean) <= 10", "holds"),
        ("fid.one_step.a.mean < 5 or s.rf2.mean < 1", "holds"),
        ("fid.one_step.a.mean < 5 and s.rf2.mean < 1", "fails"),
        ("-fid.one_step.a.mean < 0", "holds"),
        ("fid.one_step.zzz.mean < 1", "not run"),
        ("fid.one_step.a < 1", "not run"),  # a summary node, not a number
        ("nofile.x < 1", "not run"),
    ],
)
def test_verdicts_on_hand_made_metrics(check, verdict):
    (v,) = claims.verdicts(claim(check), METRICS, "mini")
    assert v.verdict == verdict


def test_missing_metric_is_not_hidden_by_or():
    (v,) = claims.verdicts(claim("fid.one_step.a.mean < 100 or fid.zzz.mean < 1"), METRICS, "mini")
    assert v.verdict == "not run"


def test_not_testable_at_other_scales_even_when_metrics_exist():
    (v,) = claims.verdicts(claim("fid.one_step.a.mean < fid.one_step.b.mean", scales=("full",)), METRICS, "mini")
    assert v.verdict == "not testable at mini"


def test_values_are_reported_for_every_path():
    (v,) = claims.verdicts(claim("fid.one_step.a.mean < fid.one_step.zzz.mean"), METRICS, "mini")
    assert v.values == {"fid.one_step.a.mean": 10.0, "fid.one_step.zzz.mean": None}


@pytest.mark.parametrize(
    "check",
    ["__import__('os').system('x')", "fid.a.mean < 'x'", "[1][0] < 2", "fid.a.mean if 1 else 2", "lambda: 1", "open('f')"],
)
def test_unsafe_or_odd_checks_are_refused(check):
    with pytest.raises(ConfigError):
        claims.verdicts(claim(check), METRICS, "mini")


def test_load_rejects_bad_files(tmp_path):
    p = tmp_path / "claims.yaml"
    p.write_text("paper: {}\n")
    with pytest.raises(ConfigError):
        claims.load(p)


@pytest.mark.parametrize("paper", PAPERS)
def test_every_papers_claims_load_and_name_reported_metrics(paper):
    data = claims.load(ROOT / "params" / paper / "claims.yaml")
    for scale in ("mini", "full"):
        reported = set(compose(paper, scale).report.metrics)
        for c in data["claims"]:
            if scale in c["scales"]:
                files = {p.split(".")[0] for p in claims.paths(c["check"])}
                assert files <= reported, f"{c['id']} at {scale} names {files - reported}, not in report.metrics"
    assert any(c.get("kind", "claim") == "claim" for c in data["claims"])
    for n in data["numbers"]:
        assert n["verified"] in (True, False) and n["source"]


def test_a_claim_naming_only_accounting_values_is_refused():
    """Arithmetic of the setup (declared by the step: metrics.write(accounting=...)) is shown
    under kind `accounting`, never counted as a finding: a `claim` over it stops the report."""
    from steps.core import report
    from steps.core.errors import PaperzooError

    records = {"evaluate": {"values": {"size_ratio": {"int4": 8.0}, "acc": 0.9}, "accounting": ["size_ratio"]}}
    arith = claims.Verdict("r", "s", "evaluate.size_ratio.int4 > 7", "holds", {"evaluate.size_ratio.int4": 8.0})
    with pytest.raises(PaperzooError, match="checks only arithmetic of the setup"):
        report.refuse_accounting_claims([arith], records)
    shown = claims.Verdict("r", "s", "evaluate.size_ratio.int4 > 7", "holds", {"evaluate.size_ratio.int4": 8.0},
                           kind="accounting")
    measured = claims.Verdict("m", "s", "evaluate.acc > evaluate.size_ratio.int4 / 10", "holds",
                              {"evaluate.acc": 0.9, "evaluate.size_ratio.int4": 8.0})
    report.refuse_accounting_claims([shown, measured], records)  # both fine


def test_registration_is_stated_beside_the_verdict():
    v = claims.Verdict("x", "s", "a.b > 1", "holds", {}, registered={"when": "before-mini", "commit": "4c5a2f1aa"},
                       history=({"date": "2026-12-01", "was": "a.b > 2", "reason": "typo in the threshold"},))
    assert v.registration == "before mini · 4c5a2f1; changed 1× (last 2026-12-01: typo in the threshold)"
    assert claims.Verdict("y", "s", "a.b > 1", "holds", {}).registration == "not recorded"


def test_a_model_change_shows_the_verdicts_measured_before_and_after():
    """A history entry naming the metrics of the model before (and after) a change is judged on
    them, with the check in force then; the report shows both beside the claim."""
    from steps.core import report

    history = [{"date": "2026-12-01", "change": "model A -> B", "reason": "r",
                "measured_before": {"m": "m_a"}, "measured_after": {"m": "m_b"}},
               {"date": "2026-12-02", "change": "model B -> C", "reason": "r", "measured_before": {"m": "m_b"},
                "verdict_before": "holds (x = 1.5)"},
               {"date": "2026-12-03", "was": "m.x > 1", "reason": "threshold"}]
    data = {"claims": [{"id": "c", "statement": "s", "check": "m.x > 1.8", "scales": ["mini"], "source": "",
                        "history": history}]}
    v = claims.verdicts(data, {"m": {"x": 2.0}, "m_a": {"x": 0.5}, "m_b": {"x": 1.5}}, "mini")[0]
    assert v.verdict == "holds" and v.measured[2] is None
    assert [(m["before"]["verdict"], m["after"]["verdict"]) for m in v.measured[:2]] == [("fails", "holds"), ("holds", "holds")]
    assert v.measured[0]["before"]["values"] == {"m.x": 0.5}
    assert report.as_registered(v) == "<br>model as registered: fails"
    table = "\n".join(report.history_section([v], "mini"))
    assert "**fails** → **holds** (measured at mini)" in table and "recorded: holds (x = 1.5) → ?" in table
    missing = claims.verdicts(data, {"m": {"x": 2.0}}, "mini")[0]       # the earlier model's file not made
    assert missing.measured[0]["before"]["verdict"] == "not run"
