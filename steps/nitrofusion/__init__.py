"""NitroFusion (Chen et al., arXiv 2412.02030): dynamic adversarial fine-tuning of a one-step
student against a pool of discriminator heads on a frozen teacher's features."""
