"""Class tables: CARLA's semantic tags and their CityScapes palette colours.

Use::

    from unetbench.data.prepare.classes import BUILTIN_PALETTES
    BUILTIN_PALETTES["carla13"]   # [(id, name, (r, g, b)), ...]

``carla20`` is the seed's table for its CARLA Vision Dataset (the default dataset of
unetbench/core/registry.py): CARLA 0.9.x's CityScapes colours without Unlabeled, Other and GuardRail,
in the seed's order (sorted by colour), class id = position. ``carla13`` is the CARLA 0.8 tag set
the lyft-udacity Kaggle data uses (13 classes); ``carla23`` is CARLA 0.9.x before 0.9.14;
``carla29`` is CARLA 0.9.14+ (its ids are CityScapes-ordered, so the same colour has a different
id than in the other tables).
"""

from __future__ import annotations

from typing import List, Tuple

ClassEntry = Tuple[int, str, Tuple[int, int, int]]

CARLA20: List[ClassEntry] = [
    (0, "Vehicles", (0, 0, 142)),
    (1, "Water", (45, 60, 150)),
    (2, "Building", (70, 70, 70)),
    (3, "Sky", (70, 130, 180)),
    (4, "Ground", (81, 0, 81)),
    (5, "Fence", (100, 40, 40)),
    (6, "Wall", (102, 102, 156)),
    (7, "Vegetation", (107, 142, 35)),
    (8, "Static", (110, 190, 160)),
    (9, "Road", (128, 64, 128)),
    (10, "Terrain", (145, 170, 100)),
    (11, "Bridge", (150, 100, 100)),
    (12, "Pole", (153, 153, 153)),
    (13, "RoadLine", (157, 234, 50)),
    (14, "Dynamic", (170, 120, 50)),
    (15, "Pedestrian", (220, 20, 60)),
    (16, "TrafficSign", (220, 220, 0)),
    (17, "RailTrack", (230, 150, 140)),
    (18, "Sidewalk", (244, 35, 232)),
    (19, "TrafficLight", (250, 170, 30)),
]

CARLA13: List[ClassEntry] = [
    (0, "Unlabeled", (0, 0, 0)),
    (1, "Buildings", (70, 70, 70)),
    (2, "Fences", (190, 153, 153)),
    (3, "Other", (250, 170, 160)),
    (4, "Pedestrians", (220, 20, 60)),
    (5, "Poles", (153, 153, 153)),
    (6, "RoadLines", (157, 234, 50)),
    (7, "Roads", (128, 64, 128)),
    (8, "Sidewalks", (244, 35, 232)),
    (9, "Vegetation", (107, 142, 35)),
    (10, "Vehicles", (0, 0, 142)),
    (11, "Walls", (102, 102, 156)),
    (12, "TrafficSigns", (220, 220, 0)),
]

CARLA23: List[ClassEntry] = [
    (0, "Unlabeled", (0, 0, 0)),
    (1, "Building", (70, 70, 70)),
    (2, "Fence", (100, 40, 40)),
    (3, "Other", (55, 90, 80)),
    (4, "Pedestrian", (220, 20, 60)),
    (5, "Pole", (153, 153, 153)),
    (6, "RoadLine", (157, 234, 50)),
    (7, "Road", (128, 64, 128)),
    (8, "SideWalk", (244, 35, 232)),
    (9, "Vegetation", (107, 142, 35)),
    (10, "Vehicles", (0, 0, 142)),
    (11, "Wall", (102, 102, 156)),
    (12, "TrafficSign", (220, 220, 0)),
    (13, "Sky", (70, 130, 180)),
    (14, "Ground", (81, 0, 81)),
    (15, "Bridge", (150, 100, 100)),
    (16, "RailTrack", (230, 150, 140)),
    (17, "GuardRail", (180, 165, 180)),
    (18, "TrafficLight", (250, 170, 30)),
    (19, "Static", (110, 190, 160)),
    (20, "Dynamic", (170, 120, 50)),
    (21, "Water", (45, 60, 150)),
    (22, "Terrain", (145, 170, 100)),
]

CARLA29: List[ClassEntry] = [
    (0, "Unlabeled", (0, 0, 0)),
    (1, "Roads", (128, 64, 128)),
    (2, "SideWalks", (244, 35, 232)),
    (3, "Building", (70, 70, 70)),
    (4, "Wall", (102, 102, 156)),
    (5, "Fence", (190, 153, 153)),
    (6, "Pole", (153, 153, 153)),
    (7, "TrafficLight", (250, 170, 30)),
    (8, "TrafficSign", (220, 220, 0)),
    (9, "Vegetation", (107, 142, 35)),
    (10, "Terrain", (152, 251, 152)),
    (11, "Sky", (70, 130, 180)),
    (12, "Pedestrian", (220, 20, 60)),
    (13, "Rider", (255, 0, 0)),
    (14, "Car", (0, 0, 142)),
    (15, "Truck", (0, 0, 70)),
    (16, "Bus", (0, 60, 100)),
    (17, "Train", (0, 80, 100)),
    (18, "Motorcycle", (0, 0, 230)),
    (19, "Bicycle", (119, 11, 32)),
    (20, "Static", (110, 190, 160)),
    (21, "Dynamic", (170, 120, 50)),
    (22, "Other", (55, 90, 80)),
    (23, "Water", (45, 60, 150)),
    (24, "RoadLine", (157, 234, 50)),
    (25, "Ground", (81, 0, 81)),
    (26, "Bridge", (150, 100, 100)),
    (27, "RailTrack", (230, 150, 140)),
    (28, "GuardRail", (180, 165, 180)),
]

# Detection (prepare/encodings.py) takes the first of these that holds every mask colour; carla20
# comes last, so a source it covers is detected as carla23 (its superset): carla20 is used when a
# dataset entry (unetbench/core/registry.py) or --palette names it.
BUILTIN_PALETTES = {"carla13": CARLA13, "carla23": CARLA23, "carla29": CARLA29, "carla20": CARLA20}


def classes_json(table: List[ClassEntry]) -> list:
    """The ``classes`` list of dataset_splits.json."""
    return [{"id": cid, "name": name, "color": list(color)} for cid, name, color in table]


def generic_table(num_classes: int) -> List[ClassEntry]:
    """Names and colours for classes beyond a known table: ``class_<id>`` and a fixed colour."""
    table = []
    for cid in range(num_classes):
        if cid < len(CARLA13) and num_classes <= len(CARLA13):
            table.append(CARLA13[cid])
            continue
        # a deterministic, well-spread colour (golden-ratio hue walk would need colorsys; this is enough)
        color = ((cid * 67) % 256, (cid * 151) % 256, (cid * 211) % 256)
        table.append((cid, f"class_{cid}", color))
    return table
