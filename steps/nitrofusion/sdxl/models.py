"""SDXL as NitroFusion's full scale uses it: the diffusers-format SDXL-base folder (two CLIP text
encoders, VAE, UNet with `text_time` added conditioning, scheduler), the one-step starts (DMD2 /
Hyper-SD UNet weights on SDXL's UNet architecture), ε-prediction ↔ x̂0, and the added time ids;
plus `tiny_sdxl`, a randomly initialised SDXL-shaped miniature (same classes, small widths) for
tests only — no weights exist for it and nothing is downloaded.

Conventions: latents are SDXL's scaled latents (VAE mean × scaling_factor); discrete diffusion
timesteps s ∈ [0, 999] with SDXL's scaled-linear ᾱ_s; x_s = √ᾱ_s·x0 + √(1 − ᾱ_s)·ε. The
discriminator's noise levels are written as in the miniature (t ∈ [0, 1], t = 1 clean) and mapped
to s = round((1 − t)·999).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from steps.core.errors import ArtifactError
from steps.core.io import require
from steps.instaflow.sd.models import (
    _tiny_text_config,
    decode,
    load_unet,
    save_unet,
    tiny_tokenizer,
    to_uint8,
)

__all__ = ["SDXL", "TextXL", "Cond", "load", "load_start", "alphas_cumprod", "x0_from_eps", "renoise",
           "level_to_timestep", "decode", "to_uint8", "save_unet", "load_unet", "tiny_sdxl"]

SUBFOLDERS = ("tokenizer", "tokenizer_2", "text_encoder", "text_encoder_2", "vae", "unet", "scheduler")
START_FILES = ("*.safetensors", "*.bin", "*.pt", "*.pth")


@dataclass
class SDXL:
    tokenizers: tuple
    text_encoders: tuple
    vae: torch.nn.Module
    unet: torch.nn.Module | None
    scheduler_config: dict


@dataclass
class Cond:
    """SDXL's conditioning of a batch: token embeddings (B, L, 2048 for SDXL), pooled text
    embedding (B, 1280) and the added time ids (B, 6)."""

    tokens: torch.Tensor
    pooled: torch.Tensor
    time_ids: torch.Tensor

    def kwargs(self) -> dict:
        return {"encoder_hidden_states": self.tokens,
                "added_cond_kwargs": {"text_embeds": self.pooled, "time_ids": self.time_ids}}

    def index(self, rows: torch.Tensor) -> Cond:
        return Cond(self.tokens.index_select(0, rows), self.pooled.index_select(0, rows), self.time_ids.index_select(0, rows))

    @staticmethod
    def cat(parts: list[Cond]) -> Cond:
        return Cond(*(torch.cat([getattr(p, k) for p in parts]) for k in ("tokens", "pooled", "time_ids")))


def check_layout(sdxl_dir) -> Path:
    d = require(sdxl_dir, "SDXL folder")
    missing = [s for s in SUBFOLDERS if not (d / s).is_dir()]
    if missing or not (d / "model_index.json").is_file():
        raise ArtifactError(f"{d} is not a diffusers-format SDXL folder (missing: {', '.join(missing) or 'model_index.json'}); "
                            "rerun nitrofusion_fetch for the sdxl asset or point sd.assets.sdxl.local_dir at it")
    return d


def load(sdxl_dir, device="cpu", dtype=torch.float32, unet: bool = True) -> SDXL:
    """Tokenizers, text encoders and VAE (frozen) and, if asked, the UNet (eval mode, frozen:
    the teacher) from a diffusers-format SDXL folder."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    d = check_layout(sdxl_dir)
    toks = (CLIPTokenizer.from_pretrained(d / "tokenizer"), CLIPTokenizer.from_pretrained(d / "tokenizer_2"))
    tes = (CLIPTextModel.from_pretrained(d / "text_encoder", torch_dtype=dtype),
           CLIPTextModelWithProjection.from_pretrained(d / "text_encoder_2", torch_dtype=dtype))
    tes = tuple(t.to(device).requires_grad_(False).eval() for t in tes)
    vae = AutoencoderKL.from_pretrained(d / "vae", torch_dtype=dtype).to(device).requires_grad_(False).eval()
    net = None
    if unet:
        net = UNet2DConditionModel.from_pretrained(d / "unet", torch_dtype=dtype).to(device).requires_grad_(False).eval()
    sched = json.loads((d / "scheduler" / "scheduler_config.json").read_text())
    return SDXL(toks, tes, vae, net, sched)


