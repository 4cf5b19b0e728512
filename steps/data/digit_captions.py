"""Captions of mixed specificity for the digits, the text side of the miniature text-to-image
papers (instaflow, slimflow, ...): exact ("the digit seven"), partial ("an odd digit") and vague
("a handwritten digit"). Vague captions make one prompt stand for many images, the ambiguity
that makes a 1-rectified flow's noise-to-image coupling hard to distil (InstaFlow §3)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from steps.data.digits import DIGIT_NAMES

KINDS = ("exact", "partial", "vague")


def caption_table(cfg) -> pd.DataFrame:
    """One row per distinct caption: id, text, kind, and the digits it is true of (a 10-bit mask).

    `cfg` is the `captions:` section: exact (templates with {name}), partial (a list of
    {text, digits}), vague (texts).
    """
    rows = []
    for template in cfg.exact:
        for d, name in enumerate(DIGIT_NAMES):
            rows.append((template.format(name=name), "exact", 1 << d))
    for item in cfg.partial:
        rows.append((item.text, "partial", sum(1 << int(d) for d in item.digits)))
    for text in cfg.vague:
        rows.append((text, "vague", (1 << 10) - 1))
    df = pd.DataFrame(rows, columns=["text", "kind", "digit_mask"])
    if df.text.duplicated().any():
        raise ValueError(f"duplicate captions: {sorted(df.text[df.text.duplicated()])}")
    df.insert(0, "id", np.arange(len(df), dtype=np.int64))
    return df


def assign(labels: np.ndarray, table: pd.DataFrame, mix, seed: int) -> np.ndarray:
    """A caption id per image: a kind drawn with probabilities `mix` ({exact, partial, vague},
    renormalised over the kinds that have a caption true of the image's digit), then a caption of
    that kind uniformly among those true of the digit."""
    rng = np.random.default_rng(seed)
    p = np.array([float(mix[k]) for k in KINDS])
    ids, kind, mask = table.id.to_numpy(), table.kind.to_numpy(), table.digit_mask.to_numpy()
    candidates = {
        (d, k): ids[(kind == k) & (((mask >> d) & 1) == 1)] for d in range(10) for k in KINDS
    }
    out = np.empty(len(labels), dtype=np.int64)
    for i, y in enumerate(labels):
        avail = np.array([len(candidates[(int(y), k)]) > 0 for k in KINDS])
        q = p * avail
        k = KINDS[rng.choice(len(KINDS), p=q / q.sum())]
        ok = candidates[(int(y), k)]
        out[i] = ok[rng.integers(len(ok))]
    return out


def consistent(pred_labels: np.ndarray, caption_ids: np.ndarray, table: pd.DataFrame) -> np.ndarray:
    """Is each predicted digit one the caption is true of? (prompt accuracy)"""
    masks = table.set_index("id").digit_mask.loc[caption_ids].to_numpy()
    return ((masks >> pred_labels) & 1) == 1
