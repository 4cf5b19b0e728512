"""SlimFlow (Zhu, Liu & Liu, ECCV 2024, arXiv 2407.12718): small one-step rectified flows from a
large teacher by Annealing Reflow and Flow-Guided Distillation."""
