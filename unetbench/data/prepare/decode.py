"""Decode one image/mask pair, check it, and cut its random crops (runs in the workers).

Use::

    crops = crops_for_pair(job, pair)     # [(top, left, image uint8 HxWx3, labels uint8 HxW), ...]
    crops = crops_for_pair(job, pair, (0, 3))    # only crops 0 and 3 of the pair's crops_per_image

Every problem with a pair raises ``PairError`` naming the file and the fix; the parent turns it
into one error line, or into a skipped entry with --skip-bad. The whole mask is decoded once (so
a colour or id the table does not know fails wherever it is, not only inside a crop), then cut.
Crop offsets come from (seed, the image's path, crops per image): the same file gets the same
crops whatever else is in the source and however the crops are split.
"""

from __future__ import annotations

import io
import zlib
from typing import Optional, Sequence

import numpy as np
from PIL import Image

from .pair_error import PairError, UnreadableImage
from .resize import resize_pair


def open_image(data: bytes, name: str, what: str) -> Image.Image:
    error = UnreadableImage if what == "image" else PairError
    if not data:
        raise error(f"{name}: empty file (0 bytes); re-copy it or remove the pair")
    try:
        img = Image.open(io.BytesIO(data))
        img.load()
        return img
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        detail = "not a picture format Pillow can read" if "cannot identify" in str(err) else str(err)
        raise error(f"{name}: cannot decode {what} ({detail}); the file is corrupt or truncated, "
                    "re-copy it or remove the pair") from None


def load_mask(img: Image.Image, channels: str) -> np.ndarray:
    if channels == "rgb":
        return np.asarray(img if img.mode == "RGB" else img.convert("RGB"))
    if channels == "grey":   # luminance of a colour mask (Kvasir-SEG's white-on-black JPEGs)
        return np.asarray(img if img.mode == "L" else img.convert("L"))
    if img.mode in ("RGB", "RGBA"):
        return np.asarray(img)[..., 0]
    if img.mode in ("I", "I;16", "I;16B", "F"):
        return np.asarray(img).astype(np.int64)
    return np.asarray(img if img.mode in ("L", "P") else img.convert("L"))


def _oddity(img: Image.Image, name: str):
    """What is unusual about an image file, e.g. "PNG data named .jpg, RGBA" (None: nothing)."""
    ext = name.rsplit(".", 1)[-1].lower()
    fmt = (img.format or "").upper()
    odd = []
    if fmt and not (fmt == ext.upper() or (fmt == "JPEG" and ext in ("jpg", "jpeg")) or (fmt == "TIFF" and ext == "tif")):
        odd.append(f"{fmt} data named .{ext}")
    if img.mode != "RGB":
        odd.append(f"mode {img.mode}")
    return ", ".join(odd) or None


def read_pair(reader, decoder, pair, notes: Optional[list] = None):
    """-> (image uint8 HxWx3, mask array as the decoder wants it); ``notes`` gets a line for an
    image that had to be converted (another format than its name says, not RGB)."""
    try:
        image_bytes = reader.read(pair.image)
        mask_bytes = reader.read(pair.mask)
    except OSError as err:
        raise PairError(f"{pair.image}: cannot read ({err.strerror or err})") from None
    image_pil = open_image(image_bytes, pair.image, "image")
    mask_pil = open_image(mask_bytes, pair.mask, "mask")
    if image_pil.size != mask_pil.size:
        (iw, ih), (mw, mh) = image_pil.size, mask_pil.size
        raise PairError(f"{pair.image} is {iw}x{ih} but its mask {pair.mask} is {mw}x{mh}; "
                        "they must be the same size (wrong mask for this image?)")
    odd = _oddity(image_pil, pair.image)
    if odd and notes is not None:
        notes.append({"image": pair.image, "note": f"{odd}: converted to RGB"})
    image = np.asarray(image_pil if image_pil.mode == "RGB" else image_pil.convert("RGB"))
    return image, load_mask(mask_pil, decoder.mask_channels())


def crops_for_pair(job, pair, which: Optional[Sequence[int]] = None, notes: Optional[list] = None) -> list:
    """The pair's crops ``which`` (default all ``job.crops_per_image``), in that order."""
    image, mask = read_pair(job.source, job.decoder, pair, notes)
    h, w = job.crop
    H, W = image.shape[:2]
    if job.resize == "none" and (h > H or w > W):
        raise PairError(f"{pair.image}: image is {W}x{H} (WxH), smaller than --crop {h}x{w} (HxW); "
                        "choose a smaller --crop, or --resize cover")
    labels = job.decoder.decode(mask, pair.mask)
    image, labels = resize_pair(image, labels, (h, w), job.resize)
    H, W = image.shape[:2]
    rng = np.random.default_rng([job.seed, zlib.crc32(pair.image.encode())])
    tops = rng.integers(0, H - h + 1, size=job.crops_per_image).tolist()
    lefts = rng.integers(0, W - w + 1, size=job.crops_per_image).tolist()
    out = []
    for j in (range(job.crops_per_image) if which is None else which):
        top, left = tops[j], lefts[j]
        out.append((top, left, np.ascontiguousarray(image[top:top + h, left:left + w]),
                    np.ascontiguousarray(labels[top:top + h, left:left + w])))
    return out
