"""Seeding. Training code draws its randomness from `step_generator(seed, stream, step)`, a
generator derived from (seed, stream, step) alone, so a run resumed at any step draws exactly
what the uninterrupted run drew, and two runs of one config give identical numbers on CPU."""

from __future__ import annotations

import random
import zlib

import numpy as np


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch. (CPU kernels are deterministic; device.setup asks for
    deterministic CUDA kernels when it picks a GPU.)"""
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def derive(seed: int, stream: str, step: int = 0) -> int:
    """A 63-bit seed from (seed, stream name, step), stable across processes and platforms."""
    words = np.random.SeedSequence([seed, zlib.crc32(stream.encode()), step]).generate_state(2)
    return int((int(words[0]) << 31) ^ int(words[1])) & (2**63 - 1)


def step_generator(seed: int, stream: str, step: int = 0, device="cpu"):
    """A torch.Generator for one (seed, stream, step); `stream` names the purpose ("noise", "batch")."""
    import torch

    g = torch.Generator(device=device)
    g.manual_seed(derive(seed, stream, step))
    return g


def epoch_batches(n: int, batch: int, seed: int, start_step: int = 0, stream: str = "epoch"):
    """Index minibatches of global steps start_step, start_step + 1, ... (endless), as
    (epoch, LongTensor): epoch e visits range(n) in the order randperm(n, step_generator(seed,
    stream, e)), `batch` at a time (an epoch's last minibatch may be smaller). One permutation
    per epoch, so a resumed run draws what the uninterrupted run drew."""
    import torch

    per = -(-n // batch)
    epoch, j = divmod(int(start_step), per)
    while True:
        perm = torch.randperm(n, generator=step_generator(seed, stream, epoch))
        for k in range(j, per):
            yield epoch, perm[k * batch:(k + 1) * batch]
        epoch, j = epoch + 1, 0


def rng_state() -> dict:
    """Every global RNG's state, for checkpoints."""
    import torch

    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    import torch

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
