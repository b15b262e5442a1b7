"""STAND-IN habana_frameworks.torch.utils."""
