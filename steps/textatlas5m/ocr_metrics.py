"""TextAtlasEval's OCR metrics, as the official evaluation code defines them
(github.com/CSU-JPG/TextAtlas, evaluation/cal_ocr.py and cal_ocr_cer.py):

- words: whitespace split of the lower-cased texts;
- a predicted word is correct when its fuzzywuzzy ratio to a not-yet-matched ground-truth word
  is ≥ 80, greedily, in order (one-to-one);
- word accuracy = recall = correct / ground-truth words, precision = correct / predicted words,
  F1 of the two — all pooled over the evaluation set (micro), not averaged per image;
- CER = Levenshtein(gt, ocr) / max(len(gt), len(ocr)) per image on the raw texts, averaged over
  images with non-empty ground truth.

fuzzywuzzy's ratio is round(100 · Indel similarity); rapidfuzz computes the same similarity
unrounded, so we round it as fuzzywuzzy does before comparing with the threshold.
"""

from __future__ import annotations

from collections.abc import Sequence


def fuzzy_ratio(a: str, b: str) -> int:
    """fuzzywuzzy.fuzz.ratio: round(100 · 2·matches / (len a + len b)), 0 when either is empty."""
    from rapidfuzz import fuzz

    if not a or not b:
        return 0
    return int(round(fuzz.ratio(a, b)))


def match_words(gt: str, pred: str, threshold: int = 80) -> tuple[int, int, int]:
    """(correct, ground-truth words, predicted words) for one image, the official greedy matcher."""
    gw, pw = gt.strip().lower().split(), pred.strip().lower().split()
    used: set[int] = set()
    correct = 0
    for p in pw:
        for i, g in enumerate(gw):
            if i not in used and fuzzy_ratio(p, g) >= threshold:
                correct += 1
                used.add(i)
                break
    return correct, len(gw), len(pw)


def cer(gt: str, pred: str) -> float:
    """Levenshtein distance / max(len gt, len pred); 0 for an empty ground truth (official)."""
    from rapidfuzz.distance import Levenshtein

    if not gt:
        return 0.0
    pred = pred or ""
    return Levenshtein.distance(gt, pred) / max(len(gt), len(pred))


def score(gts: Sequence[str], preds: Sequence[str], threshold: int = 80) -> dict:
    """Pooled word accuracy, precision, F1 (fractions in [0, 1], the paper prints ×100) and mean CER."""
    c = g = p = 0
    cers = []
    for gt, pr in zip(gts, preds, strict=True):
        ci, gi, pi = match_words(gt, pr, threshold)
        c, g, p = c + ci, g + gi, p + pi
        if gt:
            cers.append(cer(gt, pr))
    acc = c / g if g else 0.0
    prec = c / p if p else 0.0
    f1 = 2 * prec * acc / (prec + acc) if prec + acc > 0 else 0.0
    return {"word_acc": acc, "precision": prec, "f1": f1, "cer": sum(cers) / len(cers) if cers else 0.0,
            "n_images": len(gts), "gt_words": g, "pred_words": p, "correct_words": c}
