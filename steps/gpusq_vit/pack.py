"""The deployable bytes of a GPUSQ-ViT model: every GEMM weight packed as integer codes in its
sparse format, serialized into one blob whose length is the model size we report, and read back
to check that the blob really holds the model (`unpack` returns the weights the forward uses).

    blob = pack(net, pattern="2:4")      # bytes: a JSON header, then the packed tensors
    len(blob)                            # the measured size
    weights = unpack(blob)               # {name: tensor}: GEMM weights as the model multiplies them

Formats (per QLinear weight, by the layer's mask and bit width; everything else float32):

* dense: the codes (w_bits) or float32 values, row-major;
* 2:4: per group of 4 input weights the 2 kept values (the mask's) and their 2 positions at
  2 bits each, i.e. 4 metadata bits a group, as NVIDIA's sparse tensor cores store them
  (NVIDIA, "Accelerating Sparse Deep Neural Networks", arXiv 2104.08378, §3);
* csr (unstructured): the non-zero values, uint16 column indices and uint32 row pointers.

Quantized weights store their signed codes packed at w_bits (two's complement, little-endian
bit order) and one float32 scale per output row; an activation quantizer stores its one float32
range. Codes are read off the executed weight (QLinear.effective_weight() / scale), so a
quantizer that did not put a weight on its grid fails loudly here.
"""

from __future__ import annotations

import json
import struct

import numpy as np
import torch

from steps.core.errors import PaperzooError
from steps.nn.fake_quant import qrange, weight_scales

_MAGIC = b"PZQ1"


def _bits_pack(codes: np.ndarray, bits: int) -> bytes:
    """Signed integers in [-2^(bits-1), 2^(bits-1)) packed at `bits` each, little-endian bit order."""
    u = codes.astype(np.int64).ravel() & ((1 << bits) - 1)
    planes = ((u[:, None] >> np.arange(bits)) & 1).astype(np.uint8)
    return np.packbits(planes.ravel(), bitorder="little").tobytes()


def _bits_unpack(buf: bytes, bits: int, count: int, signed: bool = True) -> np.ndarray:
    planes = np.unpackbits(np.frombuffer(buf, np.uint8), bitorder="little")[: count * bits].reshape(count, bits)
    u = (planes.astype(np.int64) << np.arange(bits)).sum(1)
    return np.where(u >= 1 << (bits - 1), u - (1 << bits), u) if signed else u


