"""GPUSQ-ViT (Yu et al., CVPR 2023, arXiv 2305.10727): 2:4 structured pruning and
sparse-distillation-aware QAT of vision transformers."""
