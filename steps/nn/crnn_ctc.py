"""A small CRNN text-line recogniser with CTC (Shi, Bai & Yao, arXiv 1507.05717): conv stack →
bidirectional GRU over the width → per-column character logits, trained with CTC and decoded
greedily. Input (B, 1, H=16, W) line crops in [0, 1]; the width becomes W/2 time steps."""

from __future__ import annotations

import torch
from torch import nn


class CRNN(nn.Module):
    """Four conv blocks (the first halves H and W, the rest halve H only) and a BiGRU."""

    def __init__(self, n_classes: int, channels=(32, 64, 96, 128), hidden: int = 128, height: int = 16):
        super().__init__()
        layers, c_in, h = [], 1, height
        for i, c in enumerate(channels):
            layers += [nn.Conv2d(c_in, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU(inplace=True),
                       nn.MaxPool2d((2, 2) if i == 0 else (2, 1))]
            c_in, h = c, h // 2
        self.conv = nn.Sequential(*layers)
        self.feat_dim = c_in * max(1, h)
        self.rnn = nn.GRU(self.feat_dim, hidden, batch_first=True, bidirectional=True)
        self.head = nn.Linear(2 * hidden, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, 2·hidden) sequence features."""
        f = self.conv(x)                                   # (B, C, h, T)
        f = f.flatten(1, 2).transpose(1, 2)                # (B, T, C·h)
        return self.rnn(f)[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(T, B, classes) log-probabilities, the layout nn.CTCLoss wants."""
        return self.head(self.features(x)).log_softmax(-1).transpose(0, 1)


class Charset:
    """Index 0 is the CTC blank; then the characters."""

    def __init__(self, chars: str):
        self.chars = chars
        self.index = {c: i + 1 for i, c in enumerate(chars)}

    @property
    def n_classes(self) -> int:
        return len(self.chars) + 1

    def encode(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Concatenated targets and their lengths; unknown characters are an error."""
        ids, lens = [], []
        for t in texts:
            bad = sorted({c for c in t if c not in self.index})
            if bad:
                raise ValueError(f"characters {bad} are not in the OCR charset")
            ids += [self.index[c] for c in t]
            lens.append(len(t))
        return torch.tensor(ids, dtype=torch.long), torch.tensor(lens, dtype=torch.long)

    def decode(self, logp: torch.Tensor) -> list[str]:
        """Greedy CTC: argmax per step, merge repeats, drop blanks. logp (T, B, C)."""
        best = logp.argmax(-1).transpose(0, 1).tolist()
        out = []
        for seq in best:
            s, prev = [], 0
            for k in seq:
                if k != prev and k != 0:
                    s.append(self.chars[k - 1])
                prev = k
            out.append("".join(s).strip())
        return out
