"""steps.core.claims: verdicts computed from hand-made metrics (never from a real run), and
every paper's claims.yaml is valid and names metrics its report reads."""

from __future__ import annotations

import functools

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


@pytest.mark.parametrize(
    "check, refused",
    [
        # both sides of a comparison from the config (or a constant): it cannot fail, refused
        ("evaluate.size_ratio.int4 >= 8", True),
        ("evaluate.calls.a <= evaluate.calls.b and evaluate.calls.a >= evaluate.calls.b", True),
        # a measured conjunct does not make an arithmetic one a finding
        ("evaluate.size_ratio.int4 >= 8 and evaluate.acc > 0.5", True),
        ("evaluate.acc > 0.5 or evaluate.calls.a <= evaluate.calls.b", True),
        ("evaluate.acc > evaluate.calls.a > evaluate.calls.b", True),  # each link of a chain on its own
        # a measured value on one side: a finding
        ("evaluate.acc > evaluate.size_ratio.int4 / 10", False),
        ("evaluate.wall.a <= 1.25 * evaluate.wall.b", False),
        ("evaluate.acc > evaluate.calls.a and evaluate.wall.a < evaluate.wall.b", False),
        ("max(evaluate.acc, evaluate.calls.a) > 0", False),
    ],
)
def test_a_comparison_of_two_sides_from_the_same_parameters_is_flagged(check, refused):
    """A claim is refused when any comparison in its check has only config arithmetic on both
    sides (e.g. slimflow's `teacher_over_student >= 8`, once ANDed with a measured FID)."""
    from steps.core import report
    from steps.core.errors import PaperzooError

    records = {"evaluate": {"values": {}, "accounting": ["size_ratio", "calls"]}}
    v = claims.Verdict("c", "s", check, "holds", dict.fromkeys(claims.paths(check), 1.0))
    if refused:
        with pytest.raises(PaperzooError, match="checks only arithmetic of the setup"):
            report.refuse_accounting_claims([v], records)
    else:
        report.refuse_accounting_claims([v], records)
    report.refuse_accounting_claims([claims.Verdict("c", "s", check, "holds", v.values, kind="accounting")], records)


def test_comparisons_split_chains_and_boolean_operators():
    assert claims.comparisons("a.x < b.y * 2 and not c.z >= 1 or d.w > e.v > 3") == [
        ("a.x < b.y * 2", ["a.x", "b.y"]), ("c.z >= 1", ["c.z"]), ("d.w > e.v", ["d.w", "e.v"]), ("e.v > 3", ["e.v"])]


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


@functools.cache
def step_declarations():
    from steps.core import declared

    return declared.declarations()


def test_every_step_declares_accounting_readably():
    """Every `metrics.write(..., accounting=...)` is a literal or a module-level constant, so
    that the test below reads what each step declares without running it."""
    from steps.core import declared

    decls = step_declarations()
    assert {("steps.asd.upscale", "fstd"), ("steps.asd.full.upscale_full", "fstd_full"),
            ("steps.slimflow.evaluate", "params")} <= {(d.module, d.file) for d in decls}
    assert declared.unreadable(decls) == []


@pytest.mark.parametrize("paper", PAPERS)
def test_no_claim_compares_only_arithmetic_of_the_setup(paper):
    """Over every paper's claims at every scale (full-only ones too, which no test runs): no
    `kind: claim` has a comparison whose two sides are computed from the same parameters only,
    i.e. name only values the steps declare accounting (or constants). Such a check cannot fail
    for a reason the paper could be wrong about: make it kind: accounting, or measure."""
    from steps.core import declared

    assert declared.flagged(paper, decls=step_declarations()) == []


