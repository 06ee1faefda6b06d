"""Synthetic identity-card images, to measure the hard case: a small printed portrait vs a selfie.

`make_id_card(photo, seed)` lays a portrait cut from one photo (an LFW image: 250x250, face
centred) onto an ID-1 sized card with a tinted, patterned background and printed text, then
imitates printing and photographing it: the portrait is printed small (its pixels resampled
down and up again), softened, colour-shifted and sometimes greyscale; some cards carry a small
faded "ghost" copy of the portrait (as many passports and ID cards do); the card is tilted,
lit unevenly, laid on a table and saved as a JPEG of moderate quality. Every choice is drawn
from `seed`, so one photo and seed always give the same card.
"""

from __future__ import annotations

import io
import string

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont, ImageOps

CARD_SIZE = (856, 540)
"""ID-1 card (85.6 x 54 mm) at 10 pixels per mm, before it is photographed."""

PORTRAIT_CROP = (50, 30, 200, 218)
"""The part of a 250x250 LFW image printed as the portrait: head and shoulders, about 4:5."""


def make_id_card(photo: Image.Image, seed: int, greyscale: bool | None = None, ghost: bool | None = None) -> bytes:
    """A JPEG of a synthetic ID card whose portrait is `photo` (an LFW-style 250x250 image).

    `greyscale` and `ghost` force those variants; None lets `seed` decide (about 1 in 4 cards
    is greyscale, 1 in 3 has a ghost portrait).
    """
    rng = np.random.default_rng(seed)
    greyscale = bool(rng.random() < 0.25) if greyscale is None else greyscale
    ghost = bool(rng.random() < 0.35) if ghost is None else ghost
    card = card_background(rng)
    portrait = printed_portrait(photo, rng, greyscale)

    width, height = CARD_SIZE
    portrait_width = int(width * rng.uniform(0.16, 0.30))
    portrait = portrait.resize((portrait_width, int(portrait_width * 1.25)), Image.Resampling.LANCZOS)
    left, top = int(width * 0.05), int(height * rng.uniform(0.22, 0.30))
    card.paste(portrait, (left, top))
    text_left = left + portrait_width + 30
    print_text(card, rng, text_left, top)
    if ghost:
        small = ImageOps.grayscale(portrait).resize((portrait_width // 3, int(portrait_width * 1.25) // 3))
        faded = Image.blend(Image.new("L", small.size, 235), small, 0.35).convert("RGB")
        card.paste(faded, (int(width * 0.80), int(height * 0.62)))
    return photographed(card, rng)


def card_background(rng: np.random.Generator) -> Image.Image:
    """A pale tinted card with a header band and fine wavy security lines."""
    width, height = CARD_SIZE
    tint = rng.integers(200, 250, size=3)
    card = Image.new("RGB", CARD_SIZE, tuple(int(v) for v in tint))
    draw = ImageDraw.Draw(card)
    line_colour = tuple(int(v) for v in np.clip(tint - rng.integers(20, 50, size=3), 0, 255))
    phase = rng.uniform(0, 2 * np.pi)
    for row in range(0, height, 14):
        points = [(x, row + 6 * np.sin(x / 37 + phase + row / 50)) for x in range(0, width + 8, 8)]
        draw.line(points, fill=line_colour, width=1)
    band = tuple(int(v) for v in rng.integers(30, 140, size=3))
    draw.rectangle((0, 0, width, int(height * 0.16)), fill=band)
    title = ImageFont.load_default(size=34)
    draw.text((int(width * 0.05), int(height * 0.03)), "IDENTITY CARD", fill=(250, 250, 250), font=title)
    return card


def printed_portrait(photo: Image.Image, rng: np.random.Generator, greyscale: bool) -> Image.Image:
    """The portrait as printed: cropped, resampled at print resolution, softened and colour-shifted."""
    portrait = photo.convert("RGB").crop(PORTRAIT_CROP)
    print_width = int(rng.integers(70, 120))
    portrait = portrait.resize((print_width, int(print_width * 1.25)), Image.Resampling.BILINEAR)
    portrait = portrait.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.3, 0.8))))
    portrait = ImageEnhance.Contrast(portrait).enhance(float(rng.uniform(0.75, 1.0)))
    pixels = np.asarray(portrait, dtype=np.float32)
    pixels = pixels * rng.uniform(0.88, 1.08, size=3) + rng.uniform(-12, 12, size=3)
    portrait = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    return ImageOps.grayscale(portrait).convert("RGB") if greyscale else portrait


def print_text(card: Image.Image, rng: np.random.Generator, left: int, top: int) -> None:
    """Labels and made-up values (name, date of birth, number) to the right of the portrait."""
    draw = ImageDraw.Draw(card)
    label_font, value_font = ImageFont.load_default(size=15), ImageFont.load_default(size=24)
    letters = np.array(list(string.ascii_uppercase))
    fields = [
        ("SURNAME", "".join(rng.choice(letters, size=int(rng.integers(4, 10))))),
        ("GIVEN NAMES", "".join(rng.choice(letters, size=int(rng.integers(4, 9))))),
        ("DATE OF BIRTH", f"{rng.integers(1, 29):02d}.{rng.integers(1, 13):02d}.{rng.integers(1940, 2006)}"),
        ("DOCUMENT NO", "".join(rng.choice(list("0123456789"), size=9))),
    ]
    for index, (label, value) in enumerate(fields):
        y = top + index * 62
        draw.text((left, y), label, fill=(70, 70, 90), font=label_font)
        draw.text((left, y + 18), value, fill=(20, 20, 30), font=value_font)


def photographed(card: Image.Image, rng: np.random.Generator) -> bytes:
    """The card as a phone photo of it: tilted, on a table, unevenly lit, a little blurred, JPEG."""
    card = card.rotate(float(rng.uniform(-5, 5)), resample=Image.Resampling.BICUBIC, expand=True, fillcolor=(0, 0, 0))
    mask = card.convert("L").point(lambda value: 255 if value > 0 else 0)
    margin = int(rng.integers(20, 90))
    table = Image.new("RGB", (card.width + 2 * margin, card.height + 2 * margin),
                      tuple(int(v) for v in rng.integers(60, 160, size=3)))
    table.paste(card, (margin, margin), mask)
    pixels = np.asarray(table, dtype=np.float32)
    light = np.linspace(rng.uniform(0.8, 1.0), rng.uniform(0.95, 1.15), pixels.shape[1], dtype=np.float32)
    pixels = pixels * light[None, :, None] + rng.normal(0, 2.5, size=pixels.shape)
    photo = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    photo = photo.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.3, 0.9))))
    target_width = int(rng.integers(640, 1100))
    photo = photo.resize((target_width, int(photo.height * target_width / photo.width)), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    photo.save(buffer, format="JPEG", quality=int(rng.integers(55, 86)))
    return buffer.getvalue()
