"""Which registered dataset's defaults a preparation run uses (unetbench/core/registry.py, DATASETS).

Use::

    spec, why = spec_for_slug("owner/name")           # (DatasetSpec, "Kaggle slug owner/name") or (None, why)
    spec, why = spec_for_layouts({("_out", "_out_seg_city")})   # a --source-dir folder or zip
    GENERIC.crops_per_image                           # 1: the defaults when no entry applies

A Kaggle download takes the entry with its slug; a ``--source-dir`` takes the entry whose
``layout`` (image folder, mask folder) is the one layout found in it, so a local copy of a
registered dataset prepares exactly like its download. Anything else gets ``GENERIC``: the
``DatasetSpec`` class defaults (detect the encoding, 1 crop per image, 384x512). Explicit flags
always win over either; api.prepare() resolves them and logs where each default came from.
"""

from __future__ import annotations

from typing import Iterable, Optional, Tuple

from ...core.registry import DATASETS, DatasetSpec

GENERIC = DatasetSpec(name="generic", title="generic defaults (no registered dataset matched)", kaggle_slug="")


def spec_for_name(name: str) -> DatasetSpec:
    """--dataset NAME: a registered name or one of its aliases (carla, kvasir_seg, oxford_pet)."""
    from ...core.errors import UserError
    from ...core.registry import DATASET_ALIASES
    key = DATASET_ALIASES.get(name.lower(), name.lower())
    if key not in DATASETS:
        raise UserError(f"--dataset {name!r}: choose one of {', '.join(DATASETS)} "
                        f"(or {', '.join(DATASET_ALIASES)})")
    return DATASETS[key]


def spec_for_slug(slug: str) -> Tuple[Optional[DatasetSpec], str]:
    for spec in DATASETS.values():
        if spec.kaggle_slug and spec.kaggle_slug.lower() == slug.lower():
            return spec, f"Kaggle slug {spec.kaggle_slug}"
    return None, f"Kaggle slug {slug} is not a registered dataset"


def spec_for_layouts(layouts: Iterable[Tuple[str, str]], parents: Iterable[str] = ()
                     ) -> Tuple[Optional[DatasetSpec], str]:
    """``parents``: the names of the folders holding the layouts (layouts.layout_parents); an entry
    with a ``root_name`` (Kvasir-SEG's generic images/ + masks/) matches only inside that folder."""
    found = sorted(set(layouts))
    parents = {p.lower() for p in parents}
    shown = ", ".join(f"{a}/{b}" for a, b in found) or "none"
    if len(found) == 1:
        for spec in DATASETS.values():
            if _low(spec.layout) == found[0] and (spec.root_name is None or spec.root_name.lower() in parents):
                where = f" in {spec.root_name}/" if spec.root_name else ""
                return spec, f"layout {shown}{where}"
        return None, f"layout {shown} is not a registered dataset's"
    if any(_low(spec.layout) in found and spec.root_name is None for spec in DATASETS.values()):
        return None, f"several layouts in one source ({shown})"
    return None, f"layouts {shown}"


def _low(layout: Optional[Tuple[str, str]]) -> Optional[Tuple[str, str]]:
    return (layout[0].lower(), layout[1].lower()) if layout else None


def layout_names() -> list:
    """Every registered dataset's layout as written in the registry, e.g. "_out/_out_seg_city"."""
    return [f"{spec.layout[0]}/{spec.layout[1]}" for spec in DATASETS.values() if spec.layout]


def describe(spec: DatasetSpec) -> str:
    """One line of a dataset entry's defaults (for --help and the docs)."""
    parts = [f"palette {spec.palette}" if spec.palette else f"{spec.encoding} masks" if spec.encoding
             else "encoding detected"]
    if spec.ignored_colours:
        parts.append("ignored colours " + " ".join(f"({r},{g},{b})" for r, g, b in spec.ignored_colours))
    parts.append(f"{spec.crops_per_image} crop(s) of {spec.crop[0]}x{spec.crop[1]} per image")
    if spec.resize != "none":
        parts.append(f"resize {spec.resize}")
    if spec.layout:
        where = f" in {spec.root_name}/" if spec.root_name else ""
        parts.append(f"layout {spec.layout[0]}/ + {spec.layout[1]}/{where}")
    if spec.split_lists:
        parts.append("official test list")
    return ", ".join(parts)
