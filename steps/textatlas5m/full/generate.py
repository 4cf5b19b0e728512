"""Phase `generate` (full scale, GPU): one benchmarked text-to-image model renders every
TextAtlasEval prompt. The model is a diffusers pipeline folder the user supplies (fetched or
linked by `fetch`); sampling settings per model are params (full.models.<name>).

    python -m steps.textatlas5m.full.generate scale=full full.model=sd35_large \
        io.cases=data/textatlas5m/eval_cases.parquet io.weights=data/textatlas5m/sd35_large \
        io.out=data/textatlas5m/generated/sd35_large
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
from omegaconf import DictConfig

from steps.core import runtime
from steps.core.cli import need_io, run
from steps.core.errors import ConfigError
from steps.core.io import load_parquet, write_json
from steps.core.progress import Progress


def main(cfg: DictConfig) -> dict:
    from diffusers import DiffusionPipeline

    cases_path, weights, out = need_io(cfg, "cases", "weights", "out")
    name = str(cfg.full.model)
    if name not in cfg.full.models:
        raise ConfigError(f"full.model must be one of {', '.join(cfg.full.models)}, got {name!r}")
    m = cfg.full.models[name]
    rt = runtime.start(cfg, int(cfg.full.sample_seed))
    t0 = time.monotonic()
    dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[str(m.dtype if rt.device.type == "cuda" else "fp32")]
    pipe = DiffusionPipeline.from_pretrained(weights, torch_dtype=dtype).to(rt.device)
    pipe.set_progress_bar_config(disable=True)
    if hasattr(pipe, "safety_checker"):
        pipe.safety_checker = None
    cases = load_parquet(cases_path, "TextAtlasEval cases").to_dict("records")
    Path(out).mkdir(parents=True, exist_ok=True)
    prog = Progress(len(cases), f"generate {name}", cfg.progress.every_s)
    bs = int(m.batch)
    for i in range(0, len(cases), bs):
        chunk = [c for c in cases[i:i + bs] if not (Path(out) / f"{c['id']}.png").exists()]  # resumable
        if chunk:
            g = [torch.Generator(rt.device).manual_seed(int(cfg.full.sample_seed) + i + k) for k in range(len(chunk))]
            images = pipe([c["prompt"] for c in chunk], num_inference_steps=int(m.steps), guidance_scale=float(m.guidance),
                          height=int(m.resolution), width=int(m.resolution), generator=g).images
            for c, im in zip(chunk, images, strict=True):
                im.save(Path(out) / f"{c['id']}.png")
        prog.update(len(cases[i:i + bs]))
    prog.close()
    write_json(Path(out) / "_done.json", {"model": name, "n": len(cases), "wall_s": time.monotonic() - t0,
                                            "device": rt.description})
    return {"n": len(cases)}


if __name__ == "__main__":
    run(main, "textatlas5m", "generate")
