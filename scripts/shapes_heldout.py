"""A HELD-OUT generator of shape pictures, written apart from the training one (``scripts/shapes_varied.py``).

It shares no code with the training generator and imports nothing from it: shapes are drawn with PIL's
``ImageDraw`` primitives (``ellipse``, ``regular_polygon``, ``polygon``, ``line`` with curved joints,
``rounded_rectangle``) on a 128 px canvas (sometimes a slightly wider or taller one), with Python's own
``random.Random``, its own palette and contrast rule (a WCAG-style luminance contrast ratio), its own backgrounds
(notebook, graph paper, wood desk, chalkboard, sky gradient, confetti, a blurred room, woven fabric) and its own
photo effects (a drop shadow, a mild perspective warp, a lighting gradient, PIL's own noise, blur, JPEG).
The model sees a picture the way the app gives it one: resized to 32 x 32 by its image processor.

It follows the class definitions of the v2 model card: a ``circle`` is a filled disc (a border allowed), a
``ring`` a round outline whose inside is the background, the polygons and the cross filled or outlined at any
angle, a ``cross`` also as two strokes, a ``star`` five-pointed (also as a pentagram).

    .venv/bin/python scripts/shapes_heldout.py --grid /tmp/heldout.png   # a look at 60 pictures
"""

from __future__ import annotations

import argparse
import colorsys
import io
import math
import random

from PIL import Image, ImageChops, ImageDraw, ImageEnhance, ImageFilter, ImageOps

CLASSES = ("circle", "square", "triangle", "cross", "ring", "star")  # the model's label order
CANVAS = 128

# Marker, crayon and chalk colours.
PALETTE = (
    (20, 20, 20), (35, 45, 120), (200, 30, 40), (30, 130, 60), (240, 140, 20), (120, 50, 150), (110, 70, 35),
    (0, 150, 200), (250, 220, 40), (240, 240, 235), (230, 100, 160), (90, 90, 90), (160, 200, 60), (255, 255, 255),
)


# --------------------------------------------------------------------------------------------- colour


def _luminance(rgb: tuple[int, int, int]) -> float:
    """Relative luminance (sRGB, Rec. 709 weights)."""

    def lin(c: float) -> float:
        c /= 255.0
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = rgb[:3]
    return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b)


