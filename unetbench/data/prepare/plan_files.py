"""Plan a run over real data: find the source, its pairs, the encoding and the classes.

Use (from api.prepare)::

    plan = plan_files(source_dir="lyft.zip", kaggle_dataset=None, cache_dir=None, num_images=None,
                      seed=42, encoding="auto", palette=None, num_classes=None, class_names=None,
                      unknown_to_ignore=False, skip_bad=False)

The registered dataset whose defaults apply is chosen here (prepare/defaults.py: by Kaggle slug,
or by the layout found in a --source-dir); its palette and ignored colours are used unless
--encoding or --palette say otherwise (the ignored colours go with the dataset's palette).
Nothing is written here; every problem found before decoding (no pairs, unpaired files,
undetectable encoding, inconsistent class settings) is a ``UserError``.
"""

from __future__ import annotations

import logging
from typing import Optional, Sequence

import numpy as np

from ...core.errors import UserError
from ..prepared import IGNORE_INDEX
from .classes import BUILTIN_PALETTES, CARLA13, generic_table
from .datasets import fixed_encoding, known_strays, official_groups
from .decode import load_mask, open_image
from .defaults import layout_names, spec_for_layouts, spec_for_slug
from .encodings import MaskDecoder, detect_encoding, load_palette
from .layouts import (
    FOLDER_PAIRS,
    describe_folders,
    find_pairs,
    folder_layouts,
    layout_parents,
)
from .official import fetch_official
from .pair_error import PairError
from .plan import Plan
from .sources import SourceReader, _cache_root, fetch_kaggle, list_files, open_source

log = logging.getLogger("unetbench.data.prepare")

DETECT_SAMPLES = 8


def plan_files(*, source_dir, kaggle_dataset: str, cache_dir, num_images: Optional[int], seed: int,
               encoding: str, palette: Optional[str], num_classes: Optional[int],
               class_names: Optional[Sequence[str]], unknown_to_ignore: bool, skip_bad: bool,
               dataset=None) -> Plan:
    """``dataset``: the registry entry --dataset named (its defaults apply whatever the layout)."""
    if source_dir:
        reader = open_source(source_dir, cache_dir)
        kind, location = reader.kind, reader.root
    elif dataset is not None and dataset.urls:      # Kvasir-SEG, Oxford-IIIT Pet: their own sites
        reader = open_source(fetch_official(dataset, _cache_root(cache_dir)), cache_dir)
        kind, location = "official", ", ".join(dataset.urls)
    else:
        zip_path = fetch_kaggle(kaggle_dataset, cache_dir)
        reader = SourceReader("zip", str(zip_path))
        kind, location = "kaggle", kaggle_dataset
    files = list_files(reader)
    rels = [f[0] for f in files]
    pairs, unmatched, found = find_pairs(rels)
    layouts = folder_layouts(rels)
    if dataset is not None:
        spec, reason = dataset, f"--dataset {dataset.name}"
    elif source_dir:
        spec, reason = spec_for_layouts(layouts, layout_parents(rels))
    else:
        spec, reason = spec_for_slug(kaggle_dataset)
        if spec is not None and spec.layout and pairs and tuple(n.lower() for n in spec.layout) not in layouts:
            log.warning("the %s archive has no %s/ + %s/ folders, which its dataset entry %s expects; its "
                        "defaults still apply (override them with flags)", kaggle_dataset, *spec.layout, spec.name)
    if not pairs:
        known = layout_names()
        names = ", ".join(known + [f"{a}/{b}" for a, b in FOLDER_PAIRS if f"{a}/{b}" not in
                                   {k.lower() for k in known}][:5])
        raise UserError(f"no image/mask pairs found in {location}: {len(files)} image file(s) in "
                        f"folder(s) {describe_folders(rels)}; expected sibling folders like {names} (any depth, "
                        "any case) holding files with the same names")
    log.info("source %s: %d image files, %d pairs in %s", location, len(files), len(pairs), "; ".join(found[:5])
             + (f" and {len(found) - 5} more" if len(found) > 5 else ""))
    if unmatched and not skip_bad:
        shown = "; ".join(f"{u['image'] or u['mask']}: {u['reason']}" for u in unmatched[:5])
        raise UserError(f"{len(unmatched)} unpaired file(s) (images and masks must match one to one by file "
                        f"name), first: {shown}; add the missing files, remove the strays, or pass --skip-bad "
                        "to skip them")
    for u in unmatched[:20]:
        log.warning("skipping %s: %s", u["image"] or u["mask"], u["reason"])
    if num_images and num_images < len(pairs):
        rng = np.random.default_rng([int(seed), 0x5AB5E7])
        chosen = np.sort(rng.choice(len(pairs), size=num_images, replace=False))
        pairs = [pairs[i] for i in chosen]
        log.info("using a random subset of %d pairs (--num-images)", num_images)

    defaults_used = []
    spec_palette = spec.palette if spec is not None else None
    fixed = fixed_encoding(spec) if encoding in (None, "auto") and palette is None else None
    if fixed is not None:                   # Kvasir-SEG's threshold, Oxford-IIIT Pet's trimaps
        kind_enc, table, detected = fixed[0], None, False
        palette_name = None
        defaults_used.append("encoding")
        log.info("mask encoding: %s (dataset entry %s; --encoding overrides)", kind_enc, spec.name)
    elif spec_palette and palette is None and encoding in (None, "auto", "palette"):
        palette_name = spec_palette             # the dataset's palette, as if --palette named it
        defaults_used.append("palette")
        kind_enc, table, detected = "palette", load_palette(spec_palette), False
        log.info("mask encoding: palette %s (dataset entry %s; --encoding/--palette override)", spec_palette,
                 spec.name)
    else:
        palette_name = palette.lower() if palette and palette.lower() in BUILTIN_PALETTES else palette
        kind_enc, table, detected = _resolve_encoding(reader, pairs, encoding, palette)
    # A dataset's ignored colours belong to its palette: with another table they would mean nothing.
    ignored = []
    if spec_palette and spec.ignored_colours and kind_enc == "palette" and palette_name == spec_palette:
        ignored = [tuple(c) for c in spec.ignored_colours]
        defaults_used.append("ignored_colours")
    classes = fixed[1] if fixed is not None else _resolve_classes(kind_enc, table, num_classes, class_names)
    decoder = MaskDecoder.build(kind_enc, len(classes), table if kind_enc == "palette" else None,
                                unknown_to_ignore, ignored_colours=ignored,
                                palette_name=palette_name if kind_enc == "palette" else None)
    source = {"kind": kind, "location": location, "files_found": len(files)}
    settings = {"source": kind, "location": location, "palette": palette_name,
                "dataset": spec.name if spec is not None else None, "ignored_colours": ignored,
                "unknown_to_ignore": bool(unknown_to_ignore)}
    official = official_groups(reader, pairs, spec)
    unmatched = unmatched + known_strays(reader, pairs, spec)
    return Plan(source=source, items=pairs, groups=official or [p.group for p in pairs], official_split=bool(official),
                encoding={"kind": kind_enc, "detected": detected}, classes=classes,
                ignore_index=IGNORE_INDEX if (unknown_to_ignore or ignored) else None, files=files,
                skipped=unmatched, reader=reader, decoder=decoder, settings=settings, dataset=spec,
                dataset_reason=reason, defaults_used=defaults_used, ignored_colours=ignored)


