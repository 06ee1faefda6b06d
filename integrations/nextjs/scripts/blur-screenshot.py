"""Make the README's screenshot from the browser test's: the two photos on the page blurred past
recognition (no data-set face goes into the repository unblurred).

Run after the browser test (tests/test_nextjs_browser.py), from integrations/nextjs/:
    ../../.venv/bin/python scripts/blur-screenshot.py [CASE]
It reads test-results/CASE.png (default same-person) and the photos' boxes from
test-results/results.json, and writes docs/page.png.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from PIL import Image, ImageFilter

HERE = Path(__file__).resolve().parent.parent


def blurred(screenshot: Path, boxes: list[list[float]], radius: float = 18.0) -> Image.Image:
    """`screenshot` with every box (x, y, width, height in CSS pixels at scale 1) heavily blurred."""
    image = Image.open(screenshot).convert("RGB")
    for x, y, width, height in boxes:
        region = (int(x), int(y), int(x + width + 1), int(y + height + 1))
        image.paste(image.crop(region).filter(ImageFilter.GaussianBlur(radius)), region[:2])
    return image


def main() -> None:
    """Blur the chosen case's screenshot and save it as docs/page.png."""
    case = sys.argv[1] if len(sys.argv) > 1 else "same-person"
    results = {item["name"]: item for item in json.loads((HERE / "test-results" / "results.json").read_text())}
    boxes = results[case]["photoBoxes"]
    if len(boxes) != 2:
        raise SystemExit(f"expected the two photos' boxes for {case}, got {boxes}")
    target = HERE / "docs" / "page.png"
    blurred(HERE / "test-results" / f"{case}.png", boxes).save(target, optimize=True)
    print(f"wrote {target.relative_to(HERE)}")


if __name__ == "__main__":
    main()
