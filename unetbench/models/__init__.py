"""The networks beyond the seed's UNet (unetbench/models/unet.py), one module each, and what they share.

    python3 -c "from unetbench.models.resunetpp import ResUNetPlusPlus as M; print(sum(p.numel() for p in M(3, 1).parameters()))"
    python3 -c "from unetbench.models.flops import flops_per_sample; print(flops_per_sample('unet', 384, 512, 20) / 1e9)"

Every model is registered in unetbench/core/registry.py (MODELS: builder, input multiple, whether it
needs torchvision); training, the benchmark and the report ask the registry, never these modules.
``resunetpp``: ResUNet++ (Jha et al., 2019). ``deeplab``: torchvision's DeepLabV3-ResNet101.
``flops``: FLOPs per training sample, counted by torch's FlopCounterMode. ``weights``: --weights.
"""
