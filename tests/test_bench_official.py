"""The harness that times our code beside the official code (steps.core.bench_official) and the
papers' cases, on tiny inputs, with the official side replaced by ours or absent. No timed
assertions: speed targets live in the benchmark's output, not in tests."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from steps.core import bench_official as bo


def counting_arm(log: list, value):
    return bo.Arm(lambda: log.append("setup") or value, lambda state: state)


def test_time_case_interleaves_checks_and_reports_both_arms():
    ours, official, seen = [], [], []
    case = bo.Case("p", "c", "tiny", "ours again", counting_arm(ours, 3), counting_arm(official, 3),
                   check=lambda a, b: (seen.append((a, b)) or a == b, "same"))
    res = bo.time_case(case, repeat=4, warmup=1)
    assert seen == [(3, 3)] and res["check_ok"] and res["check"] == "same"
    assert len(ours) == len(official) == 5  # one warm-up and 4 timed runs each, fresh state every time
    for arm in ("ours", "official"):
        assert res[arm]["runs"] == 4 and 0 <= res[arm]["min_s"] <= res[arm]["median_s"]
    assert res["ratio_median"] > 0 and res["ratio_min"] > 0


def test_table_shows_skipped_cases_with_their_reason():
    rows = [{"paper": "p", "name": "c", "config": "tiny", "official_name": "pkg", "skip": "pkg is not installed"}]
    assert "skipped: pkg is not installed" in bo.table(rows)


def test_load_official_reports_absence_and_versions(tmp_path):
    mod, why = bo.load_official("paperzoo_no_such_package", None)
    assert mod is None and "does not import" in why
    assert "not a folder" in bo.load_official("json", str(tmp_path / "missing"))[1]
    assert bo.load_official("numpy", None, min_version="1.0")[0] is not None
    mod, why = bo.load_official("numpy", None, below="1.0")
    assert mod is None and "needs < 1.0" in why


def test_forget_official_drops_the_path_and_its_modules(tmp_path):
    pkg = tmp_path / "paperzoo_fake_official"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("VERSION = 1\n")
    mod, why = bo.load_official("paperzoo_fake_official", str(tmp_path))
    assert why is None and mod.VERSION == 1
    bo.forget_official()
    assert "paperzoo_fake_official" not in sys.modules and str(tmp_path.resolve()) not in sys.path


def test_parse_official_rejects_unknown_papers():
    assert bo.parse_official(["teddy=/x"]) == {"teddy": "/x"}
    with pytest.raises(SystemExit):
        bo.parse_official(["nope=/x"])


def test_cli_writes_the_record_and_a_missing_official_exits_cleanly(tmp_path, monkeypatch, capsys):
    from steps.hesso import bench_official as hb

    monkeypatch.setattr(hb, "load_official", lambda *a, **k: (None, "only_train_once is not installed"))
    monkeypatch.setattr(hb, "cases", lambda path: [bo.Case("hesso", "c", "tiny", "only_train_once", bo.Arm(lambda: None, lambda s: s),
                                                           None, skip="only_train_once is not installed")])
    rec = bo.main(["hesso", "--repeat", "1", "--warmup", "0", "--out", str(tmp_path / "o.json")])
    assert rec["rows"][0]["skip"] == "only_train_once is not installed"
    assert json.loads((tmp_path / "o.json").read_text())["machine"]["cores"] >= 1
    assert "skipped: only_train_once is not installed" in capsys.readouterr().out


def test_sparse_kernels_match_scipy_on_the_benchmark_problem():
    from steps.fast_sparse_convnets import bench_official as fb

    p = fb.problem(0.9, 4)
    for block, kind in ((1, "csr"), (4, "bsr4")):
        ours, lib = fb.ours_arm(p, kind), fb.scipy_arm(p, block)
        ok, detail = fb.checker(p["ref"])(ours.run(ours.setup()), lib.run(lib.setup()))
        assert ok, detail


def test_cuckoo_index_and_dict_give_the_same_rows(monkeypatch):
    from steps.monolith import bench_official as mb

    monkeypatch.setattr(mb, "EVENTS", 3000)
    bs = mb.batches()
    ours, lib = mb.ours_arm(bs), mb.dict_arm(bs)
    ok, detail = mb.check(ours.run(ours.setup()), lib.run(lib.setup()))
    assert ok, detail


def test_hesso_case_checks_ours_against_itself(monkeypatch):
    """The official arm replaced by ours: the check passes (same dense steps, same zero groups)."""
    from steps.hesso import bench_official as hb

    monkeypatch.setattr(hb, "STEPS", 8)
    monkeypatch.setattr(hb, "PRUNING_STEPS", 3)
    monkeypatch.setattr(hb, "PERIODS", 1)
    monkeypatch.setattr(hb, "load_official", lambda *a, **k: (None, "absent"))
    (training, _) = hb.cases(None)
    assert training.official is None and training.skip == "absent"
    a, b = (training.ours.run(training.ours.setup()) for _ in range(2))
    ok, detail = training.check(a, b)
    assert ok and "zero groups ours 112, official 112" in detail
    assert np.isfinite([float(p.detach().abs().sum()) for p in a["model"].parameters()]).all()


def test_teddy_without_the_official_checkout_skips_with_the_reason_and_ours_runs(monkeypatch):
    from steps.teddy import bench_official as tb

    monkeypatch.setattr(tb, "EPOCHS", 3)
    monkeypatch.setattr(tb, "SCORE_CALLS", 2)
    score, training = tb.cases(None)
    assert score.official is None and training.official is None and "--official teddy=" in score.skip
    assert len(score.ours.run(score.ours.setup())) == 7863  # one score per unique edge of the mini graph
    assert 0.0 <= training.ours.run(training.ours.setup())["val"] <= 1.0
