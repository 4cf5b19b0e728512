"""Phase `distill` (full scale): one-step distillation (InstaFlow §3.3, Eq. 7). The student
starts as a copy of its teacher's UNet, t is fixed at 0, and z ↦ z + v_s(z, 0 | c) learns to
match the teacher's ODE output x1 on the teacher's pairs: first with an L2 loss on latents, then
with LPIPS on VAE-decoded images (model card: batch 1024 × 21.5k iterations of L2, then
1024 × 18k of LPIPS). An EMA of the student's weights is kept and snapshotted at every budget
(distill.budgets: short = the end of the L2 stage, long = the end of the LPIPS stage).

Arms (distill.arm), with equal stages, learning rate, EMA and noises:
* rf2 — InstaFlow: student init and teacher = the 2-RF, pairs from the 2-RF (guidance 1.5);
* sd  — SD+Distill (§4's baseline): student init = SD 1.5's UNet, pairs from SD.

    python -m steps.instaflow.sd.distill scale=full distill.arm=rf2 io.sd=data/instaflow/sd15 \
        io.init=models/instaflow/rf2.pt io.prompts=data/instaflow/prompts_train.parquet \
        io.pairs=data/instaflow/pairs_rf2 io.lpips=data/instaflow/lpips \
        io.out=models/instaflow/distill_rf2.pt
    (arm sd: no io.init — the student starts from io.sd's UNet; io.pairs=data/instaflow/pairs_sd)
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch
import torch.nn.functional as F
from omegaconf import DictConfig

from steps.core import checkpoint, runtime
from steps.core.cli import need_io, run
from steps.core.errors import ConfigError
from steps.core.progress import log
from steps.instaflow.sd import data, models, train
from steps.instaflow.sd.pairs import shard_path
from steps.nn import lpips as lpipslib
from steps.nn import rectified_flow as rf

ARMS = {"rf2": "instaflow", "sd": "rf1_distill"}  # arm → the variant name in fid.json




def student_init(cfg: DictConfig, sd: models.SD) -> torch.nn.Module:
    arm = str(cfg.distill.arm)
    if arm == "rf2":
        (init,) = need_io(cfg, "init")
        return models.load_unet(init, "2-rectified flow")
    if arm == "sd":
        return sd.unet
    raise ConfigError(f"distill.arm must be one of {', '.join(ARMS)}, got {arm!r}")


def lpips_net(cfg: DictConfig, dev) -> torch.nn.Module:
    """LPIPS (AlexNet v0.1) from the weight files in io.lpips."""
    (lpips_dir,) = need_io(cfg, "lpips")
    files = cfg.distill.lpips_files
    return lpipslib.build(Path(lpips_dir) / files.trunk, Path(lpips_dir) / files.heads).to(dev)


def similarity(cfg: DictConfig, sd: models.SD, net: torch.nn.Module) -> dict:
    """The stage losses D(pred, x1) on latents: L2, and LPIPS (`net`) of the decoded images."""
    if cfg.distill.get("vae_gradient_checkpointing"):
        sd.vae.enable_gradient_checkpointing()
    size = cfg.distill.get("lpips_resize")

    def images(latents):
        x = models.decode(sd.vae, latents)
        return x if not size else F.interpolate(x, size=int(size), mode="bilinear", antialias=True, align_corners=False)

    def lpips_loss(pred, x1):
        with torch.no_grad():
            ref = images(x1)
        return net(images(pred), ref).mean()

    return {"l2": None, "lpips": lpips_loss}


def distill_loss(cfg: DictConfig, store: data.PairStore, text: models.TextEncoder, prompts: data.Prompts,
                 losses: dict, dev) -> train.LossFn:
    """The loss of one micro-batch for train.fit: `micro` pairs from `store`, the student's one
    step z + v(z, 0 | c) against x1 under the stage's loss (Eq. 7)."""
    pairs_seed = int(cfg.pairs.seed)

    def loss_fn(model, stage, micro, g):
        z, x1, index = store.batch(pairs_seed, micro, g, dev)
        return rf.distill_loss(models.velocity(model), z, text(prompts(index)), x1, losses[stage["loss"]])

    return loss_fn


def ema_hook(cfg: DictConfig, ema: torch.nn.Module, student: torch.nn.Module, snaps: checkpoint.Snapshots):
    """train.fit's after_step: update the EMA, snapshot it at the end of each budget."""
    d = cfg.distill
    budgets = {str(k): int(v) for k, v in d.budgets.items()}
    decay, warmup = float(d.ema), bool(d.get("ema_warmup", True))

    def after_step(step):
        rf.ema_update(ema, student, rf.ema_decay(decay, step, warmup))
        for name, b in budgets.items():
            if step + 1 == b:
                snaps[name] = {k: v.detach().cpu().clone() for k, v in ema.state_dict().items()}

    return after_step


def main(cfg: DictConfig) -> dict:
    sd_dir, prompts_path, pairs_dir, out = need_io(cfg, "sd", "prompts", "pairs", "out")
    rt = runtime.start(cfg, int(cfg.seed))  # joins the launcher's process group (steps.core.distributed)
    dist, dev = rt.dist, rt.device
    d = cfg.distill
    stages = train.stages_of(d)
    total = sum(int(s["steps"]) for s in stages)
    budgets = {str(k): int(v) for k, v in d.budgets.items()}
    if not budgets or not all(0 < b <= total for b in budgets.values()):
        raise ConfigError(f"distill.budgets {budgets} must be positive step counts within the {total} steps of distill.stages")
    sd = models.load(sd_dir, dev, unet=str(d.arm) == "sd")
    student = student_init(cfg, sd).to(dev)
    losses = similarity(cfg, sd, lpips_net(cfg, dev))
    unknown = [s["loss"] for s in stages if s.get("loss") not in losses]
    if unknown:
        raise ConfigError(f"distill.stages loss must be one of {', '.join(losses)}, got {unknown}")
    text = models.TextEncoder(sd.tokenizer, sd.text_encoder, dev)
    prompts = data.Prompts(prompts_path)
    store = data.PairStore([shard_path(pairs_dir, i) for i in range(int(cfg.pairs.shards))], dist.rank, dist.world)
    ema = copy.deepcopy(student).requires_grad_(False).eval()
    snaps = checkpoint.Snapshots()
    log.info(f"distill arm {d.arm}: {len(store)} pairs on rank {dist.rank}/{dist.world}, budgets {budgets}, {rt.description}")
    loop = train.fit(cfg, d, student, out, f"distill_{d.arm}", distill_loss(cfg, store, text, prompts, losses, dev),
                     dist, dev, ema_hook(cfg, ema, student, snaps), ema=ema, snapshots=snaps)
    if dist.main:
        meta = {"unet_config": dict(student.config), "budgets": budgets, "arm": str(d.arm), "variant": ARMS[str(d.arm)],
                "train": loop.record()}
        checkpoint.save(out, cfg, total, snapshots=snaps, meta=meta)
    loop.finish()
    return {"steps": total}


def load_students(path) -> dict[str, torch.nn.Module]:
    """{budget name: EMA student UNet} from a distill checkpoint (CPU, eval mode)."""
    payload = checkpoint.load(path, "student checkpoint")
    meta = payload["state"]["meta"]
    return {name: models.unet_from_state(meta, state) for name, state in payload["state"]["snapshots"].items()}


if __name__ == "__main__":
    run(main, "instaflow", "distill")
