"""What one preparation run will do, resolved from its source before any array is written.

Use::

    plan = Plan(source={"kind": "synthetic", ...}, items=[0, 1, 2], groups=["a", "a", "b"],
                encoding={"kind": "index", "detected": False}, classes=CARLA13, ignore_index=None)

api.py builds the synthetic plan, plan_files.py the plan over real files; api.prepare() runs
either. It lives apart from both so that neither imports the other for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional


@dataclass
class Plan:
    source: dict                          # the split file's "source" object (skipped filled later)
    items: list                           # synthetic indices or layouts.Pair
    groups: List[str]                     # folder of each item (for --split-by folder)
    encoding: dict
    classes: list                         # [(id, name, (r, g, b))]
    ignore_index: Optional[int]
    files: list = field(default_factory=list)      # (rel, size, mtime_ns) for the fingerprint
    skipped: list = field(default_factory=list)    # found before decoding (unpaired files)
    reader: object = None                 # sources.SourceReader, sent to the workers
    decoder: object = None                # encodings.MaskDecoder, sent to the workers
    settings: dict = field(default_factory=dict)   # source-specific settings for the fingerprint
    dataset: object = None                # registry.DatasetSpec whose defaults apply (None: generic)
    dataset_reason: str = ""              # how it was matched, or why none was
    defaults_used: list = field(default_factory=list)   # settings taken from that entry so far
    ignored_colours: list = field(default_factory=list)  # [(r, g, b)] labelled ignore_index
    official_split: bool = False          # groups are the dataset's official "trainval"/"test" lists
