"""InstaFlow: One Step is Enough for High-Quality Diffusion-Based Text-to-Image Generation
(Liu, Zhang, Ma, Peng & Liu, ICLR 2024, arXiv 2309.06380). Phases, one module each:
digits, captions, fid_features → teacher (1-RF) → pairs → reflow (2-RF) → distill → evaluate;
full scale: fetch, prompts and Stable Diffusion 1.5 in steps.instaflow.sd."""
