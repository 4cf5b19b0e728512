"""Phase `eval_fid_clip` (full, GPU): specified in params/nitrofusion/full.yaml; the SDXL code is not written yet."""

from steps.core.cli import run
from steps.nitrofusion.sdxl import pending


def main(cfg) -> dict:
    pending("eval_fid_clip")
    return {}


if __name__ == "__main__":
    run(main, "nitrofusion", "eval_fid_clip")
