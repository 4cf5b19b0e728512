"""Phase `sample_coco5k` (full, GPU): COCO-5k images of one start (sample.start) before
(`base`: the DMD2 / Hyper-SD UNet itself) and after NitroFusion (`nitro`: train_nitro's UNet),
each at every sample.steps count by bottom-up refinement with the same weights
(steps.nitrofusion.sdxl.sampling: the README's LCM sampling with trailing noise levels, the UNet
fed the start's shifted timestep). Every variant sees the same noises, captions and re-noise draws.

    python -m steps.nitrofusion.sdxl.sample scale=full sample.start=dmd2 io.sdxl=data/nitrofusion/sdxl \
        io.start=data/nitrofusion/dmd2 io.tuned=models/nitrofusion/nitro_dmd2.pt \
        io.prompts=data/nitrofusion/prompts_coco.parquet io.out=data/nitrofusion/samples_dmd2

Writes <out>/<variant>_n<k>/<i:05d>.png and <out>/manifest.json (variants, captions used,
timesteps, milliseconds per image). A killed job resumes: batches whose images exist are skipped.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
from omegaconf import DictConfig

from steps.core import runtime, seeding
from steps.core.cli import need_io, run
from steps.core.errors import ConfigError
from steps.core.io import load_parquet, write_json
from steps.core.progress import Progress, log
from steps.instaflow.sd import data
from steps.instaflow.sd.train import autocast
from steps.nitrofusion.sdxl import models, sampling


def save_png(path: Path, img_u8: torch.Tensor) -> None:
    from PIL import Image

    tmp = path.with_name(path.name + ".tmp.png")
    Image.fromarray(img_u8.permute(1, 2, 0).cpu().numpy()).save(tmp)
    tmp.replace(path)


@torch.no_grad()
def main(cfg: DictConfig) -> dict:
    sdxl_dir, start_dir, tuned, prompts_path, out = need_io(cfg, "sdxl", "start", "tuned", "prompts", "out")
    s = cfg.sample
    start = str(s.start)
    if start not in s.shifted_timestep:
        raise ConfigError(f"sample.start = {start!r} has no sample.shifted_timestep; known: {', '.join(s.shifted_timestep)}")
    seed, shifted = int(s.get("seed", 0)), int(s.shifted_timestep[start])
    rt = runtime.start(cfg, seed)
    dev = rt.device
    table = load_parquet(prompts_path, "COCO evaluation captions")
    n, batch = int(s.n), int(s.batch)
    if n > len(table):
        raise ConfigError(f"sample.n = {n} but {prompts_path} has {len(table)} captions")
    captions = table.caption.tolist()[:n]
    sd = models.load(sdxl_dir, dev, unet=False)
    text = models.TextXL(sd.tokenizers, sd.text_encoders, int(s.resolution), dev)
    ac = models.alphas_cumprod(sd.scheduler_config).to(dev)
    shape = data.latent_shape(int(s.resolution))
    chunks = [list(range(i, min(n, i + batch))) for i in range(0, n, batch)]
    out = Path(out)
    loaders = {"base": lambda: models.load_start(start_dir, sdxl_dir), "nitro": lambda: models.load_unet(tuned, "NitroFusion UNet")}
    manifest = {"start": start, "n": n, "resolution": int(s.resolution), "variants": {}}
    bar = Progress(len(loaders) * len(s.steps) * n, f"sample {start}", cfg.progress.every_s)
    for variant, loader in loaders.items():
        unet = loader().to(dev).eval()
        for k in s.steps:
            steps = sampling.schedule(sd.scheduler_config, int(k))
            name = f"{variant}_n{k}"
            folder = out / name
            folder.mkdir(parents=True, exist_ok=True)
            t0, made = time.perf_counter(), 0
            for b, idx in enumerate(chunks):
                paths = [folder / f"{i:05d}.png" for i in idx]
                if all(p.exists() for p in paths):
                    bar.update(len(idx))
                    continue
                z = data.noise(seed, idx, shape, "eval_noise").to(dev)
                g = seeding.step_generator(seed, f"refine/n{k}", b)
                with autocast(dev):
                    lat = sampling.refine(unet, ac, z, text([captions[i] for i in idx]), steps, shifted, g)
                    img = models.to_uint8(models.decode(sd.vae, lat))
                for p, im in zip(paths, img, strict=True):
                    save_png(p, im)
                made += len(idx)
                bar.update(len(idx))
            ms = 1000.0 * (time.perf_counter() - t0) / made if made else None
            manifest["variants"][name] = {"variant": variant, "steps": int(k), "timesteps": steps,
                                          "unet_timesteps": [sampling.shift(t, shifted) for t in steps], "ms_per_image": ms}
            log.info(f"{start}/{name}: {n} images, timesteps {steps}" + (f", {ms:.1f} ms/image" if ms else " (resumed)"))
        del unet
    bar.close()
    write_json(out / "manifest.json", manifest, artifact=True)  # atomic, with its provenance
    return {"variants": len(manifest["variants"])}


if __name__ == "__main__":
    run(main, "nitrofusion", "sample_coco5k")
