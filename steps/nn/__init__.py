"""Small models and maths shared by papers: velocity networks, rectified-flow training and
sampling, Fréchet distance, LPIPS."""
