"""The TRAINING generator of the shapes ViT v2: the six shapes drawn in many ways, with numpy only.

Used by ``scripts/train_shapes_vit2.py``. The held-out generator (``scripts/shapes_heldout.py``) is written apart
from this one (PIL ``ImageDraw`` at 128 px, Python's ``random``, its own backgrounds) and imports nothing from it.

How a picture is made (every random choice comes from one ``numpy.random.Generator``):

1. A render size ``R`` (32, 48, 64, 96 or 128 px): the picture is made at that size and resized to 32 x 32 at the
   end with PIL's bilinear filter, exactly what the model's image processor does to a larger picture. Noise, blur
   and JPEG artefacts are applied at ``R``, so they look like those of a photo or a scan that was shrunk.
2. A background (at ``R``): flat, linear or radial gradient, smooth colour blotches, paper (plain, ruled, squared,
   with fibres), photo-like clutter (blurred overlapping blobs and bars), stripes, or many random lines; then a few
   small distractors (specks, short strokes) that are far smaller than the main shape.
3. ONE main shape, as a closed outline in the unit square: any size from a third of the frame to filling it, any
   position (a little may be cut off by the border), any rotation, aspect jitter, optionally hand-drawn (a smooth
   wobble along the outline, jittered corners, and, when only stroked, an outline that does not quite close).
   Its coverage is computed on a 64 x 64 grid from the signed distance to the outline (anti-aliased edges), then
   resized to ``R``.
4. Colours: dark-on-light, light-on-dark, or colour-on-colour with enough contrast; a fill may carry a gentle
   gradient or marker-like streaks.
5. Photo-like finish: uneven lighting, colour cast, Gaussian blur, Gaussian noise, JPEG compression.

The classes (they stay distinguishable however they are drawn):

- ``circle``: a FILLED round disc (its inside is a colour that differs from the background; it may have a border of
  another colour). An outline-only circle is a ``ring``.
- ``ring``: a round OUTLINE whose inside is the background, any stroke from a thin pen line to a thick band (the
  hole is at least about half the diameter).
- ``square``: four corners (aspect up to about 1.25, so near-squares and squat rectangles too), any rotation (a
  diamond is a square turned 45 degrees), filled or outlined.
- ``triangle``: three corners, any rotation, roughly equilateral (corners jittered), filled or outlined.
- ``cross``: a plus sign at any rotation (an x is a plus turned 45 degrees): a filled or outlined plus polygon, or two
  crossing pen strokes.
- ``star``: five points, any rotation, filled or outlined, or drawn as a pentagram (five crossing strokes).
"""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image, ImageFilter

CLASSES = ("circle", "square", "triangle", "cross", "ring", "star")
OUT_SIZE = 32
GRID = 64  # the shape's coverage is computed on a GRID x GRID sample grid over the unit square
RENDER_SIZES = (32, 48, 64, 96, 128)
RENDER_WEIGHTS = (0.3, 0.15, 0.25, 0.15, 0.15)
MIN_RADIUS, MAX_RADIUS = 0.15, 0.5  # outer radius, in frames (0.5: the shape's bounding circle fills the frame)
MAX_ASPECT_LOG = 0.22  # aspect ratio exp(+-0.22): 0.80 - 1.25
BACKGROUND_MAX = 64  # backgrounds are drawn at most this large, then enlarged

_TICKS = (np.arange(GRID, dtype=np.float64) + 0.5) / GRID
_GX, _GY = np.meshgrid(_TICKS, _TICKS)


# --------------------------------------------------------------------------- colours


def luma(colour: np.ndarray) -> float:
    """Perceived brightness (BT.601) of an RGB colour on a 0-255 scale."""
    return float(np.asarray(colour, dtype=np.float64)[..., :3] @ np.array([0.299, 0.587, 0.114]))


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    """An RGB colour (0-255 floats) from hue, saturation, value in [0, 1]."""
    i = int(h * 6) % 6
    f = h * 6 - math.floor(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    rgb = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i]
    return np.array(rgb) * 255.0


