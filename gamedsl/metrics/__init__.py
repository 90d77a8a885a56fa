"""Quality measurements of a trained game (2-D mixtures here; image scores in images.py)."""
