"""Networks: the registry of builders (builders.py: signatures, shape and footprint rules,
symbolic forms), next to the PyTorch modules they produce (mlp.py, dcgan.py), plain
`nn.Module`s users can reuse. The registry imports no torch, and neither does this package,
so that `gamedsl check` reads the builders in a fraction of a second.
"""