def random_colour(rng: np.random.Generator) -> np.ndarray:
    """Any colour: uniform RGB, a saturated hue, or a grey."""
    u = rng.random()
    if u < 0.4:
        return rng.uniform(0, 255, size=3)
    if u < 0.8:
        return _hsv(rng.random(), rng.uniform(0.4, 1.0), rng.uniform(0.25, 1.0))
    return np.full(3, rng.uniform(0, 255))


def contrasting_colour(rng: np.random.Generator, against: np.ndarray, ink: bool = False,
                       strong: bool = False) -> np.ndarray:
    """A colour that stands out from ``against``: mostly by brightness (either way round), sometimes by hue alone.

    Args:
        rng: Random source.
        against: The colour it must stand out from (a background's mean).
        ink: Prefer pen-like colours (black, dark blue, red, ... on light; white, yellow, ... on dark).
        strong: Always by brightness, by at least 70 (a circle's fill: it must not pass for the background).
    """
    base = luma(against)
    if not strong and rng.random() < 0.15:  # colour on colour: a clear difference in hue, a modest one in brightness
        for _ in range(200):
            c = random_colour(rng)
            if np.linalg.norm(c - against) >= 130 and abs(luma(c) - base) >= 25:
                return c
    gap = rng.uniform(70 if strong else 55, 150)
    darker_ok, lighter_ok = base - gap >= 0, base + gap <= 255
    darker = darker_ok and (not lighter_ok or rng.random() < (0.5 if base < 170 else 0.85))
    for _ in range(400):
        if ink and rng.random() < 0.5:
            c = np.full(3, rng.uniform(0, 40) if darker else rng.uniform(215, 255))
            if rng.random() < 0.5:
                c = _hsv(rng.random(), rng.uniform(0.5, 1.0), rng.uniform(0.2, 0.55) if darker else 1.0)
        else:
            c = random_colour(rng)
        if (luma(c) <= base - gap) if darker else (luma(c) >= base + gap):
            return c
    return np.zeros(3) if base > 127 else np.full(3, 255.0)


# --------------------------------------------------------------------------- backgrounds


def _smooth_field(rng: np.random.Generator, size: int, cells: int, channels: int = 3) -> np.ndarray:
    """Smooth random values in [0, 1]: a ``cells`` x ``cells`` grid of random values, bicubically upsampled."""
    small = (rng.random((cells, cells, channels)) * 255).astype(np.uint8)
    mode = "RGB" if channels == 3 else "L"
    img = Image.fromarray(small if channels == 3 else small[..., 0], mode).resize((size, size), Image.BICUBIC)
    out = np.asarray(img, dtype=np.float64) / 255.0
    return out if channels == 3 else out[..., None]


def _coords(size: int) -> tuple[np.ndarray, np.ndarray]:
    t = (np.arange(size, dtype=np.float64) + 0.5) / size
    return np.meshgrid(t, t)


