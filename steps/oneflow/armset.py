"""Which arms the throughput phase (steps.oneflow.throughput) times for each placement: our
runtime's arm first, then PyTorch's. Free of torch: the report's figures import it."""

from __future__ import annotations

TORCH_SCHEDULES = ("gpipe", "1f1b")  # torch.distributed.pipelining: ScheduleGPipe, Schedule1F1B

# placement -> (our arm, PyTorch's arms)
ARMS = {"dp": ("ours_dp", ("ddp",)), "tp": ("ours_tp", ("torch_tp",)),
        "pp": ("ours_pp", tuple(f"torch_pp_{s}" for s in TORCH_SCHEDULES))}


def arm_names(placements) -> list[str]:
    """Every arm of these placements, in placement order."""
    return [a for p in placements for a in (ARMS[p][0], *ARMS[p][1])]
