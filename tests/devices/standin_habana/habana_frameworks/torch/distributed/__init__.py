"""STAND-IN habana_frameworks.torch.distributed."""