def _segment_distance(px: np.ndarray, py: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    vx, vy = b[0] - a[0], b[1] - a[1]
    length2 = max(vx * vx + vy * vy, 1e-12)
    t = np.clip(((px - a[0]) * vx + (py - a[1]) * vy) / length2, 0.0, 1.0)
    ex, ey = px - (a[0] + t * vx), py - (a[1] + t * vy)
    return np.sqrt(ex * ex + ey * ey)


def _paint(canvas: np.ndarray, alpha: np.ndarray, colour: np.ndarray) -> None:
    """Paints ``colour`` (``(3,)`` or ``(H, W, 3)``) over ``canvas`` with coverage ``alpha``, in place."""
    canvas += alpha[..., None] * (np.asarray(colour, dtype=np.float64) - canvas)


def _window(size: int, lo: np.ndarray, hi: np.ndarray) -> tuple[slice, slice]:
    """Rows and columns of a ``size`` px canvas that the box ``lo``-``hi`` (frames, x then y) touches."""
    c0, r0 = (np.floor(np.asarray(lo) * size) - 1).astype(int).clip(0, size)
    c1, r1 = (np.ceil(np.asarray(hi) * size) + 1).astype(int).clip(0, size)
    return slice(r0, r1), slice(c0, c1)


def _lines(rng: np.random.Generator, canvas: np.ndarray, count: int, width: tuple[float, float],
           length: tuple[float, float] | None = None) -> None:
    """Random straight lines (``length`` None: across the frame), widths in frames."""
    size = canvas.shape[0]
    x, y = _coords(size)
    for _ in range(count):
        a = rng.uniform(-0.1, 1.1, size=2)
        if length is None:
            b = rng.uniform(-0.1, 1.1, size=2)
        else:
            ang = rng.uniform(0, 2 * math.pi)
            b = a + rng.uniform(*length) * np.array([math.cos(ang), math.sin(ang)])
        half = rng.uniform(*width) / 2
        rows, cols = _window(size, np.minimum(a, b) - half, np.maximum(a, b) + half)
        d = _segment_distance(x[rows, cols], y[rows, cols], a, b)
        alpha = np.clip((half - d) * size + 0.5, 0, 1) * rng.uniform(0.35, 1.0)
        _paint(canvas[rows, cols], alpha, random_colour(rng))


def bg_flat(rng: np.random.Generator, size: int) -> np.ndarray:
    return np.broadcast_to(random_colour(rng), (size, size, 3)).copy()


def bg_gradient(rng: np.random.Generator, size: int) -> np.ndarray:
    x, y = _coords(size)
    c0, c1 = random_colour(rng), random_colour(rng)
    if rng.random() < 0.6:
        ang = rng.uniform(0, 2 * math.pi)
        t = (x - 0.5) * math.cos(ang) + (y - 0.5) * math.sin(ang) + 0.5
    else:
        cx, cy = rng.uniform(0, 1, size=2)
        t = np.sqrt((x - cx) ** 2 + (y - cy) ** 2) / rng.uniform(0.5, 1.2)
    t = np.clip(t, 0, 1)[..., None]
    return c0 * (1 - t) + c1 * t


def bg_blotches(rng: np.random.Generator, size: int) -> np.ndarray:
    field = _smooth_field(rng, size, int(rng.integers(3, 9)))
    c0, c1 = random_colour(rng), random_colour(rng)
    return c0 + field * (c1 - c0)


def bg_paper(rng: np.random.Generator, size: int) -> np.ndarray:
    tone = np.array([rng.uniform(215, 255), rng.uniform(210, 250), rng.uniform(195, 245)])
    if rng.random() < 0.2:  # coloured paper
        tone = _hsv(rng.random(), rng.uniform(0.1, 0.45), rng.uniform(0.75, 1.0))
    canvas = tone + (_smooth_field(rng, size, int(rng.integers(4, 12)), 1) - 0.5) * rng.uniform(5, 30)
    canvas = canvas + rng.normal(0, rng.uniform(1, 6), size=(size, size, 1))
    x, y = _coords(size)
    style = rng.random()
    if style < 0.55:  # ruled or squared paper
        pitch = rng.uniform(0.06, 0.16)
        ink = np.array([rng.uniform(90, 170), rng.uniform(120, 190), rng.uniform(170, 235)])
        if rng.random() < 0.3:
            ink = np.full(3, rng.uniform(120, 200))
        half = rng.uniform(0.004, 0.012)
        dist = np.abs(((y + rng.random() * pitch) % pitch) - pitch / 2)
        if style < 0.25:  # squared
            dist = np.minimum(dist, np.abs(((x + rng.random() * pitch) % pitch) - pitch / 2))
        alpha = np.clip((half - (pitch / 2 - dist)) * size + 0.5, 0, 1) * rng.uniform(0.4, 0.9)
        _paint(canvas, alpha, ink)
    if rng.random() < 0.5:  # fibres and smudges
        _lines(rng, canvas, int(rng.integers(3, 12)), (0.003, 0.01), (0.05, 0.25))
    return canvas


def bg_clutter(rng: np.random.Generator, size: int) -> np.ndarray:
    """Photo-like clutter: overlapping blobs and bars of many colours, then blurred (out of focus)."""
    canvas = np.broadcast_to(random_colour(rng), (size, size, 3)).copy()
    x, y = _coords(size)
    for _ in range(int(rng.integers(6, 25))):
        cx, cy = rng.uniform(-0.2, 1.2, size=2)
        rx, ry = rng.uniform(0.05, 0.6, size=2)
        ang = rng.uniform(0, math.pi)
        dx, dy = x - cx, y - cy
        u = (dx * math.cos(ang) + dy * math.sin(ang)) / rx
        v = (-dx * math.sin(ang) + dy * math.cos(ang)) / ry
        inside = (u * u + v * v <= 1) if rng.random() < 0.5 else ((np.abs(u) <= 1) & (np.abs(v) <= 1))
        colour = random_colour(rng)
        if rng.random() < 0.5:
            colour = colour + (_smooth_field(rng, size, 3) - 0.5) * 60
        _paint(canvas, inside.astype(np.float64) * rng.uniform(0.6, 1.0), colour)
    img = Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8), "RGB")
    img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.02, 0.07) * size))
    return np.asarray(img, dtype=np.float64)


