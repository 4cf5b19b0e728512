"""Monolith (arXiv 2209.07663): collisionless embedding tables and online training, in miniature."""
