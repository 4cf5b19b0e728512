"""Phase `sample_coco5k` (full, GPU): specified in params/nitrofusion/full.yaml; the SDXL code is not written yet."""

from steps.core.cli import run
from steps.nitrofusion.sdxl import pending


def main(cfg) -> dict:
    pending("sample_coco5k")
    return {}


if __name__ == "__main__":
    run(main, "nitrofusion", "sample_coco5k")