def _codes(w: torch.Tensor, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """(integer codes, float32 row scales) of an executed per-row quantized weight."""
    scale = weight_scales(w, bits).float()
    q = w.double() / scale.double()[:, None]
    codes = torch.round(q)
    qmin, qmax = qrange(bits)
    if float((q - codes).abs().max()) > 1e-3 or codes.min() < qmin or codes.max() > qmax:
        raise PaperzooError(f"a weight is not on its {bits}-bit grid: it cannot be packed at that width")
    return codes.to(torch.int64).numpy(), scale.numpy()


def _tensor(w: torch.Tensor, mask: torch.Tensor, bits: int | None, fmt: str) -> tuple[dict, list[bytes]]:
    """One GEMM weight in `fmt` ('dense', '2:4', 'csr'): its header entry and its byte chunks."""
    out_f, in_f = w.shape
    if bits:
        codes, scale = _codes(w, bits)
        val = torch.from_numpy(codes)
    else:
        val, scale = w.float(), None
    entry: dict = {"f": fmt, "s": [out_f, in_f], "b": bits or 32}
    chunks: list[bytes] = []

    def values(v: torch.Tensor) -> bytes:
        return _bits_pack(v.numpy(), bits) if bits else v.float().numpy().astype("<f4").tobytes()

    if fmt == "dense":
        chunks.append(values(val.reshape(-1)))
    elif fmt == "2:4":
        if in_f % 4:
            raise PaperzooError(f"2:4 needs the input size to be a multiple of 4, got {in_f}")
        g = mask.reshape(out_f, in_f // 4, 4)
        # the 2 kept positions of each group: the mask's ones first (stable: by index), sorted
        pos = torch.sort(torch.argsort(-g, dim=-1, stable=True)[..., :2], dim=-1).values
        dropped = torch.ones_like(g, dtype=torch.bool).scatter_(-1, pos, False)
        if bool((w.reshape(out_f, in_f // 4, 4)[dropped] != 0).any()):
            raise PaperzooError("a weight outside its 2:4 mask is non-zero: the layer is not 2:4")
        kept = torch.gather(val.reshape(out_f, in_f // 4, 4), -1, pos)
        chunks += [values(kept.reshape(-1)), _bits_pack(pos.reshape(-1).numpy(), 2)]  # positions as 2-bit fields
    elif fmt == "csr":
        nz = w != 0
        cols = nz.nonzero()[:, 1]
        rows = torch.cat([torch.zeros(1, dtype=torch.int64), nz.sum(1).cumsum(0)])
        chunks += [values(val[nz]), cols.numpy().astype("<u2").tobytes(), rows.numpy().astype("<u4").tobytes()]
        entry["n"] = int(nz.sum())
    else:
        raise PaperzooError(f"unknown packing format {fmt!r}")
    if scale is not None:
        chunks.append(scale.astype("<f4").tobytes())
    return entry, chunks


def pack(net, pattern: str = "dense") -> bytes:
    """The model's deployable blob: `PZQ1`, the header length, a compact JSON header (one entry
    per tensor: format, shape, bits, chunk lengths), then every chunk. `pattern` is the GEMM
    weights' sparsity format ('dense', '2:4' or 'unstructured')."""
    fmt = {"dense": "dense", "2:4": "2:4", "unstructured": "csr"}[pattern]
    header, body = {}, []
    gemm = net.qlinears()
    with torch.no_grad():
        for name, m in gemm.items():
            w = m.effective_weight().detach().cpu()
            entry, chunks = _tensor(w, m.mask.detach().cpu(), m.w_bits, fmt)
            if m.act is not None:
                chunks.append(struct.pack("<f", float(m.act.amax)))
                entry["a"] = m.act.bits
            entry["c"] = [len(c) for c in chunks]
            header[f"{name}.weight"] = entry
            body += chunks
        skip = {f"{n}.weight" for n in gemm}
        for name, p in net.named_parameters():
            if name not in skip:
                raw = p.detach().cpu().float().numpy().astype("<f4").tobytes()
                header[name] = {"f": "f32", "s": list(p.shape), "c": [len(raw)]}
                body.append(raw)
    head = json.dumps(header, separators=(",", ":")).encode()
    return _MAGIC + struct.pack("<I", len(head)) + head + b"".join(body)


def unpack(blob: bytes) -> dict[str, torch.Tensor]:
    """Every tensor of a `pack` blob as the forward uses it: GEMM weights dequantized and
    scattered back to dense (out, in) matrices, the rest float32."""
    if blob[:4] != _MAGIC:
        raise PaperzooError("not a packed GPUSQ-ViT model")
    (n,) = struct.unpack("<I", blob[4:8])
    header, off = json.loads(blob[8:8 + n]), 8 + n
    out = {}
    for name, e in header.items():
        chunks = []
        for size in e["c"]:
            chunks.append(blob[off:off + size])
            off += size
        shape = e["s"]
        if e["f"] == "f32":
            out[name] = torch.from_numpy(np.frombuffer(chunks[0], "<f4").copy()).reshape(shape)
            continue
        out_f, in_f = shape
        bits = e["b"]

        def values(buf: bytes, count: int, bits: int = bits) -> torch.Tensor:
            v = _bits_unpack(buf, bits, count) if bits < 32 else np.frombuffer(buf, "<f4")[:count]
            return torch.from_numpy(np.asarray(v, dtype=np.float64 if bits < 32 else np.float32).copy())

        quant = bits < 32
        scale = torch.from_numpy(np.frombuffer(chunks[-2 if "a" in e else -1], "<f4").copy()) if quant else None
        w = torch.zeros(out_f, in_f, dtype=torch.float64 if quant else torch.float32)
        if e["f"] == "dense":
            w = values(chunks[0], out_f * in_f).reshape(out_f, in_f)
        elif e["f"] == "2:4":
            groups = out_f * in_f // 4
            kept = values(chunks[0], groups * 2).reshape(out_f, in_f // 4, 2)
            pos = torch.from_numpy(_bits_unpack(chunks[1], 2, groups * 2, signed=False)).reshape(out_f, in_f // 4, 2)
            w = w.reshape(out_f, in_f // 4, 4).scatter_(-1, pos, kept.to(w.dtype)).reshape(out_f, in_f)
        else:  # csr
            cols = torch.from_numpy(np.frombuffer(chunks[1], "<u2").astype(np.int64))
            rows = np.frombuffer(chunks[2], "<u4").astype(np.int64)
            r = torch.from_numpy(np.repeat(np.arange(out_f), np.diff(rows)))
            w[r, cols] = values(chunks[0], e["n"]).to(w.dtype)
        if quant:  # codes × scale in float32, as the fake quantizer computes
            w = w.float() * scale[:, None]
        out[name] = w.float()
    return out


def roundtrip_error(net, blob: bytes) -> float:
    """max |W_unpacked − W_executed| over every parameter (0 when the blob holds the model)."""
    back = unpack(blob)
    gemm = net.qlinears()
    err = 0.0
    with torch.no_grad():
        for name, p in net.named_parameters():
            mod = name.removesuffix(".weight")
            ref = gemm[mod].effective_weight() if name.endswith(".weight") and mod in gemm else p
            err = max(err, float((back[name] - ref.detach().cpu().float()).abs().max()))
    return err
