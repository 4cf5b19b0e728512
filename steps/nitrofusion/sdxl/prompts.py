"""Phase `prompts` (full): training prompts from LAION parquet and the COCO-5k evaluation prompts —
InstaFlow's prompt step (steps.instaflow.sd.prompts) over params/nitrofusion/full.yaml `prompts`."""

from steps.core.cli import run
from steps.instaflow.sd.prompts import main

if __name__ == "__main__":
    run(main, "nitrofusion", "prompts")
