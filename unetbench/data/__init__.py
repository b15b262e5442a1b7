"""The prepared dataset: its on-disk format and checks (torch-free), the loaders that feed the
device, and prepare/, which makes it from the sources."""