def bg_stripes(rng: np.random.Generator, size: int) -> np.ndarray:
    x, y = _coords(size)
    ang = rng.uniform(0, math.pi)
    t = x * math.cos(ang) + y * math.sin(ang)
    freq = rng.uniform(3, 12)
    wave = 0.5 + 0.5 * np.sin(2 * math.pi * freq * t + rng.uniform(0, 6.3)
                              + rng.uniform(0, 3) * (_smooth_field(rng, size, 4, 1)[..., 0] - 0.5))
    c0, c1 = random_colour(rng), random_colour(rng)
    c1 = c0 + (c1 - c0) * rng.uniform(0.15, 0.6)  # stripes of modest contrast (wood, fabric, blinds)
    return c0 + wave[..., None] * (c1 - c0)


def bg_lines(rng: np.random.Generator, size: int) -> np.ndarray:
    canvas = (bg_flat if rng.random() < 0.5 else bg_gradient)(rng, size)
    _lines(rng, canvas, int(rng.integers(3, 12)), (0.01, 0.05))
    return canvas


BACKGROUNDS = (
    (bg_flat, 0.12), (bg_gradient, 0.14), (bg_blotches, 0.14), (bg_paper, 0.2), (bg_clutter, 0.18),
    (bg_stripes, 0.08), (bg_lines, 0.14),
)


def draw_background(rng: np.random.Generator, size: int, info: dict | None = None) -> np.ndarray:
    """A background at ``size`` px (float RGB, 0-255) with a few small distractors, independent of the label."""
    fns, weights = zip(*BACKGROUNDS)
    made = min(size, BACKGROUND_MAX)
    fn = fns[rng.choice(len(fns), p=np.array(weights) / sum(weights))]
    if info is not None:
        info["background"] = fn.__name__
    canvas = fn(rng, made)
    if made < size:  # a larger picture's background is drawn at 64 px and enlarged (it is smooth at that scale)
        img = Image.fromarray(np.clip(np.rint(canvas), 0, 255).astype(np.uint8), "RGB")
        canvas = np.asarray(img.resize((size, size), Image.BILINEAR), dtype=np.float64)
    canvas = canvas + rng.normal(0, rng.uniform(0, 8), size=(size, size, 3))
    x, y = _coords(size)
    for _ in range(int(rng.integers(0, 6))):  # specks: far smaller than any main shape
        centre = rng.uniform(0, 1, size=2)
        r = rng.uniform(0.01, 0.045)
        rows, cols = _window(size, centre - r, centre + r)
        d = np.sqrt((x[rows, cols] - centre[0]) ** 2 + (y[rows, cols] - centre[1]) ** 2)
        _paint(canvas[rows, cols], np.clip((r - d) * size + 0.5, 0, 1) * rng.uniform(0.5, 1), random_colour(rng))
    if rng.random() < 0.4:  # short strokes
        _lines(rng, canvas, int(rng.integers(1, 4)), (0.01, 0.04), (0.05, 0.2))
    return np.clip(canvas, 0, 255)


