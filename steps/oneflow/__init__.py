"""OneFlow (arXiv 2110.15032): SBP global tensors, a boxing planner over ring collectives, and
an actor runtime with register quotas — the miniature on gloo CPU processes."""
