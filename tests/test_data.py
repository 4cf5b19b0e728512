"""Shared data: the digits loader agrees with scikit-learn, captions are assigned honestly."""

from __future__ import annotations

import numpy as np
import pytest
from omegaconf import OmegaConf

from steps.core.config import compose
from steps.data import digit_captions, digits


def test_raw_digits_equal_sklearn_load_digits():
    from sklearn.datasets import load_digits

    x, y = digits.raw()
    d = load_digits()
    assert np.array_equal(x, d.data) and np.array_equal(y, d.target)


def test_load_scales_to_minus_one_one_and_subsets_are_stratified():
    x, y = digits.load()
    assert x.shape == (1797, 64) and x.min() == -1.0 and x.max() == 1.0
    xs, ys = digits.load(200, seed=3)
    counts = np.bincount(ys, minlength=10)
    assert len(ys) == 200 and counts.min() >= 19 and counts.max() <= 21
    assert np.array_equal(digits.load(200, seed=3)[1], ys)


@pytest.fixture(scope="module")
def table():
    return digit_captions.caption_table(compose("instaflow", "mini").captions)


def test_caption_table_has_about_forty_distinct_captions(table):
    assert len(table) == 40 and set(table.kind) == {"exact", "partial", "vague"}
    assert table.text.is_unique


def test_every_assigned_caption_is_true_of_its_digit_and_mix_is_respected(table):
    _, y = digits.load()
    cfg = compose("instaflow", "mini").captions
    cap = digit_captions.assign(y, table, cfg.mix, seed=0)
    assert digit_captions.consistent(y, cap, table).all()
    share = table.set_index("id").kind.loc[cap].value_counts(normalize=True)
    assert share["vague"] == pytest.approx(0.25, abs=0.04)
    assert share["exact"] == pytest.approx(0.45, abs=0.05)


def test_assign_renormalises_when_a_kind_has_no_caption_for_a_digit():
    cfg = OmegaConf.create({"exact": ["the digit {name}"], "partial": [{"text": "an odd digit", "digits": [1, 3]}], "vague": ["a digit"]})
    t = digit_captions.caption_table(cfg)
    y = np.zeros(100, dtype=np.int64)  # zero: no partial caption is true of it
    cap = digit_captions.assign(y, t, {"exact": 0.1, "partial": 0.8, "vague": 0.1}, seed=0)
    assert digit_captions.consistent(y, cap, t).all()
    assert set(t.set_index("id").kind.loc[cap]) <= {"exact", "vague"}
