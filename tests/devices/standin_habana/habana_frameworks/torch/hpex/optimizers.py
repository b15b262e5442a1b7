"""Stand-in FusedAdamW: torch's AdamW with the bridge's defaults, recording its construction.

Intel's FusedAdamW (gaudi-pytorch-bridge, habana_frameworks/torch/hpex/optimizers) defaults
to eps=1e-6 ("Modified from PT default of 1e-8") and weight_decay=0.0; the stand-in keeps
both, so a caller relying on the defaults gets the bridge's math, not torch's.
"""
import torch

from habana_frameworks import CALLS


class FusedAdamW(torch.optim.AdamW):
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.0, **kwargs):
        CALLS.append(("FusedAdamW", lr, weight_decay, eps))
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, **kwargs)
