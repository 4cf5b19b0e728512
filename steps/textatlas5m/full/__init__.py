"""TextAtlas5M at full scale: TextAtlasEval fetched with checksums, text-to-image models the
user supplies (diffusers format) generate its prompts on GPUs, and the official metrics score
them (PaddleOCR word accuracy / F1 / CER, CLIP score, FID)."""
