"""Phase `gen_data`: AnySize-Digits scenes per canvas bucket (stage 1, ARAD) and the
high-resolution glyph scenes with their 2× box-downsampled low-resolution versions (stage 2,
FSTD). Seeded; no network (digits from scikit-learn, fonts from matplotlib).

    python -m steps.asd.gen_data scale=mini io.buckets=data/asd/buckets.npz io.sr=data/asd/sr_pairs.npz
"""

from __future__ import annotations

import numpy as np
from omegaconf import DictConfig

from steps.asd import scenes
from steps.core.cli import need_io, run
from steps.core.io import save_npz
from steps.core.progress import log
from steps.data.digits import raw


def main(cfg: DictConfig) -> dict:
    buckets_out, sr_out = need_io(cfg, "buckets", "sr")
    data, labels = raw()
    d01 = (data / 16.0).reshape(-1, 8, 8).astype(np.float32)
    rng = np.random.default_rng(int(cfg.data.seed))
    arrays, names = {}, []
    for h, w in cfg.data.buckets:
        name = scenes.bucket_name(int(h), int(w))
        x, y = scenes.make_bucket(d01, labels, int(h), int(w), int(cfg.data.n_per_bucket), cfg.scenes, rng)
        arrays[f"x_{name}"], arrays[f"y_{name}"] = x, y
        names.append(name)
    digest = save_npz(buckets_out, bucket_names=np.array(names), **arrays)
    log.info(f"{len(names)} buckets × {cfg.data.n_per_bucket} scenes → {buckets_out} ({digest[:12]})")

    hr_rng = np.random.default_rng(int(cfg.hr.seed))
    f = int(cfg.hr.factor)
    sr = {}
    for h, w in cfg.data.buckets:
        name = scenes.bucket_name(int(h), int(w))
        sr[f"hr_{name}"], _ = scenes.make_hr(int(h), int(w), int(cfg.hr.n_train_per_bucket), cfg.scenes, cfg.hr, hr_rng)
    th, tw = (int(v) for v in cfg.hr.test_bucket)
    hr_test, y_test = scenes.make_hr(th, tw, int(cfg.hr.n_test), cfg.scenes, cfg.hr, hr_rng)
    digest = save_npz(sr_out, bucket_names=np.array(names), hr_test=hr_test, lr_test=scenes.downsample(hr_test, f),
                      y_test=y_test, factor=np.array(f), **sr)
    log.info(f"SR scenes: {len(names)} × {cfg.hr.n_train_per_bucket} training canvases, {len(y_test)} test canvases "
             f"{hr_test.shape[-2]}×{hr_test.shape[-1]} → {sr_out} ({digest[:12]})")
    return {"buckets": names}


if __name__ == "__main__":
    run(main, "asd", "gen_data")