def contrast(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    """WCAG contrast ratio of two colours (1 = none, 21 = black on white)."""
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def _any_colour(rnd: random.Random) -> tuple[int, int, int]:
    if rnd.random() < 0.45:
        return rnd.choice(PALETTE)
    r, g, b = colorsys.hsv_to_rgb(rnd.random(), rnd.uniform(0.0, 1.0), rnd.uniform(0.05, 1.0))
    return int(r * 255), int(g * 255), int(b * 255)


def _ink_for(rnd: random.Random, ground: tuple[int, int, int], ratio: float) -> tuple[int, int, int]:
    """A colour with at least ``ratio`` contrast against ``ground`` (black or white when none is found)."""
    for _ in range(300):
        c = _any_colour(rnd)
        if contrast(c, ground) >= ratio:
            return c
    return (0, 0, 0) if _luminance(ground) > 0.18 else (255, 255, 255)


def _mean_colour(img: Image.Image, mask: Image.Image | None = None) -> tuple[int, int, int]:
    """The mean colour of ``img`` (under ``mask``)."""
    raw = img.resize((16, 16), Image.BOX).tobytes()
    pixels = [tuple(raw[i:i + 3]) for i in range(0, len(raw), 3)]
    if mask is not None:
        weights = list(mask.resize((16, 16), Image.BOX).tobytes())
        total = sum(weights) or 1
        return tuple(int(sum(p[i] * w for p, w in zip(pixels, weights)) / total) for i in range(3))
    return tuple(int(sum(p[i] for p in pixels) / len(pixels)) for i in range(3))


def _shade(c: tuple[int, int, int], amount: float) -> tuple[int, int, int]:
    return tuple(max(0, min(255, int(v + amount))) for v in c)


# ----------------------------------------------------------------------------------------- backgrounds


def _noise_seeded(rnd: random.Random, size: tuple[int, int], sigma: float) -> Image.Image:
    """Gaussian noise (grey around 128) from ``rnd`` itself, so a seed always gives the same picture."""
    w, h = size
    data = bytes(max(0, min(255, int(rnd.gauss(128, sigma)))) for _ in range(w * h))
    return Image.frombytes("L", (w, h), data)


def bg_notebook(rnd: random.Random, size: tuple[int, int]) -> Image.Image:
    w, h = size
    paper = (rnd.randint(235, 255), rnd.randint(232, 252), rnd.randint(215, 245))
    img = Image.new("RGB", size, paper)
    d = ImageDraw.Draw(img)
    pitch = rnd.randint(9, 16)
    rule = (rnd.randint(120, 170), rnd.randint(160, 200), rnd.randint(210, 240))
    for y in range(rnd.randrange(pitch), h, pitch):
        d.line((0, y, w, y), fill=rule, width=1)
    if rnd.random() < 0.7:
        x = rnd.randint(8, 26)
        d.line((x, 0, x, h), fill=(225, 110, 110), width=rnd.choice((1, 2)))
    return img


def bg_graph(rnd: random.Random, size: tuple[int, int]) -> Image.Image:
    w, h = size
    img = Image.new("RGB", size, (rnd.randint(238, 255), rnd.randint(240, 255), rnd.randint(235, 252)))
    d = ImageDraw.Draw(img)
    pitch = rnd.randint(6, 12)
    ink = rnd.choice(((150, 200, 170), (170, 190, 230), (200, 200, 200), (230, 190, 150)))
    for v in range(rnd.randrange(pitch), max(w, h), pitch):
        d.line((v, 0, v, h), fill=ink)
        d.line((0, v, w, v), fill=ink)
    return img


def bg_desk(rnd: random.Random, size: tuple[int, int]) -> Image.Image:
    w, h = size
    hue = rnd.uniform(0.05, 0.11)
    base = tuple(int(v * 255) for v in colorsys.hsv_to_rgb(hue, rnd.uniform(0.35, 0.7), rnd.uniform(0.35, 0.85)))
    img = Image.new("RGB", size, base)
    d = ImageDraw.Draw(img)
    for _ in range(rnd.randint(25, 60)):  # wavy grain
        y0 = rnd.uniform(-10, h + 10)
        amp, freq, ph = rnd.uniform(1, 5), rnd.uniform(0.01, 0.05), rnd.uniform(0, 6.3)
        pts = [(x, y0 + amp * math.sin(freq * x + ph)) for x in range(0, w + 8, 8)]
        d.line(pts, fill=_shade(base, rnd.uniform(-35, 25)), width=rnd.choice((1, 1, 2, 3)))
    if rnd.random() < 0.4:  # a pencil lying across a corner
        x0, y0 = rnd.choice(((0, rnd.uniform(0, h)), (rnd.uniform(0, w), 0)))
        ang = rnd.uniform(0, math.pi)
        x1, y1 = x0 + 200 * math.cos(ang), y0 + 200 * math.sin(ang)
        d.line((x0, y0, x1, y1), fill=_any_colour(rnd), width=rnd.randint(5, 9))
    return img.filter(ImageFilter.GaussianBlur(rnd.uniform(0.3, 1.2)))


def bg_chalkboard(rnd: random.Random, size: tuple[int, int]) -> Image.Image:
    base = rnd.choice(((40, 60, 50), (30, 35, 38), (25, 45, 70), (55, 55, 55)))
    img = Image.new("RGB", size, base)
    smudge = Image.new("L", size, 0)
    d = ImageDraw.Draw(smudge)
    w, h = size
    for _ in range(rnd.randint(3, 9)):
        cx, cy, rx, ry = rnd.uniform(0, w), rnd.uniform(0, h), rnd.uniform(10, 60), rnd.uniform(5, 30)
        d.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), fill=rnd.randint(20, 70))
    smudge = smudge.filter(ImageFilter.GaussianBlur(rnd.uniform(6, 14)))
    return Image.composite(Image.new("RGB", size, (210, 215, 210)), img, smudge)


def bg_sky(rnd: random.Random, size: tuple[int, int]) -> Image.Image:
    w, h = size
    top, bottom = _any_colour(rnd), _any_colour(rnd)
    img = Image.new("RGB", size)
    d = ImageDraw.Draw(img)
    across = rnd.random() < 0.5
    steps = w if across else h
    for i in range(steps):
        colour = tuple(int(a + (b - a) * i / max(1, steps - 1)) for a, b in zip(top, bottom))
        d.line((i, 0, i, h) if across else (0, i, w, i), fill=colour)
    return img


