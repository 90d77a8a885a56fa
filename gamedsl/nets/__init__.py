"""PyTorch modules that network builders produce. Plain `nn.Module`s users can reuse."""