# --------------------------------------------------------------------------- shapes


def regular(n: int, radius: float, start: float = -math.pi / 2) -> np.ndarray:
    """``n`` vertices on a circle of ``radius`` around the origin."""
    ang = start + np.arange(n) * 2 * math.pi / n
    return np.stack([radius * np.cos(ang), radius * np.sin(ang)], axis=1)


def star_outline(radius: float, inner: float) -> np.ndarray:
    """A five-pointed star's 10 vertices."""
    ang = -math.pi / 2 + np.arange(10) * math.pi / 5
    rad = np.where(np.arange(10) % 2 == 0, radius, radius * inner)
    return np.stack([rad * np.cos(ang), rad * np.sin(ang)], axis=1)


def plus_outline(half: float, arm: float) -> np.ndarray:
    """A plus sign's 12 vertices (``half``: half a bar's length, ``arm``: half its thickness)."""
    h, a = half, arm
    return np.array([[-a, -h], [a, -h], [a, -a], [h, -a], [h, a], [a, a], [a, h], [-a, h], [-a, a], [-h, a],
                     [-h, -a], [-a, -a]], dtype=np.float64)


def densify(points: np.ndarray, closed: bool, step: float) -> np.ndarray:
    """Points along a polyline, at most ``step`` apart (the corners kept)."""
    pts = np.vstack([points, points[:1]]) if closed else points
    out = []
    for a, b in zip(pts[:-1], pts[1:]):
        n = max(1, int(math.ceil(np.linalg.norm(b - a) / step)))
        out.append(a + (b - a) * (np.arange(n)[:, None] / n))
    out.append(pts[-1:])
    dense = np.vstack(out)
    return dense[:-1] if closed else dense


def wobble(path: np.ndarray, closed: bool, amount: float, rng: np.random.Generator) -> np.ndarray:
    """Moves each point of a (dense) path along its normal by a smooth random amount: a hand-drawn line."""
    seg = np.diff(np.vstack([path, path[:1]]) if closed else path, axis=0)
    s = np.concatenate([[0.0], np.cumsum(np.linalg.norm(seg, axis=1))])
    total = max(s[-1], 1e-9)
    s = s[: len(path)] / total
    offset = np.zeros(len(path))
    for k in range(1, 6):
        offset += rng.normal(0, amount / k) * np.sin(2 * math.pi * k * s + rng.uniform(0, 2 * math.pi))
    tangent = np.gradient(path, axis=0)
    normal = np.stack([-tangent[:, 1], tangent[:, 0]], axis=1)
    normal /= np.linalg.norm(normal, axis=1, keepdims=True) + 1e-12
    return path + offset[:, None] * normal