def _resolve_encoding(reader, pairs, encoding: str, palette: Optional[str]):
    if encoding not in (None, "auto"):
        table = load_palette(palette) if palette else None
        if encoding == "palette" and table is None:
            table = BUILTIN_PALETTES["carla13"]
            log.info("--encoding palette without --palette: using the built-in carla13 palette")
        log.info("mask encoding: %s (from --encoding)", encoding)
        return encoding, table, False
    samples = []
    step = max(1, len(pairs) // DETECT_SAMPLES)
    for pair in pairs[::step][:DETECT_SAMPLES]:
        try:
            img = open_image(reader.read(pair.mask), pair.mask, "mask")
        except (PairError, OSError):
            continue  # a bad file is reported properly when its pair is processed
        single = img.mode in ("L", "P", "I", "I;16", "I;16B", "F", "1")
        samples.append((pair.mask, load_mask(img, "single" if single else "rgb")))
    kind, table, why = detect_encoding(samples, palette)
    log.info("mask encoding detected: %s (%s; --encoding overrides)", kind, why)
    return kind, table, True


def _resolve_classes(kind: str, table, num_classes: Optional[int], class_names: Optional[Sequence[str]]):
    if kind == "palette":
        n = num_classes or len(table)
        if n > len(table):
            raise UserError(f"--num-classes {n}: the palette only has {len(table)} colours")
        classes = [e for e in table if e[0] < n]
    else:
        n = num_classes or (len(class_names) if class_names else len(CARLA13))
        known = {len(t): t for t in BUILTIN_PALETTES.values()}
        classes = list(known[n]) if n in known else generic_table(n)
    if class_names:
        if len(class_names) != len(classes):
            raise UserError(f"--class-names lists {len(class_names)} names but there are {len(classes)} classes; "
                            "give one name per class id, or set --num-classes")
        classes = [(cid, name, color) for (cid, _, color), name in zip(classes, class_names)]
    return classes
