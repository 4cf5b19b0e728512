"""Phase `generate` (full scale): sample every ARAD ratio bucket with SD 2.1 as released (arm
sd21) or with the ARAD-tuned UNet (arm arad, io.unet): diffusers' DDIMScheduler from the model's
scheduler config (ε or v prediction), generate.steps steps, classifier-free guidance
ε∅ + w·(ε_c − ε∅) with the empty prompt as ∅. Captions are the held-out evaluation pairs
(steps.asd.full.data.split); image i of ratio H×W starts from the noise of (generate.seed,
H×W, i), the same for both arms. Writes out/<H>x<W>/<i>.png and out/manifest.json; a killed run
resumes: images already written are kept.

    python -m steps.asd.full.generate scale=full io.sd=data/asd/sd21 io.laion=data/asd/laion_coco \
        [io.unet=models/asd/arad_unet.pt] io.out=data/asd/generated_arad
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from omegaconf import DictConfig

from steps.asd.full import data
from steps.core import runtime
from steps.core.cli import need_io, run
from steps.core.io import write_json
from steps.core.progress import Progress
from steps.instaflow.sd import models
from steps.instaflow.sd.data import noise
from steps.instaflow.sd.train import autocast


@torch.no_grad()
def ddim(unet, scheduler_config: dict, z: torch.Tensor, c: torch.Tensor, null: torch.Tensor, steps: int,
         guidance: float) -> torch.Tensor:
    """SD's sampler: DDIM over `steps` timesteps with classifier-free guidance."""
    from diffusers import DDIMScheduler

    sched = DDIMScheduler.from_config(scheduler_config)
    sched.set_timesteps(int(steps), device=z.device)
    x = z * sched.init_noise_sigma
    both = torch.cat([null.expand_as(c), c])
    for t in sched.timesteps:
        inp = sched.scale_model_input(torch.cat([x, x]), t)
        e_null, e_cond = unet(inp, t, encoder_hidden_states=both).sample.float().chunk(2)
        x = sched.step(e_null + guidance * (e_cond - e_null), t, x).prev_sample
    return x


def save_png(path: Path, img_u8: torch.Tensor) -> None:
    from PIL import Image

    tmp = path.with_suffix(".tmp.png")
    Image.fromarray(img_u8.permute(1, 2, 0).cpu().numpy()).save(tmp)
    os.replace(tmp, path)


def main(cfg: DictConfig) -> dict:
    sd_dir, laion, out = need_io(cfg, "sd", "laion", "out")
    unet_path = cfg.io.get("unet")
    g = cfg.full.generate
    rt = runtime.start(cfg, int(g.seed))
    dev = rt.device
    sd = models.load(sd_dir, dev, unet=unet_path is None)
    unet = (models.load_unet(unet_path, "ARAD UNet") if unet_path else sd.unet).to(dev)
    text = models.TextEncoder(sd.tokenizer, sd.text_encoder, dev)
    n = int(g.n_per_ratio)
    evals, _ = data.split(data.pairs(laion), n)
    captions = [cap for _, cap in evals]
    buckets = data.ratios(cfg)
    out = Path(out)
    manifest = {"arm": "arad" if unet_path else "sd21", "steps": int(g.steps), "guidance": float(g.guidance), "ratios": {}}
    bar = Progress(n * len(buckets), "generate", cfg.progress.every_s)
    for h, w in buckets:
        key = f"{h}x{w}"
        (out / key).mkdir(parents=True, exist_ok=True)
        files = [out / key / f"{i:06d}.png" for i in range(n)]
        todo = [i for i in range(n) if not files[i].exists()]
        bar.update(n - len(todo))
        for s in range(0, len(todo), int(g.batch)):
            idx = todo[s:s + int(g.batch)]
            z = noise(int(g.seed), idx, (4, h // 8, w // 8), f"asd_eval/{key}").to(dev)
            with autocast(dev):
                lat = ddim(unet, sd.scheduler_config, z, text([captions[i] for i in idx]), text.null, int(g.steps), float(g.guidance))
                imgs = models.to_uint8(models.decode(sd.vae, lat))
            for i, im in zip(idx, imgs, strict=True):
                save_png(files[i], im)
            bar.update(len(idx))
        manifest["ratios"][key] = [{"index": i, "caption": captions[i], "file": f"{key}/{files[i].name}"} for i in range(n)]
    bar.close()
    write_json(out / "manifest.json", manifest, artifact=True)  # atomic, with its provenance
    return {r: len(v) for r, v in manifest["ratios"].items()}


if __name__ == "__main__":
    run(main, "asd", "generate")
