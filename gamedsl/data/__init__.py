"""Samplers behind `data NAME ~ source(...)` and `latent NAME ~ source(...)`."""
