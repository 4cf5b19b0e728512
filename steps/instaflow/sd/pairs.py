"""Phase `pairs` (full scale): one shard of coupled pairs (z_i, x1_i, prompt i) from a teacher
(InstaFlow §3.2, Eq. 6's data): the teacher's ODE run from noise z_i conditioned on prompt i with
classifier-free guidance.

* pairs.teacher = sd:  SD 1.5 with a DPM-Solver (pairs.ode_steps steps, guidance pairs.guidance)
  — the pairs of text-conditioned reflow, and of the SD+Distill baseline;
* pairs.teacher = rf2: the 2-rectified flow by Euler (pairs.rf2.ode_steps, guidance
  pairs.rf2.guidance = 1.5, the model card's teacher guidance) — the pairs of InstaFlow's
  distillation. Same prompts and noises as the SD pairs (steps.instaflow.sd.data).

    python -m steps.instaflow.sd.pairs scale=full pairs.teacher=sd pairs.shard=0 \
        io.sd=data/instaflow/sd15 io.prompts=data/instaflow/prompts_train.parquet \
        io.out=data/instaflow/pairs_sd/shard0000.npz        [io.rf2=models/instaflow/rf2.pt]

Shards are independent jobs (pairs.shards of them). A killed shard resumes from
<out>.resume.npz, written every ckpt.every_s seconds.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig

from steps.core import checkpoint, runtime
from steps.core.cli import need_io, run
from steps.core.errors import ArtifactError, ConfigError
from steps.core.io import load_npz, save_npz
from steps.core.progress import Progress, log
from steps.instaflow.sd import data, models, sampling
from steps.instaflow.sd.train import autocast

TEACHERS = ("sd", "rf2")


def shard_path(folder, shard: int) -> Path:
    """The file of one shard; the rules and the training phases use the same name."""
    return Path(folder) / f"shard{shard:04d}.npz"


def teacher_fn(cfg: DictConfig, sd: models.SD, device, unet: torch.nn.Module | None = None):
    """x1 = teacher(z, c, null) for pairs.teacher. `unet` replaces the teacher's own UNet (SD's,
    or the 2-RF's from io.rf2), e.g. a randomly initialised one to time sampling."""
    p = cfg.pairs
    if p.teacher == "sd":
        net = (sd.unet if unet is None else unet).to(device)
        return lambda z, c, null: sampling.dpm_solver(net, sd.scheduler_config, z, c, int(p.ode_steps),
                                                      float(p.guidance), null, str(p.dpm_algorithm))
    if p.teacher == "rf2":
        if unet is None:
            (rf2_path,) = need_io(cfg, "rf2")
            unet = models.load_unet(rf2_path, "2-rectified flow")
        net = unet.to(device)
        return lambda z, c, null: sampling.euler(net, z, c, int(p.rf2.ode_steps), float(p.rf2.guidance), null)
    raise ConfigError(f"pairs.teacher must be one of {', '.join(TEACHERS)}, got {p.teacher!r}")


def sampler(cfg: DictConfig, teacher, text: models.TextEncoder, prompts: data.Prompts, device) -> Callable[[list[int]], torch.Tensor]:
    """sample(indices) → the teacher's latents x1 for pairs `indices`: their noises z_i, their
    prompts, without gradients, in the precision training uses (bf16 autocast on GPUs that have it)."""
    p = cfg.pairs
    shape = data.latent_shape(int(p.resolution))

    def sample(idx: list[int]) -> torch.Tensor:
        z = data.noise(int(p.seed), idx, shape).to(device)
        with torch.no_grad(), autocast(device):
            return teacher(z, text(prompts(idx)), text.null)

    return sample


def write_shard(cfg: DictConfig, out, start: int, stop: int, shape: tuple, batch: int,
                sample: Callable[[list[int]], torch.Tensor], desc: str, what: str) -> None:
    """Samples [start, stop) of a shard, `sample(indices)` → latents, batch by batch into `out`
    (x1 float16, index): resumable from <out>.resume.npz (written every ckpt.every_s) when that
    file was written for the same config and inputs (steps.core.checkpoint.mismatch; else it is
    set aside as <out>.resume.npz.stale), refusing non-finite latents (e.g. a bf16 overflow)
    rather than storing them."""
    resume = Path(f"{out}.resume.npz")
    x1 = np.zeros((stop - start, *shape), dtype=np.float16)
    done = 0
    ident = checkpoint.identity(cfg)
    if resume.exists():
        state = load_npz(resume, f"{desc} resume file")
        recorded = json.loads(str(state["identity"])) if "identity" in state else None
        why = checkpoint.mismatch(recorded, ident)
        if why is None:
            done = int(state["done"])
            x1[:done] = state["x1"][:done]
            log.info(f"resuming {out} at sample {start + done}")
        else:
            log.info(f"not resuming {out} from {resume}: {why}; starting over (kept as {checkpoint.set_aside(resume).name})")
    bar = Progress(stop - start, desc, cfg.progress.every_s, initial=done)
    last = time.monotonic()
    while done < stop - start:
        idx = list(range(start + done, min(stop, start + done + batch)))
        x = sample(idx)
        if not torch.isfinite(x).all():
            raise ArtifactError(f"{what} produced non-finite latents for samples {idx[0]}..{idx[-1]}")
        x1[done:done + len(idx)] = x.float().cpu().numpy().astype(np.float16)
        done += len(idx)
        bar.update(len(idx))
        if done < stop - start and time.monotonic() - last >= float(cfg.ckpt.every_s):
            save_npz(resume, x1=x1, done=np.array(done), identity=np.array(json.dumps(ident)))
            last = time.monotonic()
    bar.close()
    save_npz(out, x1=x1, index=np.arange(start, stop, dtype=np.int64))
    resume.unlink(missing_ok=True)


def main(cfg: DictConfig) -> dict:
    sd_dir, prompts_path, out = need_io(cfg, "sd", "prompts", "out")
    p = cfg.pairs
    rt = runtime.start(cfg, int(p.seed))
    dev = rt.device
    prompts = data.Prompts(prompts_path)
    start, stop = data.shard_range(len(prompts), int(p.shards), int(p.shard))
    shape = data.latent_shape(int(p.resolution))
    sd = models.load(sd_dir, dev, unet=p.teacher == "sd")
    text = models.TextEncoder(sd.tokenizer, sd.text_encoder, dev)
    sample = sampler(cfg, teacher_fn(cfg, sd, dev), text, prompts, dev)
    log.info(f"shard {p.shard}/{p.shards}: pairs [{start}, {stop}) from teacher {p.teacher} on {rt.description}")
    batch = int(p.batch)
    write_shard(cfg, out, start, stop, shape, batch, sample, f"pairs {p.teacher} shard {p.shard}", f"teacher {p.teacher}")
    return {"pairs": stop - start}


if __name__ == "__main__":
    run(main, "instaflow", "pairs")
