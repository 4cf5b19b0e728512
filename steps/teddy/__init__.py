"""TEDDY (Seo, Yun & Yang, ICLR 2024, arXiv 2402.01261): graph lottery tickets in one shot from
degree-based edge scores, distillation and projected gradient descent on the ℓ0 ball."""