def path_fields(path: np.ndarray, closed: bool, px: np.ndarray, py: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distance from each point to the polyline, and (closed paths) the even-odd inside test."""
    dist = np.full(px.shape, np.inf)
    inside = np.zeros(px.shape, dtype=bool)
    n = len(path)
    for i in range(n if closed else n - 1):
        a, b = path[i], path[(i + 1) % n]
        dist = np.minimum(dist, _segment_distance(px, py, a, b))
        if closed and a[1] != b[1]:
            straddles = (a[1] > py) != (b[1] > py)
            x_cross = a[0] + (py - a[1]) * (b[0] - a[0]) / (b[1] - a[1])
            inside ^= straddles & (px < x_cross)
    return dist, inside


class Drawing:
    """One main shape as coverage masks on the GRID: ``fill`` (the inside) and ``stroke`` (pen lines)."""

    def __init__(self) -> None:
        self.fill = np.zeros((GRID, GRID))
        self.stroke = np.zeros((GRID, GRID))

    def add_fill(self, outline: np.ndarray, margin: float = 0.0) -> np.ndarray:
        """Fills a closed outline; returns the distance to it (for a border ``margin`` wide, in frames) over the
        window :meth:`window` gives for that margin."""
        rows, cols = self.window(outline, margin)
        dist, inside = path_fields(outline, True, _GX[rows, cols], _GY[rows, cols])
        signed = np.where(inside, -dist, dist) * GRID
        self.fill[rows, cols] = np.maximum(self.fill[rows, cols], np.clip(0.5 - signed, 0, 1))
        return dist

    def add_stroke(self, path: np.ndarray, closed: bool, width: float, dist: np.ndarray | None = None) -> None:
        """Strokes a path ``width`` wide (frames); ``dist``: the distances :meth:`add_fill` gave for this width."""
        rows, cols = self.window(path, width / 2)
        if dist is None:
            dist, _ = path_fields(path, closed, _GX[rows, cols], _GY[rows, cols])
        self.stroke[rows, cols] = np.maximum(self.stroke[rows, cols], np.clip((width / 2 - dist) * GRID + 0.5, 0, 1))

    @staticmethod
    def window(path: np.ndarray, margin: float) -> tuple[slice, slice]:
        """The grid rows and columns within ``margin`` (plus a sample) of the path's bounding box."""
        return _window(GRID, path.min(axis=0) - margin, path.max(axis=0) + margin)


def _place(points: np.ndarray, angle: float, aspect: float, centre: np.ndarray) -> np.ndarray:
    """Stretches by ``aspect`` (x by sqrt, y by 1/sqrt), rotates by ``angle`` and moves to ``centre``."""
    stretched = points * np.array([math.sqrt(aspect), 1 / math.sqrt(aspect)])
    c, s = math.cos(angle), math.sin(angle)
    return stretched @ np.array([[c, s], [-s, c]]) + centre


def _open_ends(path: np.ndarray, rng: np.random.Generator, radius: float) -> np.ndarray:
    """A closed hand-drawn outline as an open pen path that starts anywhere and stops a little short of, or past,
    its start (with a small sideways slip)."""
    n = len(path)
    start = int(rng.integers(n))
    extra = int(round(rng.uniform(-0.06, 0.1) * n))
    idx = (start + np.arange(n + extra + 1)) % n
    out = path[idx].copy()
    slip = rng.normal(0, 0.04 * radius, size=2)
    out += np.linspace(0, 1, len(out))[:, None] * slip
    return out


def draw_shape(rng: np.random.Generator, kind: str) -> tuple[Drawing, dict[str, float | str]]:
    """The main shape of class ``kind`` with its random size, place, angle, aspect, style and hand-drawn wobble.

    Returns:
        The coverage masks and the drawing's parameters (for inspection).
    """
    radius = rng.uniform(MIN_RADIUS, MAX_RADIUS)
    aspect = math.exp(rng.uniform(-MAX_ASPECT_LOG, MAX_ASPECT_LOG)) if kind not in ("ring", "circle") or \
        rng.random() < 0.6 else 1.0
    angle = rng.uniform(0, 2 * math.pi)
    reach = radius * max(math.sqrt(aspect), 1 / math.sqrt(aspect))
    slack = max(0.0, 0.5 - reach) + 0.03  # a shape that fills the frame may be cut by up to 0.03
    centre = 0.5 + rng.uniform(-slack, slack, size=2)
    hand = rng.random() < 0.45
    px32 = 1 / OUT_SIZE  # one output pixel, in frames
    pen = rng.uniform(0.7, 3.5) * px32  # a pen stroke's width
    pen = min(pen, max(0.7 * px32, 0.3 * radius))
    wob = rng.uniform(0.01, 0.035) * radius * 2 if hand else 0.0
    step = 0.05  # a hand-drawn outline gets a point at least every 0.05 frames (for its wobble)
    drawing = Drawing()
    params: dict[str, float | str] = {"radius": radius, "aspect": aspect, "angle": angle, "hand": float(hand)}

    def outline_of(points: np.ndarray) -> np.ndarray:
        if hand:
            points = points + rng.normal(0, 0.04 * radius, size=points.shape)  # corners a little off
        if hand:
            points = wobble(densify(points, True, step), True, wob, rng)
        return _place(points, angle, aspect, centre)

    def fill_or_outline(points: np.ndarray, styles: tuple[float, float, float]) -> None:
        """styles: probabilities of filled, outlined, filled with a border."""
        outline = outline_of(points)
        u = rng.random() * sum(styles)
        if u < styles[0]:
            drawing.add_fill(outline)
            params["style"] = "filled"
        elif u < styles[0] + styles[1]:
            path = _open_ends(outline, rng, radius) if hand else outline
            drawing.add_stroke(path, not hand, pen)
            params["style"] = "outline"
        else:
            dist = drawing.add_fill(outline, pen / 2)
            drawing.add_stroke(outline, True, pen, dist)
            params["style"] = "filled+border"

    if kind == "circle":
        fill_or_outline(regular(32, radius), (0.8, 0.0, 0.2))
    elif kind == "ring":
        band = rng.uniform(0.7 * px32, max(0.8 * px32, 0.5 * radius))
        width = band if rng.random() < 0.7 else pen
        outline = outline_of(regular(32, radius - width / 2))
        path = _open_ends(outline, rng, radius) if hand and width < 0.2 * radius else outline
        drawing.add_stroke(path, path is outline, width)
        params["style"] = "outline"
    elif kind == "square":
        fill_or_outline(regular(4, radius, math.pi / 4), (0.55, 0.3, 0.15))
    elif kind == "triangle":
        fill_or_outline(regular(3, radius) + rng.normal(0, 0.06 * radius, size=(3, 2)), (0.55, 0.3, 0.15))
    elif kind == "cross":
        if rng.random() < 0.35:  # two pen strokes
            width = rng.uniform(max(pen, 0.08 * radius), max(pen, 0.5 * radius))
            for bar in ((-1.0, 0.0, 1.0, 0.0), (0.0, -1.0, 0.0, 1.0)):
                ends = np.array(bar, dtype=np.float64).reshape(2, 2) * radius * rng.uniform(0.85, 1.0)
                ends += rng.normal(0, 0.03 * radius, size=(2, 2)) if hand else 0
                dense = wobble(densify(ends, False, step), False, wob * 0.6, rng) if hand else ends
                drawing.add_stroke(_place(dense, angle, aspect, centre), False, width)
            params["style"] = "strokes"
        else:
            fill_or_outline(plus_outline(radius * 0.95, radius * rng.uniform(0.15, 0.38)), (0.6, 0.25, 0.15))
    elif kind == "star":
        if rng.random() < 0.12:  # a pentagram: five crossing strokes
            tips = regular(5, radius)[[0, 2, 4, 1, 3]]
            path = outline_of(tips)
            drawing.add_stroke(_open_ends(path, rng, radius) if hand else path, not hand, pen)
            params["style"] = "pentagram"
        else:
            fill_or_outline(star_outline(radius, rng.uniform(0.35, 0.55)), (0.55, 0.3, 0.15))
    else:
        raise ValueError(f"unknown shape kind: {kind}")
    return drawing, params


# --------------------------------------------------------------------------- pictures


def _to_size(mask: np.ndarray, size: int) -> np.ndarray:
    """A GRID x GRID coverage mask resized to ``size`` (box-averaged down, bilinear up)."""
    if size == GRID:
        return mask
    if GRID % size == 0:
        f = GRID // size
        return mask.reshape(size, f, size, f).mean(axis=(1, 3))
    img = Image.fromarray(mask.astype(np.float32), "F")
    return np.asarray(img.resize((size, size), Image.BOX if size < GRID else Image.BILINEAR), dtype=np.float64)


def _fill_colour(rng: np.random.Generator, colour: np.ndarray, size: int) -> np.ndarray:
    """A fill: flat, with a gentle gradient, or with marker-like streaks."""
    u = rng.random()
    if u < 0.6:
        return colour
    if u < 0.85:
        return colour + (_smooth_field(rng, size, 3, 1) - 0.5) * rng.uniform(15, 50)
    x, y = _coords(size)
    ang = rng.uniform(0, math.pi)
    streak = np.sin(2 * math.pi * rng.uniform(6, 16) * (x * math.cos(ang) + y * math.sin(ang)))
    return colour + streak[..., None] * rng.uniform(6, 22) * np.sign(127 - luma(colour))


def _finish(rng: np.random.Generator, canvas: np.ndarray) -> Image.Image:
    """Photo-like finish at the render size: lighting, colour cast, blur, noise, JPEG."""
    size = canvas.shape[0]
    if rng.random() < 0.35:  # uneven lighting
        x, y = _coords(size)
        ang = rng.uniform(0, 2 * math.pi)
        light = 1 + rng.uniform(0.1, 0.35) * ((x - 0.5) * math.cos(ang) + (y - 0.5) * math.sin(ang))
        canvas = canvas * light[..., None]
    if rng.random() < 0.3:  # colour cast and contrast
        canvas = (canvas - 128) * rng.uniform(0.75, 1.15) + 128 + rng.normal(0, 10, size=3)
    img = Image.fromarray(np.clip(np.rint(canvas), 0, 255).astype(np.uint8), "RGB")
    if rng.random() < 0.35:
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.2, 1.1) * size / OUT_SIZE))
    if rng.random() < 0.4:
        arr = np.asarray(img, dtype=np.float64) + rng.normal(0, rng.uniform(3, 18), size=(size, size, 3))
        img = Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), "RGB")
    if rng.random() < 0.3:
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=int(rng.integers(15, 90)))
        img = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    return img


