"""Kvasir-SEG and Oxford-IIIT Pet, small, in their exact published layouts (names, formats, oddities).

Use::

    from workload_fixtures import write_kvasir_zip, write_oxford_archives, KVASIR_SIZES
    archive = write_kvasir_zip(tmp_path)            # kvasir-seg.zip: Kvasir-SEG/images + masks + kavsir_bboxes.json
    folder = write_oxford_archives(tmp_path / "dl")  # images.tar.gz + annotations.tar.gz (gzip=False: plain tar)

Kvasir-SEG: JPEG images of different sizes (the real ones span 332x487 to 1920x1072) and masks that
are 3-channel JPEGs of a white polyp on black, saved at a low quality with added noise so that
thresholding matters. Oxford-IIIT Pet: JPEG photos, trimap PNGs (1 pet, 2 background, 3 border),
annotations/trainval.txt and test.txt with their '#' header, list.txt, xmls/, the macOS '._' twins
of the trimaps the real archive carries, stray .mat files in images/, and the known odd images:
PNG data named .jpg (beagle_116), greyscale (chihuahua_121), RGBA (Abyssinian_5), CMYK
(Egyptian_Mau_139) and undecodable ones (Abyssinian_34, Egyptian_Mau_167).
"""

from __future__ import annotations

import io
import json
import tarfile
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

KVASIR_NAMES = ["cju0qkwl35piu0993l0dewei2", "cju0qoxqj9q6s0835b43399p4", "cju0roawvklrq0799vmjorwfv",
                "cju0rx1idathl0835detmsp84", "cju0s2a9ekvms080138tjjpxr", "cju0s690hkp960855tjuaqvv0",
                "cju0sr5ghl0nd08789uzf1raf", "cju0sxqiclckk08551ycbwhno"]