def bg_confetti(rnd: random.Random, size: tuple[int, int]) -> Image.Image:
    w, h = size
    img = Image.new("RGB", size, _any_colour(rnd))
    d = ImageDraw.Draw(img)
    for _ in range(rnd.randint(25, 80)):
        x, y, r = rnd.uniform(0, w), rnd.uniform(0, h), rnd.uniform(1, 3)
        if rnd.random() < 0.5:
            d.ellipse((x - r, y - r, x + r, y + r), fill=_any_colour(rnd))
        else:
            a = rnd.uniform(0, math.pi)
            d.line((x, y, x + 7 * math.cos(a), y + 7 * math.sin(a)), fill=_any_colour(rnd), width=2)
    return img


def bg_room(rnd: random.Random, size: tuple[int, int]) -> Image.Image:
    """A blurred photo of somewhere: a wall, a table edge, a window, a few objects."""
    w, h = size
    img = Image.new("RGB", size, _shade(_any_colour(rnd), 0))
    d = ImageDraw.Draw(img)
    horizon = rnd.uniform(0.2, 0.8) * h
    d.rectangle((0, horizon, w, h), fill=_any_colour(rnd))
    for _ in range(rnd.randint(2, 7)):
        x0, y0 = rnd.uniform(-20, w), rnd.uniform(-20, h)
        x1, y1 = x0 + rnd.uniform(15, 90), y0 + rnd.uniform(15, 90)
        if rnd.random() < 0.6:
            d.rectangle((x0, y0, x1, y1), fill=_any_colour(rnd))
        else:
            d.rounded_rectangle((x0, y0, x1, y1), radius=rnd.uniform(3, 15), fill=_any_colour(rnd))
    return img.filter(ImageFilter.GaussianBlur(rnd.uniform(3, 8)))


def bg_fabric(rnd: random.Random, size: tuple[int, int]) -> Image.Image:
    grain = _noise_seeded(rnd, size, rnd.uniform(30, 60))
    grain = grain.filter(ImageFilter.BoxBlur(1)).filter(ImageFilter.EMBOSS if rnd.random() < 0.5
                                                        else ImageFilter.SMOOTH_MORE)
    grain = ImageOps.autocontrast(grain, cutoff=2)
    dark = _any_colour(rnd)
    light = _shade(dark, rnd.uniform(25, 60))
    return ImageOps.colorize(grain, dark, light)


BACKGROUNDS = (bg_notebook, bg_graph, bg_desk, bg_chalkboard, bg_sky, bg_confetti, bg_room, bg_fabric)


# ---------------------------------------------------------------------------------------------- shapes


def _turn(points: list[tuple[float, float]], cx: float, cy: float, degrees: float,
          stretch: float = 1.0) -> list[tuple[float, float]]:
    """Points around (0, 0) stretched along x, turned by ``degrees`` and moved to (cx, cy)."""
    a = math.radians(degrees)
    ca, sa = math.cos(a), math.sin(a)
    return [(cx + x * stretch * ca - y * sa, cy + x * stretch * sa + y * ca) for x, y in points]


def _star_points(r: float, inner: float) -> list[tuple[float, float]]:
    return [((r if i % 2 == 0 else r * inner) * math.sin(i * math.pi / 5),
             -(r if i % 2 == 0 else r * inner) * math.cos(i * math.pi / 5)) for i in range(10)]


def _plus_points(r: float, t: float) -> list[tuple[float, float]]:
    return [(-t, -r), (t, -r), (t, -t), (r, -t), (r, t), (t, t), (t, r), (-t, r), (-t, t), (-r, t), (-r, -t),
            (-t, -t)]


