"""Inference over the test set's size, and the digit app's prediction of one drawing."""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from tinygrad_lenet import Tensor, manual_seed, no_grad
from tinygrad_lenet.config import RunConfig
from tinygrad_lenet.ops.parallel import get_num_threads

from .common import INFERENCE_BATCH, TEST_IMAGES, interleaved, make_ours, make_torch, random_batches, summarize


def bench_inference(args: argparse.Namespace, with_torch: bool) -> dict[str, Any]:
    count = 2 * INFERENCE_BATCH if args.quick else TEST_IMAGES
    images = random_batches(count, 1, seed=1)[0][0]
    model, _ = make_ours(args)
    model.eval()

    @no_grad()
    def ours() -> None:
        for i in range(0, count, INFERENCE_BATCH):
            model(Tensor(images[i:i + INFERENCE_BATCH]))
    runs = {"ours": ours}
    if with_torch:
        torch, tmodel, _ = make_torch(model, get_num_threads())
        tmodel.eval()
        timages = torch.from_numpy(images)

        def theirs() -> None:
            with torch.inference_mode():
                for i in range(0, count, INFERENCE_BATCH):
                    tmodel(timages[i:i + INFERENCE_BATCH])
        runs["torch"] = theirs
    stats = interleaved(runs, max(2, args.repeats // 2), warmup=1)
    out: dict[str, Any] = {"batch_size": INFERENCE_BATCH, "images": count,
                           "extrapolated_to_10k": count != TEST_IMAGES}
    for name, s in stats.items():
        seconds = s["median_ms"] / 1e3
        out[name] = {**s, "seconds_for_10k": seconds * TEST_IMAGES / count, "images_per_s": count / seconds}
    if with_torch:
        out["ratio_ours_over_torch"] = out["ours"]["median_ms"] / out["torch"]["median_ms"]
    return out


def bench_app_prediction(args: argparse.Namespace) -> dict[str, Any] | None:
    """DigitPredictor.predict on one 280x280 drawing: preprocessing, the forward pass
    with the feature maps captured, the saliency backward pass and the JSON-ready answer."""
    if args.model != "lenet5":
        return None
    from models import TrainedModel, get_model
    from viz.app import DigitPredictor

    manual_seed(0)
    predictor = DigitPredictor(TrainedModel(get_model("lenet5").eval(), RunConfig(), tuple("0123456789"), {}))
    gray = np.zeros((280, 280), np.float32)
    gray[60:220, 130:150] = 1.0  # a "1"
    gray[60:80, 100:150] = 1.0
    times = []
    for k in range(3 + (5 if args.quick else 40)):
        start = time.perf_counter()
        predictor.predict(gray)
        if k >= 3:
            times.append(time.perf_counter() - start)
    return summarize(times)