KVASIR_SIZES = [(332, 487), (576, 720), (530, 622), (1072, 1920 // 4), (400, 500), (576, 720), (350, 420),
                (500, 600)]   # (height, width); one is a quarter-width 1920x1072 to keep the test fast


def _blob(h: int, w: int, seed: int):
    """A photo-like image and the boolean mask of an elliptic 'polyp' / 'pet' in it."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    cy, cx, ry, rx = h * rng.uniform(0.35, 0.65), w * rng.uniform(0.35, 0.65), h * 0.25, w * 0.25
    inside = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
    image = rng.integers(0, 60, (h, w, 3)).astype(np.uint8) + np.array([120, 60, 50], dtype=np.uint8)
    image[inside] = [230, 150, 140]
    return image, inside


def _jpeg(array: np.ndarray, quality: int = 90, mode=None) -> bytes:
    buf = io.BytesIO()
    img = Image.fromarray(array)
    (img.convert(mode) if mode else img).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def kvasir_files(n: int = 8, drop_mask: str | None = None) -> dict:
    """{archive path: bytes} of a Kvasir-SEG copy with the first ``n`` frames."""
    files, boxes = {}, {}
    for i, (name, (h, w)) in enumerate(zip(KVASIR_NAMES[:n], KVASIR_SIZES[:n])):
        image, inside = _blob(h, w, i)
        files[f"Kvasir-SEG/images/{name}.jpg"] = _jpeg(image)
        noise = np.random.default_rng(100 + i).integers(-40, 41, (h, w, 3))
        mask = np.clip(np.where(inside[..., None], 255, 0) + noise, 0, 255).astype(np.uint8)
        if name != drop_mask:
            files[f"Kvasir-SEG/masks/{name}.jpg"] = _jpeg(mask, quality=75)
        ys, xs = np.nonzero(inside)
        boxes[name] = {"height": h, "width": w, "bbox": [{"label": "polyp", "xmin": int(xs.min()), "ymin": int(ys.min()),
                                                           "xmax": int(xs.max()), "ymax": int(ys.max())}]}
    files["Kvasir-SEG/kavsir_bboxes.json"] = json.dumps(boxes).encode()
    return files


def kvasir_clean_mask(index: int) -> np.ndarray:
    h, w = KVASIR_SIZES[index]
    return _blob(h, w, index)[1]


def write_kvasir_zip(folder: Path, n: int = 8, drop_mask: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "kvasir-seg.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in kvasir_files(n, drop_mask).items():
            archive.writestr(name, data)
    return path


def write_kvasir_folder(folder: Path, n: int = 8, drop_mask: str | None = None) -> Path:
    for name, data in kvasir_files(n, drop_mask).items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return folder


# ---------------------------------------------------------------- Oxford-IIIT Pet
PET_TRAINVAL = ["Abyssinian_100", "Abyssinian_101", "Abyssinian_5", "american_bulldog_10", "beagle_116",
                "chihuahua_121", "Egyptian_Mau_139", "Egyptian_Mau_167", "basset_hound_12", "Bengal_14"]
PET_TEST = ["Abyssinian_1", "Abyssinian_34", "american_bulldog_100", "beagle_1", "Bengal_1", "boxer_1"]
PET_ODD = {"beagle_116": "PNG data named .jpg", "chihuahua_121": "mode L", "Abyssinian_5": "PNG data named .jpg, mode RGBA",
           "Egyptian_Mau_139": "mode CMYK"}
PET_UNREADABLE = ("Abyssinian_34", "Egyptian_Mau_167")
PET_STRAYS = ("Abyssinian_100.mat", "Abyssinian_101.mat", "Abyssinian_102.mat")


def _pet_image(name: str, image: np.ndarray) -> bytes:
    if name in PET_UNREADABLE:
        return _jpeg(image)[:300]                         # cut short: Pillow cannot decode it
    if name == "beagle_116":
        buf = io.BytesIO(); Image.fromarray(image).save(buf, "PNG"); return buf.getvalue()
    if name == "Abyssinian_5":
        buf = io.BytesIO(); Image.fromarray(image).convert("RGBA").save(buf, "PNG"); return buf.getvalue()
    if name == "chihuahua_121":
        return _jpeg(image, mode="L")
    if name == "Egyptian_Mau_139":
        return _jpeg(image, mode="CMYK")
    return _jpeg(image)


def trimap(inside: np.ndarray) -> np.ndarray:
    """1 pet, 2 background, 3 a border two pixels wide around the pet."""
    grown = inside.copy()
    for dy in (-2, -1, 0, 1, 2):
        for dx in (-2, -1, 0, 1, 2):
            grown |= np.roll(np.roll(inside, dy, 0), dx, 1)
    return np.where(inside, 1, np.where(grown, 3, 2)).astype(np.uint8)


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO(); Image.fromarray(array).save(buf, "PNG"); return buf.getvalue()


def oxford_members(bad_trimap: str | None = None) -> tuple:
    """({path: bytes} of images.tar.gz, {path: bytes} of annotations.tar.gz)."""
    images, annotations = {}, {}
    header = "#Image CLASS-ID SPECIES BREED ID\n#ID: 1:37 Class ids\n#SPECIES: 1:Cat 2:Dog\n#BREED ID: 1-25:Cat 1:12:Dog\n"
    lists = {"trainval": PET_TRAINVAL, "test": PET_TEST}
    for k, names in enumerate(lists.values()):
        for i, name in enumerate(names):
            h, w = 180 + 20 * (i % 3), 240 + 30 * (i % 2) + 10 * k
            image, inside = _blob(h, w, 1000 * k + i)
            images[f"images/{name}.jpg"] = _pet_image(name, image)
            t = trimap(inside)
            if name == bad_trimap:
                t[0, 0] = 0            # a value outside 1-3
            annotations[f"annotations/trimaps/{name}.png"] = _png(t)
            annotations[f"annotations/trimaps/._{name}.png"] = b"\x00\x05\x16\x07 AppleDouble"
            annotations[f"annotations/xmls/{name}.xml"] = f"<annotation><filename>{name}.jpg</filename></annotation>".encode()
    for stray in PET_STRAYS:
        images[f"images/{stray}"] = b"MATLAB 5.0 MAT-file"
    for split, names in lists.items():
        annotations[f"annotations/{split}.txt"] = "".join(f"{n} 1 1 1\n" for n in names).encode()
    annotations["annotations/list.txt"] = (header + "".join(f"{n} 1 1 1\n" for n in PET_TRAINVAL + PET_TEST)).encode()
    annotations["annotations/README"] = b"OXFORD-IIIT PET Dataset\n"
    return images, annotations


def _tar(path: Path, members: dict, gzip: bool) -> Path:
    with tarfile.open(path, "w:gz" if gzip else "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def write_oxford_archives(folder: Path, gzip: bool = True, bad_trimap: str | None = None) -> Path:
    """images.tar.gz + annotations.tar.gz in ``folder`` (plain tar inside when gzip=False, as some
    mirrors serve them)."""
    folder.mkdir(parents=True, exist_ok=True)
    images, annotations = oxford_members(bad_trimap)
    _tar(folder / "images.tar.gz", images, gzip)
    _tar(folder / "annotations.tar.gz", annotations, gzip)
    return folder
