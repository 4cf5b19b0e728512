"""Phase `fid_features`: the FID feature extractor, a digits classifier trained on real images
only (a stratified 80 % split) and frozen before any generator exists. FIDs computed with it
are "FID (digits-classifier features)", not Inception FID.

    python -m steps.instaflow.fid_features scale=mini io.digits=data/instaflow/digits.npz \
        io.out=models/instaflow/fid_clf.pt io.metrics=results/instaflow/fid_features.json
"""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import DictConfig

from steps.core import checkpoint, distributed, metrics, runtime, seeding
from steps.core.cli import need_io, run
from steps.core.io import load_npz
from steps.core.progress import log
from steps.data.digits import stratified_subset
from steps.nn.fid import DigitsClassifier
from steps.nn.optim import Adam


def main(cfg: DictConfig) -> dict:
    digits_path, out, metrics_out = need_io(cfg, "digits", "out", "metrics")
    t0 = time.monotonic()
    seed = int(cfg.data.seed)
    rt = runtime.start(cfg, seed)
    d = load_npz(digits_path, "digits dataset")
    x, y = torch.from_numpy(d["images"]), torch.from_numpy(d["labels"])
    n_train = int(round(float(cfg.data.fid_train_fraction) * len(y)))
    train_idx = torch.from_numpy(stratified_subset(d["labels"], n_train, seed))
    test_mask = torch.ones(len(y), dtype=torch.bool)
    test_mask[train_idx] = False
    test_idx = torch.nonzero(test_mask).squeeze(1)

    dist, dev = rt.dist, rt.device
    clf = DigitsClassifier(x.shape[1], int(cfg.fid.hidden), int(cfg.fid.feat_dim)).to(dev)
    wrapped = dist.wrap(clf)
    opt = Adam(clf.parameters(), lr=float(cfg.fid.lr))
    prec = distributed.precision(cfg.fid.get("precision"), dev)
    plan = distributed.batch_plan(int(cfg.fid.batch), cfg.fid.get("micro_batch"), dist.world)
    log.info(f"FID classifier: {len(train_idx)} training digits, on {rt.description}")
    loop = checkpoint.TrainLoop(cfg, out, int(cfg.fid.steps), "fid_features", dist, model=clf, optimizer=opt)
    loop.describe(precision=prec, **plan.record())
    for step in loop:
        g = seeding.step_generator(seed, "fid_features", step)
        idx = train_idx[torch.randint(len(train_idx), (plan.global_batch,), generator=g)]  # the global batch

        def micro_loss(i, sl, idx=idx):
            return F.cross_entropy(wrapped(x[idx[sl]].to(dev)), y[idx[sl]].to(dev))

        opt.zero_grad(set_to_none=True)
        loss = distributed.backward(dist, wrapped, plan, prec, dev, micro_loss)
        opt.step()
        loop.log(loss=loss)
    if not dist.main:  # rank 0 evaluates and writes; the others are done
        return {}
    clf.eval().cpu()
    with torch.no_grad():
        acc_test = (clf(x[test_idx]).argmax(1) == y[test_idx]).float().mean().item()
        acc_train = (clf(x[train_idx]).argmax(1) == y[train_idx]).float().mean().item()
    record = loop.record()
    meta = {"x_dim": x.shape[1], "hidden": int(cfg.fid.hidden), "feat_dim": int(cfg.fid.feat_dim), "train": record}
    checkpoint.save(out, cfg, int(cfg.fid.steps), model=clf, meta=meta,
                    split={"train": train_idx.numpy(), "test": test_idx.numpy()})
    loop.finish()
    metrics.write(
        metrics_out, cfg, "fid_features",
        "Digits classifier used as the FID feature extractor (trained on real digits only)",
        {"test_accuracy": acc_test, "train_accuracy": acc_train, "n_train": len(train_idx), "n_test": len(test_idx)},
        time.monotonic() - t0, rt.description, extra={"training": {"fid_features": checkpoint.training_summary(record)}},
    )
    log.info(f"FID classifier: test accuracy {acc_test:.3f} on {len(test_idx)} held-out digits")
    return {"test_accuracy": acc_test}


def load_classifier(path) -> tuple[DigitsClassifier, dict[str, np.ndarray]]:
    """The frozen classifier and its train/test split."""
    payload = checkpoint.load(path, "FID classifier")
    meta = payload["state"]["meta"]
    clf = DigitsClassifier(meta["x_dim"], meta["hidden"], meta["feat_dim"])
    clf.load_state_dict(payload["state"]["model"])
    for p in clf.parameters():
        p.requires_grad_(False)
    return clf.eval(), payload["state"]["split"]


if __name__ == "__main__":
    run(main, "instaflow", "fid_features")