def _shaky(rnd: random.Random, points: list[tuple[float, float]], closed: bool, jitter: float,
           per_side: int = 6) -> list[tuple[float, float]]:
    """A hand-drawn version of a polyline: extra points along each side, each nudged by up to ``jitter`` px with
    a drift that carries over (a slowly wandering hand); a closed one ends a little past or short of its start."""
    seq = points + [points[0]] if closed else list(points)
    out: list[tuple[float, float]] = []
    dx = dy = 0.0
    for (x0, y0), (x1, y1) in zip(seq[:-1], seq[1:]):
        for k in range(per_side):
            t = k / per_side
            dx = 0.6 * dx + rnd.uniform(-jitter, jitter)
            dy = 0.6 * dy + rnd.uniform(-jitter, jitter)
            out.append((x0 + (x1 - x0) * t + dx, y0 + (y1 - y0) * t + dy))
    out.append((seq[-1][0] + dx, seq[-1][1] + dy))
    if closed:
        extra = rnd.randint(-2, 3)
        out = out[:extra] if extra < 0 else out + out[1:1 + extra]
    return out


def _circle_points(r: float, n: int, wobble: float, rnd: random.Random) -> list[tuple[float, float]]:
    k1, k2 = rnd.uniform(0, 6.3), rnd.uniform(0, 6.3)
    a1, a2 = rnd.uniform(-wobble, wobble), rnd.uniform(-wobble, wobble)
    return [((r + a1 * math.sin(2 * t + k1) + a2 * math.sin(3 * t + k2)) * math.cos(t),
             (r + a1 * math.sin(2 * t + k1) + a2 * math.sin(3 * t + k2)) * math.sin(t))
            for t in (2 * math.pi * i / n for i in range(n))]


def shape_mask(rnd: random.Random, kind: str, size: tuple[int, int]) -> tuple[Image.Image, Image.Image, str, bool]:
    """Draws one shape of ``kind`` as two masks ("L"): its fill and its pen lines; returns them, its style and
    whether it was drawn by a (simulated) hand."""
    w, h = size
    fill, pen = Image.new("L", size, 0), Image.new("L", size, 0)
    df, dp = ImageDraw.Draw(fill), ImageDraw.Draw(pen)
    d = rnd.uniform(0.3, 0.95) * min(w, h)  # the bounding circle's diameter
    r = d / 2
    cx = rnd.uniform(r * 1.02, w - r * 1.02) if w > 2.04 * r else w / 2
    cy = rnd.uniform(r * 1.02, h - r * 1.02) if h > 2.04 * r else h / 2
    turn = rnd.uniform(0, 360)
    stretch = rnd.uniform(0.85, 1.18)
    hand = rnd.random() < 0.4
    width = max(2, int(rnd.uniform(0.02, 0.12) * d))  # a pen line
    style = rnd.choice(("fill", "fill", "outline", "both"))

    def poly(points: list[tuple[float, float]]) -> None:
        pts = _turn(points, cx, cy, turn, stretch)
        if hand:
            shaky = _shaky(rnd, pts, True, 0.012 * d)
            if style in ("fill", "both"):
                df.polygon(shaky, fill=255)
            if style in ("outline", "both"):
                dp.line(shaky, fill=255, width=width, joint="curve")
        else:
            if style in ("fill", "both"):
                df.polygon(pts, fill=255)
            if style in ("outline", "both"):
                dp.line(pts + pts[:1], fill=255, width=width, joint="curve")

    if kind == "circle":
        style = "both" if rnd.random() < 0.25 else "fill"
        if hand:
            pts = _turn(_circle_points(r, 40, 0.05 * r, rnd), cx, cy, turn, stretch)
            df.polygon(pts, fill=255)
            if style == "both":
                dp.line(pts + pts[:2], fill=255, width=width, joint="curve")
        else:
            rx, ry = r * min(1.0, stretch), r / max(1.0, stretch)
            df.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), fill=255)
            if style == "both":
                dp.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), outline=255, width=width)
    elif kind == "ring":
        style = "outline"
        band = max(2, int(rnd.uniform(0.03, 0.45) * r))
        if hand:
            pts = _turn(_circle_points(r - band / 2, 40, 0.05 * r, rnd), cx, cy, turn, stretch)
            extra = rnd.randint(-3, 4)
            pts = pts[:extra] if extra < 0 else pts + pts[:extra + 1]
            dp.line(pts, fill=255, width=band, joint="curve")
        else:
            rx, ry = r * min(1.0, stretch), r / max(1.0, stretch)
            dp.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), outline=255, width=band)
    elif kind == "square":
        if not hand and rnd.random() < 0.25:  # an upright (rounded) rectangle
            hx, hy = r * 0.7 * stretch, r * 0.7 / stretch
            box = (cx - hx, cy - hy, cx + hx, cy + hy)
            rad = rnd.uniform(0, 0.15) * r
            if style in ("fill", "both"):
                df.rounded_rectangle(box, radius=rad, fill=255)
            if style in ("outline", "both"):
                dp.rounded_rectangle(box, radius=rad, outline=255, width=width)
        else:
            s = r / math.sqrt(2)
            poly([(-s, -s), (s, -s), (s, s), (-s, s)])
    elif kind == "triangle":
        if not hand and rnd.random() < 0.3:
            if style in ("fill", "both"):
                df.regular_polygon((cx, cy, r), 3, rotation=turn, fill=255)
            if style in ("outline", "both"):
                dp.regular_polygon((cx, cy, r), 3, rotation=turn, outline=255, width=width)
        else:
            poly([(r * math.sin(a) + rnd.uniform(-0.07, 0.07) * r, -r * math.cos(a) + rnd.uniform(-0.07, 0.07) * r)
                  for a in (0, 2 * math.pi / 3, 4 * math.pi / 3)])
    elif kind == "cross":
        if rnd.random() < 0.4:  # two strokes of a pen or brush
            style = "strokes"
            bar = max(width, int(rnd.uniform(0.1, 0.45) * r))
            for a in (0, 90):
                ends = _turn([(-r * rnd.uniform(0.85, 1.0), 0), (r * rnd.uniform(0.85, 1.0), 0)], cx, cy, turn + a)
                if hand:
                    ends = _shaky(rnd, ends, False, 0.01 * d, per_side=8)
                dp.line(ends, fill=255, width=bar, joint="curve")
        else:
            poly(_plus_points(r * 0.95, r * rnd.uniform(0.16, 0.36)))
    elif kind == "star":
        if rnd.random() < 0.15:
            style = "pentagram"
            tips = _turn([(r * math.sin(i * 4 * math.pi / 5), -r * math.cos(i * 4 * math.pi / 5)) for i in range(5)],
                         cx, cy, turn)
            path = _shaky(rnd, tips, True, 0.01 * d) if hand else tips + tips[:1]
            dp.line(path, fill=255, width=width, joint="curve")
        else:
            poly(_star_points(r, rnd.uniform(0.36, 0.52)))
    else:
        raise ValueError(f"unknown shape {kind!r}")
    return fill, pen, style, hand


