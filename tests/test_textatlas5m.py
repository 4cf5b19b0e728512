"""TextAtlas5M's mechanism: the official OCR metrics on hand-made cases (greedy fuzzy matching,
pooled accuracy/F1, CER by max length), TextAtlas-mini rendering (layout slots, determinism,
eval/train disjointness), the CTC decoder and the character-prompted flow model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from steps.nn.char_cross_dit import CharCrossDiT, encode_prompts
from steps.nn.crnn_ctc import CRNN, Charset
from steps.textatlas5m import ocr_metrics as om
from steps.textatlas5m import synth
from steps.textatlas5m.ocr_validate import degrade

DATA = OmegaConf.load("params/textatlas5m/base.yaml").data


def test_fuzzy_match_official_examples():
    # the spec's example: one letter dropped still matches (ratio 89 ≥ 80)
    assert om.match_words("hello world", "helo world") == (2, 2, 2)
    assert om.fuzzy_ratio("helo", "hello") == 89
    # lower-cased, whitespace split, one-to-one: a repeated prediction matches one GT word only
    assert om.match_words("Cat dog", "cat cat cat") == (1, 2, 3)
    # greedy in prediction order: the first close-enough unmatched GT word is taken
    assert om.match_words("abcd abce", "abce abcd") == (2, 2, 2)
    assert om.match_words("abc", "xyz") == (0, 1, 1)
    assert om.fuzzy_ratio("", "abc") == 0


def test_scores_pool_over_images_and_cer_by_max_length():
    s = om.score(["aa bb", "cc dd ee ff"], ["aa bb", ""])
    assert s["gt_words"] == 6 and s["correct_words"] == 2 and s["pred_words"] == 2
    assert s["word_acc"] == pytest.approx(2 / 6)           # pooled, not the mean of 1.0 and 0.0
    assert s["precision"] == 1.0 and s["f1"] == pytest.approx(2 * (1 / 3) / (1 + 1 / 3))
    assert om.cer("abcd", "abcdxyzw") == pytest.approx(4 / 8)  # distance / max(len gt, len ocr)
    assert om.cer("", "anything") == 0.0 and om.cer("abc", "") == 1.0
    assert s["cer"] == pytest.approx((0.0 + 1.0) / 2)
    blank = om.score(["aa bb"], [""])
    assert blank["f1"] == 0.0 and blank["word_acc"] == 0.0


def test_render_domains_slots_and_determinism():
    fonts = synth.font_paths(DATA.font_dirs, list(DATA.fonts))
    vocab = synth.vocabulary(50, 1)
    assert len(set(vocab)) == 50 and all(w.isalpha() and w.islower() for w in vocab)
    for dom in synth.DOMAINS:
        a = synth.make_set(dom, 3, vocab, fonts, DATA, np.random.default_rng(5))
        b = synth.make_set(dom, 3, vocab, fonts, DATA, np.random.default_rng(5))
        assert all(np.array_equal(x.image, y.image) for x, y in zip(a, b, strict=True))
        for s in a:
            assert s.image.shape == (DATA.height, DATA.width) and s.image.dtype == np.uint8
            assert len(s.slots) == len(s.lines) <= synth.MAX_LINES
            for y0, y1, x0, x1 in s.slots:
                assert 0 <= y0 < y1 <= DATA.height and 0 <= x0 < x1 <= DATA.width
            assert s.caption == f"a {s.scene} with the text : '{s.text}'"
    with pytest.raises(ValueError, match="unknown TextAtlas-mini domain"):
        synth.render("poster", ["abc"], np.random.default_rng(0), fonts, DATA)


def test_eval_texts_are_excluded_from_training():
    fonts = synth.font_paths(DATA.font_dirs, list(DATA.fonts))[:2]
    vocab = synth.vocabulary(4, 2)          # tiny vocabulary: collisions are certain without the exclusion
    ev = synth.make_set("short", 4, vocab, fonts, DATA, np.random.default_rng(0))
    tr = synth.make_set("short", 8, vocab, fonts, DATA, np.random.default_rng(1), exclude={s.text for s in ev})
    assert not {s.text for s in ev} & {s.text for s in tr}


def test_pack_and_line_crops():
    fonts = synth.font_paths(DATA.font_dirs, list(DATA.fonts))
    samples = synth.make_set("clean", 4, synth.vocabulary(30, 0), fonts, DATA, np.random.default_rng(2))
    arr = synth.pack(samples)
    crops, texts, where = synth.line_crops(arr["images"], arr["slots"], arr["lines"], 16, 128)
    assert crops.shape == (sum(len(s.lines) for s in samples), 16, 128) and 0 <= crops.min() <= crops.max() <= 1
    assert texts == [t for s in samples for t in s.lines] and where.shape == (len(texts), 2)
    d = degrade(arr["images"], 2, 0.1, 0)
    assert d.shape == arr["images"].shape and d.dtype == np.uint8 and not np.array_equal(d, arr["images"])


def test_font_missing_is_a_clear_error():
    with pytest.raises(FileNotFoundError, match="NoSuchFont.ttf"):
        synth.font_paths(DATA.font_dirs, ["NoSuchFont.ttf"])


def test_ctc_greedy_decode_merges_repeats_and_drops_blanks():
    cs = Charset("ab ")
    seq = [1, 1, 0, 1, 2, 2, 3, 0, 0]      # a a _ a b b ' ' _ _ → "aab"
    logp = torch.full((len(seq), 1, cs.n_classes), -10.0)
    for t, k in enumerate(seq):
        logp[t, 0, k] = 0.0
    assert cs.decode(logp) == ["aab"]
    ids, lens = cs.encode(["ab", "b a"])
    assert ids.tolist() == [1, 2, 2, 3, 1] and lens.tolist() == [2, 3]
    with pytest.raises(ValueError, match="charset"):
        cs.encode(["Z"])
    assert CRNN(cs.n_classes, (8, 8, 8, 8), 16)(torch.rand(2, 1, 16, 64)).shape == (32, 2, cs.n_classes)


def test_char_prompts_and_flow_model():
    cset = {c: i + 1 for i, c in enumerate("abc ")}
    p = encode_prompts([["ab c", "ca"]], cset, 6)
    assert p[0, :, 0].tolist() == [1, 2, 4, 3, 3, 1] and p[0, :, 1].tolist() == [0, 0, 0, 0, 1, 1]
    assert p[0, :, 2].tolist() == [0, 1, 2, 3, 0, 1]
    torch.manual_seed(0)
    m = CharCrossDiT(16, 32, len(cset), patch=8, dim=32, depth=1, heads=2, max_chars=6, text_layers=1)
    x, t = torch.randn(3, 1, 16, 32), torch.rand(3)
    out = m(x, t, torch.cat([p, p, torch.zeros_like(p)]))   # the null prompt (all pad) is valid
    assert out.shape == x.shape and torch.isfinite(out).all()


def test_cell_layout_spreads_characters_over_each_line_box():
    from steps.nn.char_layout_unet import cell_layout

    cset = {c: i + 1 for i, c in enumerate("abc ")}
    # line 1 "ab" in box y 2..12, x 4..30 (text x 6..27: 21 px, 2 cells); line 2 absent
    lay = cell_layout([["ab", ""]], np.array([[(2, 12, 4, 30), (-1, -1, -1, -1)]]), 32, 64, cset)
    assert lay.shape == (1, 4, 32, 64)
    ids = lay[0, 0]
    assert ids[3:11, 6:16].eq(1).all() and ids[3:11, 17:27].eq(2).all()   # 'a' then 'b', text rows 3..10
    assert ids[:3].eq(0).all() and ids[11:].eq(0).all() and ids[:, :6].eq(0).all() and ids[:, 27:].eq(0).all()
    u = lay[0, 1, 5, 6:27]
    assert u.min() >= 0 and u.max() < 1 and (u[:10].diff() > 0).all()      # position across the cell rises
    v = lay[0, 2, 3:11, 10]
    assert (v.diff() > 0).all() and 0 < v[0] < v[-1] < 1                    # position down the box rises
    assert torch.allclose(lay[0, 3][ids > 0], torch.tensor(8 / 32))        # box height / image height
    assert lay[0, 1:][:, ids == 0].eq(0).all()                              # nothing outside the boxes


def test_layout_unet_glyph_atlas_and_null_prompt():
    from steps.nn.char_layout_unet import CharLayoutUNet, cell_layout

    cset = {c: i + 1 for i, c in enumerate("abc ")}
    lay = cell_layout([["ab c"]], np.array([[(2, 14, 4, 60)]]), 16, 64, cset)
    m = CharLayoutUNet(len(cset), embed=4, c1=8, c2=8, emb=16, glyph=(2, 4, 3))
    with torch.no_grad():
        m.glyphs.zero_()
        m.glyphs[1, :, :, 0] = 1.0          # 'a': channel 0 is 1 everywhere in its cell
        m.glyphs[2, :, 2, 1] = 1.0          # 'b': channel 1 is 1 on its last column only
    ids = lay[:, 0].round().long()
    f = m.glyph_features(ids, lay[:, 1], lay[:, 2])
    assert f.shape == (1, 2, 16, 64)
    assert torch.allclose(f[0, 0][ids[0] == 1], torch.tensor(1.0)) and f[0, 0][ids[0] != 1].eq(0).all()
    b = f[0, 1][5][ids[0, 5] == 2]           # across 'b''s cell: 0, then a bilinear ramp towards 1
    assert b[0] == 0 and (b.diff() >= 0).all() and 0.5 < b[-1] <= 1
    x, t = torch.randn(2, 1, 16, 64), torch.rand(2)
    out = m(x, t, torch.cat([lay, torch.zeros_like(lay)]))   # the null prompt (all zeros) is valid
    assert out.shape == x.shape and torch.isfinite(out).all()


def test_generator_conditioning_for_either_model():
    from steps.core.config import compose
    from steps.textatlas5m import gen_train

    lines = np.array([["ab c", "ca"]])
    slots = np.array([[(1, 12, 2, 40), (14, 26, 2, 30)]], dtype=np.int16)
    for model in ("layout_unet", "cross_dit"):
        cfg = compose("textatlas5m", "smoke", [f"gen.model={model}"])
        c = gen_train.condition(cfg, lines, slots)
        net = gen_train.build(cfg)
        x = torch.randn(1, 1, int(cfg.data.height), int(cfg.data.width))
        assert net(x, torch.rand(1), c).shape == x.shape


def test_scores_over_seeds_mean_spread_and_range():
    from steps.textatlas5m.evaluate import over_seeds, score_domains

    texts = np.array(["aa bb", "cc dd ee", "ff"])
    doms = np.array(["clean", "styled", "short"])
    s0 = score_domains(texts, doms, ["aa bb", "cc", "ff"], 80)
    s1 = score_domains(texts, doms, ["aa", "", ""], 80)
    assert s0["dense"]["gt_words"] == 5 and s0["dense"]["correct_words"] == 3 and s0["short"]["f1"] == 1.0
    agg = over_seeds({"s0": s0, "s1": s1})
    f1 = [s0["dense"]["f1"], s1["dense"]["f1"]]
    assert agg["dense"]["f1"] == pytest.approx(np.mean(f1))
    assert agg["dense"]["f1_std"] == pytest.approx(np.std(f1, ddof=1))
    assert agg["dense"]["f1_min"] == min(f1) and agg["dense"]["f1_max"] == max(f1)
    assert agg["short"]["cer_max"] == 1.0 and over_seeds({"s0": s0})["dense"]["f1_std"] == 0.0
