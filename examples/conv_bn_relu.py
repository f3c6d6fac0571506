"""A small Conv-BatchNorm-ReLU network: the layers of a modern CNN, for MNIST-sized
images. A model file like any of yours: every script takes it as `FILE.py:CLASS`.

    python scripts/visualize.py --model examples/conv_bn_relu.py:ConvBNNet --out conv_bn.html
    python scripts/train.py --model examples/conv_bn_relu.py:ConvBNNet --epochs 2
"""

from tinygrad_lenet import nn


class ConvBNNet(nn.Module):
    """Two Conv-BatchNorm-ReLU-MaxPool blocks and a linear classifier."""

    def __init__(self, num_classes: int = 10, width: int = 8):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.BatchNorm2d(2 * width), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(2 * width * 7 * 7, num_classes))

    def forward(self, x):
        return self.classifier(self.features(x))
