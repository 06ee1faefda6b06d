"""faceverify_tools/measure_page_sizes.py: the page's resize-and-encode as the measurement does it,
and the genuine pairs it reads (the figures are in integrations/nextjs/README.md)."""

from __future__ import annotations

import io

from PIL import Image

from conftest import LFW, case
from faceverify_tools.measure_page_sizes import genuine_pairs, page_jpeg


def size_of(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "JPEG"
        return image.size


def test_page_jpeg_scales_down_to_the_longest_side_and_never_up():
    with Image.open(case("single-face/obama3.jpg")) as photo:  # 1434 x 2333
        assert max(size_of(page_jpeg(photo, 800))) == 800
        assert size_of(page_jpeg(photo, 4000)) == photo.size
        assert size_of(page_jpeg(photo, None, scale=0.5)) == (717, 1166)


def test_genuine_pairs_are_the_same_person_lines_of_view_1():
    pairs = genuine_pairs(LFW / "pairsDevTrain.txt", LFW / "images")
    assert len(pairs) == 1100
    assert all(first.parent == second.parent and first.is_file() and second.is_file() for first, second in pairs[:20])
