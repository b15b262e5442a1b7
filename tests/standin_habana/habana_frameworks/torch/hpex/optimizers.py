"""Stand-in FusedAdamW: torch's AdamW, recording its construction."""
import torch

from habana_frameworks import CALLS


class FusedAdamW(torch.optim.AdamW):
    def __init__(self, params, lr, weight_decay, **kwargs):
        CALLS.append(("FusedAdamW", lr, weight_decay))
        super().__init__(params, lr=lr, weight_decay=weight_decay, **kwargs)
