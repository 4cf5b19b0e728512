"""Phase `fetch` (full): the SDXL teacher, the DMD2 / Hyper-SD starts, COCO, LAION prompts, Inception
and CLIP weights, with checksums — InstaFlow's fetcher (steps.instaflow.sd.fetch) over
params/nitrofusion/full.yaml `sd.assets`; `local_dir` takes weights the user already has."""

from steps.core.cli import run
from steps.instaflow.sd.fetch import main

if __name__ == "__main__":
    run(main, "nitrofusion", "fetch")
