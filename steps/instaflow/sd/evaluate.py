"""Phase `evaluate` (full scale): FID and CLIP score on MS COCO 2017 (InstaFlow §4: 5,000 val
captions, one image each, 512 px), straightness of the 1- and 2-flow, time per image.

Variants (the same tree as the miniature's fid.json, so claims name the same paths):
* one_step.rf1 — SD 1.5 as a flow (steps.instaflow.sd.models.sd_velocity), one Euler step;
* one_step.rf2 — the 2-rectified flow, one Euler step (both with guidance eval.guidance);
* one_step.rf1_distill_<budget> — SD+Distill; one_step.instaflow_<budget> — 2-RF + distill
  (students: z + v(z, 0 | c), no guidance);
* multistep.rf1.n<N> — SD with its DPM-Solver, N steps, guidance eval.sd_guidance (the teacher
  as people sample it); multistep.rf2.n<N> — the 2-RF by N Euler steps (model card: N = 25).
FID per sampling seed against the real COCO images, then the mean over sampling seeds; every
variant sees the same noises and captions. Straightness (Liu et al. 2022 Eq. 5) for rf1 — SD's
probability-flow (DDIM) trajectory in rectified-flow time — and rf2, along their own Euler paths
with guidance eval.guidance, in latent space.

    python -m steps.instaflow.sd.evaluate scale=full io.sd=data/instaflow/sd15 \
        io.rf2=models/instaflow/rf2.pt io.student_rf2=models/instaflow/distill_rf2.pt \
        io.student_sd=models/instaflow/distill_sd.pt io.eval_prompts=data/instaflow/prompts_coco.parquet \
        io.coco=data/instaflow/coco io.inception=data/instaflow/inception io.clip=data/instaflow/clip \
        io.results=results/instaflow
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
from omegaconf import DictConfig

from steps.core import checkpoint, metrics, runtime
from steps.core.cli import need_io, run
from steps.core.errors import ConfigError
from steps.core.io import load_parquet
from steps.core.progress import Progress, log
from steps.instaflow.sd import data, models, sampling, scores
from steps.instaflow.sd.distill import ARMS, load_students
from steps.instaflow.sd.train import autocast
from steps.nn import rectified_flow as rf

IO = ("sd", "rf2", "student_rf2", "student_sd", "eval_prompts", "coco", "inception", "clip", "results")


def variants(cfg: DictConfig, sd: models.SD, paths: dict, null: torch.Tensor, dev) -> list:
    """[(group, flow, key, loader)]; loader() → sample(z, c) -> latents (built on demand, so
    one extra UNet at a time is on the device)."""
    ev = cfg.eval
    g, gsd = float(ev.guidance), float(ev.sd_guidance)
    sdv = models.sd_velocity(sd.unet, sd.scheduler_config)

    def rf2_euler(n: int):
        def loader():
            u = models.load_unet(paths["rf2"], "2-rectified flow").to(dev)
            return lambda z, c: sampling.euler(u, z, c, n, g, null)
        return loader

    def student(arm: str, budget: str):
        def loader():
            u = load_students(paths[f"student_{arm}"])[budget].to(dev)
            return lambda z, c: sampling.one_step(u, z, c)
        return loader

    def sd_dpm(n: int):
        return lambda: lambda z, c: sampling.dpm_solver(sd.unet, sd.scheduler_config, z, c, n, gsd, null,
                                                        str(cfg.pairs.dpm_algorithm))

    out = [("one_step", "rf1", None, lambda: lambda z, c: rf.euler(sdv, z, c, 1, g, null)),
           ("one_step", "rf2", None, rf2_euler(1))]
    out += [("one_step", f"{prefix}_{budget}", None, student(arm, str(budget)))
            for arm, prefix in ARMS.items() for budget in cfg.distill.budgets]
    for n in ev.multistep:
        out += [("multistep", "rf1", f"n{n}", sd_dpm(int(n))), ("multistep", "rf2", f"n{n}", rf2_euler(int(n)))]
    return out


@torch.no_grad()
def main(cfg: DictConfig) -> dict:
    paths = dict(zip(IO, need_io(cfg, *IO), strict=True))
    if len(cfg.seeds) != 1:
        raise ConfigError(f"the full-scale DAG trains one seed; seeds = {list(cfg.seeds)}")
    t0 = time.monotonic()
    rt = runtime.start(cfg, 0)
    dev, ev = rt.device, cfg.eval
    sd = models.load(paths["sd"], dev)
    text = models.TextEncoder(sd.tokenizer, sd.text_encoder, dev)
    table = load_parquet(paths["eval_prompts"], "COCO evaluation captions")
    n, batch = int(ev.n_gen), int(ev.batch)
    if n > len(table):
        raise ConfigError(f"eval.n_gen = {n} but {paths['eval_prompts']} has {len(table)} captions")
    captions = table.caption.tolist()[:n]
    shape = data.latent_shape(int(cfg.pairs.resolution))
    chunks = [list(range(i, min(n, i + batch))) for i in range(0, n, batch)]

    weights = Path(paths["inception"]) / str(ev.inception_file)
    fid = scores.fid_metric(str(ev.fid_features), weights if ev.fid_features == "inception" else None, dev)
    for idx in chunks:
        fid.update(scores.load_images([Path(paths["coco"]) / table.path[i] for i in idx], int(cfg.pairs.resolution)).to(dev), real=True)
    clip = scores.ClipScore(paths["clip"], dev)
    text_emb = torch.cat([clip.text([captions[i] for i in idx]) for idx in chunks])

    fid_v: dict = {"one_step": {}, "multistep": {}, "steps": {}}
    clip_v: dict = {"one_step": {}, "multistep": {}}
    timing: dict = {}
    todo = variants(cfg, sd, paths, text.null, dev)
    bar = Progress(len(todo) * len(ev.sampling_seeds) * n, "evaluate", cfg.progress.every_s)
    for group, flow, key, loader in todo:
        sample = loader()
        fids, clips = [], []
        for seed in ev.sampling_seeds:
            fid.reset()
            sims = []
            for idx in chunks:
                z = data.noise(int(seed), idx, shape, "eval_noise").to(dev)
                with autocast(dev):
                    img = models.to_uint8(models.decode(sd.vae, sample(z, text([captions[i] for i in idx]))))
                fid.update(img, real=False)
                sims.append(clip.score(img, text_emb[idx]))
                bar.update(len(idx))
            fids.append(float(fid.compute()))
            clips.append(float(torch.cat(sims).mean()))
        name = flow if key is None else f"{flow}_{key}"
        for tree, val in ((fid_v, sum(fids) / len(fids)), (clip_v, sum(clips) / len(clips))):
            node = tree[group] if key is None else tree[group].setdefault(flow, {})
            node[key or flow] = metrics.summary([val])
        fid_v["steps"][name] = 1 if key is None else int(key[1:])
        timing[name] = ms_per_image(sample, text, sd.vae, captions, shape, int(ev.timing_n), int(ev.timing_batch), dev)
        log.info(f"{name}: FID {sum(fids) / len(fids):.2f}, CLIP {sum(clips) / len(clips):.4f}, {timing[name]:.1f} ms/image")
        del sample
    bar.close()

    straight = {}
    m = min(int(ev.straightness_n), n)
    for flow, loader in (("rf1", lambda: models.sd_velocity(sd.unet, sd.scheduler_config)),
                         ("rf2", lambda: models.velocity(models.load_unet(paths["rf2"]).to(dev)))):
        v, vals = loader(), []
        for idx in [list(range(i, min(m, i + batch))) for i in range(0, m, batch)]:
            z = data.noise(int(ev.sampling_seeds[0]), idx, shape, "eval_noise").to(dev)
            with autocast(dev):
                    vals.append(rf.straightness(v, z, text([captions[i] for i in idx]), int(ev.straightness_steps),
                                            float(ev.guidance), text.null).float())
        straight[flow] = metrics.summary([float(torch.cat(vals).mean())])

    results = Path(paths["results"])
    common = dict(wall_time_s=time.monotonic() - t0, device=rt.description)
    fid_name = "FID (Inception-v3 features)" if ev.fid_features == "inception" else f"FID ({ev.fid_features} features)"
    where = f"{n} MS COCO 2017 val captions, one image each at {cfg.pairs.resolution} px, sampling seeds {list(ev.sampling_seeds)}"
    metrics.write(results / "fid.json", cfg, "fid", f"{fid_name}: {where}, vs the {n} real images", fid_v,
                  extra={"n_gen": n, "feature_extractor": str(ev.fid_features),
                         "training": {job: checkpoint.training_summary(checkpoint.training_record(paths[key]))
                                      for job, key in (("reflow", "rf2"), ("distill_rf2", "student_rf2"),
                                                       ("distill_sd", "student_sd"))}}, **common)
    metrics.write(results / "clip.json", cfg, "clip", f"CLIP score (mean cosine, {ev.clip_model}): {where}", clip_v, **common)
    metrics.write(results / "straightness.json", cfg, "straightness",
                  f"S = ∫‖(Z1 − Z0) − v(Z_t, t)‖² dt per latent dimension along {ev.straightness_steps}-step Euler paths, "
                  f"guidance {ev.guidance}, {m} captions; rf1 = SD 1.5's probability-flow (DDIM) ODE in rectified-flow time",
                  straight, **common)
    metrics.write(results / "sampling_time.json", cfg, "sampling_time",
                  f"Milliseconds per image (text encoding, sampling, VAE decoding) on {rt.description}, batch {ev.timing_batch}",
                  timing, **common)
    return fid_v


def ms_per_image(sample, text, vae, captions, shape, n: int, batch: int, dev) -> float:
    """Wall time per image of the whole generation, after one warm-up batch."""
    def once(idx):
        z = data.noise(0, idx, shape, "timing").to(dev)
        with autocast(dev):
            models.decode(vae, sample(z, text([captions[i % len(captions)] for i in idx])))

    once(list(range(batch)))
    _sync(dev)
    t = time.perf_counter()
    for i in range(0, n, batch):
        once(list(range(i, min(n, i + batch))))
    _sync(dev)
    return 1000.0 * (time.perf_counter() - t) / n


def _sync(dev) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize()


if __name__ == "__main__":
    run(main, "instaflow", "evaluate")
