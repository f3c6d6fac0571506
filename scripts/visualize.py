"""Draw a model's training graph: one forward pass and cross-entropy loss on a
batch, one backward pass, then the recorded graph written as svg, png, pdf or DOT
source, or explored in the interactive viewer (html, or served).

    python scripts/visualize.py --out lenet5.html        # the viewer, one file: open it in a browser
    python scripts/visualize.py --serve 8000             # the same, on http://127.0.0.1:8000/
    python scripts/visualize.py --model lenet5 --out lenet5.svg --level module --grads
    python scripts/visualize.py --model my_net.py:MyNet --out my_net.svg
    python scripts/visualize.py --checkpoint runs/my_net-MyNet/checkpoint.npz --out trained.svg
    python scripts/visualize.py --backward --level module --out lenet5_backward.svg

The batch is the first test images of MNIST when they are found (--data-dir,
$TINYGRAD_LENET_DATA or the cache; never downloaded), else random pixels.

The viewer shows the forward graph, whose backward pass can be walked step by step,
and the graph of the backward pass itself; --level, --grads, --backward and
--rankdir are for the static drawings.

--backward draws what backpropagation computes: the graph of d loss / d (the first
parameter), recorded with create_graph=True, its backward ops marked as such.

Without graphviz's `dot` program the DOT source is written instead, with a hint
on how to install graphviz (exit code 0: the graph itself was saved).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # models/ and viz/: from the checkout, not installed

import numpy as np

from models import CheckpointError, ModelSpecError, build_model, load_trained_model
from scripts.options import add_checkpoint_arguments, wait_for_interrupt
from tinygrad_lenet import Tensor, grad, manual_seed, nn
from tinygrad_lenet import functional as F
from tinygrad_lenet.cli import model_arg
from tinygrad_lenet.data import DATASETS, DatasetNotFoundError, load_mnist, normalize_images
from viz import FORMATS, draw_graph, explore, infer_format, layer_names_of, retain_grads, save_graph

VIEWER = "html"  # the --format of the interactive viewer


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model", default=None,
                   help="a registered model, package.module:attr or path/to/file.py:attr (default: lenet5); with "
                        "--checkpoint, the model code of a checkpoint trained on a model of yours")
    add_checkpoint_arguments(p, default=None, model=False)  # --model above names a checkpoint's model code too
    p.add_argument("--model-arg", action="append", type=model_arg, default=[], metavar="KEY=VALUE",
                   help="argument for the model's constructor (repeatable)")
    p.add_argument("--out", default=None, help="output file (default: <model>_graph.svg); .html: the interactive viewer")
    p.add_argument("--format", choices=(*FORMATS, VIEWER), default=None, help="default: from --out's suffix")
    p.add_argument("--serve", type=int, default=None, metavar="PORT",
                   help="serve the interactive viewer on http://127.0.0.1:PORT/ until Ctrl+C (0: a free port)")
    p.add_argument("--data-dir", default=None, help="where MNIST's test images are looked for (never downloaded)")
    p.add_argument("--level", choices=("op", "module"), default="op",
                   help="op: every op, grouped by module; module: one node per module")
    p.add_argument("--grads", action="store_true", help="show every tensor's gradient and the backward flow")
    p.add_argument("--backward", action="store_true",
                   help="draw the backward pass: the graph of d loss / d (first parameter) (create_graph=True)")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rankdir", choices=("TB", "BT", "LR", "RL"), default="TB")
    p.add_argument("--max-nodes", type=int, default=500)
    p.add_argument("--legend", action="store_true", help="add a legend of node kinds (--backward graphs have one anyway)")
    args = p.parse_args(argv)
    if args.batch_size < 1:
        p.error(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.backward and args.grads:
        p.error("--backward draws the gradient's own graph; --grads annotates the forward graph: give one")
    if args.serve is not None and not 0 <= args.serve <= 65535:
        p.error(f"--serve must be a port number (0-65535), got {args.serve}")
    if args.serve is not None and args.out is not None:
        p.error("--serve shows the viewer in a browser; --out writes a file: give one")
    if args.max_nodes < 1:
        p.error(f"--max-nodes must be at least 1, got {args.max_nodes}")
    if args.checkpoint is not None and not args.checkpoint.is_file():
        p.error(f"--checkpoint: no such file: {args.checkpoint}")
    html_out = args.out is not None and Path(args.out).suffix.lower() in (".html", ".htm")
    if args.format == VIEWER and args.out is not None and not html_out:
        p.error(f"--format html writes the viewer: give --out a .html name, got {args.out}")
    if html_out and args.format not in (None, VIEWER):
        p.error(f"--format {args.format} does not match the suffix of --out {args.out}")
    if args.serve is not None or html_out:
        args.format = VIEWER
    static_only = [flag for flag, given in (("--grads", args.grads), ("--backward", args.backward),
                                            ("--legend", args.legend)) if given]
    if args.format == VIEWER and static_only:
        p.error(f"{', '.join(static_only)}: for the static drawings; the viewer shows gradients and the backward "
                "pass itself")
    if args.out is None:
        stem = Path(args.checkpoint).parent.name if args.checkpoint else (args.model or "lenet5").replace(":", "-")
        args.out = f"{Path(stem).stem if stem.endswith('.py') else Path(stem).name}_graph.{args.format or 'svg'}"
    if args.format == VIEWER:
        return args
    suffix = Path(args.out).suffix.lstrip(".").lower()
    try:
        args.format = infer_format(args.out, args.format)
    except ValueError as e:
        p.error(str(e))
    if suffix in FORMATS and infer_format(args.out) != args.format:
        p.error(f"--format {args.format} does not match the suffix of --out {args.out}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    manual_seed(args.seed)
    try:
        if args.checkpoint is not None:
            model = load_trained_model(args.checkpoint, model=args.model,
                                       trust_code=args.trust_checkpoint_code).model.train()
        else:
            model = build_model(args.model or "lenet5", dict(args.model_arg))
    except (CheckpointError, ModelSpecError) as e:
        print(f"visualize.py: error: {e}", file=sys.stderr)
        return 2
    try:
        x, targets = batch(args)
    except (OSError, ValueError) as e:  # a corrupted or unreadable MNIST file
        print(f"visualize.py: error: {e}", file=sys.stderr)
        return 2
    with nn.fusion.unfused():  # every layer drawn with its own ops (relu apart from max_pool2d)
        logits = model(x)
    if targets is None or targets.max() >= logits.shape[-1]:
        targets = np.random.default_rng(args.seed).integers(0, logits.shape[-1], size=args.batch_size)
    loss = F.cross_entropy(logits, targets)
    loss.name = "loss"
    if args.format == VIEWER:
        return show_viewer(explore(loss, model), args)
    drawn = loss
    if args.backward:
        first = next(iter(model.parameters()))
        (drawn,) = grad(loss, [first], create_graph=True)
        drawn.name = f"d loss / d {first.name}"
    else:
        if args.grads:
            retain_grads(loss)
        loss.backward()
    graph = draw_graph(drawn, level=args.level, show_grads=args.grads, max_nodes=args.max_nodes,
                       rankdir=args.rankdir, legend=True if args.legend else None, layer_names=layer_names_of(model))
    saved = save_graph(graph, args.out, args.format)
    print(saved.message, file=sys.stdout if saved.rendered else sys.stderr)
    return 0


def batch(args: argparse.Namespace) -> tuple[Tensor, np.ndarray | None]:
    """The first test images of MNIST (normalized as training does) and their labels, or
    random pixels and no labels when MNIST is not found."""
    try:
        images, labels = load_mnist("test", root=args.data_dir, download=False)
    except DatasetNotFoundError:
        rng = np.random.default_rng(args.seed)
        return Tensor(rng.standard_normal((args.batch_size, 1, 28, 28), dtype=np.float32)), None
    images = normalize_images(images[:args.batch_size], normalize=DATASETS["mnist"].mean_std)
    return Tensor(images), labels[:args.batch_size].astype(np.int64)


def show_viewer(viewer, args: argparse.Namespace) -> int:
    """Write the viewer to --out, or serve it until Ctrl+C."""
    if args.serve is None:
        print(f"wrote the graph viewer to {viewer.save(args.out)} (open it in a browser)")
        return 0
    server = viewer.serve(args.serve)
    print(f"the graph viewer is at {server.url} (Ctrl+C to stop)", flush=True)
    try:
        wait_for_interrupt()
    finally:
        server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
