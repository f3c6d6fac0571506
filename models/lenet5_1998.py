"""LeNet-5 as published: LeCun, Bottou, Bengio, Haffner, "Gradient-Based Learning
Applied to Document Recognition", Proc. IEEE 86(11), 1998, section II.B and appendix A.

    input 32x32 -> C1 conv 5x5, 6 maps -> S2 subsampling -> C3 conv 5x5, 16 maps
    (Table I connections) -> S4 subsampling -> C5 conv 5x5, 120 maps -> F6 84 units
    -> 10 Euclidean RBF units; every layer up to F6 ends with f(a) = 1.7159 tanh(2a/3).

Trainable parameters (as in the paper): C1 156, S2 12, C3 1,516, S4 32, C5 48,120,
F6 10,164; 60,000 in all. C3's weight tensor holds all 16 x 6 kernels, but the 36
that Table I leaves out are held at exactly zero by a fixed mask (2,416 stored
entries, 1,516 free; see `count_trainable_parameters`).

Where this implementation has to choose:
- Input: the model takes the project's normalized 28x28 images ((p - mean) / std,
  p in [0, 1]), undoes the normalization and maps pixels to the paper's range
  (background -0.1, foreground 1.175), then pads 2 pixels of background to 32x32.
  `input_mean`/`input_std` must match the data normalization (MNIST by default).
- RBF centers: the paper's hand-drawn 7x12 bitmaps (its Fig. 3) cannot be
  reproduced exactly from the text; the stand-ins are the 7x12 digit glyphs drawn
  below (+1 = ink '#', -1 = background '.'), fixed and not trained.
- Output: `forward` returns logits = -RBF penalties, so argmax is the paper's
  argmin and `cross_entropy(logits, y)` is the MAP criterion without its j term;
  `rbf_outputs(x)` returns the penalties themselves and `map_loss` is the full
  criterion (eq. 9).
- Initialization: U(-2.4/F, 2.4/F) with F the fan-in of a unit (for C3, of that
  map's connected inputs), biases alike.
"""

from __future__ import annotations

import numpy as np

from tinygrad_lenet import nn
from tinygrad_lenet.data import get_dataset_spec
from tinygrad_lenet.nn import init
from tinygrad_lenet.tensor import Tensor

from .layers_1998 import (
    EuclideanRBF,
    MaskedConv2d,
    ScaledTanh,
    ScaleShiftPad2d,
    Subsampling2d,
    count_trainable_parameters,
)
from .registry import register_model

MNIST = get_dataset_spec("mnist")  # the paper's data: default input statistics

# Table I: rows are S2 maps, columns C3 maps; X = the C3 map sees that S2 map.
TABLE_I = """
   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5
0  X . . . X X X . . X X X X . X X
1  X X . . . X X X . . X X X X . X
2  X X X . . . X X X . . X . X X X
3  . X X X . . X X X X . . X . X X
4  . . X X X . . X X X X . X X . X
5  . . . X X X . . X X X X . X X X
"""

# Stand-ins for the paper's stylized 7x12 output codes (its Fig. 3): one glyph per digit.
DIGIT_GLYPHS = """
....... ....... ....... ....... ....... ....... ....... ....... ....... .......
..###.. ...#... ..###.. .#####. ....##. ####### ..####. ####### .#####. .#####.
.#...#. ..##... .#...#. #.....# ...#.#. #...... .#..... ......# #.....# #.....#
#.....# .#.#... #.....# ......# ..#..#. #...... #...... .....#. #.....# #.....#
#.....# ...#... ......# ......# .#...#. ######. #...... ....#.. #.....# #.....#
#.....# ...#... .....#. ..####. #....#. ......# ######. ...#... .#####. #.....#
#.....# ...#... ....#.. ......# ####### ......# #.....# ...#... #.....# .######
#.....# ...#... ...#... ......# .....#. ......# #.....# ..#.... #.....# ......#
#.....# ...#... ..#.... ......# .....#. ......# #.....# ..#.... #.....# ......#
.#...#. ...#... .#..... #.....# .....#. #.....# #.....# ..#.... #.....# .....#.
..###.. .#####. ####### .#####. .....#. .#####. .#####. ..#.... .#####. .####..
....... ....... ....... ....... ....... ....... ....... ....... ....... .......
"""

GLYPH_HEIGHT, GLYPH_WIDTH = 12, 7
PAPER_BACKGROUND, PAPER_FOREGROUND = -0.1, 1.175
PAPER_PARAMETER_COUNTS = {"c1": 156, "s2": 12, "c3": 1516, "s4": 32, "c5": 48120, "f6": 10164}


def c3_connection_table() -> np.ndarray:
    """Table I as a bool array (16 C3 maps, 6 S2 maps): C3's connection_table."""
    rows = [line.split()[1:] for line in TABLE_I.strip().splitlines()[1:]]
    table = np.array([[mark == "X" for mark in row] for row in rows], dtype=np.bool_)
    if table.shape != (6, 16):
        raise ValueError(f"TABLE_I: expected 6 rows of 16 marks, got shape {table.shape}")
    return table.T.copy()


