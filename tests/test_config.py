"""steps.core.config: composition, validation errors, phase views and rerun triggers."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, ReadonlyConfigError

from steps.core import config, resources
from steps.core.errors import ConfigError
from tests.conftest import ROOT

PAPERS = yaml.safe_load((ROOT / "workflow" / "papers.yaml").read_text())["papers"]


@pytest.mark.parametrize("paper", PAPERS)
@pytest.mark.parametrize("scale", config.SCALES)
def test_every_paper_composes_at_every_scale(paper, scale):
    cfg = config.compose(paper, scale)
    assert cfg.paper == paper and cfg.scale == scale
    for phase, sections in cfg.reads.items():
        view = config.compose(paper, scale, phase=phase)
        assert set(sections) <= set(view)


@pytest.mark.parametrize("paper", PAPERS)
@pytest.mark.parametrize("scale", ["smoke", "mini"])
def test_scale_files_only_override_keys_of_base(paper, scale):
    """A per-scale file changes values; new keys there would be silent typos."""
    base = yaml.safe_load((ROOT / "params" / paper / "base.yaml").read_text())
    over = yaml.safe_load((ROOT / "params" / paper / f"{scale}.yaml").read_text()) or {}
    core = yaml.safe_load((ROOT / "params" / "config.yaml").read_text())

    def walk(o, b, path):
        for k, v in o.items():
            if path == "" and k == "resources":  # a per-scale table, checked by phase and key
                resources.check_table(v, base["reads"])
                continue
            assert k in b, f"params/{paper}/{scale}.yaml: '{path}{k}' is not in base.yaml or config.yaml"
            if isinstance(v, dict) and isinstance(b[k], dict):
                walk(v, b[k], f"{path}{k}.")

    walk(over, {**core, **base}, "")


def test_unknown_paper_names_the_valid_ones():
    with pytest.raises(ConfigError, match=r"unknown paper 'instaflw'; valid: .*instaflow"):
        config.compose("instaflw")


def test_unknown_scale_names_the_valid_ones():
    with pytest.raises(ConfigError, match=r"unknown scale 'huge'; valid: smoke, mini, full"):
        config.compose("instaflow", "huge")


def test_unknown_key_names_valid_keys_at_that_level():
    with pytest.raises(ConfigError) as e:
        config.compose("instaflow", "smoke", ["reflow.stepz=3"])
    msg = str(e.value)
    assert "unknown key 'reflow.stepz'" in msg and "valid keys at reflow:" in msg and "steps" in msg
    assert "\n" not in msg


def test_unknown_top_level_section():
    with pytest.raises(ConfigError, match="valid keys at the top level"):
        config.compose("instaflow", "smoke", ["reflw.steps=3"])


def test_wrong_type_is_refused_with_the_expected_type():
    with pytest.raises(ConfigError, match=r"reflow.steps expects int \(default 100\), got 'abc' \(str\)"):
        config.compose("instaflow", "smoke", ["reflow.steps=abc"])
    with pytest.raises(ConfigError, match="expects float"):
        config.compose("instaflow", "smoke", ["reflow.lr=fast"])
    with pytest.raises(ConfigError, match="expects list"):
        config.compose("instaflow", "smoke", ["seeds=3"])


def test_int_widens_to_float_and_override_applies():
    cfg = config.compose("instaflow", "smoke", ["reflow.lr=1", "reflow.steps=7"])
    assert cfg.reflow.lr == 1 and cfg.reflow.steps == 7


@pytest.mark.parametrize("bad", ["+reflow.extra=1", "~reflow.lr", "reflow.steps", "paper=x"])
def test_only_plain_overrides(bad):
    with pytest.raises(ConfigError):
        config.compose("instaflow", "smoke", [bad])


def test_phase_view_hides_sections_it_does_not_read():
    view = config.compose("instaflow", "smoke", phase="reflow")
    assert view.reflow.steps == 100 and view.phase == "reflow"
    with pytest.raises((ConfigAttributeError, ConfigKeyError)):
        _ = view.distill
    with pytest.raises(ConfigError, match="no phase 'nope'"):
        config.compose("instaflow", "smoke", phase="nope")


def test_config_is_read_only():
    cfg = config.compose("instaflow", "smoke")
    with pytest.raises(ReadonlyConfigError):
        cfg.reflow.steps = 3


def test_trigger_changes_only_for_phases_that_read_the_changed_section():
    before = {p: config.trigger("instaflow", "smoke", [], p) for p in config.compose("instaflow", "smoke").reads}
    after = {p: config.trigger("instaflow", "smoke", ["distill.lr=0.001"], p) for p in before}
    changed = {p for p in before if before[p] != after[p]}
    assert changed == {"distill", "evaluate"}


def test_trigger_ignores_operational_keys():
    a = config.trigger("instaflow", "smoke", [], "teacher")
    b = config.trigger("instaflow", "smoke", ["threads=3", "progress.every_s=1", "seed=4"], "teacher")
    assert a == b


def test_config_hash_is_stable_and_sensitive():
    a = config.config_hash(config.compose("instaflow", "smoke"))
    assert a == config.config_hash(config.compose("instaflow", "smoke"))
    assert a != config.config_hash(config.compose("instaflow", "smoke", ["teacher.lr=0.01"]))


def test_step_cli_prints_one_line_and_exits_2_before_work(tmp_path):
    res = subprocess.run(
        [sys.executable, "-m", "steps.instaflow.teacher", "scale=smoke", "teacher.stepz=1", f"io.out={tmp_path}/x.pt"],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert res.returncode == 2
    err = [line for line in res.stderr.splitlines() if line.strip()]
    assert err == [err[0]] and err[0].startswith("error: unknown key 'teacher.stepz'")
    assert not (tmp_path / "x.pt").exists()


def test_compose_cache_sees_edits(tmp_path, monkeypatch):
    """The on-disk composition cache is keyed on the params files: an edit recomposes."""
    import shutil

    shutil.copytree(ROOT / "params", tmp_path / "params")
    monkeypatch.setenv("PAPERZOO_ROOT", str(tmp_path))
    config.clear_cache()
    try:
        assert config.compose("instaflow", "smoke").teacher.steps == 100
        f = tmp_path / "params" / "instaflow" / "smoke.yaml"
        f.write_text(f.read_text().replace("teacher:\n  steps: 100", "teacher:\n  steps: 123"))
        config.clear_cache()
        assert config.compose("instaflow", "smoke").teacher.steps == 123
    finally:
        config.clear_cache()


def _leaves(tree, prefix=""):
    for k, v in (tree or {}).items():
        if isinstance(v, dict):
            yield from _leaves(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}", v


@pytest.mark.parametrize("paper", PAPERS)
@pytest.mark.parametrize("scale", config.SCALES)
def test_scale_files_take_effect(paper, scale):
    """params/scale/<scale>.yaml overrides params/config.yaml (its defaults list puts _self_
    first) and a paper's own files override both: a smoke run checkpoints every 50 steps."""
    scale_file = yaml.safe_load((ROOT / "params" / "scale" / f"{scale}.yaml").read_text())
    own = {}
    for name in ("base", scale):
        f = ROOT / "params" / paper / f"{name}.yaml"
        own.update(dict(_leaves(yaml.safe_load(f.read_text()) if f.exists() else {})))
    cfg = config.resolve(paper, scale)
    for key, value in _leaves(scale_file):
        node = cfg
        for part in key.split("."):
            node = node[part]
        assert node == own.get(key, value), f"{key} at {scale}: {node} (scale file says {value})"


def test_smoke_checkpoints_more_often_than_mini():
    smoke, mini = config.resolve("instaflow", "smoke"), config.resolve("instaflow", "mini")
    assert smoke["ckpt"]["every_steps"] == 50 and mini["ckpt"]["every_steps"] == 500
    assert smoke["progress"]["every_s"] == 5.0 and mini["progress"]["every_s"] == 15.0
