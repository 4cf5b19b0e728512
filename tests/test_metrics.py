"""steps.core.metrics: records follow workflow/schemas/metrics.schema.json."""

from __future__ import annotations

import json
import math

import pytest

from steps.core import metrics
from steps.core.config import compose
from steps.core.errors import PaperzooError


@pytest.fixture()
def cfg():
    return compose("instaflow", "smoke", phase="evaluate")


def test_write_then_read(tmp_path, cfg):
    rec = metrics.write(tmp_path / "fid.json", cfg, "fid", "FID of something", {"a": {"mean": 1.0, "std": 0.0, "per_seed": [1.0]}}, 1.5, "cpu")
    back = metrics.read(tmp_path / "fid.json")
    assert back == rec
    for key in ("paper", "scale", "metric", "values", "seeds", "config_hash", "git_revision", "wall_time_s", "device"):
        assert key in back
    assert back["scale"] == "smoke" and back["seeds"] == [0]


def test_nan_becomes_null_and_numpy_scalars_are_plain(tmp_path, cfg):
    import numpy as np

    metrics.write(tmp_path / "m.json", cfg, "m", "d", {"x": float("nan"), "y": np.float32(2.5), "z": np.int64(3)}, 0, "cpu")
    v = json.loads((tmp_path / "m.json").read_text())["values"]
    assert v == {"x": None, "y": 2.5, "z": 3}


@pytest.mark.parametrize(
    "values", [{"bad key": 1.0}, {"1rf": 1.0}, {"a": "text"}, {}, {"a": {"b": [1, "x"]}}]
)
def test_schema_refuses_bad_values(tmp_path, cfg, values):
    with pytest.raises(PaperzooError, match="metrics record invalid"):
        metrics.write(tmp_path / "m.json", cfg, "m", "d", values, 0, "cpu")
    assert not (tmp_path / "m.json").exists()


def test_read_refuses_a_record_missing_fields(tmp_path):
    (tmp_path / "m.json").write_text(json.dumps({"paper": "instaflow"}))
    with pytest.raises(PaperzooError, match="required"):
        metrics.read(tmp_path / "m.json")


def test_summary():
    s = metrics.summary([1.0, 3.0])
    assert s["mean"] == 2.0 and math.isclose(s["std"], 1.0) and s["per_seed"] == [1.0, 3.0]