def _state_file(start_dir) -> Path:
    d = require(start_dir, "one-step start folder")
    if d.is_file():
        return d
    files = sorted(f for pat in START_FILES for f in d.rglob(pat))
    if len(files) != 1:
        raise ArtifactError(f"{d} must hold exactly one UNet weight file ({', '.join(START_FILES)}); found "
                            f"{', '.join(f.name for f in files) or 'none'}")
    return files[0]


def load_start(start_dir, sdxl_dir) -> torch.nn.Module:
    """A one-step start (DMD2 / Hyper-SD): SDXL's UNet architecture (io.sdxl's unet/config.json)
    with the start's weights (the one weight file in `start_dir`; fp16 files are loaded as fp32).
    Returned on the CPU in eval mode, trainable."""
    from diffusers import UNet2DConditionModel

    f = _state_file(start_dir)
    if f.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(f))
    else:
        state = torch.load(f, map_location="cpu", weights_only=True)
        state = state.get("state_dict", state) if isinstance(state, dict) else state
    net = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(check_layout(sdxl_dir) / "unet"))
    missing, unexpected = net.load_state_dict({k: v.float() for k, v in state.items()}, strict=False)
    if missing or unexpected:
        raise ArtifactError(f"{f} does not fit SDXL's UNet: {len(missing)} missing keys (e.g. {missing[:2]}), "
                            f"{len(unexpected)} unexpected (e.g. {unexpected[:2]})")
    return net.eval()


class TextXL:
    """Prompts → Cond, as SDXL's pipeline encodes them: the penultimate hidden states of both
    CLIP text encoders concatenated, the second encoder's projected pooled embedding, and time
    ids (original size, crop (0, 0), target size) for a square `resolution`. The null caption is
    all zeros (SDXL-base's force_zeros_for_empty_prompt)."""

    def __init__(self, tokenizers, text_encoders, resolution: int, device="cpu"):
        self.toks, self.tes, self.device = tokenizers, text_encoders, device
        self.time_ids = torch.tensor([[resolution, resolution, 0, 0, resolution, resolution]], dtype=torch.float32)
        c = self([""])
        self.null = Cond(torch.zeros_like(c.tokens), torch.zeros_like(c.pooled), c.time_ids)

    @torch.no_grad()
    def __call__(self, prompts: list[str]) -> Cond:
        hidden, pooled = [], None
        for tok, te in zip(self.toks, self.tes, strict=True):
            ids = tok(list(prompts), padding="max_length", max_length=tok.model_max_length, truncation=True,
                      return_tensors="pt").input_ids.to(self.device)
            out = te(ids, output_hidden_states=True)
            hidden.append(out.hidden_states[-2])
            pooled = out[0]  # CLIPTextModelWithProjection: text_embeds (the last encoder's)
        n = len(prompts)
        return Cond(torch.cat(hidden, dim=-1), pooled, self.time_ids.expand(n, 6).to(self.device))

    def nulls(self, n: int) -> Cond:
        return Cond(*(v.expand(n, *v.shape[1:]) for v in (self.null.tokens, self.null.pooled, self.null.time_ids)))


def alphas_cumprod(scheduler_config: dict) -> torch.Tensor:
    """ᾱ_s, s = 0..999, of the SDXL scheduler config (scaled-linear betas)."""
    from diffusers import DDPMScheduler

    return DDPMScheduler.from_config(scheduler_config).alphas_cumprod.float()


def _ab(ac: torch.Tensor, s: torch.Tensor, like: torch.Tensor):
    a = ac.to(like.device)[s.long()].sqrt().view(-1, *([1] * (like.dim() - 1))).to(like.dtype)
    return a, (1 - a * a).clamp_min(0).sqrt()


