"""Phase `upscale_full` (full scale): Fast Seamless Tiled Diffusion (ASD §3.2) with a
StableSR-like super-resolution latent diffusion model, on images of full.upscale.sizes.

The SR model is a diffusers folder (unet/, vae/, scheduler/; text_encoder/ + tokenizer/
optional, else a zero text condition): its UNet takes the noisy latent concatenated on channels
with the latent of the low-resolution image (bicubically enlarged to the output size), and
predicts ε or v as its scheduler config says. HR reference = an ARAD image resized to the size;
LR = HR / upscale.factor (bicubic), enlarged back. The scheduler (DDPM, upscale.steps steps,
StableSR's sampler) runs on the whole latent canvas while the UNet runs tile by tile, the tile
predictions merged by steps.nn.tiled_flow (Gaussian tile weights, uncovered pixels from the
previous step's prediction) with its tile origins per step (tiled_flow.step_origins):

* `non_overlap`: a fixed grid of upscale.tile latent px;
* `overlap`: tiles every upscale.stride latent px (explicit overlap);
* `fstd`: the non-overlapping grid shifted by a random offset in [0, max_offset) per step, reset
  every reset_every steps — as many UNet calls as `non_overlap`, seams averaged out.

Per size and mode: seam score (steps.asd.upscale.seam_ratio across the fixed grid's borders in
image px, over the HR reference's), PSNR vs the HR reference, UNet calls per image (counted on
the UNet by steps.nn.call_count; they follow from the tile grid, so they are declared
accounting), wall time, peak GPU memory. The same DDPM noise for every mode.

    python -m steps.asd.full.upscale_full scale=full io.stablesr=data/asd/stablesr \
        io.generated=data/asd/generated_arad io.out=results/asd/fstd_full.json
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from omegaconf import DictConfig

from steps.asd.common import psnr
from steps.asd.full.data import load_image
from steps.asd.upscale import seam_ratio
from steps.core import metrics, runtime, seeding
from steps.core.cli import need_io, run
from steps.core.errors import ArtifactError
from steps.core.progress import log
from steps.instaflow.sd import models
from steps.nn import tiled_flow
from steps.nn.call_count import CallCounter

MODES = ("non_overlap", "overlap", "fstd")
# UNet calls per image, per size (s<H>x<W>) and mode: fixed by the tile grid and the steps whatever
# the model does (shown under "Accounting", never a finding; steps.core.metrics.write).
ACCOUNTING = tuple(f"*.{mode}.calls" for mode in MODES)


def load_sr(folder, dev):
    """(unet, vae, scheduler config, text condition) of a diffusers-format SR folder."""
    from diffusers import AutoencoderKL, UNet2DConditionModel

    d = Path(folder)
    if not (d / "unet" / "config.json").is_file():
        raise ArtifactError(f"{d} has no diffusers UNet (unet/config.json): StableSR's LDM checkpoints must be converted to "
                            "diffusers format first (not done here); supply such a folder as full.assets.stablesr.local_dir")
    unet = UNet2DConditionModel.from_pretrained(d / "unet").to(dev).eval().requires_grad_(False)
    vae = AutoencoderKL.from_pretrained(d / "vae").to(dev).eval().requires_grad_(False)
    sched = json.loads((d / "scheduler" / "scheduler_config.json").read_text())
    if (d / "text_encoder").is_dir() and (d / "tokenizer").is_dir():
        from transformers import CLIPTextModel, CLIPTokenizer

        te = CLIPTextModel.from_pretrained(d / "text_encoder").to(dev).eval()
        cond = models.TextEncoder(CLIPTokenizer.from_pretrained(d / "tokenizer"), te, dev).null
    else:
        cond = torch.zeros(1, 1, int(unet.config.cross_attention_dim), device=dev)
    return unet, vae, sched, cond


@torch.no_grad()
def tiled_sample(unet, scheduler_config: dict, lr_latent: torch.Tensor, cond: torch.Tensor, mode: str, u,
                 seed: int) -> tuple[torch.Tensor, dict]:
    """The SR latent from noise: the scheduler on the whole canvas, the UNet tile by tile."""
    from diffusers import DDPMScheduler

    sched = DDPMScheduler.from_config(scheduler_config)
    sched.set_timesteps(int(u.steps), device=lr_latent.device)
    noise_g = seeding.step_generator(seed, "upscale_noise", 0)  # the same noise for every mode
    offsets_g = seeding.step_generator(seed, "fstd_offsets", 0)
    x = torch.randn(lr_latent.shape, generator=noise_g).to(lr_latent) * sched.init_noise_sigma
    tile = int(u.tile)
    weights = tiled_flow.gaussian_weights(tile) if str(u.weighting) == "gaussian" else None
    h, w = x.shape[-2:]
    calls, offsets, ref = 0, [], None
    for i, t in enumerate(sched.timesteps):
        ys, xs, off = tiled_flow.step_origins(mode, h, w, tile, i, int(u.stride), int(u.max_offset), int(u.reset_every), offsets_g)
        if off is not None:
            offsets.append(off)

        def model(xt, tt, ct, t=t):
            inp = torch.cat([sched.scale_model_input(xt, t), ct], dim=1)
            return unet(inp, t, encoder_hidden_states=cond.expand(xt.shape[0], -1, -1)).sample.float()

        pred, n = tiled_flow.tiled_velocity(model, x, t, lr_latent, tile, ys, xs, weights, ref)
        ref, calls = pred, calls + n
        x = sched.step(pred, t, x, generator=noise_g).prev_sample
    return x, {"calls": calls, "offsets": offsets}


def encode(vae, img: torch.Tensor) -> torch.Tensor:
    return vae.encode(img).latent_dist.mean * vae.config.scaling_factor


@torch.no_grad()
def main(cfg: DictConfig) -> dict:
    sr_dir, generated, out = need_io(cfg, "stablesr", "generated", "out")
    t0 = time.monotonic()
    u = cfg.full.upscale
    rt = runtime.start(cfg, int(u.seed))
    dev = rt.device
    unet, vae, sched_cfg, cond = load_sr(sr_dir, dev)
    if hasattr(vae, "enable_tiling"):
        vae.enable_tiling()  # 2K–8K decodes
    images = sorted(Path(generated).rglob("*.png"))[: int(u.n)]
    if not images:
        raise ArtifactError(f"no generated images under {generated}; rerun asd_generate")
    tile_px = int(u.tile) * 8
    values: dict = {}
    for h, w in ([int(a), int(b)] for a, b in u.sizes):
        key = f"s{h}x{w}"  # metric tree keys are identifiers
        hr = torch.stack([load_image(p, (h, w)) for p in images]).to(dev)
        lr = F.interpolate(F.interpolate(hr, scale_factor=1 / int(u.factor), mode="bicubic", antialias=True),
                           size=(h, w), mode="bicubic").clamp(-1, 1)
        lr_lat = torch.cat([encode(vae, lr[i:i + 1]) for i in range(len(lr))])
        hr_np = hr.cpu().numpy()
        gt = seam_ratio(hr_np, tile_px)
        row: dict = {"lr_bicubic": {"psnr": psnr(lr.cpu().numpy(), hr_np), "seam": seam_ratio(lr.cpu().numpy(), tile_px) / gt}}
        for mode in MODES:
            if dev.type == "cuda":
                torch.cuda.reset_peak_memory_stats(dev)
                torch.cuda.synchronize(dev)
            s = time.perf_counter()
            outs = []
            with CallCounter(unet) as counted:  # the UNet evaluations that ran
                for i in range(len(lr_lat)):
                    lat, _ = tiled_sample(unet, sched_cfg, lr_lat[i:i + 1], cond, mode, u, int(u.seed) + i)
                    outs.append(models.decode(vae, lat))
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            wall = time.perf_counter() - s
            x = torch.cat(outs).cpu().numpy()
            row[mode] = {"seam": seam_ratio(x, tile_px) / gt, "psnr": psnr(x, hr_np), "calls": counted.rows / len(images),
                         "wall_s": wall / len(images),
                         "peak_mem_gb": torch.cuda.max_memory_allocated(dev) / 2**30 if dev.type == "cuda" else None}
            log.info(f"{key} {mode}: seam {row[mode]['seam']:.3f}, PSNR {row[mode]['psnr']:.2f} dB, "
                     f"{row[mode]['calls']} UNet calls, {row[mode]['wall_s']:.2f} s/image")
        row["speedup_overlap_over_fstd"] = row["overlap"]["wall_s"] / max(row["fstd"]["wall_s"], 1e-12)
        values[key] = row
    metrics.write(out, cfg, "fstd_full",
                  f"StableSR-like latent SR, x{u.factor} from bicubic LR, tiled per mode: seam score, PSNR vs the HR "
                  "reference, UNet calls and wall time per image, peak GPU memory",
                  values, time.monotonic() - t0, rt.description, accounting=ACCOUNTING,
                  extra={"n_images": len(images), "tile": int(u.tile), "steps": int(u.steps)})
    return values


if __name__ == "__main__":
    run(main, "asd", "upscale_full")