# --------------------------------------------------------------------------------------------- pictures


def _perspective(rnd: random.Random, img: Image.Image, amount: float) -> Image.Image:
    """A mild perspective warp (a photo taken not quite from above)."""
    w, h = img.size
    src = [(x + rnd.uniform(0, amount) * (w / 2 - x) * 2, y + rnd.uniform(0, amount) * (h / 2 - y) * 2)
           for x, y in ((0, 0), (w, 0), (w, h), (0, h))]  # corners moved inwards: no empty border
    dst = [(0, 0), (w, 0), (w, h), (0, h)]
    rows, rhs = [], []
    for (x, y), (u, v) in zip(dst, src):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        rhs += [u, v]
    coeffs = _solve(rows, rhs)
    return img.transform(img.size, Image.PERSPECTIVE, coeffs, Image.BICUBIC)


def _solve(a: list[list[float]], b: list[float]) -> list[float]:
    """Gaussian elimination for a small square system."""
    n = len(b)
    m = [row[:] + [b[i]] for i, row in enumerate(a)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(m[r][col]))
        m[col], m[pivot] = m[pivot], m[col]
        for r in range(n):
            if r != col:
                f = m[r][col] / m[col][col]
                m[r] = [x - f * y for x, y in zip(m[r], m[col])]
    return [m[i][n] / m[i][i] for i in range(n)]


