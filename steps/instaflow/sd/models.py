"""Stable Diffusion 1.5 as InstaFlow uses it: loading the diffusers-format folders, the UNet as
a rectified-flow velocity, SD's own ε-prediction seen as a flow (the 1-flow), text encoding and
VAE decoding; plus `tiny_*` builders of randomly initialised small versions of the same classes,
used only by tests (no weights exist for them, nothing is downloaded).

Conventions (InstaFlow's code/pipeline_rf.py): latents are SD's scaled latents (VAE mean ×
scaling_factor), t runs 0 (noise) → 1 (image), and the UNet is fed timestep (1 − t)·1000.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import DictConfig

from steps.core import checkpoint
from steps.core.errors import ArtifactError
from steps.core.io import require

SUBFOLDERS = ("tokenizer", "text_encoder", "vae", "unet", "scheduler")
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)  # CLIP's image normalisation (OpenAI and LAION)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass
class SD:
    tokenizer: object
    text_encoder: torch.nn.Module
    vae: torch.nn.Module
    unet: torch.nn.Module
    scheduler_config: dict


def check_layout(sd_dir) -> Path:
    """The folder, or an ArtifactError if it is not a diffusers-format SD directory."""
    sd_dir = require(sd_dir, "Stable Diffusion folder")
    missing = [s for s in SUBFOLDERS if not (sd_dir / s).is_dir()]
    if missing or not (sd_dir / "model_index.json").is_file():
        raise ArtifactError(f"{sd_dir} is not a diffusers-format Stable Diffusion folder (missing: "
                            f"{', '.join(missing) or 'model_index.json'}); rerun the instaflow_fetch rule")
    return sd_dir


def load(sd_dir, device="cpu", dtype=torch.float32, unet: bool = True) -> SD:
    """Tokenizer, text encoder, VAE, UNet and scheduler config from a diffusers-format folder.
    The text encoder and VAE are frozen; the UNet is returned in eval mode, trainable."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    d = check_layout(sd_dir)
    tok = CLIPTokenizer.from_pretrained(d / "tokenizer")
    te = CLIPTextModel.from_pretrained(d / "text_encoder", torch_dtype=dtype).to(device).requires_grad_(False).eval()
    vae = AutoencoderKL.from_pretrained(d / "vae", torch_dtype=dtype).to(device).requires_grad_(False).eval()
    net = UNet2DConditionModel.from_pretrained(d / "unet").to(device).eval() if unet else None
    sched = json.loads((d / "scheduler" / "scheduler_config.json").read_text())
    return SD(tok, te, vae, net, sched)


def save_unet(path, cfg: DictConfig, unet: torch.nn.Module, step: int, **extra) -> None:
    """A UNet checkpoint: weights, its diffusers config (to rebuild it) and the producing config."""
    checkpoint.save(path, cfg, step, model=unet, meta={"unet_config": dict(unet.config), **extra})


def unet_from_state(meta: dict, state: dict) -> torch.nn.Module:
    from diffusers import UNet2DConditionModel

    net = UNet2DConditionModel.from_config(meta["unet_config"])
    net.load_state_dict(state)
    return net.eval()


def load_unet(path, what: str = "UNet checkpoint") -> torch.nn.Module:
    """A UNet from save_unet's checkpoint (CPU, eval mode)."""
    payload = checkpoint.load(path, what)
    return unet_from_state(payload["state"]["meta"], payload["state"]["model"])


def velocity(unet: torch.nn.Module):
    """v(x, t, c) = unet(x, (1 − t)·1000, c): a UNet trained as a rectified flow (pipeline_rf.py)."""

    def v(x: torch.Tensor, t: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return unet(x, (1.0 - t) * 1000.0, encoder_hidden_states=c).sample.to(x.dtype)

    return v


def sd_velocity(unet: torch.nn.Module, scheduler_config: dict):
    """SD 1.5's probability-flow ODE written as a velocity in rectified-flow time — the 1-flow
    InstaFlow starts from (§3.1 treats the pretrained model as the 1-rectified flow).

    With a = √ᾱ_s, b = √(1 − ᾱ_s): x_s = a·x0 + b·ε. In y = x/(a + b) and τ = a/(a + b) the path is
    y_τ = τ·x0 + (1 − τ)·ε, the straight interpolation of rectified flow, and the DDIM ODE is
    dy/dτ = x̂0 − ε̂ with ε̂ = unet(x, s, c) and x̂0 = (x − b·ε̂)/a. Euler steps of this velocity are
    exactly DDIM steps. SD was trained only for s ≤ 999, whose τ is ≈ 0.06 > 0: for τ below that
    the velocity of s = 999 is used (the usual practice of starting SD samplers from pure noise).
    """
    from diffusers import DDIMScheduler

    ac = DDIMScheduler.from_config(scheduler_config).alphas_cumprod.double()
    tau = (ac.sqrt() / (ac.sqrt() + (1 - ac).sqrt())).float()  # τ(s), decreasing in s

    def v(y: torch.Tensor, t: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        tt = t.detach().float().cpu().clamp(float(tau[-1]), float(tau[0]))
        # s(τ) by linear interpolation between the integer timesteps bracketing τ
        hi = torch.searchsorted(-tau, -tt).clamp(1, len(tau) - 1)
        w = (tau[hi - 1] - tt) / (tau[hi - 1] - tau[hi])
        s = (hi - 1).float() + w  # fed to the UNet's time embedding
        r = (1 - tt) / tt  # b/a, so a = 1/√(1 + r²) and b = r·a exactly for this τ
        a_t = 1 / torch.sqrt(1 + r * r)
        sa, sb = (z.to(y).view(-1, *([1] * (y.dim() - 1))) for z in (a_t, r * a_t))
        x = y * (sa + sb)
        eps = unet(x, s.to(y.device), encoder_hidden_states=c).sample.to(y.dtype)
        return (x - sb * eps) / sa - eps

    return v


class TextEncoder:
    """Prompt → CLIP hidden states (SD's conditioning); the null caption is the empty prompt,
    as in SD's and InstaFlow's classifier-free guidance."""

    def __init__(self, tokenizer, text_encoder, device="cpu"):
        self.tok, self.te, self.device = tokenizer, text_encoder, device
        self.null = self([""])

    @torch.no_grad()
    def __call__(self, prompts: list[str]) -> torch.Tensor:
        ids = self.tok(list(prompts), padding="max_length", max_length=self.tok.model_max_length,
                       truncation=True, return_tensors="pt").input_ids.to(self.device)
        return self.te(ids)[0]


def decode(vae: torch.nn.Module, latents: torch.Tensor) -> torch.Tensor:
    """SD latents → images in [-1, 1] (pipeline_rf.py: vae.decode(latents / scaling_factor))."""
    dtype = next(vae.parameters()).dtype
    return vae.decode((latents / vae.config.scaling_factor).to(dtype)).sample.float().clamp(-1, 1)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] float images → uint8 in [0, 255]."""
    return ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


# ---- tiny random versions of the same classes, for tests only -------------------------------

def _bytes_to_unicode() -> list[str]:
    """CLIP's byte-level alphabet (GPT-2's bytes_to_unicode)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs, n = bs[:], 0
    for byte in range(256):
        if byte not in bs:
            bs.append(byte)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


