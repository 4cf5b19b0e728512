"""Phase `train_sr`: the stage-2 super-resolution flow (the miniature of StableSR), a rectified
flow from noise to the high-resolution image conditioned on the nearest-upsampled low-resolution
image, trained on random `crop` × `crop` crops (the tile size) of the HR training canvases.

    python -m steps.asd.train_sr scale=mini io.sr=data/asd/sr_pairs.npz io.out=models/asd/sr.pt
"""

from __future__ import annotations

import torch
from omegaconf import DictConfig

from steps.asd import common, scenes
from steps.core import runtime
from steps.core.cli import need_io, run
from steps.core.io import load_npz
from steps.core.progress import log
from steps.instaflow.common import train_flow
from steps.nn.fully_conv_unet import n_params


def main(cfg: DictConfig) -> dict:
    sr_path, out = need_io(cfg, "sr", "out")
    seed = int(cfg.seed)
    rt = runtime.start(cfg, seed)
    d = load_npz(sr_path, "SR scenes")
    f, crop = int(d["factor"]), int(cfg.train_sr.crop)
    hr = [torch.from_numpy(d[f"hr_{n}"]) for n in d["bucket_names"]]
    model = common.SRVelocity(common.build(cfg.sr_model, 0, 1))
    log.info(f"SR flow: FullyConvUNet {n_params(model)} params, {sum(len(h) for h in hr)} HR canvases, on {rt.description}")
    batch = int(cfg.train_sr.batch)

    def batch_fn(step, g):
        b = int(torch.randint(len(hr), (1,), generator=g))
        src = hr[b]
        idx = torch.randint(len(src), (batch,), generator=g)
        H, W = src.shape[-2:]
        # crop origins on the LR grid (multiples of f) so HR and LR crops stay aligned
        oy = torch.randint(0, (H - crop) // f + 1, (batch,), generator=g) * f
        ox = torch.randint(0, (W - crop) // f + 1, (batch,), generator=g) * f
        x1 = torch.stack([src[i, :, y:y + crop, x:x + crop] for i, y, x in zip(idx.tolist(), oy.tolist(), ox.tolist(), strict=True)])
        lr = torch.from_numpy(scenes.downsample(x1.numpy(), f))
        return torch.randn(x1.shape, generator=g), x1, common.upsample(lr, f)

    save = common.saver("sr_model", 0, 1, factor=f, seed=seed)
    steps = train_flow(cfg, cfg.train_sr, model, out, seed, batch_fn, "train_sr", rt, save=save)
    return {"steps": steps}


if __name__ == "__main__":
    run(main, "asd", "train_sr")
