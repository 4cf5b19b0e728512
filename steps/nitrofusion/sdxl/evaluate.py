"""Phase `eval_fid_clip` (full, GPU): FID (Inception-v3 features, torchmetrics) and CLIP score of
every start's COCO-5k images (sample_coco5k) against the real COCO images and their captions,
both at fid_clip.resolution px — the paper's Table 1 quantities (FID and CLIP at 1–4 steps,
before and after NitroFusion). InstaFlow's full-scale metric code (steps.instaflow.sd.scores).

    python -m steps.nitrofusion.sdxl.evaluate scale=full io.samples=data/nitrofusion \
        io.prompts=data/nitrofusion/prompts_coco.parquet io.coco=data/nitrofusion/coco \
        io.inception=data/nitrofusion/inception io.clip=data/nitrofusion/clip io.results=results/nitrofusion

fid.json / clip.json values: {start: {base|nitro: {n<k>: summary}}}; sampling_time.json: ms per
image of each variant as sample_coco5k measured it.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
from omegaconf import DictConfig

from steps.core import metrics, runtime
from steps.core.cli import need_io, run
from steps.core.errors import ArtifactError, ConfigError
from steps.core.io import load_parquet, read_json, require
from steps.core.progress import log
from steps.instaflow.sd import scores

IO = ("samples", "prompts", "coco", "inception", "clip", "results")


@torch.no_grad()
def main(cfg: DictConfig) -> dict:
    paths = dict(zip(IO, need_io(cfg, *IO), strict=True))
    t0 = time.monotonic()
    rt = runtime.start(cfg, 0)
    dev, fc = rt.device, cfg.fid_clip
    res, n, batch = int(fc.resolution), int(cfg.sample.n), int(cfg.sample.batch)
    table = load_parquet(paths["prompts"], "COCO evaluation captions")
    if n > len(table):
        raise ConfigError(f"sample.n = {n} but {paths['prompts']} has {len(table)} captions")
    captions = table.caption.tolist()[:n]
    chunks = [list(range(i, min(n, i + batch))) for i in range(0, n, batch)]
    weights = Path(paths["inception"]) / str(fc.inception_file)
    fid = scores.fid_metric(str(fc.fid_features), weights if fc.fid_features == "inception" else None, dev)
    for idx in chunks:
        fid.update(scores.load_images([Path(paths["coco"]) / table.path[i] for i in idx], res).to(dev), real=True)
    clip = scores.ClipScore(paths["clip"], dev)
    text_emb = torch.cat([clip.text([captions[i] for i in idx]) for idx in chunks])

    fid_v: dict = {}
    clip_v: dict = {}
    timing: dict = {}
    for start in cfg.sample.shifted_timestep:
        folder = require(Path(paths["samples"]) / f"samples_{start}", f"samples of start {start}")
        manifest = read_json(folder / "manifest.json", "samples manifest")
        if int(manifest["n"]) < n:
            raise ArtifactError(f"{folder} holds {manifest['n']} images per variant, sample.n = {n}; rerun sample_coco5k")
        for name, info in manifest["variants"].items():
            fid.reset()
            sims = []
            for idx in chunks:
                img = scores.load_images([folder / name / f"{i:05d}.png" for i in idx], res).to(dev)
                fid.update(img, real=False)
                sims.append(clip.score(img, text_emb[idx]))
            f, c = float(fid.compute()), float(torch.cat(sims).mean())
            key = f"n{info['steps']}"
            fid_v.setdefault(start, {}).setdefault(info["variant"], {})[key] = metrics.summary([f])
            clip_v.setdefault(start, {}).setdefault(info["variant"], {})[key] = metrics.summary([c])
            if info.get("ms_per_image") is not None:
                timing.setdefault(start, {})[name] = metrics.summary([float(info["ms_per_image"])])
            log.info(f"{start}/{name}: FID {f:.2f}, CLIP {c:.4f}")
    results = Path(paths["results"])
    common = dict(wall_time_s=time.monotonic() - t0, device=rt.description)
    where = f"{n} MS COCO captions, one image each, scored at {res} px"
    fid_name = "FID (Inception-v3 features)" if fc.fid_features == "inception" else f"FID ({fc.fid_features} features)"
    metrics.write(results / "fid.json", cfg, "fid", f"{fid_name}: {where}, vs the {n} real images; base = the start, "
                  "nitro = after NitroFusion, n<k> = k refinement steps", fid_v,
                  extra={"n_gen": n, "feature_extractor": str(fc.fid_features), "starts": list(fid_v)}, **common)
    metrics.write(results / "clip.json", cfg, "clip", f"CLIP score (mean cosine, {fc.clip_model}): {where}", clip_v, **common)
    if timing:
        metrics.write(results / "sampling_time.json", cfg, "sampling_time",
                      "Milliseconds per image (text encoding, refinement steps, VAE decoding) as sample_coco5k measured them",
                      timing, **common)
    return fid_v


if __name__ == "__main__":
    run(main, "nitrofusion", "eval_fid_clip")
