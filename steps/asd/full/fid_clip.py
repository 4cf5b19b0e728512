"""Phase `fid_clip` (full scale): FID and CLIP score of every ratio bucket for both arms (SD 2.1
as released, ARAD), InstaFlow's full-scale scorers (steps.instaflow.sd.scores): FID of the
generated images against the held-out real images (both centre-cropped to eval.resolution²,
Inception-v3 features), CLIP score = mean cosine similarity of image and caption embeddings.

    python -m steps.asd.full.fid_clip scale=full io.laion=data/asd/laion_coco io.generated=data/asd \
        io.inception=data/asd/inception io.clip=data/asd/clip io.out=results/asd/fid_clip.json
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
from omegaconf import DictConfig

from steps.asd.full import data
from steps.core import metrics, runtime
from steps.core.cli import need_io, run
from steps.core.errors import ArtifactError
from steps.core.io import read_json
from steps.core.progress import log
from steps.instaflow.sd import scores

ARMS = ("sd21", "arad")


@torch.no_grad()
def main(cfg: DictConfig) -> dict:
    laion, generated, out, clip_dir = need_io(cfg, "laion", "generated", "out", "clip")
    t0 = time.monotonic()
    rt = runtime.start(cfg, 0)
    dev, ev = rt.device, cfg.full.eval
    res, bs = int(ev.resolution), int(ev.batch)
    n = int(cfg.full.generate.n_per_ratio)
    evals, _ = data.split(data.pairs(laion), n)
    weights = Path(cfg.io.get("inception") or ".") / str(ev.inception_file)
    fid = scores.fid_metric(str(ev.fid_features), weights if ev.fid_features == "inception" else None, dev)
    chunks = [list(range(i, min(n, i + bs))) for i in range(0, n, bs)]
    for idx in chunks:
        fid.update(scores.load_images([evals[i][0] for i in idx], res).to(dev), real=True)
    clip = scores.ClipScore(clip_dir, dev)
    values: dict = {"fid": {}, "clip": {}}
    for arm in ARMS:
        folder = Path(generated) / f"generated_{arm}"
        man = folder / "manifest.json"
        if not man.is_file():
            raise ArtifactError(f"{man} is missing; rerun asd_generate for arm {arm}")
        manifest = read_json(man, "samples manifest")
        for key, rows in manifest["ratios"].items():
            fid.reset()
            sims = []
            for idx in chunks:
                files = [folder / rows[i]["file"] for i in idx]
                fid.update(scores.load_images(files, res).to(dev), real=False)
                # CLIP sees the centre square at its own input size (ClipScore resizes to it)
                sims.append(clip.score(scores.load_images(files, clip.size), clip.text([rows[i]["caption"] for i in idx])))
            f, c = float(fid.compute()), float(torch.cat(sims).mean())
            values["fid"].setdefault(arm, {})[f"r{key}"] = metrics.summary([f])
            values["clip"].setdefault(arm, {})[f"r{key}"] = metrics.summary([c])
            log.info(f"{arm} {key}: FID {f:.2f}, CLIP {c:.4f}")
    metrics.write(out, cfg, "fid_clip",
                  f"FID ({ev.fid_features} features, centre crops at {res} px) vs {n} held-out LAION-COCO images, and "
                  f"CLIP score ({ev.clip_model}), per arm (sd21, arad) and ratio bucket r<H>x<W>",
                  values, time.monotonic() - t0, rt.description, extra={"n_per_ratio": n})
    return values


if __name__ == "__main__":
    run(main, "asd", "fid_clip")
