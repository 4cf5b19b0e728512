"""Phase `gen_teacher_reals` (full, GPU): specified in params/nitrofusion/full.yaml; the SDXL code is not written yet."""

from steps.core.cli import run
from steps.nitrofusion.sdxl import pending


def main(cfg) -> dict:
    pending("gen_teacher_reals")
    return {}


if __name__ == "__main__":
    run(main, "nitrofusion", "gen_teacher_reals")
