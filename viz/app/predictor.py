"""`DigitPredictor`: a drawing in, the model's prediction and what its first two
convolution blocks computed out, as a JSON-ready dict."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from models import TrainedModel, load_trained_model
from tinygrad_lenet import functional as F
from tinygrad_lenet import grad, nn, no_grad
from tinygrad_lenet.data import normalize_images
from tinygrad_lenet.image import ink_bounding_box, ink_map, to_mnist
from tinygrad_lenet.inference import capture_outputs
from tinygrad_lenet.tensor import Tensor
from tinygrad_lenet.training import energy

# The layers "look inside" shows, per model: (submodule path, title). Each is the first
# or second convolution block's output after its nonlinearity, before pooling.
FEATURE_LAYERS: dict[str, tuple[tuple[str, str], ...]] = {
    "lenet5": (("features.1", "conv1 + ReLU"), ("features.4", "conv2 + ReLU")),
    "lenet5_1998": (("c1_squash", "C1 + tanh"), ("c3_squash", "C3 + tanh")),
}
MAP_DECIMALS = 4  # feature map values are sent rounded: enough for gray levels, a fraction of the bytes
MIN_EXTENT = 0.15  # a drawing whose ink spans less than this fraction of the pad is a dot or a speck, not a digit
SMOOTHGRAD_SAMPLES = 32  # noisy copies of the input averaged by the saliency map
SMOOTHGRAD_NOISE = 0.15  # their noise's standard deviation, in pixel units ([0, 1] is ink's whole range)


class DigitPredictor:
    """A loaded model with its normalization; `predict` is safe to call from many threads."""

    def __init__(self, trained: TrainedModel):
        self.model = trained.model.eval()
        self.model_name = trained.config.model
        self.dataset = trained.config.dataset
        self.mean_std = trained.mean_std
        self.classes = list(trained.classes) or [str(k) for k in range(_num_outputs(trained))]
        self.layers = FEATURE_LAYERS.get(self.model_name) or default_feature_layers(self.model)
        threshold = trained.checkpoint.get("extra", {}).get("energy_threshold")
        self.energy_threshold = float(threshold) if isinstance(threshold, (int, float)) else None

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, model: str | None = None,
                        trust_code: bool = False) -> "DigitPredictor":
        """The checkpoint's model; `model` and `trust_code` as in `load_trained_model`."""
        return cls(load_trained_model(path, model=model, trust_code=trust_code))

    @property
    def is_digits(self) -> bool:
        """Whether the classes are the ten digits (the page then says "draw a digit")."""
        return self.classes == [str(d) for d in range(10)]

    def info(self) -> dict[str, Any]:
        """What the page shows before any drawing: the model, its data and what to draw."""
        heading = "Draw a digit" if self.is_digits else f"Draw one of: {', '.join(self.classes)}"
        return dict(model=self.model_name, dataset=self.dataset, classes=self.classes, heading=heading)

    def predict(self, gray: np.ndarray) -> dict[str, Any]:
        """Prediction for a float32 (H, W) grayscale drawing in [0, 1], either polarity:
        {digit, label, probabilities, input (28x28 uint8 the model saw), layers, saliency,
        energy, not_a_digit, too_small}. `not_a_digit` says whether the energy score
        (-logsumexp of the logits) is above the threshold stored at training (the 99th
        percentile over training images; None for a checkpoint without one), or the ink
        spans less than MIN_EXTENT of the pad (`too_small`: a dot, which scaling to 20x20
        would turn into a full-size disc). Raises ImageError ("no ink found") for a blank drawing."""
        image = to_mnist(gray, source="drawing")
        top, bottom, left, right = ink_bounding_box(ink_map(gray, "drawing"))
        extent = max(bottom - top, right - left) / min(gray.shape)
        x = Tensor(normalize_images(image[None], normalize=self.mean_std))
        names = [name for name, _ in self.layers]
        with no_grad(), capture_outputs(self.model, names) as outputs:
            logits = self.model(x)
        probs = F.softmax(logits, axis=1).data[0]
        digit = int(probs.argmax())
        saliency = self.saliency(image, digit)
        layers = []
        for name, title in self.layers:
            maps = outputs[name][0]
            layers.append(dict(name=name, title=title, shape=list(maps.shape),
                               maps=np.round(maps.astype(np.float64), MAP_DECIMALS).tolist()))
        score = float(energy(logits.data)[0])
        unlike = None if self.energy_threshold is None else score > self.energy_threshold
        answer = dict(digit=digit, label=self.classes[digit], probabilities=[float(p) for p in probs],
                      energy=score, not_a_digit=True if extent < MIN_EXTENT and self.is_digits else unlike,
                      too_small=bool(extent < MIN_EXTENT),
                      input=image.tolist(), layers=layers, saliency=np.round(saliency, 6).tolist(),
                      classes=self.classes, model=self.model_name, dataset=self.dataset)
        if hasattr(self.model, "rbf_outputs"):  # the 1998 model: its output is minus the RBF distances
            answer["rbf_distances"] = [float(-v) for v in logits.data[0]]
        return answer

    def saliency(self, image: np.ndarray, digit: int) -> np.ndarray:
        """SmoothGrad (Smilkov et al., 2017) of the answer's score: d logit[digit] / d pixel
        (pixels in [0, 1]) averaged over SMOOTHGRAD_SAMPLES copies of the 28x28 input with
        Gaussian noise of SMOOTHGRAD_NOISE added. The plain gradient of a ReLU network is
        speckled (each pixel's value depends on which units happen to be active); the
        average shows the strokes that matter. Positive: more ink there raises the score.
        The noise is seeded, so a drawing always gets the same map."""
        pixels = image.astype(np.float32) / np.float32(255)
        noise = np.random.default_rng(0).normal(0.0, SMOOTHGRAD_NOISE, (SMOOTHGRAD_SAMPLES, *pixels.shape))
        x = Tensor(normalize_images((pixels + noise.astype(np.float32))[:, None], normalize=self.mean_std),
                   requires_grad=True)
        (g,) = grad(self.model(x)[:, digit].sum(), [x])
        return g.data[:, 0].mean(axis=0).astype(np.float64) / self.mean_std[1]


def default_feature_layers(model: nn.Module) -> tuple[tuple[str, str], ...]:
    """For a model without an entry in FEATURE_LAYERS: its first two Conv2d layers."""
    convs = [name for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    return tuple((name, f"conv{i + 1} ({name})") for i, name in enumerate(convs[:2]))


def _num_outputs(trained: TrainedModel) -> int:
    with no_grad():
        return int(trained.model(Tensor(np.zeros((1, 1, 28, 28), np.float32))).shape[-1])
