#!/usr/bin/env python3
"""Overlay the training curves of several runs (their metrics.json) in one picture.

    python scripts/plot.py runs/lenet5 runs/lenet5_1998 --out comparison.png
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # models/ and viz/: from the checkout, not installed

from viz.plots import plot_curves


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", type=Path, help="run directories written by train.py")
    p.add_argument("--out", type=Path, default=Path("comparison.png"), help="a .png or .svg file")
    args = p.parse_args(argv)
    if args.out.suffix.lower() not in (".png", ".svg"):
        p.error(f"--out must end in .png or .svg, got {args.out}")
    runs = {}
    for run in args.runs:
        metrics = run / "metrics.json"
        try:
            epochs = json.loads(metrics.read_text())["epochs"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            p.error(f"{metrics}: not a metrics file written by train.py ({type(e).__name__}: {e})")
        if not epochs:
            p.error(f"{metrics}: no epochs recorded")
        label = run.name or str(run)
        runs[label if label not in runs else str(run)] = epochs
    try:
        plot_curves(runs, args.out)
    except OSError as e:
        print(f"plot.py: error: cannot write {args.out}: {e.strerror or e}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}: {', '.join(runs)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
