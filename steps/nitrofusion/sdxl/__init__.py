"""NitroFusion at full scale: SDXL teacher and DMD2 / Hyper-SD one-step students (nitrofusion_full.smk).
fetch and prompts reuse InstaFlow's full-scale code; the SDXL phases are specified in
params/nitrofusion/full.yaml but not implemented yet (see pending())."""

from steps.core.errors import PaperzooError


def pending(phase: str) -> None:
    """The one-line error of a full-scale phase whose SDXL code is not written yet."""
    raise PaperzooError(f"nitrofusion.{phase} at full scale (SDXL) is specified in params/nitrofusion/full.yaml and "
                        "workflow/rules/nitrofusion_full.smk but its step code is not implemented yet")
