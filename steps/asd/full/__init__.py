"""Any-Size-Diffusion at full scale: SD 2.1 (ARAD) and StableSR (FSTD) on LAION-COCO / MM-CelebA-HQ."""