def digit_codes() -> np.ndarray:
    """The 10 RBF centers (10, 84) in {-1, +1}: digit glyphs read row by row."""
    rows = [line.split() for line in DIGIT_GLYPHS.strip().splitlines()]
    if len(rows) != GLYPH_HEIGHT or any(len(r) != 10 or any(len(g) != GLYPH_WIDTH for g in r) for r in rows):
        raise ValueError(f"DIGIT_GLYPHS: expected {GLYPH_HEIGHT} rows of 10 glyphs, {GLYPH_WIDTH} characters each")
    codes = np.array([[[1.0 if ch == "#" else -1.0 for ch in rows[y][d]] for y in range(GLYPH_HEIGHT)]
                      for d in range(10)], dtype=np.float32)
    return codes.reshape(10, GLYPH_HEIGHT * GLYPH_WIDTH)


def _lecun_init(layer: nn.Module) -> None:
    """The paper's U(+-2.4 / fan_in) for a Conv2d or Linear weight, and its bias."""
    init.lecun_uniform_(layer.weight)
    bound = 2.4 / init.fan_in_and_fan_out(layer.weight)[0]
    init.uniform_(layer.bias, -bound, bound)


class LeNet5_1998(nn.Module):
    """The 1998 LeNet-5. Input (N, 1, 28, 28) normalized images, output logits
    (N, 10) = -RBF penalties; `rbf_outputs(x)` gives the penalties."""

    def __init__(self, input_mean: float = MNIST.mean, input_std: float = MNIST.std):
        super().__init__()
        # normalized x -> pixel p = x * std + mean -> paper value bg + (fg - bg) * p, padded with bg
        span = PAPER_FOREGROUND - PAPER_BACKGROUND
        self.scale_input = ScaleShiftPad2d(scale=input_std * span, shift=PAPER_BACKGROUND + input_mean * span,
                                           padding=2, pad_value=PAPER_BACKGROUND)
        self.c1 = nn.Conv2d(1, 6, kernel_size=5)
        self.c1_squash = ScaledTanh()
        self.s2 = Subsampling2d(6, kernel_size=2)
        self.s2_squash = ScaledTanh()
        self.c3 = MaskedConv2d(6, 16, kernel_size=5, connection_table=c3_connection_table())
        self.c3_squash = ScaledTanh()
        self.s4 = Subsampling2d(16, kernel_size=2)
        self.s4_squash = ScaledTanh()
        self.c5 = nn.Conv2d(16, 120, kernel_size=5)
        self.c5_squash = ScaledTanh()
        self.flatten = nn.Flatten()
        self.f6 = nn.Linear(120, 84)
        self.f6_squash = ScaledTanh()
        self.rbf = EuclideanRBF(84, 10, centers=digit_codes())
        for layer in (self.c1, self.c5, self.f6):
            _lecun_init(layer)

    def forward(self, x: Tensor, penalties: bool = False) -> Tensor:
        """Logits -y (N, 10); with `penalties=True` the RBF outputs y themselves."""
        if x.ndim != 4 or x.shape[1:] != (1, 28, 28):
            raise ValueError(f"LeNet5_1998: expected input of shape (N, 1, 28, 28), got {x.shape}")
        h = self.c1_squash(self.c1(self.scale_input(x)))
        h = self.s2_squash(self.s2(h))
        h = self.c3_squash(self.c3(h))
        h = self.s4_squash(self.s4(h))
        h = self.c5_squash(self.c5(h))
        y = self.rbf(self.f6_squash(self.f6(self.flatten(h))))
        return y if penalties else -y

    def rbf_outputs(self, x: Tensor) -> Tensor:
        """The RBF penalties y (N, 10); the predicted class is their argmin."""
        return self(x, penalties=True)

    def num_trainable_parameters(self) -> int:
        """60,000: free parameters, not counting C3's masked-out weights."""
        return count_trainable_parameters(self)


def map_loss(penalties: Tensor, targets: object, j: float = 1.0) -> Tensor:
    """The paper's MAP criterion (eq. 9), averaged over the batch:
    E = mean_p [ y_{D_p} + log(exp(-j) + sum_i exp(-y_i)) ], with y the RBF
    penalties (N, C) and D_p the target class. The exp(-j) term (a "rubbish"
    class) keeps pushing penalties of wrong classes up; as j grows E tends to
    cross_entropy(-y, targets). The paper does not state j; 1.0 is this
    implementation's default."""
    if penalties.ndim != 2:
        raise ValueError(f"map_loss: penalties must have shape (N, C), got {penalties.shape}")
    labels = np.asarray(targets.data if isinstance(targets, Tensor) else targets)
    if labels.shape != (penalties.shape[0],) or labels.dtype.kind not in "iu":
        raise ValueError(f"map_loss: targets must be {penalties.shape[0]} integer labels, "
                         f"got shape {labels.shape} dtype {labels.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() >= penalties.shape[1]):
        raise ValueError(f"map_loss: targets must be in [0, {penalties.shape[1]}), "
                         f"got values in [{labels.min()}, {labels.max()}]")
    if not np.isfinite(j):
        raise ValueError(f"map_loss: j must be finite, got {j}")
    n = penalties.shape[0]
    correct = penalties[np.arange(n), labels.astype(np.int64)]
    rubbish = Tensor.wrap(np.full((n, 1), -j, dtype=penalties.dtype))
    return (correct + nn.functional.concatenate([-penalties, rubbish], axis=1).logsumexp(axis=1)).mean()


@register_model("lenet5_1998")
def lenet5_1998(num_classes: int = 10, input_mean: float = MNIST.mean,
                input_std: float = MNIST.std) -> LeNet5_1998:
    if num_classes != 10:
        raise ValueError(f"lenet5_1998: the RBF output codes are 10 digit glyphs; num_classes must be 10, "
                         f"got {num_classes}")
    return LeNet5_1998(input_mean=input_mean, input_std=input_std)
