"""Sweeps over a grid of settings and seeds: vectorised in one process, or as processes."""
