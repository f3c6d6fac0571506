"""LeNet-5 (LeCun et al., 1998) in its common modern form: ReLU, max pooling,
zero padding instead of a 32x32 input, and a linear 10-way output for softmax
cross-entropy."""

from __future__ import annotations

from tinygrad_lenet import nn

from .registry import register_model


class LeNet5(nn.Module):
    """conv 5x5 6 pad 2 -> ReLU -> maxpool 2 -> conv 5x5 16 -> ReLU -> maxpool 2
    -> 120 -> ReLU -> 84 -> ReLU -> 10. Input (N, 1, 28, 28), output logits (N, 10)."""

    # The paper's names of the layers (C: convolution, S: subsampling, F: full connection),
    # which drawings show beside the module paths.
    layer_names = {"features.0": "C1", "features.1": "C1 ReLU", "features.2": "S2", "features.3": "C3",
                   "features.4": "C3 ReLU", "features.5": "S4", "classifier.0": "flatten", "classifier.1": "C5",
                   "classifier.2": "C5 ReLU", "classifier.3": "F6", "classifier.4": "F6 ReLU", "classifier.5": "output"}

    def __init__(self, num_classes: int = 10, in_channels: int = 1):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, kernel_size=5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 16, kernel_size=5),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(16 * 5 * 5, 120),
            nn.ReLU(),
            nn.Linear(120, 84),
            nn.ReLU(),
            nn.Linear(84, num_classes),
        )

    def forward(self, x):
        return self.classifier(self.features(x))


@register_model("lenet5")
def lenet5(num_classes: int = 10) -> LeNet5:
    return LeNet5(num_classes=num_classes)
