"""How sources of different sizes are brought to the crop: none, cover or stretch.

    image, labels = resize_pair(image, labels, (256, 256), "cover")    # before the random crops
    describe_resize("cover")         # the split file's "resize" object

none: crops are cut from the source as it is (an image smaller than the crop is an error);
cover: scaled, keeping its aspect ratio, so that it just covers the crop (a 500x375 photo becomes
341x256 for a 256x256 crop), then cropped; stretch: scaled to the crop size exactly (aspect not
kept; the one crop is the whole image), as the ResUNet++ reference does with Kvasir-SEG. Images
are resampled bilinearly, label maps by nearest neighbour (class ids are never blended).
"""

from __future__ import annotations

from typing import Tuple

import numpy as np
from PIL import Image

RESIZE_POLICIES = ("none", "cover", "stretch")


def target_size(height: int, width: int, crop: Tuple[int, int], policy: str) -> Tuple[int, int]:
    """(height, width) the source is scaled to."""
    h, w = crop
    if policy == "stretch":
        return h, w
    if policy == "cover":
        scale = max(h / height, w / width)
        return max(h, round(height * scale)), max(w, round(width * scale))
    return height, width


def resize_pair(image: np.ndarray, labels: np.ndarray, crop: Tuple[int, int], policy: str):
    H, W = image.shape[:2]
    th, tw = target_size(H, W, crop, policy)
    if (th, tw) == (H, W):
        return image, labels
    image = np.asarray(Image.fromarray(image).resize((tw, th), Image.BILINEAR))
    labels = np.asarray(Image.fromarray(labels).resize((tw, th), Image.NEAREST))
    return image, labels


def describe_resize(policy: str) -> dict:
    return {"policy": policy, "image": "bilinear", "labels": "nearest",
            "rule": {"none": "crops cut from the source as it is",
                     "cover": "scaled keeping the aspect ratio to just cover the crop, then cropped",
                     "stretch": "scaled to the crop size (aspect ratio not kept)"}[policy]}
