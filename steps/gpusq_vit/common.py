"""What every GPUSQ-ViT phase shares: data, checkpoints of (masked, quantized) ViTs, the mixed
knowledge-distillation loss, layer importance, the resumable fine-tuning loop, accuracy."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from omegaconf import DictConfig

from steps.core import checkpoint, device, seeding
from steps.core.errors import ArtifactError, ConfigError
from steps.gpusq_vit.datasets import InMemory, open_data
from steps.gpusq_vit.vit import ViT, build
from steps.nn.nm_sparsity import nm_mask
from steps.nn.optim import AdamW


def start_arm(cfg: DictConfig, section: str, arm_name: str, data_path, teacher_path):
    """The common start of a fine-tuning phase (prune, qat): the arm's config from
    cfg.<section>.arms, device and threads, the seed, the data source and the dense teacher on
    the device. Returns (arm, device, seed, data, teacher)."""
    arms = cfg[section].arms
    if arm_name not in arms:
        raise ConfigError(f"unknown {section} arm '{arm_name}'; valid: {', '.join(arms)}")
    dev, _ = device.setup(cfg.device, int(cfg.threads))
    seed = int(cfg.seed)
    seeding.seed_everything(seed)
    data = open_data(cfg, data_path, dev)
    teacher, _ = load_model(teacher_path, cfg.model, "dense teacher")
    return arms[arm_name], dev, seed, data, teacher.to(dev)


def save_model(path, cfg: DictConfig, net: ViT, meta: dict) -> None:
    """A checkpoint of the network (weights, masks, activation ranges) and how it is quantized."""
    checkpoint.save(path, cfg, 0, model=net, meta=meta)


def load_model(path, model_cfg: DictConfig, what: str = "model") -> tuple[ViT, dict]:
    """(network in eval mode, meta) of a checkpoint written by save_model."""
    payload = checkpoint.load(path, what)
    meta = payload["state"].get("meta") or {}
    net = build(model_cfg)
    q = meta.get("quant") or {}
    if q.get("w_bits") or q.get("a_bits"):
        for m in net.qlinears().values():
            m.set_quant(q.get("w_bits"), q.get("a_bits"))
    try:
        net.load_state_dict(payload["state"]["model"])
    except RuntimeError as e:
        raise ArtifactError(f"{what} {path} does not fit config section `model` ({str(e).splitlines()[0]})") from None
    return net.eval(), meta


def accuracy(net: ViT, x: torch.Tensor, y: torch.Tensor, batch: int = 1000) -> float:
    """Top-1 on tensors (x, y), `batch` images per forward pass."""
    return accuracy_on(net, ((x[i:i + batch], y[i:i + batch]) for i in range(0, len(y), batch)))


@torch.no_grad()
def accuracy_on(net: ViT, batches) -> float:
    """Top-1 over minibatches (x, y) (a data source's test_batches())."""
    was = net.training
    net.eval()
    dev = next(net.parameters()).device
    correct = total = 0
    for xb, yb in batches:
        correct += int((net(xb.to(dev, non_blocking=True)).argmax(1).cpu() == yb).sum())
        total += len(yb)
    net.train(was)
    return correct / total


def kd_loss(s_logits, s_feats, t_logits, t_feats, y, kd: DictConfig, importance) -> tuple[torch.Tensor, dict]:
    """Mixed-strategy distillation (§3.3): hard-label CE + soft-logit KL at temperature T (×T²)
    + per-block token-feature MSE weighted by layer importance (mean weight 1)."""
    ce = F.cross_entropy(s_logits, y)
    T = float(kd.temperature)
    kl = F.kl_div(F.log_softmax(s_logits / T, 1), F.log_softmax(t_logits / T, 1), reduction="batchmean", log_target=True) * T * T
    feat = sum(w * F.mse_loss(s, t) for w, s, t in zip(importance, s_feats, t_feats, strict=True))
    loss = float(kd.ce) * ce + float(kd.soft) * kl + float(kd.feature) * feat
    return loss, {"ce": ce.item(), "kl": kl.item(), "feat": float(feat.detach()) if torch.is_tensor(feat) else float(feat)}


@torch.no_grad()
def mean_loss(net: ViT, x: torch.Tensor, y: torch.Tensor, chunk: int | None = None) -> float:
    """Cross-entropy of net on (x, y), on the net's device; `chunk` images per forward pass
    (None: all at once, the miniature's way)."""
    dev = next(net.parameters()).device
    if chunk is None or chunk >= len(y):
        return float(F.cross_entropy(net(x.to(dev)), y.to(dev)))
    total = sum(float(F.cross_entropy(net(x[i:i + chunk].to(dev)), y[i:i + chunk].to(dev), reduction="sum"))
                for i in range(0, len(y), chunk))
    return total / len(y)


@torch.no_grad()
def layer_importance(net: ViT, x: torch.Tensor, y: torch.Tensor, perturb, chunk: int | None = None) -> list[float]:
    """Importance of each block: the rise of the loss on (x, y) when only that block's GEMM
    weights are perturbed by `perturb(QLinear) -> weight` (2:4 pruning, or quantization),
    clipped at a floor and normalised to mean 1. A stand-in: the paper weights feature
    distillation by layer importance but gives no formula we could check (spec)."""
    net.eval()
    base = mean_loss(net, x, y, chunk)
    rises = []
    for i in range(len(net.blocks)):
        layers = net.block_qlinears(i)
        saved = [m.weight.detach().clone() for m in layers]
        for m in layers:
            m.weight.copy_(perturb(m))
        rises.append(max(mean_loss(net, x, y, chunk) - base, 0.0))
        for m, w in zip(layers, saved, strict=True):
            m.weight.copy_(w)
    floor = 0.05 * max(max(rises), 1e-12)
    vals = [max(r, floor) for r in rises]
    return [len(vals) * v / sum(vals) for v in vals]


def prune_2to4(m) -> torch.Tensor:
    """The weight a layer would have under a 2:4 magnitude mask (for layer_importance)."""
    return m.weight * nm_mask(m.weight * m.mask, 2, 4)


def lr_at(step: int, total: int, lr: float, warmup: int) -> float:
    """Linear warm-up, then cosine decay to 0."""
    if step < warmup:
        return lr * (step + 1) / warmup
    return 0.5 * lr * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


def train(cfg: DictConfig, net: ViT, data, sec: DictConfig, out, seed: int, desc: str,
          teacher: ViT | None = None, importance: list[float] | None = None) -> dict:
    """`sec.epochs` of AdamW (steps.nn.optim: torch's arithmetic without its 1.4 s dynamo import)
    on the training set (a fresh permutation per epoch), resumable (checkpoint.TrainLoop).
    `data`: a source of steps.gpusq_vit.datasets (or a dict of tensors x_train, y_train).
    With a teacher: the mixed KD loss of config section `kd`; without: cross-entropy. Masks
    are re-applied after every step (QLinear.apply_mask)."""
    if isinstance(data, dict):
        data = InMemory(data)
    batch = int(sec.batch)
    per_epoch = math.ceil(data.n_train / batch)
    total = int(sec.epochs) * per_epoch
    opt = AdamW(net.parameters(), lr=float(sec.lr), weight_decay=float(sec.weight_decay))
    loop = checkpoint.TrainLoop(cfg, out, total, desc, model=net, optimizer=opt)
    loop.describe(global_batch=batch, epochs=int(sec.epochs))
    qls = list(net.qlinears().values())
    dev = next(net.parameters()).device
    if teacher is not None:
        teacher.eval()
    net.train()
    batches = data.train_batches(seed, batch, loop.start)
    for step in loop:
        xb, yb = next(batches)
        xb, yb = xb.to(dev, non_blocking=True), yb.to(dev, non_blocking=True)
        opt.lr = lr_at(step, total, float(sec.lr), int(sec.warmup_steps))
        if teacher is None:
            loss = F.cross_entropy(net(xb), yb)
            parts = {}
        else:
            with torch.no_grad():
                t_logits, t_feats = teacher(xb, features=True)
            s_logits, s_feats = net(xb, features=True)
            loss, parts = kd_loss(s_logits, s_feats, t_logits, t_feats, yb, cfg.kd, importance)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        for m in qls:
            m.apply_mask()
        loop.log(loss=loss.item(), **parts)
    batches.close()  # a streamed source: stop its decode workers
    return {"loop": loop, "record": loop.record()}


def set_quant(net: ViT, w_bits: int | None, a_bits: int | None, momentum: float) -> None:
    """Fake-quantize every GEMM layer: weights per output channel, inputs per tensor."""
    for m in net.qlinears().values():
        m.set_quant(w_bits, a_bits, momentum)


@torch.no_grad()
def calibrate(net: ViT, x: torch.Tensor, batch: int = 500) -> None:
    """Min–max calibration of every activation quantizer: the largest |x| seen on `x`."""
    obs = [m.act for m in net.qlinears().values() if m.act is not None]
    net.eval()
    for o in obs:
        o.calibrating = True
    dev = next(net.parameters()).device
    for i in range(0, len(x), batch):
        net(x[i:i + batch].to(dev))
    for o in obs:
        o.calibrating = False
