#!/usr/bin/env python3
"""The digit app: draw a digit in the browser, see LeNet-5's prediction and look inside.

    python scripts/digit_app.py                  # then open http://127.0.0.1:8000/
    python scripts/digit_app.py --checkpoint runs/lenet5_1998/checkpoint.npz --port 8080

Serves a page (no internet needed) with a drawing pad; after every stroke it shows the
predicted digit, the probabilities of all classes, the 28x28 MNIST-style input the model
saw and the feature maps of its two convolution blocks. Only this machine can connect
unless --host says otherwise. Stop it with Ctrl+C.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # models/ and viz/: from the checkout, not installed

from scripts.options import add_checkpoint_arguments, load_checkpoint_argument
from tinygrad_lenet.cli import port_number
from viz.app import DigitPredictor, is_loopback_address, make_server


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_checkpoint_arguments(p)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    p.add_argument("--port", type=port_number, default=8000, help="0 picks a free port")
    p.add_argument("--quiet", action="store_true", help="do not log every request")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    predictor = DigitPredictor(load_checkpoint_argument(parser, args))
    try:
        server = make_server(predictor, args.host, args.port, quiet=args.quiet)
    except OSError as e:
        parser.error(f"cannot listen on {args.host}:{args.port}: {e.strerror or e}")
    if not is_loopback_address(args.host):
        print(f"digit_app.py: warning: listening on {args.host}: other machines that can reach it can use the app",
              file=sys.stderr)
    print(f"digit app: {predictor.model_name} trained on {predictor.dataset}, from {args.checkpoint}", flush=True)
    print(f"open {server.url}  (Ctrl+C to stop)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped", flush=True)
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