def x0_from_eps(unet, ac: torch.Tensor, x: torch.Tensor, s: torch.Tensor, cond: Cond,
                fed: torch.Tensor | None = None) -> torch.Tensor:
    """x̂0 = (x_s − √(1 − ᾱ_s)·ε̂)/√ᾱ_s with ε̂ = unet(x_s, fed | cond), fed = s unless given
    (NitroFusion's shifted timestep feeds the UNet a smaller timestep than the noise level s):
    one step of a one-step SDXL student (DMD2 / Hyper-SD predict ε)."""
    eps = unet(x, s if fed is None else fed, **cond.kwargs()).sample.to(x.dtype)
    a, b = _ab(ac, s, x)
    return (x - b * eps) / a


def renoise(ac: torch.Tensor, x0: torch.Tensor, s: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """x_s = √ᾱ_s·x0 + √(1 − ᾱ_s)·ε."""
    a, b = _ab(ac, s, x0)
    return a * x0 + b * eps


def level_to_timestep(t: torch.Tensor) -> torch.Tensor:
    """The miniature's noise level t (1 = clean) as a discrete timestep s = round((1 − t)·999)."""
    return ((1.0 - t) * 999.0).round().long().clamp(0, 999)


# ---- a tiny random SDXL, for tests only -----------------------------------------------------

def tiny_sdxl(folder, seed: int = 0, sample_size: int = 8) -> Path:
    """A randomly initialised SDXL-shaped model in diffusers format: two CLIP text encoders
    (hidden 32 each, so cross-attention dim 64; the second with a 16-d projection), a UNet with
    addition_embed_type = text_time (time ids embedded in 8 dims: 6·8 + 16 = 64 inputs), two
    levels of 16/32 channels, an 8×-downsampling AutoencoderKL and SDXL's Euler scheduler config.
    Latents 4 × `sample_size`², images 8·`sample_size` px. Also writes two one-step "starts"
    (`dmd2/`, `hypersd/`: perturbed copies of the UNet's weights, one file each)."""
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, UNet2DConditionModel
    from safetensors.torch import save_file
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    folder = Path(folder)
    torch.manual_seed(seed)
    tok = tiny_tokenizer(folder / "tokenizer_src")
    for name in ("tokenizer", "tokenizer_2"):
        tok.save_pretrained(folder / name)
    te = CLIPTextModel(_tiny_text_config(len(tok), tok.model_max_length))
    te2 = CLIPTextModelWithProjection(_tiny_text_config(len(tok), tok.model_max_length))
    unet = UNet2DConditionModel(sample_size=sample_size, in_channels=4, out_channels=4, layers_per_block=1,
                                block_out_channels=(16, 32), norm_num_groups=8, cross_attention_dim=64,
                                attention_head_dim=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
                                addition_embed_type="text_time", addition_time_embed_dim=8,
                                projection_class_embeddings_input_dim=6 * 8 + 16)
    vae = AutoencoderKL(block_out_channels=(8, 8, 8, 8), norm_num_groups=4, latent_channels=4,
                        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                        sample_size=8 * sample_size, scaling_factor=0.13025)
    # SDXL-base's scheduler_config.json: scaled_linear 0.00085 → 0.012, leading spacing, offset 1
    sched = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                   num_train_timesteps=1000, steps_offset=1, timestep_spacing="leading")
    for name, part in (("text_encoder", te), ("text_encoder_2", te2), ("unet", unet), ("vae", vae), ("scheduler", sched)):
        part.save_pretrained(folder / name)
    index = {"_class_name": "StableDiffusionXLPipeline", "tokenizer": ["transformers", "CLIPTokenizer"],
             "tokenizer_2": ["transformers", "CLIPTokenizer"], "text_encoder": ["transformers", "CLIPTextModel"],
             "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"], "vae": ["diffusers", "AutoencoderKL"],
             "unet": ["diffusers", "UNet2DConditionModel"], "scheduler": ["diffusers", "EulerDiscreteScheduler"]}
    (folder / "model_index.json").write_text(json.dumps(index, indent=2))
    g = torch.Generator().manual_seed(seed + 1)
    for name, fname in (("dmd2", "unet.bin"), ("hypersd", "unet.safetensors")):
        state = {k: (v + 0.01 * torch.randn(v.shape, generator=g)).half() for k, v in unet.state_dict().items()}
        (folder / name).mkdir(exist_ok=True)
        if fname.endswith(".bin"):
            torch.save(state, folder / name / fname)
        else:
            save_file({k: v.contiguous() for k, v in state.items()}, str(folder / name / fname))
    return folder
