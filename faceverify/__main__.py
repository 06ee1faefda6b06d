"""Compare two image files from the command line and print the prediction's output as JSON.

    python -m faceverify ID_PHOTO SELFIE [--weights PACK_FOLDER] [--threshold T] [--require-selfie-quality]

It prints the record a prediction returns (faceverify/output.py: the same fields, rounding and
codes), so what a newcomer sees first is the contract they will call. The pack defaults to
$COG_WEIGHTS, else weights/buffalo_l (as in the Cog predictor).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import FaceVerifier, ModelPackError
from .modelpack import default_pack_path
from .output import output_record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m faceverify", description="Do two photos show the same person?")
    parser.add_argument("image1", type=Path, help="reference: the identity document or its portrait")
    parser.add_argument("image2", type=Path, help="probe: the selfie")
    parser.add_argument("--weights", default=str(default_pack_path()), help="model pack folder")
    parser.add_argument("--threshold", type=float, default=None, help="match threshold in [0, 1] (default: the pack's)")
    parser.add_argument("--require-selfie-quality", action="store_true",
                        help="refuse a selfie with a quality issue (image2_poor_quality)")
    args = parser.parse_args(argv)
    try:
        verifier = FaceVerifier.load(args.weights)
        result = verifier.verify(args.image1, args.image2, args.threshold, args.require_selfie_quality)
    except (ModelPackError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(output_record(result, verifier.pack.model_id), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
