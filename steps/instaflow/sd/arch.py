"""Stable Diffusion 1.5's architecture as configuration values, and randomly initialised models
built from them, at the real size (SD15) or as a miniature of the same classes (TINY). Nothing
is downloaded: these models have random weights, for measuring speed and memory
(steps.instaflow.sd.bench) and for tests, never for images.

SD15 is taken from the diffusers-format config files of runwayml/stable-diffusion-v1-5 (the
weights params/instaflow/full.yaml fetches from its mirror stable-diffusion-v1-5/...):
unet/config.json, text_encoder/config.json (CLIP ViT-L/14's text tower), vae/config.json and
scheduler/scheduler_config.json; checked value by value against copies of those files. Keys
that only restate diffusers' defaults are left out. Published UNet size: 859,520,964 parameters
(tests/test_gpu_check.py builds SD15's models on the meta device and counts them).
"""

from __future__ import annotations

from pathlib import Path

import torch

SD15 = {
    "unet": {
        "sample_size": 64, "in_channels": 4, "out_channels": 4, "layers_per_block": 2,
        "block_out_channels": (320, 640, 1280, 1280),
        "down_block_types": ("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        "up_block_types": ("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        "cross_attention_dim": 768, "attention_head_dim": 8, "norm_num_groups": 32, "norm_eps": 1e-5,
        "act_fn": "silu", "center_input_sample": False, "flip_sin_to_cos": True, "freq_shift": 0,
        "downsample_padding": 1, "mid_block_scale_factor": 1,
    },
    "text_encoder": {
        "vocab_size": 49408, "hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
        "num_attention_heads": 12, "max_position_embeddings": 77, "hidden_act": "quick_gelu",
        "projection_dim": 768, "layer_norm_eps": 1e-5, "bos_token_id": 0, "eos_token_id": 2, "pad_token_id": 1,
    },
    "vae": {
        "in_channels": 3, "out_channels": 3, "latent_channels": 4, "block_out_channels": (128, 256, 512, 512),
        "layers_per_block": 2, "norm_num_groups": 32, "act_fn": "silu", "sample_size": 512,
        "scaling_factor": 0.18215, "down_block_types": ("DownEncoderBlock2D",) * 4,
        "up_block_types": ("UpDecoderBlock2D",) * 4,
    },
    "scheduler": {
        "beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear", "num_train_timesteps": 1000,
        "skip_prk_steps": True, "steps_offset": 1, "set_alpha_to_one": False, "clip_sample": False,
        "prediction_type": "epsilon",
    },
    "max_length": 77,  # CLIP's context: prompts are padded to 77 tokens
}

# The miniature of tests/test_instaflow_full.py (models.tiny_sd): UNet 16/32 channels, cross-
# attention dim 32, a 4-block VAE of 8 channels (SD's 8× downsampling), a 2-layer CLIP text model.
TINY = {
    "unet": {
        "sample_size": 8, "in_channels": 4, "out_channels": 4, "layers_per_block": 1, "block_out_channels": (16, 32),
        "norm_num_groups": 8, "cross_attention_dim": 32, "attention_head_dim": 4,
        "down_block_types": ("CrossAttnDownBlock2D", "DownBlock2D"), "up_block_types": ("UpBlock2D", "CrossAttnUpBlock2D"),
    },
    "text_encoder": {
        "vocab_size": None, "hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2,  # vocab: the tokenizer's
        "num_attention_heads": 4, "max_position_embeddings": None, "projection_dim": 16,  # positions: max_length
        "bos_token_id": 0, "eos_token_id": 1, "pad_token_id": 1,
    },
    "vae": {
        "block_out_channels": (8, 8, 8, 8), "norm_num_groups": 4, "latent_channels": 4,
        "down_block_types": ("DownEncoderBlock2D",) * 4, "up_block_types": ("UpDecoderBlock2D",) * 4, "sample_size": 64,
    },
    # SD 1.5's noise schedule, so that the samplers see the real timesteps
    "scheduler": {"beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear",
                  "num_train_timesteps": 1000, "skip_prk_steps": True, "steps_offset": 1},
    "max_length": 16,
}

ARCHS = {"sd15": SD15, "tiny": TINY}


def text_config(arch: dict, vocab_size: int):
    """The CLIPTextConfig of `arch`, its open sizes filled from the tokenizer."""
    from transformers import CLIPTextConfig

    te = dict(arch["text_encoder"])
    te["vocab_size"] = te["vocab_size"] or vocab_size
    te["max_position_embeddings"] = te["max_position_embeddings"] or arch["max_length"]
    return CLIPTextConfig(**te)


def parts(arch: dict, vocab_size: int) -> dict[str, torch.nn.Module]:
    """Randomly initialised text encoder, UNet and VAE of `arch` (in this order: the random
    stream of torch's global generator decides the weights; build under a torch.device
    context, e.g. meta, to place them)."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel

    te = CLIPTextModel(text_config(arch, vocab_size))
    unet = UNet2DConditionModel(**arch["unet"])
    vae = AutoencoderKL(**arch["vae"])
    return {"text_encoder": te, "unet": unet, "vae": vae}


def random_sd(arch: dict, folder, seed: int = 0, device="cpu"):
    """A steps.instaflow.sd.models.SD of `arch` with random weights, held in memory (only the
    tokenizer's two small files are written, to `folder`). The tokenizer is models.tiny_tokenizer
    (single bytes) with `arch`'s context length: prompts cost what real ones cost, since CLIP
    pads every prompt to max_length tokens. Text encoder and VAE frozen, UNet trainable."""
    from steps.instaflow.sd import models

    torch.manual_seed(seed)
    tok = models.tiny_tokenizer(Path(folder) / "tokenizer_src", arch["max_length"])
    with torch.device(device):  # initialised in place: SD 1.5's 1.07 B parameters are slow to draw on a CPU
        p = parts(arch, len(tok))
    te = p["text_encoder"].requires_grad_(False).eval()
    vae = p["vae"].requires_grad_(False).eval()
    return models.SD(tok, te, vae, p["unet"].eval(), dict(arch["scheduler"]))


def parameter_count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
