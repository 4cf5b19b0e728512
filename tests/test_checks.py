"""steps.core.checks: value checks declared next to the params, applied when a config is composed."""

from __future__ import annotations

import fnmatch

import pytest
import yaml

from steps.core import checks, config
from steps.core.errors import ConfigError
from tests.conftest import ROOT

PAPERS = yaml.safe_load((ROOT / "workflow" / "papers.yaml").read_text())["papers"]


@pytest.mark.parametrize(("override", "message"), [
    ("teacher.steps=0", "teacher.steps = 0 is not valid: expected an integer ≥ 1"),
    ("teacher.steps=-5", "teacher.steps = -5 is not valid"),
    ("reflow.batch=0", "reflow.batch = 0 is not valid"),
    ("seeds=[]", "seeds = [] is not valid: expected a non-empty list"),
    ("teacher.precision=fp16", 'teacher.precision = "fp16" is not valid: expected one of auto, fp32, bf16'),
    ("captions.encoder=bogus", "expected one of all-MiniLM-L6-v2, one_hot"),
    ("threads=-1", "threads = -1 is not valid: expected an integer ≥ 0"),
    ("ckpt.every_steps=0", "ckpt.every_steps = 0 is not valid"),
])
def test_bad_values_are_refused_with_one_line_naming_key_and_valid_values(override, message):
    with pytest.raises(ConfigError) as e:
        config.compose("instaflow", "smoke", [override])
    assert message in str(e.value) and "\n" not in str(e.value)
    assert str(e.value).startswith("instaflow: ")


def test_good_values_pass_and_apply():
    cfg = config.compose("instaflow", "smoke", ["teacher.steps=7", "seeds=[3,4]", "threads=2", "reflow.lr=1e-3"])
    assert cfg.teacher.steps == 7 and list(cfg.seeds) == [3, 4] and cfg.threads == 2 and cfg.reflow.lr == 0.001


def _all_paths(paper):
    return {p for scale in config.SCALES for p, _ in checks.paths(config.resolve(paper, scale))}


def _stale(keys, paths):
    return [k for k in keys if not any(k == p or fnmatch.fnmatchcase(p, k) for p in paths)]


@pytest.mark.parametrize("paper", PAPERS)
def test_every_check_of_a_paper_names_one_of_its_keys_at_some_scale(paper):
    """A check whose key matches nothing is a typo or stale: it would silently check nothing."""
    f = ROOT / "params" / paper / "checks.yaml"
    own = yaml.safe_load(f.read_text()) or {} if f.exists() else {}
    assert not _stale(own, _all_paths(paper)), f"params/{paper}/checks.yaml: keys matching nothing"


def test_every_core_check_names_a_key_of_some_paper():
    core = yaml.safe_load((ROOT / "params" / "checks.yaml").read_text())
    paths = set().union(*(_all_paths(p) for p in PAPERS))
    assert not _stale(core, paths)


@pytest.mark.parametrize("paper", PAPERS)
@pytest.mark.parametrize("scale", config.SCALES)
def test_every_shipped_config_passes_its_checks(paper, scale):
    cfg = config.resolve(paper, scale)
    assert checks.violations(cfg, checks.load(paper)) == []


def test_patterns_and_describe():
    cfg = {"a": {"batch": 0}, "b": {"batch": 4, "lr": 0.1}}
    bad = checks.violations(cfg, {"*.batch": {"type": "integer", "minimum": 1}})
    assert bad == ["a.batch = 0 is not valid: expected an integer ≥ 1"]
    assert checks.describe({"type": "number", "exclusiveMinimum": 0, "maximum": 1}) == "a number > 0 and ≤ 1"
    assert checks.describe({"type": ["integer", "null"], "minimum": 1}) == "an integer ≥ 1 or null"
    assert checks.describe({"type": "array", "minItems": 1, "items": {"type": "integer", "minimum": 0}}) == \
        "a non-empty list of integers ≥ 0"
    assert checks.describe({"type": "integer", "minimum": 64, "multipleOf": 8}) == "an integer ≥ 64 divisible by 8"
    assert checks.describe({"type": "string", "pattern": "^ocr_mini:"}) == "a string matching ^ocr_mini:"
    assert checks.describe({"type": "array", "minItems": 1, "items": {"enum": ["fid", "params"]}}) == \
        "a non-empty list of values from fid, params"
    assert checks.unmatched(cfg, {"*.batch": {}, "c.x": {}}) == ["c.x"]


def test_a_malformed_checks_file_is_a_config_error(tmp_path):
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "checks.yaml").write_text("a.b: 3\n")
    with pytest.raises(ConfigError, match="expected a mapping of key"):
        checks.load("p", params=tmp_path)


def test_checks_run_on_the_cached_path_too(tmp_path, monkeypatch):
    """The disk cache stores only checked configs; fast overrides are checked on every call."""
    config.compose("instaflow", "smoke")  # warm the cache
    with pytest.raises(ConfigError, match="seed = -1"):
        config.compose("instaflow", "smoke", ["seed=-1"])


def test_null_is_accepted_where_the_check_of_the_key_admits_it():
    cfg = config.resolve("instaflow", "smoke", ["data.n_images=null"])  # check: integer or null
    assert cfg["data"]["n_images"] is None
    with pytest.raises(ConfigError, match="expects str"):  # check: an enum without null
        config.resolve("instaflow", "smoke", ["captions.encoder=null"])


@pytest.mark.parametrize("paper", PAPERS)
def test_every_paper_declares_its_checks(paper):
    """Every registered paper checks its own values (the scaffold writes the file)."""
    own = yaml.safe_load((ROOT / "params" / paper / "checks.yaml").read_text())
    assert own, f"params/{paper}/checks.yaml is empty"
