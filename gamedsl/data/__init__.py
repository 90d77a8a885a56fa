"""Data: the registries of sources and initialisers (sources.py), next to the samplers behind
`data NAME ~ source(...)` and `latent NAME ~ source(...)` (samplers.py, images.py, points.py).
The registry imports no torch, and neither does this package, so that `gamedsl check` reads
the sources in a fraction of a second.
"""
