"""Compare two image files from the command line and print the result as JSON.

    python -m faceverify ID_PHOTO SELFIE [--weights PACK_FOLDER] [--threshold T]

The pack defaults to $COG_WEIGHTS, else weights/buffalo_l (as in the Cog predictor).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from . import FaceVerifier, ModelPackError
from .modelpack import default_pack_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m faceverify", description="Do two photos show the same person?")
    parser.add_argument("image1", type=Path, help="reference: the identity document or its portrait")
    parser.add_argument("image2", type=Path, help="probe: the selfie")
    parser.add_argument("--weights", default=str(default_pack_path()), help="model pack folder")
    parser.add_argument("--threshold", type=float, default=None, help="match threshold in [0, 1] (default: the pack's)")
    args = parser.parse_args(argv)
    try:
        verifier = FaceVerifier.load(args.weights)
        result = verifier.verify(args.image1, args.image2, args.threshold)
    except (ModelPackError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(dataclasses.asdict(result), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
