"""Draw the Teams app icons and keep the packaged copy of this folder in step.

    python appPackage/make_icons.py

writes ``color.png`` (192x192: a white "R" on a rounded square of the accent colour) and
``outline.png`` (32x32: the same "R", white on transparent, as Teams requires) here, then
copies ``manifest.json``, ``color.png`` and ``outline.png`` into
``responder/apppackage/template/``, the package data that ``responder app-package`` builds
from. Standard library only (zlib + struct): the shapes are plain geometry, sampled 4x4 per
pixel for smooth edges, so the output depends only on this file (and zlib's compressor).
"""

from __future__ import annotations

import shutil
import struct
import sys
import zlib
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
PACKAGED = HERE.parent / "responder" / "apppackage" / "template"
FILES = ("manifest.json", "color.png", "outline.png")

ACCENT = (0x00, 0x70, 0x3C)  # keep in step with accentColor in manifest.json
WHITE = (0xFF, 0xFF, 0xFF)
SAMPLES = 4  # per axis, per pixel

Shape = Callable[[float, float], bool]
Rows = list[bytes]  # RGBA, 4 bytes a pixel


# --- geometry: predicates over continuous coordinates ---------------------------------


def rounded_square(size: float, radius: float) -> Shape:
    def inside(x: float, y: float) -> bool:
        cx = min(max(x, radius), size - radius)
        cy = min(max(y, radius), size - radius)
        return (x - cx) ** 2 + (y - cy) ** 2 <= radius**2

    return inside


def _rect(x: float, y: float, x0: float, y0: float, x1: float, y1: float) -> bool:
    return x0 <= x <= x1 and y0 <= y <= y1


def _round_right(x: float, y: float, x0: float, y0: float, x1: float, y1: float) -> bool:
    """A rectangle whose right end is a half disc (the bowl of the R)."""
    r = (y1 - y0) / 2
    cx, cy = x1 - r, (y0 + y1) / 2
    return _rect(x, y, x0, y0, cx, y1) or (x >= cx and (x - cx) ** 2 + (y - cy) ** 2 <= r * r)


def _near_segment(x: float, y: float, ax: float, ay: float, bx: float, by: float) -> float:
    dx, dy = bx - ax, by - ay
    t = max(0.0, min(1.0, ((x - ax) * dx + (y - ay) * dy) / (dx * dx + dy * dy)))
    return ((x - ax - t * dx) ** 2 + (y - ay - t * dy) ** 2) ** 0.5


def letter_r(left: float, top: float, height: float) -> Shape:
    """A bold sans-serif R, ``height`` tall and 0.8 of that wide, from stem, bowl and leg."""

    def inside(x: float, y: float) -> bool:
        u, v = (x - left) / height, (y - top) / height  # the letter's unit box
        if not (0 <= u <= 0.8 and 0 <= v <= 1):
            return False
        stem = u <= 0.24
        bowl = _round_right(u, v, 0, 0, 0.74, 0.58) and not _round_right(
            u, v, 0.24, 0.19, 0.53, 0.39
        )
        leg = v >= 0.5 and _near_segment(u, v, 0.4, 0.5, 0.68, 1.0) <= 0.125
        return stem or bowl or leg

    return inside


def coverage(shape: Shape, px: int, py: int) -> float:
    step = 1 / SAMPLES
    hits = sum(
        shape(px + (i + 0.5) * step, py + (j + 0.5) * step)
        for i in range(SAMPLES)
        for j in range(SAMPLES)
    )
    return hits / SAMPLES**2


# --- the two icons --------------------------------------------------------------------


def render_color(size: int = 192) -> Rows:
    """White R on the accent colour, on a rounded square; transparent outside the corners."""
    tile = rounded_square(size, size * 0.18)
    height = size * 0.54
    mark = letter_r((size - 0.8 * height) / 2, (size - height) / 2, height)
    rows: Rows = []
    for py in range(size):
        row = bytearray()
        for px in range(size):
            a = coverage(tile, px, py)
            w = coverage(mark, px, py)
            rgb = (round(c * (1 - w) + 255 * w) for c in ACCENT)
            row += bytes((*rgb, round(255 * a)))
        rows.append(bytes(row))
    return rows


def render_outline(size: int = 32) -> Rows:
    """The R alone, white, on transparent: only the alpha channel varies."""
    height = size * 0.75
    mark = letter_r((size - 0.8 * height) / 2, (size - height) / 2, height)
    return [
        b"".join(bytes((*WHITE, round(255 * coverage(mark, px, py)))) for px in range(size))
        for py in range(size)
    ]


# --- PNG ------------------------------------------------------------------------------


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png(rows: Rows) -> bytes:
    """An 8-bit RGBA PNG; every row uses filter type 0 (None)."""
    height, width = len(rows), len(rows[0]) // 4
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    raw = b"".join(b"\x00" + row for row in rows)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"IDAT", zlib.compress(raw, 9))
        + _chunk(b"IEND", b"")
    )


def main(folder: Path = HERE, packaged: Path | None = PACKAGED) -> None:
    (folder / "color.png").write_bytes(png(render_color()))
    (folder / "outline.png").write_bytes(png(render_outline()))
    if packaged is not None:
        packaged.mkdir(parents=True, exist_ok=True)
        for name in FILES:
            shutil.copyfile(folder / name, packaged / name)
    print(f"wrote {folder / 'color.png'}, {folder / 'outline.png'}", file=sys.stderr)
    if packaged is not None:
        print(f"copied {', '.join(FILES)} to {packaged}", file=sys.stderr)


if __name__ == "__main__":
    main()
