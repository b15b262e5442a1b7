"""STAND-IN habana_frameworks.torch.distributed.hccl: the real one registers the hccl process-group
backend; the stand-in registers nothing (multi-rank stand-in runs are not supported)."""
