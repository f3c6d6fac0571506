"""`DigitPredictor`: a drawing in, the model's prediction and what its first two
convolution blocks computed out, as a JSON-ready dict."""

from __future__ import annotations

import os
import threading
from typing import Any

import numpy as np

from .. import functional as F
from ..autograd import no_grad
from ..data import get_dataset_spec, normalize_images
from ..image import to_mnist
from ..inference import capture_outputs, load_model, normalization
from ..nn import Module
from ..tensor import Tensor

# The layers "look inside" shows, per model: (submodule path, title). Each is the first
# or second convolution block's output after its nonlinearity, before pooling.
FEATURE_LAYERS: dict[str, tuple[tuple[str, str], ...]] = {
    "lenet5": (("features.1", "conv1 + ReLU"), ("features.4", "conv2 + ReLU")),
    "lenet5_1998": (("c1_squash", "C1 + tanh"), ("c3_squash", "C3 + tanh")),
}
MAP_DECIMALS = 4  # feature map values are sent rounded: enough for gray levels, a fraction of the bytes


class DigitPredictor:
    """A loaded model with its normalization; `predict` is safe to call from many threads."""

    def __init__(self, model: Module, config: dict[str, Any]):
        self.model = model.eval()
        self.model_name = str(config.get("model", "lenet5"))
        self.dataset = str(config.get("dataset", "mnist"))
        self.mean_std = normalization(config)
        self.classes = list(get_dataset_spec(self.dataset).classes)
        self.layers = FEATURE_LAYERS.get(self.model_name, ())
        self._lock = threading.Lock()  # the model's modules are patched while a prediction records its layers

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike) -> "DigitPredictor":
        return cls(*load_model(path))

    def predict(self, gray: np.ndarray) -> dict[str, Any]:
        """Prediction for a float32 (H, W) grayscale drawing in [0, 1], either polarity:
        {digit, label, probabilities, input (28x28 uint8 the model saw), layers}. Raises
        ImageError ("no ink found") for a blank drawing."""
        image = to_mnist(gray, source="drawing")
        x = Tensor(normalize_images(image[None], normalize=self.mean_std))
        names = [name for name, _ in self.layers]
        with self._lock, no_grad(), capture_outputs(self.model, names) as outputs:
            probs = F.softmax(self.model(x), axis=1).data[0]
        digit = int(probs.argmax())
        layers = []
        for name, title in self.layers:
            maps = outputs[name][0]
            layers.append(dict(name=name, title=title, shape=list(maps.shape),
                               maps=np.round(maps.astype(np.float64), MAP_DECIMALS).tolist()))
        return dict(digit=digit, label=self.classes[digit], probabilities=[float(p) for p in probs],
                    input=image.tolist(), layers=layers, classes=self.classes, model=self.model_name,
                    dataset=self.dataset)
