"""timm's pretrained DeiT into steps.gpusq_vit.vit.ViT. GPUSQ-ViT compresses pretrained DeiT and
Swin models (§4.1: the dense starting point and teacher is the released model, not one trained
here); at full scale the `dense` phase loads DeiT-Small/16 this way instead of training 300 epochs.

timm's VisionTransformer state_dict (DeiT: Touvron et al. 2021, which the DeiT authors released
in timm's layout) maps one to one onto ours:

    patch_embed.proj.weight (D, C, p, p)      → patch_embed.weight (D, C·p·p)   (F.unfold's order)
    patch_embed.proj.bias, cls_token, pos_embed → patch_embed.bias, cls, pos
    blocks.N.{norm1, attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2}.{weight, bias}
                                              → blocks.N.{norm1, qkv, proj, norm2, fc1, fc2}.*
    norm.*, head.*                            → norm.*, head.*

QKV needs no reordering (both split the 3·D outputs as (3, heads, D/heads)); the model must be
built with model.norm_eps=1e-6 (timm's LayerNorm eps) to compute what timm computes.

    sd = read_checkpoint("deit_small_patch16_224-cd65a155.pth")   # the DeiT release (or timm's .safetensors)
    net.load_state_dict(from_timm(sd, net))
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from steps.core.errors import ArtifactError

RENAME = {"patch_embed.proj.bias": "patch_embed.bias", "cls_token": "cls", "pos_embed": "pos"}
BLOCK = {"norm1": "norm1", "attn.qkv": "qkv", "attn.proj": "proj", "norm2": "norm2", "mlp.fc1": "fc1", "mlp.fc2": "fc2"}
DEIT_SMALL_URL = "https://dl.fbaipublicfiles.com/deit/deit_small_patch16_224-cd65a155.pth"


def check_hub_hash(path: Path) -> None:
    """A file named like torch.hub's downloads, <name>-<hex>.pth, must have a SHA-256 that starts
    with <hex> (torch.hub.download_url_to_file's check; the DeiT release is named this way)."""
    m = re.search(r"-([0-9a-f]{8,64})\.(pth|pt|bin)$", path.name)
    if not m:
        return
    from steps.core.fetch import sha256_file

    digest = sha256_file(path)
    if not digest.startswith(m.group(1)):
        raise ArtifactError(f"{path}: SHA-256 {digest[:16]}… does not start with {m.group(1)} as its name says "
                            "(a truncated or different download); fetch it again")


def read_checkpoint(path) -> dict[str, torch.Tensor]:
    """The state_dict of a timm / DeiT checkpoint: .safetensors, or a torch file holding the
    state_dict itself or under 'model' (the DeiT release) or 'state_dict'."""
    path = Path(str(path))
    if not path.is_file():
        raise ArtifactError(f"pretrained DeiT checkpoint {path} is missing: download {DEIT_SMALL_URL} (DeiT-Small/16, "
                            "the DeiT authors' release, Apache-2.0) and give dense.init_from=<that file>")
    check_hub_hash(path)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            sd = load_file(str(path))
        else:
            sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file is the same user error
        raise ArtifactError(f"cannot read pretrained checkpoint {path}: {type(e).__name__}: {str(e).splitlines()[0]}") from None
    for key in ("model", "state_dict"):
        if isinstance(sd, dict) and isinstance(sd.get(key), dict):
            sd = sd[key]
    if not isinstance(sd, dict) or "pos_embed" not in sd:
        raise ArtifactError(f"{path} is not a timm VisionTransformer state_dict (no pos_embed)")
    return sd


def timm_key(ours: str) -> str:
    """timm's name of one of our parameter names (the inverse of the table in the module doc)."""
    inv = {v: k for k, v in RENAME.items()}
    if ours in inv:
        return inv[ours]
    if ours == "patch_embed.weight":
        return "patch_embed.proj.weight"
    m = re.fullmatch(r"blocks\.(\d+)\.(\w+)\.(weight|bias)", ours)
    if m:
        inv_block = {v: k for k, v in BLOCK.items()}
        return f"blocks.{m.group(1)}.{inv_block[m.group(2)]}.{m.group(3)}"
    return ours  # norm.*, head.*


def from_timm(sd: dict[str, torch.Tensor], net) -> dict[str, torch.Tensor]:
    """Our state_dict for `net` (a ViT) with every parameter taken from timm's `sd`; buffers
    (masks, quantizer state) are kept as `net` has them. Keys timm has and we have no place for
    (a distillation token, layer scale, ...) or shapes that differ are one clear error."""
    out = dict(net.state_dict())
    params = dict(net.named_parameters())
    used = set()
    for name, p in params.items():
        key = timm_key(name)
        if key not in sd:
            raise ArtifactError(f"the DeiT checkpoint lacks {key} (for our {name}): not a timm VisionTransformer of this depth")
        w = sd[key]
        if name == "patch_embed.weight":
            w = w.reshape(w.shape[0], -1)  # (D, C, p, p) → (D, C·p·p): F.unfold's channel-major order
        if tuple(w.shape) != tuple(p.shape):
            raise ArtifactError(f"DeiT checkpoint {key} has shape {tuple(sd[key].shape)}, our {name} {tuple(p.shape)}: "
                                "set config section `model` to the checkpoint's architecture")
        out[name] = w.to(p.dtype)
        used.add(key)
    extra = sorted(set(sd) - used)
    if extra:
        raise ArtifactError(f"the DeiT checkpoint has weights our ViT has no place for: {', '.join(extra[:6])}"
                            f"{' …' if len(extra) > 6 else ''} (a distilled DeiT or another architecture?)")
    return out