def draw_picture(rng: np.random.Generator, kind: str, size: int | None = None,
                 info: dict | None = None) -> np.ndarray:
    """One picture of ``kind`` at its render size (before the resize to 32 x 32), ``(R, R, 3)`` uint8; ``info``,
    when given, is filled with how it was drawn (render size, background, the shape's parameters)."""
    if size is None:
        size = int(rng.choice(RENDER_SIZES, p=RENDER_WEIGHTS))
    canvas = draw_background(rng, size, info)
    drawing, params = draw_shape(rng, kind)
    if info is not None:
        info.update(params, size=size)
    fill, stroke = _to_size(drawing.fill, size), _to_size(drawing.stroke, size)
    region = np.maximum(fill, stroke) > 0.5
    around = canvas[region].mean(axis=0) if region.any() else canvas.reshape(-1, 3).mean(axis=0)
    pen_like = params.get("style") in ("outline", "strokes", "pentagram")
    main = contrasting_colour(rng, around, ink=pen_like, strong=kind == "circle")
    if fill.any():
        _paint(canvas, fill, _fill_colour(rng, main, size))
    if stroke.any():
        border = main if params.get("style") != "filled+border" else contrasting_colour(rng, main, ink=True)
        _paint(canvas, stroke, border)
    if rng.random() < 0.15:  # a thin line crosses over everything
        _lines(rng, canvas, 1, (0.005, 0.015))
    return np.asarray(_finish(rng, canvas))


def to_model_size(picture: np.ndarray) -> np.ndarray:
    """Resizes a picture to 32 x 32 exactly as the model's image processor does (PIL bilinear)."""
    if picture.shape[0] == OUT_SIZE and picture.shape[1] == OUT_SIZE:
        return picture
    return np.asarray(Image.fromarray(picture, "RGB").resize((OUT_SIZE, OUT_SIZE), Image.BILINEAR))


def make_dataset(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` pictures at 32 x 32 with balanced, shuffled labels from one seed: ``(n, 32, 32, 3)`` uint8 and
    ``(n,)`` int64 label ids (indices into :data:`CLASSES`)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n, dtype=np.int64) % len(CLASSES)
    rng.shuffle(labels)
    images = np.empty((n, OUT_SIZE, OUT_SIZE, 3), dtype=np.uint8)
    for i, label in enumerate(labels):
        images[i] = to_model_size(draw_picture(rng, CLASSES[label]))
    return images, labels