def tiny_tokenizer(folder, max_length: int = 16):
    """A CLIPTokenizer over single bytes (no merges but two), written to `folder`."""
    from transformers import CLIPTokenizer

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for suffix in ("", "</w>"):
        for ch in _bytes_to_unicode():
            vocab.setdefault(ch + suffix, len(vocab))
    vocab.update({"th": len(vocab), "the</w>": len(vocab) + 1})
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\nt h\nth e</w>\n")
    return CLIPTokenizer(vocab=str(folder / "vocab.json"), merges=str(folder / "merges.txt"), model_max_length=max_length)


def _tiny_text_config(vocab_size: int, max_length: int):
    from transformers import CLIPTextConfig

    return CLIPTextConfig(vocab_size=vocab_size, hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                          num_attention_heads=4, max_position_embeddings=max_length, projection_dim=16,
                          bos_token_id=0, eos_token_id=1, pad_token_id=1)


def tiny_sd(folder, seed: int = 0, sample_size: int = 8) -> Path:
    """A randomly initialised miniature SD 1.5 saved in diffusers format (steps.instaflow.sd.arch
    TINY): UNet (32 ch, cross-attn dim 32), AutoencoderKL with SD's 8× downsampling (4 blocks of
    8 ch), CLIP text model, SD's noise schedule. Latents 4 × `sample_size`², images 8·`sample_size` px."""
    from diffusers import PNDMScheduler

    from steps.instaflow.sd import arch

    folder = Path(folder)
    tiny = {**arch.TINY, "unet": {**arch.TINY["unet"], "sample_size": sample_size},
            "vae": {**arch.TINY["vae"], "sample_size": 8 * sample_size}}
    sd = arch.random_sd(tiny, folder, seed)
    sd.tokenizer.save_pretrained(folder / "tokenizer")
    for name, part in (("text_encoder", sd.text_encoder), ("unet", sd.unet), ("vae", sd.vae),
                       ("scheduler", PNDMScheduler(**tiny["scheduler"]))):
        part.save_pretrained(folder / name)
    index = {"_class_name": "StableDiffusionPipeline", "tokenizer": ["transformers", "CLIPTokenizer"],
             "text_encoder": ["transformers", "CLIPTextModel"], "vae": ["diffusers", "AutoencoderKL"],
             "unet": ["diffusers", "UNet2DConditionModel"], "scheduler": ["diffusers", "PNDMScheduler"]}
    (folder / "model_index.json").write_text(json.dumps(index, indent=2))
    return folder


def tiny_clip(folder, seed: int = 0) -> Path:
    """A random CLIPModel (text + 32 px vision tower) and its tokenizer saved to `folder`."""
    from transformers import CLIPConfig, CLIPModel, CLIPVisionConfig

    folder = Path(folder)
    torch.manual_seed(seed)
    tok = tiny_tokenizer(folder / "tokenizer_src")
    vision = CLIPVisionConfig(image_size=32, patch_size=8, hidden_size=32, intermediate_size=37,
                              num_hidden_layers=2, num_attention_heads=4, projection_dim=16)
    text = _tiny_text_config(len(tok), tok.model_max_length)
    model = CLIPModel(CLIPConfig(text_config=text.to_dict(), vision_config=vision.to_dict(), projection_dim=16))
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


class TinyFeatures(torch.nn.Module):
    """A fixed random feature map standing in for Inception in tests (FID's plumbing only):
    uint8 (N, 3, H, W) → (N, num_features)."""

    num_features = 4

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.register_buffer("proj", torch.randn(3 * 4 * 4, self.num_features, generator=g))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.nn.functional.adaptive_avg_pool2d(x.float() / 255.0, 4).flatten(1)
        return x @ self.proj


def tiny_fid_features() -> torch.nn.Module:
    """Factory named by eval.fid_features in tests."""
    return TinyFeatures()
