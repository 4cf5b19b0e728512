"""OTOv2 (Chen et al., ICLR 2023): train once with DHSPG over automatically found zero-invariant
groups, then build the compact network; against group-lasso + threshold + fine-tune and random
structured pruning. The shared parts live in steps/nn/zig.py and steps/nn/dhspg.py."""