def picture(rnd: random.Random, kind: str, info: dict[str, object] | None = None) -> Image.Image:
    """One picture of ``kind``: an RGB image of about 128 px (the model's processor resizes it to 32 x 32).

    ``info``, when given, is filled with how it was drawn: ``background`` (the function's name), ``style``
    (``fill``, ``outline``, ``both``, ``strokes``, ``pentagram``), ``hand``, ``perspective``.
    """
    info = {} if info is None else info
    size = (CANVAS, CANVAS) if rnd.random() < 0.75 else rnd.choice(((144, 128), (128, 144), (136, 120)))
    background = rnd.choice(BACKGROUNDS)
    img = background(rnd, size)
    fill, pen, style, hand = shape_mask(rnd, kind, size)
    info.update(background=background.__name__, style=style, hand=hand, perspective=False)
    body = ImageChops.lighter(fill, pen)
    ground = _mean_colour(img, body)
    main = _ink_for(rnd, ground, rnd.uniform(3.0, 8.0) if kind == "circle" else rnd.uniform(2.2, 8.0))
    if rnd.random() < 0.3:  # a soft drop shadow
        blurred = body.filter(ImageFilter.GaussianBlur(rnd.uniform(1.5, 4))).point(lambda v: int(v * 0.45))
        shadow = Image.new("L", size, 0)
        shadow.paste(blurred, (rnd.randint(2, 6), rnd.randint(2, 6)))  # shifted, not wrapped round
        img = Image.composite(Image.new("RGB", size, (0, 0, 0)), img, shadow)
    if fill.getbbox():
        paint = Image.new("RGB", size, main)
        if rnd.random() < 0.25:  # coloured in with a marker: parallel strokes of a lighter or darker shade
            strokes = ImageDraw.Draw(paint)
            shade = _shade(main, rnd.choice((-40, 40)))
            gap, a = rnd.randint(4, 9), rnd.uniform(0, math.pi)
            for k in range(-size[0], 2 * size[0], gap):
                strokes.line((k, 0, k + size[1] / math.tan(a + 1e-3), size[1]), fill=shade, width=2)
        img = Image.composite(paint, img, fill)
    if pen.getbbox():
        ink = main if style != "both" else _ink_for(rnd, main, 2.5)
        img = Image.composite(Image.new("RGB", size, ink), img, pen)
    # the photo: perspective, light, colour, focus, sensor noise, compression
    if rnd.random() < 0.35:
        img = _perspective(rnd, img, rnd.uniform(0.02, 0.07))
        info["perspective"] = True
    if rnd.random() < 0.4:
        w, h = size
        light = Image.linear_gradient("L").resize((2 * w, 2 * h)).rotate(rnd.uniform(0, 360))
        light = light.crop((w // 2, h // 2, w // 2 + w, h // 2 + h))
        lo = rnd.randint(150, 215)
        light = light.point(lambda v: lo + (255 - lo) * v // 255)
        img = ImageChops.multiply(img, Image.merge("RGB", (light, light, light)))
    if rnd.random() < 0.4:
        img = ImageEnhance.Color(img).enhance(rnd.uniform(0.5, 1.4))
        img = ImageEnhance.Contrast(img).enhance(rnd.uniform(0.75, 1.2))
    if rnd.random() < 0.4:
        img = img.filter(ImageFilter.GaussianBlur(rnd.uniform(0.5, 2.5)))
    if rnd.random() < 0.4:
        grain = _noise_seeded(rnd, size, rnd.uniform(8, 30)).convert("RGB")
        img = ImageChops.add(img, grain, scale=1.0, offset=-128)
    if rnd.random() < 0.35:
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=rnd.randint(10, 85))
        img = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    return img


def dataset(n: int, seed: int) -> tuple[list[Image.Image], list[int]]:
    """``n`` pictures, classes balanced (``n // 6`` each, in turn), from one seed: the images and their label ids."""
    rnd = random.Random(seed)
    labels = [i % len(CLASSES) for i in range(n)]
    return [picture(rnd, CLASSES[label]) for label in labels], labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", default="/tmp/heldout.png", help="where to write a grid of 60 pictures")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    images, _ = dataset(60, args.seed)
    sheet = Image.new("RGB", (10 * 100, 6 * 100), (0, 0, 0))
    for i, img in enumerate(images):
        row, col = i % 6, i // 6
        sheet.paste(img.resize((32, 32), Image.BILINEAR).resize((96, 96), Image.NEAREST), (col * 100, row * 100))
    sheet.save(args.grid)
    print(f"wrote {args.grid}: rows are {', '.join(CLASSES)}")


if __name__ == "__main__":
    main()
