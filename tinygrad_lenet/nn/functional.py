"""`torch.nn.functional`'s name for `tinygrad_lenet.functional`, so that
`import tinygrad_lenet.nn.functional as F` ports as written: importing this module
gives that one (the same object, not a copy)."""

import sys

from .. import functional

sys.modules[__name__] = functional
