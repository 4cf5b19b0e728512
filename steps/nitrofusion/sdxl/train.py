"""Phase `train_nitro` (full, GPU): specified in params/nitrofusion/full.yaml; the SDXL code is not written yet."""

from steps.core.cli import run
from steps.nitrofusion.sdxl import pending


def main(cfg) -> dict:
    pending("train_nitro")
    return {}


if __name__ == "__main__":
    run(main, "nitrofusion", "train_nitro")