def test_the_check_flags_a_constructed_claim_over_declared_arithmetic():
    """The test above can fail: claims over asd's declared call counts (mini and full) and over
    slimflow's parameter ratio are flagged, a measured wall time or FID beside them is not, and
    the same checks as kind `accounting` are shown, not flagged."""
    from steps.core import declared

    def c(id_, check, kind="claim"):
        return {"id": id_, "statement": "s", "check": check, "scales": ["mini", "full"], "source": "x", "kind": kind}

    asd = {"claims": [
        c("calls_equal", "fstd.fstd.calls <= fstd.non_overlap.calls and fstd.fstd.calls >= fstd.non_overlap.calls"),
        c("calls_full", "fstd_full.s1024x2048.fstd.calls <= fstd_full.s1024x2048.non_overlap.calls"),
        c("cost", "fstd.fstd.wall_s <= 1.25 * fstd.non_overlap.wall_s"),
        c("cost_full", "fstd_full.s1024x2048.fstd.wall_s <= 1.25 * fstd_full.s1024x2048.non_overlap.wall_s"),
        c("shown", "fstd.fstd.calls <= fstd.non_overlap.calls", kind="accounting")]}
    flagged = declared.flagged("asd", asd, step_declarations())
    assert [(f[0], f[1]) for f in flagged] == [
        ("calls_equal", "fstd.fstd.calls <= fstd.non_overlap.calls"),
        ("calls_equal", "fstd.fstd.calls >= fstd.non_overlap.calls"),
        ("calls_full", "fstd_full.s1024x2048.fstd.calls <= fstd_full.s1024x2048.non_overlap.calls")]
    slim = {"claims": [c("old", "params.teacher_over_student >= 8 and fid.one_step.fgd.mean <= 1.5 * fid.reference.instaflow_student")]}
    assert declared.flagged("slimflow", slim, step_declarations()) == [
        ("old", "params.teacher_over_student >= 8", ["params.teacher_over_student"])]
    # another paper's steps do not declare for it: asd's `fstd` means nothing to slimflow
    assert declared.flagged("slimflow", {"claims": [asd["claims"][0]]}, step_declarations()) == []


def test_declarations_are_read_from_source(tmp_path):
    """Literal declarations, the metrics file from a `.json` path or from the metric name (an
    f-string as a pattern), and a declaration built at run time reported as unreadable."""
    from steps.core import declared

    step = tmp_path / "steps" / "p"
    step.mkdir(parents=True)
    (step / "a.py").write_text(
        "def main(cfg, out, name, keys):\n"
        "    metrics.write(out / 'size.json', cfg, 'size', 'd', {}, 0.0, 'cpu', accounting=['ratio.*'])\n"
        "    metrics.write(out, cfg, f'model_{name}', 'd', {}, 0.0, 'cpu', accounting=('calls',))\n"
        "    metrics.write(out, cfg, 'x', 'd', {}, 0.0, 'cpu', accounting=list(keys))\n"
        "    metrics.write(out, cfg, 'y', 'd', {}, 0.0, 'cpu')\n")
    decls = declared.declarations(tmp_path)
    assert [(d.file, d.paths) for d in decls] == [("size", ("ratio.*",)), ("model_*", ("calls",)), ("x", None)]
    assert declared.unreadable(decls) == [f"steps.p.a:{decls[2].line}"]
    assert declared.is_arithmetic("size.ratio.int4", decls) and declared.is_arithmetic("model_b.calls.n", decls)
    assert not declared.is_arithmetic("size.acc", decls) and not declared.is_arithmetic("size.ratio", decls)


@pytest.mark.parametrize("declared_as, key, covered", [
    (["size_ratio"], "size_ratio.int4", True), (["size_ratio"], "size_ratio", True),
    (["size_ratio.int4"], "size_ratio", False), (["*.fstd.calls"], "s512x512.fstd.calls", True),
    (["*.fstd.calls"], "s512x512.fstd.wall_s", False), (["*.calls"], "fstd.calls.n", True), (["calls"], "calls_n", False)])
def test_declared_paths_cover_the_nodes_below_them(declared_as, key, covered):
    from steps.core import metrics

    assert metrics.declares(declared_as, key) is covered
