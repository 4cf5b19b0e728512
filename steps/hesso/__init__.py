"""HESSO (Chen et al., arXiv 2409.09085): hybrid-saliency structured pruning with progressive
linear decay, and CRIC, its corrective redundant-identification cycle, on the shared ZIG core."""
