"""Procedural CARLA-like street scenes, labelled with CARLA 0.8's 13 class ids.

Use::

    python3 prepare_dataset.py --synthetic --num-images 40 --crop 64x96 --out data
    # or, in Python:
    from unetbench.data.prepare.synthetic import render_scene
    image, label = render_scene(seed=42, index=0, height=384, width=512)

A scene is sky, a skyline of buildings/walls/trees with fences at their feet, a road in
perspective with dashed lane lines, sidewalks, grass or terrain at the sides, poles with traffic
signs, cars and pedestrians, then texture noise and lighting. Every class has its own colour
range and texture strength, so a small UNet learns them in minutes on a CPU; the geometry
(horizon, vanishing point, road width, objects) varies per image so it cannot just memorise
positions. Everything is vectorised numpy: a few dozen whole-frame operations per image, no
per-pixel Python loops. Deterministic: (seed, index, height, width) fixes the pair.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Tuple

import numpy as np

from .classes import CARLA13

# class ids (CARLA 0.8)
UNLABELED, BUILDINGS, FENCES, OTHER, PEDESTRIANS, POLES, ROADLINES, ROADS, SIDEWALKS, \
    VEGETATION, VEHICLES, WALLS, TRAFFICSIGNS = range(13)

SYNTHETIC_CLASSES = CARLA13

# Base colours (RGB) of each class in the rendered *image*, not the palette: chosen to look like
# a street and to be separable. Per-image lighting and per-instance jitter vary around them.
_BASE_COLOR = np.array([
    (135, 180, 225),  # 0 sky (CARLA 0.8 labels sky as None/unlabeled)
    (120, 110, 105),  # 1 buildings
    (140, 95, 60),    # 2 fences: brown wood
    (150, 135, 95),   # 3 other: bare terrain
    (170, 40, 50),    # 4 pedestrians: clothing, re-coloured per person
    (95, 95, 100),    # 5 poles: dark grey metal
    (235, 235, 225),  # 6 road lines: white paint
    (75, 75, 80),     # 7 road: asphalt
    (175, 165, 160),  # 8 sidewalks: light paving
    (60, 125, 45),    # 9 vegetation: green
    (30, 60, 160),    # 10 vehicles: re-coloured per car
    (200, 185, 150),  # 11 walls: beige render
    (230, 200, 30),   # 12 traffic signs: yellow
], dtype=np.int16)

# Texture strength per class: fine grain and coarse blotches (units: noise/16 grey levels).
_FINE_AMP = np.array([1, 5, 8, 10, 4, 2, 2, 6, 4, 22, 2, 4, 1], dtype=np.int16)
_COARSE_AMP = np.array([6, 8, 4, 10, 2, 1, 1, 5, 6, 14, 2, 6, 1], dtype=np.int16)


@lru_cache(maxsize=4)
def _noise_bank(height: int, width: int) -> Tuple[np.ndarray, np.ndarray]:
    """Fine and coarse noise fields twice the frame size; every image slices a random window.

    Generated once per process from a fixed seed, so every worker has the same bank and the
    output depends only on (seed, index).
    """
    rng = np.random.default_rng(0x5EED)
    h2, w2 = 2 * height + 8, 2 * width + 8
    fine = rng.integers(-16, 17, size=(h2, w2), dtype=np.int16)
    # coarse: a low-resolution field upsampled by repetition (blocky blotches, cheap)
    cell = 8
    low = rng.integers(-16, 17, size=(h2 // cell + 1, w2 // cell + 1), dtype=np.int16)
    coarse = np.repeat(np.repeat(low, cell, axis=0), cell, axis=1)[:h2, :w2]
    # soften the block edges a little by averaging with a shifted copy
    coarse = ((coarse + np.roll(coarse, cell // 2, axis=0) + np.roll(coarse, cell // 2, axis=1)) // 3).astype(np.int16)
    return fine, coarse


def render_scene(seed: int, index: int, height: int, width: int) -> Tuple[np.ndarray, np.ndarray]:
    """Render scene ``index`` of the set ``seed``: (image uint8 HxWx3, label uint8 HxW)."""
    rng = np.random.default_rng([int(seed), int(index), 0x5C3E])
    H, W = int(height), int(width)
    label = np.zeros((H, W), dtype=np.uint8)  # sky = 0
    cols = np.arange(W, dtype=np.float32)[None, :]

    # --- perspective: horizon row and vanishing point vary per image
    horizon = int(H * rng.uniform(0.35, 0.55))
    vx = W * rng.uniform(0.3, 0.7)

    # --- skyline above the horizon: blocks of buildings, walls and trees
    n_blocks = int(rng.integers(3, 8))
    cuts = np.sort(rng.integers(0, W, size=n_blocks - 1))
    edges = np.concatenate(([0], cuts, [W]))
    block_kind = rng.choice([BUILDINGS, BUILDINGS, BUILDINGS, WALLS, VEGETATION], size=n_blocks)
    block_top = (horizon * rng.uniform(0.0, 0.8, size=n_blocks)).astype(np.int32)
    low_kind = block_kind != BUILDINGS  # walls and trees are lower than buildings
    block_top[low_kind] = np.maximum(block_top[low_kind], (horizon * rng.uniform(0.45, 0.85, size=int(low_kind.sum()))).astype(np.int32))
    widths = np.diff(edges)
    skyline_top = np.repeat(block_top, widths)
    skyline_kind = np.repeat(block_kind, widths).astype(np.uint8)
    upper = label[:horizon]
    rows_up = np.arange(horizon, dtype=np.int32)[:, None]
    np.copyto(upper, skyline_kind[None, :], where=rows_up >= skyline_top[None, :])
    # fences along the feet of some blocks
    for b in np.flatnonzero(rng.random(n_blocks) < 0.3):
        fh = max(1, int(horizon * rng.uniform(0.05, 0.12)))
        upper[max(0, horizon - fh):horizon, edges[b]:edges[b + 1]] = FENCES

    # --- ground: road trapezoid, sidewalks, then grass or terrain at the sides
    lower = label[horizon:]
    depth = np.arange(1, H - horizon + 1, dtype=np.float32)[:, None]  # rows below the horizon
    scale = W / max(1.0, H - horizon)
    k_left, k_right = rng.uniform(0.6, 1.6, size=2) * scale
    k_walk = rng.uniform(0.25, 0.6) * scale
    x_left = vx - depth * k_left
    x_right = vx + depth * k_right
    side_left, side_right = rng.choice([VEGETATION, OTHER, OTHER], size=2)
    split_col = min(W, max(0, int(vx)))
    lower[:, :split_col] = side_left
    lower[:, split_col:] = side_right
    walk = (cols >= x_left - depth * k_walk) & (cols <= x_right + depth * k_walk)
    lower[walk] = SIDEWALKS
    road = (cols >= x_left) & (cols <= x_right)
    lower[road] = ROADS
    # dashed centre line, perspective-scaled width and dash length
    k_line = rng.uniform(-0.3, 0.3) * scale + (k_right - k_left) / 2
    line_half = 0.6 + depth * (0.012 * scale)
    dash = (np.floor(np.sqrt(depth) * rng.uniform(0.9, 1.6) + rng.uniform(0, 2)) % 2) == 0
    line = (np.abs(cols - (vx + depth * k_line)) <= line_half) & dash & road
    lower[line] = ROADLINES

    # Colour goes through an "appearance" map: ids 0..12 are the classes' base colours, then one id
    # per block tint, per block window colour and per object part. One table lookup per channel
    # then paints everything; that is much cheaper than masked adds on an (H, W, 3) array.
    palette = [tuple(int(v) for v in c) for c in _BASE_COLOR]
    appearance = label.copy()
    tints = rng.integers(-25, 26, size=(n_blocks, 3))
    for b in range(n_blocks):
        palette.append(tuple(int(v) for v in _BASE_COLOR[block_kind[b]] + tints[b]))
    for b in range(n_blocks):  # windows: a darker grid on building facades
        palette.append(tuple(int(v) for v in _BASE_COLOR[block_kind[b]] + tints[b] - 45))
    block_of_col = np.repeat(np.arange(n_blocks, dtype=np.uint8), widths)
    is_block = upper == skyline_kind[None, :]
    win_y = np.repeat(np.maximum(3, (rng.integers(6, 14, size=n_blocks) * H) // 384), widths)
    win_x = np.repeat(np.maximum(3, (rng.integers(8, 18, size=n_blocks) * W) // 512), widths)
    col_in_block = np.arange(W) - np.repeat(edges[:-1], widths)
    win_cols = ((col_in_block % win_x) < (win_x // 2)) & (skyline_kind == BUILDINGS)
    win_rows = ((rows_up - skyline_top[None, :]) % win_y[None, :]) < (win_y[None, :] // 2)
    block_app = (13 + block_of_col)[None, :] + (n_blocks * (win_rows & win_cols[None, :])).astype(np.uint8)
    np.copyto(appearance[:horizon], block_app, where=is_block)

    def paint(y0: int, y1: int, x0: int, x1: int, cls: int, color) -> None:
        label[y0:y1, x0:x1] = cls
        appearance[y0:y1, x0:x1] = len(palette)
        palette.append(tuple(int(v) for v in color))

    # --- objects, far to near so near ones occlude far ones
    objects = []
    for _ in range(int(rng.integers(1, 5))):  # cars on the road
        objects.append((VEHICLES, rng.uniform(0.08, 1.0)))
    for _ in range(int(rng.integers(0, 4))):  # pedestrians on the sidewalk
        objects.append((PEDESTRIANS, rng.uniform(0.1, 1.0)))
    for _ in range(int(rng.integers(1, 4))):  # poles with signs
        objects.append((POLES, rng.uniform(0.05, 0.9)))
    objects.sort(key=lambda o: o[1])
    ground_h = H - horizon
    for kind, near in objects:
        d = max(1.0, near * ground_h)  # depth of the object's foot below the horizon
        foot = min(H - 1, horizon + int(d))
        xl, xr = vx - d * k_left, vx + d * k_right
        if kind == VEHICLES:
            cw = max(3, int(d * scale * rng.uniform(0.22, 0.35)))
            ch = max(2, int(cw * rng.uniform(0.45, 0.7)))
            cx = int(rng.uniform(xl, max(xl + 1, xr - cw)))
            y0, x0, x1 = max(0, foot - ch), max(0, cx), min(W, cx + cw)
            if x1 <= x0:
                continue
            paint(y0, foot, x0, x1, VEHICLES, rng.integers(20, 230, size=3))
            # cabin with dark windows on top, dark tyres at the bottom
            rh = max(1, ch // 2)
            rx0, rx1 = x0 + (x1 - x0) // 6, x1 - (x1 - x0) // 6
            ry0 = max(0, y0 - rh)
            paint(ry0, y0, rx0, rx1, VEHICLES, (35, 40, 50))
            paint(max(y0, foot - max(1, ch // 5)), foot, x0, x1, VEHICLES, (20, 20, 20))
        elif kind == PEDESTRIANS:
            ph = max(3, int(d * scale * rng.uniform(0.35, 0.5)))
            pw = max(1, ph // 4)
            on_left = rng.random() < 0.5
            cx = int((xl - d * k_walk * 0.5) if on_left else (xr + d * k_walk * 0.5))
            y0, x0, x1 = max(0, foot - ph), max(0, cx - pw // 2), min(W, cx - pw // 2 + pw)
            if x1 <= x0:
                continue
            paint(y0, foot, x0, x1, PEDESTRIANS, rng.integers(20, 200, size=3))
            paint(foot - ph // 2, foot, x0, x1, PEDESTRIANS, rng.integers(20, 90, size=3))  # legs
            paint(max(0, y0 - max(1, pw)), y0, x0, x1, PEDESTRIANS, (205, 160, 130))  # head
        else:  # pole with a sign
            ph = max(4, int(d * scale * rng.uniform(0.8, 1.4)))
            pw = max(1, int(d * scale * 0.03))
            on_left = rng.random() < 0.5
            cx = int((xl - d * k_walk * 0.9) if on_left else (xr + d * k_walk * 0.9))
            y0, x0, x1 = max(0, foot - ph), max(0, cx), min(W, cx + pw)
            if x1 <= x0:
                continue
            paint(y0, foot, x0, x1, POLES, _BASE_COLOR[POLES])
            if rng.random() < 0.7:
                sw = max(2, int(pw * rng.uniform(4, 7)))
                sh = max(2, int(sw * rng.uniform(0.6, 1.0)))
                sx0 = max(0, cx + pw // 2 - sw // 2)
                sx1 = min(W, sx0 + sw)
                sy1 = min(H, y0 + sh)
                paint(y0, sy1, sx0, sx1, TRAFFICSIGNS, _BASE_COLOR[TRAFFICSIGNS] + rng.integers(-25, 26, size=3))

    # --- texture and lighting (int16 arithmetic, one pass each)
    fine_bank, coarse_bank = _noise_bank(H, W)
    oy, ox = int(rng.integers(0, H + 8)), int(rng.integers(0, W + 8))
    texture = fine_bank[oy:oy + H, ox:ox + W] * np.take(_FINE_AMP, label)
    texture += coarse_bank[oy:oy + H, ox:ox + W] * np.take(_COARSE_AMP, label)
    texture >>= 4
    # sky brightens towards the horizon (a cue beyond flat colour)
    sky_gradient = (np.arange(horizon, dtype=np.int16) * 40 // max(1, horizon))[:, None]
    np.add(texture[:horizon], sky_gradient, out=texture[:horizon], where=upper == UNLABELED)
    # lighting: global gain, colour cast and a left-right shading ramp, in 7-bit fixed point
    # uint16 (255 * 1.5 * 128 < 65536; uint16 math is several times cheaper than int32)
    gain = rng.uniform(0.7, 1.25)
    ramp = 1.0 + rng.uniform(-0.2, 0.2) * (np.arange(W, dtype=np.float32) / W - 0.5)
    cast = 1.0 + rng.uniform(-0.06, 0.06, size=3)
    table = np.array(palette, dtype=np.int16)
    image = np.empty((H, W, 3), dtype=np.uint8)
    for c in range(3):  # planar: contiguous (H, W) passes, interleaved only on the final store
        plane = np.take(table[:, c], appearance)
        plane += texture
        np.clip(plane, 0, 255, out=plane)
        lit = plane.view(np.uint16)
        lit *= np.minimum(gain * cast[c] * ramp * 128, 190).astype(np.uint16)[None, :]
        lit >>= 7
        np.minimum(lit, 255, out=lit)
        image[:, :, c] = lit
    return image, label
