"""`Tensor`: a numpy array plus the op that produced it, so gradients can flow back."""

from __future__ import annotations

import warnings
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from . import autograd, ops
from .autograd import Context
from .errors import DimError, ShapeError
from .hooks import RemovableHandle, add_hook
from .random import default_generator
from .runtime import compute_scope
from .torch_names import Device, Size, ValuesIndices, is_device, numpy_keywords, with_dim
from .validation import Axis, check_label_smoothing, int_pair, normalize_axis, reduction_axis, resolve_shape, same_float_dtype

DEFAULT_FLOAT = np.dtype(np.float32)
FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_SUPPORTED_KINDS = "fiub"  # float, signed int, unsigned int, bool



def check_dtype(dtype: Any) -> np.dtype:
    """The numpy dtype for `dtype`, or a TypeError if tensors cannot hold it."""
    try:
        dt = np.dtype(dtype)
    except TypeError as e:
        raise TypeError(f"Tensor: unsupported dtype {dtype!r}") from e
    if dt.kind not in _SUPPORTED_KINDS or (dt.kind == "f" and dt not in FLOAT_DTYPES):
        raise TypeError(f"Tensor: unsupported dtype {dt}; use float32, float64, an integer type or bool")
    return dt


class Tensor:
    """An n-dimensional array that records the ops applied to it.

    `Tensor(data, requires_grad=False, dtype=None)`: floating-point data becomes
    float32 unless `dtype` says otherwise (float64 is supported, e.g. for gradient
    checks); integer and bool data keep their type and cannot require grad.

    Where PyTorch differs: `.data` is a numpy array and `.grad` holds numpy arrays
    (Tensors after a `create_graph=True` backward), not tensors; mixing float32 and
    float64 in one op is a TypeError, not a promotion; `pad` takes numpy's
    (before, after) widths (`functional.pad` takes PyTorch's flat form); mistakes raise
    `ShapeError` / `DimError`, each a subclass of both of PyTorch's classes for it.
    """

    __slots__ = ("data", "grad", "requires_grad", "grad_fn", "retains_grad", "name", "hooks", "__weakref__")
    __array_ufunc__ = None  # numpy defers to our reflected operators (ndarray + Tensor)

    def __init__(self, data: Any, requires_grad: bool = False, dtype: Any = None):
        if isinstance(data, Tensor):
            data = data.data
        if dtype is not None:
            dt = check_dtype(dtype)
            arr = np.asarray(data)
            if arr.dtype.kind not in _SUPPORTED_KINDS:
                raise TypeError(f"Tensor: cannot convert data of dtype {arr.dtype} to {dt}")
            arr = arr.astype(dt, copy=False)
        else:
            arr = np.asarray(data)
            if arr.dtype.kind == "f":
                arr = arr.astype(DEFAULT_FLOAT, copy=False)
            check_dtype(arr.dtype)
        self._init(arr, requires_grad)

    def _init(self, arr: np.ndarray, requires_grad: bool) -> None:
        if requires_grad and arr.dtype.kind != "f":
            raise TypeError(f"Tensor: only floating-point tensors can require grad, got dtype {arr.dtype}")
        self.data: np.ndarray = arr
        self.grad: np.ndarray | None = None
        self.requires_grad = bool(requires_grad)
        self.grad_fn: Context | None = None  # the recorded op that produced this tensor (None for leaves)
        self.retains_grad = False  # keep .grad although not a leaf (see retain_grad)
        self.name: str | None = None
        self.hooks: dict[int, Callable[["Tensor"], Any]] | None = None  # see register_hook

    @classmethod
    def wrap(cls, arr: np.ndarray, requires_grad: bool = False) -> "Tensor":
        """A tensor around `arr` as it is: no copy, no dtype conversion (for op
        outputs and arrays already in the right dtype)."""
        t = cls.__new__(cls)
        t._init(np.asarray(arr), requires_grad)  # noqa: SLF001  (same class: __init__ without conversion)
        return t

    # ---------------------------------------------------------------- properties
    @property
    def shape(self) -> tuple[int, ...]:
        """The shape, a tuple of ints (PyTorch's `.shape`; `.size()` gives it too)."""
        return self.data.shape

    @property
    def ndim(self) -> int:
        """The number of dimensions."""
        return self.data.ndim

    @property
    def dtype(self) -> np.dtype:
        """The numpy dtype of `.data` (float32 by default)."""
        return self.data.dtype

    @property
    def size(self) -> Size:
        """The element count, as numpy's `size`; `t.size()` and `t.size(dim)` as PyTorch's."""
        return Size(self.data.size, self.data.shape)

    @property
    def is_leaf(self) -> bool:
        """Whether no recorded op produced this tensor (inputs and parameters): leaves accumulate `.grad`."""
        return self.grad_fn is None

    def numel(self) -> int:
        """The number of elements (PyTorch's name for `.size` here)."""
        return self.data.size

    def __len__(self) -> int:
        return len(self.data)

    def __iter__(self) -> Iterator["Tensor"]:
        """The sub-tensors along the first axis (without this, Python would index
        until IndexError, and a 0-d tensor would look like an empty sequence)."""
        if self.ndim == 0:
            raise TypeError(f"iteration over a 0-d tensor (shape {self.shape}); use .item()")
        return (self[i] for i in range(len(self)))

    def __bool__(self) -> bool:
        """The truth of the single element (as in `if loss < 1.0:`); ambiguous otherwise."""
        if self.size != 1:
            raise ShapeError(f"the truth value of a tensor with {self.size} elements (shape {self.shape}) "
                             "is ambiguous; use .any() on .data, .all() on .data or .item()")
        return bool(self.data)

    def __repr__(self) -> str:
        """The values (numpy's formatting, abbreviated past 1000 elements), shape, dtype
        and grad_fn or requires_grad."""
        values = np.array2string(self.data, separator=", ", threshold=1000, edgeitems=3,
                                 prefix="Tensor(")
        extra = f", grad_fn=<{self.grad_fn.op}>" if self.grad_fn is not None else (
            ", requires_grad=True" if self.requires_grad else "")
        return f"Tensor({values}, shape={self.shape}, dtype={self.dtype}{extra})"

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __format__(self, spec: str) -> str:
        if spec and self.size == 1:
            return format(self.data.item(), spec)  # f"{loss:.4f}" as for a float
        return format(repr(self), spec)

    # ------------------------------------------------------------ autograd API
    def backward(self, gradient: Any = None, retain_graph: bool | None = None, create_graph: bool = False) -> None:
        """Compute the gradient of this tensor with respect to every tensor in its
        graph that requires grad; leaves accumulate into `.grad`. `gradient` is
        d loss / d self (implied 1 for a scalar). With `create_graph=True` the backward
        pass is recorded and `.grad` holds Tensors that can be differentiated again
        (otherwise numpy arrays); `retain_graph` (default: `create_graph`) keeps the
        graph's saved arrays for another backward."""
        if not self.requires_grad:
            raise RuntimeError("backward(): this tensor does not require grad and has no recorded graph")
        g = initial_gradient(self, gradient, create_graph, "backward()")
        with compute_scope(backward=True):
            autograd.run_backward(self, g, create_graph if retain_graph is None else retain_graph, create_graph)

    def accumulate_grad(self, g: Any, owned: bool = False) -> None:
        """Add `g` into `.grad` (what backward does at leaves): arrays in place, Tensors
        (from a create_graph backward) by a recorded add. An `owned` array (one nothing
        else refers to) becomes `.grad` itself; others are copied first."""
        if g.dtype != self.dtype:
            raise TypeError(f"gradient dtype {g.dtype} does not match tensor dtype {self.dtype}")
        if isinstance(g, Tensor) or isinstance(self.grad, Tensor):
            self.grad = g if self.grad is None else self.grad + g
        elif self.grad is None:
            self.grad = g if owned else np.array(g, copy=True)
        else:
            self.grad += g

    def register_hook(self, hook: Callable[["Tensor"], Any]) -> RemovableHandle:
        """Call `hook(grad)` when this tensor's gradient has been computed in a backward
        pass; a hook that returns a tensor or array replaces the gradient (for the
        tensor's `.grad` and everything behind it). Returns a handle with `.remove()`."""
        if not self.requires_grad:
            raise RuntimeError("register_hook: this tensor does not require grad, so no gradient reaches it")
        if self.hooks is None:
            self.hooks = {}
        return add_hook(self.hooks, hook)

    def retain_grad(self) -> "Tensor":
        """Keep `.grad` on this non-leaf tensor after backward (for inspection)."""
        self.retains_grad = True
        return self

    def zero_grad(self) -> None:
        """Set `.grad` to None (the next backward pass starts the sum again)."""
        self.grad = None

    def detach(self) -> "Tensor":
        """The same data, cut from the graph."""
        return Tensor.wrap(self.data, requires_grad=False)

    def requires_grad_(self, flag: bool = True) -> "Tensor":
        """Set whether ops on this tensor are recorded for backward, in place; returns the tensor.
        Only floating-point tensors can require grad."""
        if flag and self.dtype.kind != "f":
            raise TypeError(f"Tensor: only floating-point tensors can require grad, got dtype {self.dtype}")
        self.requires_grad = flag
        return self

    def item(self) -> float | int | bool:
        """The value of a one-element tensor as a Python number."""
        if self.size != 1:
            raise ShapeError(f"item(): tensor has {self.size} elements, expected 1 (shape {self.shape})")
        return self.data.item()

    def numpy(self) -> np.ndarray:
        """The data as a numpy array (the same array, not a copy; PyTorch's `.numpy()`)."""
        return self.data

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        """`np.asarray(tensor)`, `np.concatenate([tensors])`: the data (numpy functions
        see values, not the graph; ufuncs on a tensor go to its operators instead)."""
        if dtype is not None and np.dtype(dtype) != self.data.dtype:
            return self.data.astype(dtype)
        return self.data.copy() if copy else self.data

    def tolist(self) -> Any:
        """The data as nested Python lists."""
        return self.data.tolist()

    # ---------------------------------------------------------------- dtype
    def astype(self, dtype: Any) -> "Tensor":
        """A cast to `dtype` (recorded: float to float casts carry the gradient back)."""
        dt = check_dtype(dtype)
        if dt == self.dtype:
            return self
        return ops.Cast.apply(self, dtype=dt)

    def float(self) -> "Tensor":
        """A float32 copy (a cast, recorded), as PyTorch's `.float()`."""
        return self.astype(np.float32)

    def double(self) -> "Tensor":
        """A float64 copy (a cast, recorded), as PyTorch's `.double()`."""
        return self.astype(np.float64)

    def long(self) -> "Tensor":
        """An int64 copy (class targets, indices), as PyTorch's `.long()`."""
        return self.astype(np.int64)

    def int(self) -> "Tensor":
        """An int32 copy, as PyTorch's `.int()`."""
        return self.astype(np.int32)

    def type_as(self, other: "Tensor") -> "Tensor":
        """A cast to `other`'s dtype."""
        return self.astype(other.dtype)

    def to(self, *args: Any, **kwargs: Any) -> "Tensor":
        """PyTorch's `to`: a dtype converts (as `astype`); a device must be the CPU, the
        only one here (`"cpu"`, `device("cpu")`), and changes nothing."""
        for target in (*args, *kwargs.values()):
            if is_device(target):
                Device(target)  # refuses a device other than the CPU, by name
            elif target is not None and not isinstance(target, bool):
                return self.astype(target)
        return self

    def cpu(self) -> "Tensor":
        """The tensor itself: everything runs on the CPU (PyTorch programs call it)."""
        return self

    def contiguous(self) -> "Tensor":
        """The tensor itself: every op here accepts any memory order."""
        return self

    def clone(self) -> "Tensor":
        """A copy with its own data, recorded (gradients flow back to this tensor)."""
        return ops.Mul.apply(self, Tensor.wrap(np.ones((), dtype=self.dtype))) if self.dtype.kind == "f" else \
            Tensor.wrap(self.data.copy())

    def dim(self) -> int:
        """The number of dimensions (PyTorch's `.dim()`)."""
        return self.ndim

    def view_as(self, other: "Tensor") -> "Tensor":
        """A reshape to `other`'s shape."""
        return self.reshape(other.shape)

    def eq(self, other: Any) -> "Tensor":
        """Elementwise `==` as a bool tensor (PyTorch's `.eq`)."""
        return self == other

    def ne(self, other: Any) -> "Tensor":
        """Elementwise `!=` as a bool tensor (PyTorch's `.ne`)."""
        return self != other

    def masked_fill(self, mask: Any, value: float) -> "Tensor":
        """`value` where `mask` (broadcast to this shape) is true, else this tensor's values."""
        condition = mask if isinstance(mask, Tensor) else Tensor.wrap(np.asarray(mask, dtype=bool))
        return where(condition, Tensor.wrap(np.asarray(value, dtype=self.dtype)), self)

    def t(self) -> "Tensor":
        """The transpose of a 1-D or 2-D tensor (PyTorch's `t`)."""
        if self.ndim > 2:
            raise ShapeError(f"t: expects a tensor of at most 2 dimensions, got shape {self.shape}")
        return self if self.ndim < 2 else self.permute(1, 0)

    # ------------------------------------------------------- operand coercion
    def as_operand(self, other: Any, op: str) -> "Tensor":
        """`other` as a tensor for a binary op: scalars, arrays and integer tensors
        take this tensor's float dtype; two tensors of different float types are
        an error, and so are operands of unsupported dtypes (complex, strings...)."""
        if isinstance(other, Tensor):
            if other.dtype != self.dtype and self.dtype.kind == "f" and other.dtype.kind == "f":
                raise TypeError(f"{op}: dtype mismatch {self.dtype} vs {other.dtype}; "
                                "convert one explicitly with .float() or .double()")
            if self.dtype.kind == "f" and other.dtype.kind != "f":
                return Tensor.wrap(other.data.astype(self.dtype))
            return other
        arr = np.asarray(other)
        if arr.dtype.kind not in _SUPPORTED_KINDS:
            raise TypeError(f"{op}: unsupported operand of dtype {arr.dtype} ({type(other).__name__})")
        if self.dtype.kind == "f":
            arr = arr.astype(self.dtype, copy=False)
        elif arr.dtype.kind == "f":
            arr = arr.astype(DEFAULT_FLOAT, copy=False)
        return Tensor.wrap(arr)

    def _operands(self, other: Any, op: str, reflected: bool = False) -> tuple["Tensor", "Tensor"]:
        """(self, other) coerced to one dtype, swapped for reflected operators; an
        integer tensor meeting a float operand becomes float, so numpy never
        promotes the result to float64 behind the caller's back."""
        b = self.as_operand(other, op)
        a = self
        if a.dtype.kind != "f" and b.dtype.kind == "f":
            a = Tensor.wrap(a.data.astype(b.dtype))
        return (b, a) if reflected else (a, b)

    # ------------------------------------------------------------ elementwise
    def __add__(self, other: Any) -> "Tensor":
        return ops.Add.apply(*self._operands(other, "add"))

    def __radd__(self, other: Any) -> "Tensor":
        return ops.Add.apply(*self._operands(other, "add", reflected=True))

    def __sub__(self, other: Any) -> "Tensor":
        return ops.Sub.apply(*self._operands(other, "sub"))

    def __rsub__(self, other: Any) -> "Tensor":
        return ops.Sub.apply(*self._operands(other, "sub", reflected=True))

    def __mul__(self, other: Any) -> "Tensor":
        return ops.Mul.apply(*self._operands(other, "mul"))

    def __rmul__(self, other: Any) -> "Tensor":
        return ops.Mul.apply(*self._operands(other, "mul", reflected=True))

    def __truediv__(self, other: Any) -> "Tensor":
        return ops.Div.apply(*self._operands(other, "div"))

    def __rtruediv__(self, other: Any) -> "Tensor":
        return ops.Div.apply(*self._operands(other, "div", reflected=True))

    def div(self, other: Any, rounding_mode: str | None = None) -> "Tensor":
        """PyTorch's div: true division, or rounded toward zero ("trunc") or down ("floor");
        a rounded quotient has no gradient (it is piecewise constant), as in PyTorch."""
        if rounding_mode is None:
            return self / other
        if rounding_mode not in ("trunc", "floor"):
            raise ValueError(f"div: rounding_mode must be None, 'trunc' or 'floor', got {rounding_mode!r}")
        a, b = self._operands(other, "div")
        if a.dtype.kind != "f":
            if (b.data == 0).any():
                raise ZeroDivisionError(f"div: integer division by zero ({a.dtype} tensors)")
            quotient = np.floor_divide(a.data, b.data) if rounding_mode == "floor" else \
                np.trunc(a.data / b.data).astype(np.result_type(a.data, b.data))
            return Tensor.wrap(np.asarray(quotient))
        with np.errstate(divide="ignore", invalid="ignore"):
            return Tensor.wrap(np.asarray((np.floor if rounding_mode == "floor" else np.trunc)(a.data / b.data)))

    def __floordiv__(self, other: Any) -> "Tensor":
        return self.div(other, rounding_mode="floor")

    def fmod(self, other: Any) -> "Tensor":
        """The remainder with the sign of this tensor (C's fmod): self - trunc(self / other) * other."""
        return self._remainder(other, "trunc")

    def remainder(self, other: Any) -> "Tensor":
        """The remainder with the sign of `other` (Python's %): self - floor(self / other) * other."""
        return self._remainder(other, "floor")

    __mod__ = remainder

    def _remainder(self, other: Any, rounding_mode: str) -> "Tensor":
        a, b = self._operands(other, "remainder")
        if a.dtype.kind != "f":
            return Tensor.wrap(np.asarray((np.fmod if rounding_mode == "trunc" else np.remainder)(a.data, b.data)))
        return a - a.div(b, rounding_mode=rounding_mode) * b  # gradients 1 and -quotient, as PyTorch's

    def __pow__(self, exponent: Any) -> "Tensor":
        """x ** p: a scalar p (an integer tensor stays integer only for whole p >= 0), or a
        tensor or array of exponents (elementwise, differentiable in both)."""
        if isinstance(exponent, Tensor) or np.ndim(exponent) != 0:
            base = self if self.dtype.kind == "f" else self.float()
            return ops.PowTensor.apply(*base._operands(exponent, "pow_tensor"))
        whole = isinstance(exponent, (int, np.integer)) and not isinstance(exponent, bool)
        if self.dtype.kind != "f" and whole and exponent < 0:
            raise ShapeError(f"pow: integers to negative integer powers are not allowed (a {self.dtype} tensor ** "
                             f"{exponent}); use a float tensor or exponent")
        p = float(exponent)
        base = self if self.dtype.kind == "f" or whole else self.float()  # int ** 2 stays int, int ** 2.0 is float
        return ops.Pow.apply(base, exponent=p)

    def __neg__(self) -> "Tensor":
        return ops.Neg.apply(self)

    def __matmul__(self, other: Any) -> "Tensor":
        return ops.MatMul.apply(*self._operands(other, "matmul"))

    def __rmatmul__(self, other: Any) -> "Tensor":
        return ops.MatMul.apply(*self._operands(other, "matmul", reflected=True))

    def matmul(self, other: Any) -> "Tensor":
        """Matrix product, numpy's `@` rules (batched, broadcast); its gradient is two products."""
        return self @ other

    def exp(self) -> "Tensor":
        """Elementwise e**x."""
        return ops.Exp.apply(self)

    def log(self) -> "Tensor":
        """Elementwise natural logarithm."""
        return ops.Log.apply(self)

    def sqrt(self) -> "Tensor":
        """Elementwise square root."""
        return ops.Sqrt.apply(self)

    def relu(self) -> "Tensor":
        """Elementwise max(x, 0); the gradient at 0 is 0, as PyTorch's."""
        return ops.Relu.apply(self)

    def tanh(self) -> "Tensor":
        """Elementwise hyperbolic tangent."""
        return ops.Tanh.apply(self)

    def sigmoid(self) -> "Tensor":
        """Elementwise 1 / (1 + e**-x), computed without overflow."""
        return ops.Sigmoid.apply(self)

    def abs(self) -> "Tensor":
        """Elementwise absolute value; the gradient at 0 is 0, as PyTorch's."""
        return ops.Abs.apply(self)

    def sign(self) -> "Tensor":
        """-1, 0 or 1 (no gradient: it is 0 almost everywhere)."""
        return Tensor.wrap(np.sign(self.data))

    def sin(self) -> "Tensor":
        """Elementwise sine."""
        return ops.Sin.apply(self)

    def cos(self) -> "Tensor":
        """Elementwise cosine."""
        return ops.Cos.apply(self)

    def log1p(self) -> "Tensor":
        """Elementwise log(1 + x), accurate near 0."""
        return ops.Log1p.apply(self)

    def expm1(self) -> "Tensor":
        """Elementwise e**x - 1, accurate near 0."""
        return ops.Expm1.apply(self)

    def square(self) -> "Tensor":
        """Elementwise x * x."""
        return self * self

    def reciprocal(self) -> "Tensor":
        """Elementwise 1 / x."""
        return 1.0 / self

    def rsqrt(self) -> "Tensor":
        """Elementwise 1 / sqrt(x)."""
        return self ** -0.5

    def clip(self, min: Any = None, max: Any = None) -> "Tensor":  # noqa: A002  (PyTorch's names)
        """Values limited to [min, max]; either bound may be None, a number or a tensor
        (tensor bounds broadcast). Gradient 1 inside the closed interval, else 0."""
        if min is None and max is None:
            raise ShapeError("clip: give min, max or both")
        if isinstance(min, Tensor) or isinstance(max, Tensor):
            out = self
            if min is not None:
                low = self.as_operand(min, "clip")
                out = where(out < low, low, out)
            if max is not None:
                high = self.as_operand(max, "clip")
                out = where(out > high, high, out)
            return out
        return ops.Clip.apply(self, low=None if min is None else float(min), high=None if max is None else float(max))

    clamp = clip

    def softplus(self, beta: float = 1.0, threshold: float = 20.0) -> "Tensor":
        """Elementwise log(1 + e**(beta x)) / beta, linear above `threshold` (PyTorch's softplus)."""
        return ops.Softplus.apply(self, beta=float(beta), threshold=float(threshold))

    def leaky_relu(self, negative_slope: float = 0.01) -> "Tensor":
        """Elementwise x for x > 0, else negative_slope * x."""
        return ops.LeakyRelu.apply(self, negative_slope=float(negative_slope))

    def elu(self, alpha: float = 1.0) -> "Tensor":
        """Elementwise x for x > 0, else alpha * (e**x - 1)."""
        return ops.Elu.apply(self, alpha=float(alpha))

    def silu(self) -> "Tensor":
        """x * sigmoid(x) (swish), one op."""
        return ops.Silu.apply(self)

    def gelu(self, approximate: str = "none") -> "Tensor":
        """x * Phi(x), Phi the standard normal CDF; approximate="tanh" uses PyTorch's tanh formula."""
        if approximate not in ("none", "tanh"):
            raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
        return ops.Gelu.apply(self, approximate=approximate)

    def erf(self) -> "Tensor":
        """Elementwise error function (float64: scipy's; float32: a fitted formula, within float32 rounding)."""
        return ops.Erf.apply(self)

    def hardtanh(self, min_val: float = -1.0, max_val: float = 1.0) -> "Tensor":
        """Elementwise clamp to [min_val, max_val], gradient 0 outside."""
        return self.clip(min_val, max_val)

    def __rpow__(self, base: Any) -> "Tensor":
        """scalar ** tensor (and array ** tensor)."""
        return ops.PowTensor.apply(*self._operands(base, "pow_tensor", reflected=True))

    def maximum(self, other: Any) -> "Tensor":
        """Elementwise maximum of two tensors (broadcast); ties split the gradient equally."""
        return ops.Maximum.apply(*self._operands(other, "maximum"))

    def minimum(self, other: Any) -> "Tensor":
        """Elementwise minimum of two tensors (broadcast); ties split the gradient equally."""
        return ops.Minimum.apply(*self._operands(other, "minimum"))

    # ---------------------------------------------- comparisons (no gradient)
    def _compare(self, other: Any, fn: Any) -> "Tensor":
        o = other.data if isinstance(other, Tensor) else other
        return Tensor.wrap(fn(self.data, o))

    def __eq__(self, other: Any) -> "Tensor":  # type: ignore[override]
        return self._compare(other, np.equal)

    def __ne__(self, other: Any) -> "Tensor":  # type: ignore[override]
        return self._compare(other, np.not_equal)

    def __lt__(self, other: Any) -> "Tensor":
        return self._compare(other, np.less)

    def __le__(self, other: Any) -> "Tensor":
        return self._compare(other, np.less_equal)

    def __gt__(self, other: Any) -> "Tensor":
        return self._compare(other, np.greater)

    def __ge__(self, other: Any) -> "Tensor":
        return self._compare(other, np.greater_equal)

    __hash__ = object.__hash__

    # ---------------------------------------------- bitwise and logical (no gradient)
    def _bitwise(self, other: Any, fn: Any, op: str, shift: bool = False, reverse: bool = False) -> "Tensor":
        """`fn` on integer (and, except for shifts, bool) tensors, PyTorch's dtype rules."""
        o = other.data if isinstance(other, Tensor) else other
        kinds = "iu" if shift else "biu"
        for v in (self.data, np.asarray(o)):
            if v.dtype.kind not in kinds:
                raise TypeError(f"{op}: needs {'integer' if shift else 'integer or bool'} tensors, got {v.dtype}")
        a, b = (o, self.data) if reverse else (self.data, o)
        try:
            return Tensor.wrap(np.asarray(fn(a, b)))
        except ValueError:
            raise ShapeError(f"{op}: shapes {np.shape(a)} and {np.shape(b)} cannot be broadcast together") from None

    def bitwise_and(self, other: Any) -> "Tensor":
        """Elementwise `&` of integer or bool tensors (not differentiable)."""
        return self._bitwise(other, np.bitwise_and, "bitwise_and")

    def bitwise_or(self, other: Any) -> "Tensor":
        """Elementwise `|` of integer or bool tensors (not differentiable)."""
        return self._bitwise(other, np.bitwise_or, "bitwise_or")

    def bitwise_xor(self, other: Any) -> "Tensor":
        """Elementwise `^` of integer or bool tensors (not differentiable)."""
        return self._bitwise(other, np.bitwise_xor, "bitwise_xor")

    def bitwise_not(self) -> "Tensor":
        """Elementwise `~` of an integer or bool tensor (not differentiable)."""
        return self._bitwise(self, lambda a, _: np.invert(a), "bitwise_not")

    def bitwise_left_shift(self, other: Any) -> "Tensor":
        """Elementwise `<<` of integer tensors (not differentiable)."""
        return self._bitwise(other, np.left_shift, "bitwise_left_shift", shift=True)

    def bitwise_right_shift(self, other: Any) -> "Tensor":
        """Arithmetic shift (the sign is kept), as in PyTorch."""
        return self._bitwise(other, np.right_shift, "bitwise_right_shift", shift=True)

    __and__, __or__, __xor__, __invert__ = bitwise_and, bitwise_or, bitwise_xor, bitwise_not
    __lshift__, __rshift__ = bitwise_left_shift, bitwise_right_shift

    def __rand__(self, other: Any) -> "Tensor":
        return self._bitwise(other, np.bitwise_and, "bitwise_and", reverse=True)

    def __ror__(self, other: Any) -> "Tensor":
        return self._bitwise(other, np.bitwise_or, "bitwise_or", reverse=True)

    def __rxor__(self, other: Any) -> "Tensor":
        return self._bitwise(other, np.bitwise_xor, "bitwise_xor", reverse=True)

    def __rlshift__(self, other: Any) -> "Tensor":
        return self._bitwise(other, np.left_shift, "bitwise_left_shift", shift=True, reverse=True)

    def __rrshift__(self, other: Any) -> "Tensor":
        return self._bitwise(other, np.right_shift, "bitwise_right_shift", shift=True, reverse=True)

    def logical_and(self, other: Any) -> "Tensor":
        """Elementwise logical and, as a bool tensor."""
        return self._compare(other, np.logical_and)

    def logical_or(self, other: Any) -> "Tensor":
        """Elementwise logical or, as a bool tensor."""
        return self._compare(other, np.logical_or)

    def logical_xor(self, other: Any) -> "Tensor":
        """Elementwise logical exclusive or, as a bool tensor."""
        return self._compare(other, np.logical_xor)

    def logical_not(self) -> "Tensor":
        """Elementwise logical not, as a bool tensor."""
        return Tensor.wrap(np.logical_not(self.data))

    @with_dim
    def argmax(self, axis: int | None = None, keepdims: bool = False) -> "Tensor":
        """Indices of the maxima (int64; no gradient), over all elements when axis is None."""
        return Tensor.wrap(np.argmax(self.data, axis=self._arg_axis(axis, "argmax"), keepdims=keepdims))

    @with_dim
    def argmin(self, axis: int | None = None, keepdims: bool = False) -> "Tensor":
        """Indices of the minima (int64; no gradient), over all elements when axis is None."""
        return Tensor.wrap(np.argmin(self.data, axis=self._arg_axis(axis, "argmin"), keepdims=keepdims))

    def _arg_axis(self, axis: Any, op: str) -> int | None:
        if axis is not None and not isinstance(axis, (int, np.integer)):
            raise TypeError(f"{op}: axis must be an int or None, got {axis!r}")
        return reduction_axis(axis, self.ndim, op)

    # ------------------------------------------------------------- reductions
    @with_dim
    def sum(self, axis: Axis = None, keepdims: bool = False) -> "Tensor":
        """The sum over `axis` (PyTorch's `dim=`; None: every axis), keeping reduced axes with `keepdims` (`keepdim=`)."""
        return ops.Sum.apply(self, axis=reduction_axis(axis, self.ndim, "sum"), keepdims=keepdims)

    @with_dim
    def mean(self, axis: Axis = None, keepdims: bool = False) -> "Tensor":
        """The mean over `axis` (PyTorch's `dim=`; None: every axis), keeping reduced axes with `keepdims` (`keepdim=`)."""
        return ops.Mean.apply(self, axis=reduction_axis(axis, self.ndim, "mean"), keepdims=keepdims)

    def max(self, *args: Any, **kwargs: Any) -> Any:
        """The maximum over axes (all by default): `max(axis=...)` gives the values, as numpy's;
        `max(dim)` and `max(dim=...)` give PyTorch's (values, indices) (see `torch_names`).
        On ties the gradient is split evenly among the maxima."""
        return self._extremum("max", args, kwargs)

    @with_dim
    def amax(self, axis: Axis = None, keepdims: bool = False) -> "Tensor":
        """The maxima over axes, values only (PyTorch's `amax`, numpy's `max`)."""
        return ops.Max.apply(self, axis=reduction_axis(axis, self.ndim, "max"), keepdims=keepdims)

    @with_dim
    def amin(self, axis: Axis = None, keepdims: bool = False) -> "Tensor":
        """The minima over axes, values only; on ties the gradient is split evenly.
        Integers and bools (no gradient) are taken directly: -max(-x) would overflow."""
        if self.dtype.kind != "f":
            return Tensor.wrap(np.asarray(np.min(self.data, axis=reduction_axis(axis, self.ndim, "min"),
                                                 keepdims=keepdims)))
        return -((-self).amax(axis=axis, keepdims=keepdims))

    def _extremum(self, op: str, args: tuple, kwargs: dict) -> Any:
        values = self.amax if op == "max" else self.amin
        pytorch = "dim" in kwargs or (bool(args) and "axis" not in kwargs)
        kwargs = numpy_keywords(op, dict(kwargs))
        if not pytorch:
            return values(*args, **kwargs)
        if len(args) > 2 or (args and "axis" in kwargs) or set(kwargs) - {"axis", "keepdims"}:
            raise TypeError(f"{op}: expected ({op}(dim, keepdim=False)), got {args} and {sorted(kwargs)}")
        dim = args[0] if args else kwargs["axis"]
        keep = args[1] if len(args) > 1 else kwargs.get("keepdims", False)
        if not isinstance(dim, (int, np.integer)) or isinstance(dim, bool):
            raise TypeError(f"{op}: dim must be an int, got {dim!r}")
        index = (self.argmax if op == "max" else self.argmin)(axis=int(dim), keepdims=keep)
        return ValuesIndices(values(axis=int(dim), keepdims=keep), index)

    @with_dim
    def logsumexp(self, axis: Axis = None, keepdims: bool = False) -> "Tensor":
        """log(sum(exp(x))) over `axis`, computed without overflow."""
        return ops.LogSumExp.apply(self, axis=reduction_axis(axis, self.ndim, "logsumexp"), keepdims=keepdims)

    def min(self, *args: Any, **kwargs: Any) -> Any:
        """The minimum, as `max` (values, or PyTorch's (values, indices) with a dim)."""
        return self._extremum("min", args, kwargs)

    @with_dim
    def prod(self, axis: Axis = None, keepdims: bool = False) -> "Tensor":
        """Product over axes, as a tree of pairwise multiplications (log2(n) ops, n - 1
        products): exact gradients also where elements are 0, and second derivatives."""
        ax = reduction_axis(axis, self.ndim, "prod")
        if self.dtype.kind != "f":  # integers and bools: int64, as PyTorch promotes them (no gradient)
            return Tensor.wrap(np.asarray(np.prod(self.data.astype(np.int64), axis=ax, keepdims=keepdims)))
        axes = tuple(range(self.ndim)) if ax is None else ((ax,) if isinstance(ax, int) else tuple(ax))
        rest = [i for i in range(self.ndim) if i not in axes]
        kept = tuple(1 if i in axes else n for i, n in enumerate(self.shape)) if keepdims else \
            tuple(self.shape[i] for i in rest)
        if any(self.shape[i] == 0 for i in axes):  # the empty product
            return self.sum(axis=ax, keepdims=keepdims) * 0 + 1
        x = self.permute(rest + list(axes)) if self.ndim else self
        x = x.reshape([self.shape[i] for i in rest] + [-1])
        while x.shape[-1] > 1:
            if x.shape[-1] % 2:
                x = x.pad([(0, 0)] * (x.ndim - 1) + [(0, 1)], value=1.0)
            x = x[..., 0::2] * x[..., 1::2]
        return x.reshape(kept)

    @with_dim
    def var(self, axis: Axis = None, correction: int = 1, keepdims: bool = False) -> "Tensor":
        """Variance with `correction` (1: Bessel's, PyTorch's default; 0: the population variance)."""
        ax = reduction_axis(axis, self.ndim, "var")
        axes = range(self.ndim) if ax is None else ((ax,) if isinstance(ax, int) else ax)
        n = int(np.prod([self.shape[a] for a in axes]))
        if n - correction <= 0:  # as PyTorch: a warning, and the sum of squares / max(n - correction, 0)
            warnings.warn(f"var: {n} element(s) per reduction with correction {correction} (shape {self.shape}): "
                          "degrees of freedom <= 0, the result is nan or inf", RuntimeWarning, stacklevel=2)
            with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # numpy's "mean of empty slice"
                centered = self - self.mean(axis=ax, keepdims=True)
                return (centered * centered).sum(axis=ax, keepdims=keepdims) / Tensor.wrap(
                    np.asarray(max(n - correction, 0), dtype=self.dtype))
        centered = self - self.mean(axis=ax, keepdims=True)
        return (centered * centered).sum(axis=ax, keepdims=keepdims) / float(n - correction)

    @with_dim
    def std(self, axis: Axis = None, correction: int = 1, keepdims: bool = False) -> "Tensor":
        """The standard deviation over `axis`, dividing by n - `correction` (1: the unbiased estimate, as PyTorch's default)."""
        return self.var(axis, correction, keepdims).sqrt()

    @with_dim
    def norm(self, p: float = 2, axis: Axis = None, keepdims: bool = False) -> "Tensor":
        """The p-norm over axes (all by default): p = 2, 1, inf, or any p > 0."""
        a = self.abs()
        if p == np.inf:
            return a.max(axis=axis, keepdims=keepdims)
        if p == 1:
            return a.sum(axis=axis, keepdims=keepdims)
        if p == 2:
            return (self * self).sum(axis=axis, keepdims=keepdims).sqrt()
        if not p > 0:
            raise ValueError(f"norm: p must be > 0 or inf, got {p}")
        return (a ** float(p)).sum(axis=axis, keepdims=keepdims) ** (1.0 / float(p))

    def cumprod(self, dim: int) -> "Tensor":
        """Running products along `dim`, one multiply per step: exact gradients also at zeros."""
        dim = normalize_axis(dim, max(self.ndim, 1), "cumprod")
        if self.ndim == 0:
            return self * 1
        steps = [self[(slice(None),) * dim + (i,)] for i in range(self.shape[dim])]
        running = [steps[0]] if steps else []
        for step in steps[1:]:
            running.append(running[-1] * step)
        return ops.Stack.apply(*running, axis=dim) if running else self * 1

    def cummax(self, dim: int) -> ValuesIndices:
        """PyTorch's cummax: running maxima along `dim` and where each was taken (ties: the
        latest); the values are gathered, so gradients go to those places."""
        return self._running_extremum(dim, np.maximum, "cummax")

    def cummin(self, dim: int) -> ValuesIndices:
        """Running minimum along `dim`: `(values, indices)`, as PyTorch's."""
        return self._running_extremum(dim, np.minimum, "cummin")

    def _running_extremum(self, dim: int, pick: Any, op: str) -> ValuesIndices:
        dim = normalize_axis(dim, max(self.ndim, 1), op)
        if self.ndim == 0:
            return ValuesIndices(self * 1 if self.dtype.kind == "f" else self, Tensor.wrap(np.zeros((), np.int64)))
        running = pick.accumulate(self.data, axis=dim)
        positions = np.arange(self.shape[dim]).reshape([-1 if a == dim else 1 for a in range(self.ndim)])
        index = np.maximum.accumulate(np.where(self.data == running, positions, 0), axis=dim).astype(np.int64)
        return ValuesIndices(self.gather(dim, index), Tensor.wrap(index))

    @with_dim
    def cumsum(self, axis: int) -> "Tensor":
        """Running sum along `axis` (PyTorch's `dim=`)."""
        return ops.Cumsum.apply(self, axis=normalize_axis(axis, max(self.ndim, 1), "cumsum"))

    @with_dim
    def all(self, axis: Axis = None, keepdims: bool = False) -> "Tensor":
        """Whether all elements are true (a bool tensor; no gradient)."""
        return Tensor.wrap(np.asarray(np.all(self.data, axis=reduction_axis(axis, self.ndim, "all"), keepdims=keepdims)))

    @with_dim
    def any(self, axis: Axis = None, keepdims: bool = False) -> "Tensor":
        """Whether any element is true (a bool tensor; no gradient)."""
        return Tensor.wrap(np.asarray(np.any(self.data, axis=reduction_axis(axis, self.ndim, "any"), keepdims=keepdims)))

    # ------------------------------------------------------------ shape ops
    def reshape(self, *shape: Any) -> "Tensor":
        """The same data in a new shape (one size may be -1); a view when numpy can make one."""
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return ops.Reshape.apply(self, shape=resolve_shape(self.shape, tuple(shape)))

    view = reshape

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> "Tensor":
        """Dimensions `start_dim` to `end_dim` merged into one."""
        s, e = normalize_axis(start_dim, self.ndim, "flatten"), normalize_axis(end_dim, self.ndim, "flatten")
        if s > e:
            raise ShapeError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} (shape {self.shape})")
        shape = self.shape[:s] + (int(np.prod(self.shape[s:e + 1])),) + self.shape[e + 1:]
        return ops.Reshape.apply(self, shape=shape)

    def unsqueeze(self, dim: int) -> "Tensor":
        """A new axis of size 1 at `dim` (negative counts from the end of the result)."""
        if not isinstance(dim, (int, np.integer)) or not -self.ndim - 1 <= dim <= self.ndim:
            raise DimError(f"unsqueeze: dim {dim!r} is out of range for a tensor with {self.ndim} dimensions")
        dim = int(dim) % (self.ndim + 1)
        return ops.Reshape.apply(self, shape=self.shape[:dim] + (1,) + self.shape[dim:])

    def squeeze(self, dim: Axis = None) -> "Tensor":
        """Drop axes of size 1: all of them, or those of `dim` (an axis whose size is not 1 stays, as in PyTorch)."""
        axes = range(self.ndim) if dim is None else normalize_axis(dim, self.ndim, "squeeze")
        axes = {axes} if isinstance(axes, int) else set(axes)
        shape = tuple(n for i, n in enumerate(self.shape) if not (i in axes and n == 1))
        return self if shape == self.shape else ops.Reshape.apply(self, shape=shape)

    def permute(self, *axes: Any) -> "Tensor":
        """The axes reordered (`x.permute(0, 2, 1)`)."""
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        norm = tuple(a % self.ndim for a in axes) if self.ndim else ()
        if sorted(norm) != list(range(self.ndim)):
            raise ShapeError(f"permute: axes {tuple(axes)} are not a permutation for shape {self.shape}")
        return ops.Permute.apply(self, axes=norm)

    def transpose(self, dim0: int | None = None, dim1: int | None = None) -> "Tensor":
        """Swap two axes, or reverse all axes when none are given (numpy's `.T`)."""
        if dim0 is None and dim1 is None:
            return self.permute(tuple(reversed(range(self.ndim))))
        if dim0 is None or dim1 is None:
            raise ValueError("transpose: give both axes or neither")
        dim0, dim1 = normalize_axis(dim0, self.ndim, "transpose"), normalize_axis(dim1, self.ndim, "transpose")
        axes = list(range(self.ndim))
        axes[dim0], axes[dim1] = axes[dim1], axes[dim0]
        return self.permute(axes)

    @property
    def T(self) -> "Tensor":
        """The axes reversed (a matrix transposed)."""
        return self.transpose()

    def expand(self, *shape: Any) -> "Tensor":
        """broadcast_to, where -1 keeps the size of an existing dimension (PyTorch's expand)."""
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        lead = len(shape) - self.ndim
        return self.broadcast_to([self.shape[i - lead] if s == -1 and i >= lead else s for i, s in enumerate(shape)])

    def broadcast_to(self, shape: Sequence[int]) -> "Tensor":
        """The tensor broadcast to `shape` (numpy's rules); the gradient sums over the broadcast axes."""
        shape = tuple(int(s) for s in shape)
        try:
            ok = np.broadcast_shapes(self.shape, shape) == shape
        except ValueError:
            ok = False
        if not ok:
            raise ShapeError(f"broadcast_to: cannot broadcast shape {self.shape} to {shape}")
        return ops.BroadcastTo.apply(self, shape=shape)

    def pad(self, pad_width: Any, mode: str = "constant", value: float = 0.0) -> "Tensor":
        """Padding, numpy style: an int, a (before, after) pair, or one pair per axis.
        mode "constant" fills with `value`; "reflect" mirrors without repeating the edge,
        "replicate" repeats the edge (both gather from the tensor, so the gradient adds up)."""
        try:
            pairs = np.broadcast_to(np.asarray(pad_width), (self.ndim, 2))
        except ValueError:
            raise ShapeError(f"pad: pad_width {pad_width!r} does not fit shape {self.shape}") from None
        width = tuple((int(a), int(b)) for a, b in pairs)
        if any(a < 0 or b < 0 for a, b in width):
            raise ValueError(f"pad: negative pad widths {width} for shape {self.shape}")
        if mode == "constant":
            out = ops.Pad.apply(self, pad_width=width)
            if value != 0:  # the border's value, broadcast over the axes without padding (the batch, say)
                shape = tuple(n if a or b else 1 for n, (a, b) in zip(self.shape, width))
                border = np.pad(np.zeros(shape, dtype=bool), [(a, b) for a, b in width], constant_values=True)
                out = where(Tensor.wrap(border), Tensor.wrap(np.asarray(value, dtype=self.dtype)), out)
            return out
        numpy_mode = {"reflect": "reflect", "replicate": "edge"}.get(mode)
        if numpy_mode is None:
            raise ValueError(f"pad: mode must be 'constant', 'reflect' or 'replicate', got {mode!r}")
        if mode == "reflect" and any(max(a, b) >= n for (a, b), n in zip(width, self.shape) if a or b):
            raise ShapeError(f"pad: reflect padding {width} must be smaller than the dimensions {self.shape}")
        positions = np.pad(np.arange(self.size).reshape(self.shape), width, mode=numpy_mode)
        return self.reshape(-1)[positions]

    def flip(self, *axes: Any) -> "Tensor":
        """Reverse the order of elements along `axes` (all axes if none are given)."""
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        norm = normalize_axis(tuple(axes) if axes else tuple(range(self.ndim)), self.ndim, "flip")
        return ops.Flip.apply(self, axes=norm)

    @with_dim
    def roll(self, shifts: Any, dims: Any = None, *, axis: Any = None) -> "Tensor":
        """Shift elements along `dims` (PyTorch's name; numpy's `axis` too), wrapping around;
        without dims the flattened tensor rolls and shifts is one int. One shift per dim."""
        if axis is not None:
            if dims is not None:
                raise TypeError("roll: got both dims= and axis= (they are the same argument)")
            dims = axis
        one = isinstance(shifts, (int, np.integer))
        shift_list = [shifts] if one else list(shifts)
        if dims is None:
            if len(shift_list) != 1:
                raise ShapeError(f"roll: without dims, shifts must be one int, got {shifts!r}")
        else:
            dim_list = [dims] if isinstance(dims, (int, np.integer)) else list(dims)
            if len(dim_list) != len(shift_list):
                raise ShapeError(f"roll: {len(shift_list)} shifts {shifts!r} for {len(dim_list)} dims {dims!r}")
            dims = tuple(normalize_axis(d, self.ndim, "roll") for d in dim_list)
        positions = np.roll(np.arange(self.size).reshape(self.shape), tuple(int(v) for v in shift_list),
                            axis=dims if dims is None else tuple(dims))
        return self.reshape(-1)[positions]

    def unflatten(self, dim: int, sizes: Sequence[int]) -> "Tensor":
        """Split axis `dim` into `sizes` (one may be -1), PyTorch's unflatten."""
        dim = normalize_axis(dim, self.ndim, "unflatten")
        inner = resolve_shape(self.shape[dim:dim + 1], tuple(sizes), "unflatten")
        return self.reshape(self.shape[:dim] + inner + self.shape[dim + 1:])

    def repeat(self, *repeats: Any) -> "Tensor":
        """PyTorch's repeat (numpy's tile): the whole tensor tiled `repeats` times per axis."""
        if len(repeats) == 1 and isinstance(repeats[0], (tuple, list)):
            repeats = tuple(repeats[0])
        reps = tuple(int(r) for r in repeats)
        if len(reps) < self.ndim or any(r < 0 for r in reps):
            raise ShapeError(f"repeat: {reps} must give a count >= 0 for each of the {self.ndim} dimensions")
        x = self.reshape((1,) * (len(reps) - self.ndim) + self.shape)
        inter = [d for n in x.shape for d in (1, n)]
        target = [d for r, n in zip(reps, x.shape) for d in (r, n)]
        return x.reshape(inter).broadcast_to(target).reshape([r * n for r, n in zip(reps, x.shape)])

    tile = repeat

    @with_dim
    def gather(self, axis: int, index: Any) -> "Tensor":
        """`out[i][j][k] = self[i][index[i][j][k]][k]` for axis 1 (PyTorch's gather)."""
        idx = np.asarray(index.data if isinstance(index, Tensor) else index)
        axis = normalize_axis(axis, self.ndim, "gather")
        if idx.ndim != self.ndim or idx.dtype.kind not in "iu":
            raise ShapeError(f"gather: index must be an integer array with {self.ndim} dimensions, got "
                             f"shape {idx.shape} dtype {idx.dtype}")
        return self[_along_axis(idx, axis, self.shape, "gather")]

    def sort(self, dim: int = -1, descending: bool = False, stable: bool = False) -> ValuesIndices:
        """PyTorch's sort: (values, indices) along `dim`; the values are gathered, so
        gradients flow back to where each came from. Ties keep their order (stable)."""
        dim = normalize_axis(dim, max(self.ndim, 1), "sort")
        key = -self.data if descending and self.dtype.kind in "fi" else self.data
        order = np.argsort(key, axis=dim, kind="stable")
        if descending and self.dtype.kind not in "fi":  # bools and unsigned: reverse an ascending sort
            order = np.flip(np.argsort(self.data, axis=dim, kind="stable"), axis=dim)
        return ValuesIndices(self.gather(dim, order) if self.ndim else self, Tensor.wrap(order.astype(np.int64)))

    def argsort(self, dim: int = -1, descending: bool = False, stable: bool = False) -> "Tensor":
        """The indices that sort along `dim` (ascending, or `descending`), as PyTorch's."""
        return self.sort(dim, descending, stable).indices

    def topk(self, k: int, dim: int = -1, largest: bool = True, sorted: bool = True) -> ValuesIndices:
        """PyTorch's topk: the k largest (or smallest) along `dim`, in order, with their indices."""
        dim = normalize_axis(dim, max(self.ndim, 1), "topk")
        if not isinstance(k, (int, np.integer)) or not 0 <= k <= (self.shape[dim] if self.ndim else 1):
            raise ShapeError(f"topk: k={k!r} must be in [0, {self.shape[dim] if self.ndim else 1}] for shape {self.shape}")
        values, indices = self.sort(dim, descending=largest)
        keep = (slice(None),) * dim + (slice(0, int(k)),)
        return ValuesIndices(values[keep], indices[keep])

    @with_dim
    def scatter_add(self, axis: int, index: Any, src: "Tensor") -> "Tensor":
        """self with src added at index along axis (repeated indices accumulate), PyTorch's scatter_add."""
        idx = np.asarray(index.data if isinstance(index, Tensor) else index)
        axis = normalize_axis(axis, self.ndim, "scatter_add")
        src = self.as_operand(src, "scatter_add")
        if idx.shape != src.shape or idx.dtype.kind not in "iu":
            raise ShapeError(f"scatter_add: index {idx.shape} ({idx.dtype}) must be integers shaped like src {src.shape}")
        return self + ops.GetItemGrad.apply(src, index=_along_axis(idx, axis, self.shape, "scatter_add"),
                                         shape=self.shape)

    def tril(self, diagonal: int = 0) -> "Tensor":
        """The lower triangle of the last two axes (the rest zero), in this tensor's dtype."""
        return where(Tensor.wrap(np.tri(*self.shape[-2:], k=diagonal, dtype=bool)), self,
                     Tensor.wrap(np.zeros((), dtype=self.dtype)))

    def triu(self, diagonal: int = 0) -> "Tensor":
        """The upper triangle of the last two axes (the rest zero), in this tensor's dtype."""
        return where(Tensor.wrap(~np.tri(*self.shape[-2:], k=diagonal - 1, dtype=bool)), self,
                     Tensor.wrap(np.zeros((), dtype=self.dtype)))

    @with_dim
    def split(self, split_size: Any, axis: int = 0) -> list["Tensor"]:
        """Pieces along `axis`: of `split_size` each (the last may be smaller), or of the listed sizes."""
        axis = normalize_axis(axis, self.ndim, "split")
        n = self.shape[axis]
        sizes = [split_size] * (n // split_size) + ([n % split_size] if n % split_size else []) \
            if isinstance(split_size, (int, np.integer)) else list(split_size)
        if sum(sizes) != n or any(s < 0 for s in sizes):
            raise ShapeError(f"split: sizes {sizes} do not add up to dimension {axis} of shape {self.shape}")
        ends = np.cumsum(sizes).tolist()
        lead = (slice(None),) * axis
        return [self[lead + (slice(end - size, end),)] for end, size in zip(ends, sizes)]

    @with_dim
    def chunk(self, chunks: int, axis: int = 0) -> list["Tensor"]:
        """`chunks` pieces of equal size along `axis` (the last may be smaller), as PyTorch's chunk."""
        n = self.shape[normalize_axis(axis, self.ndim, "chunk")]
        return self.split(max(1, -(-n // chunks)), axis)

    def __getitem__(self, index: Any) -> "Tensor":
        return ops.GetItem.apply(self, index=_norm_index(index))

    # -------------------------------------------------------- neural-net ops
    def conv2d(self, weight: "Tensor", bias: "Tensor | None" = None, stride: Any = 1, padding: Any = 0) -> "Tensor":
        """2-D cross-correlation of this (N, C, H, W) tensor with weight (out, C, kh, kw)."""
        same_float_dtype("conv2d", self, weight, bias)
        attrs = dict(stride=int_pair(stride, "conv2d", "stride"), padding=int_pair(padding, "conv2d", "padding"))
        if bias is None:
            return ops.Conv2d.apply(self, weight, **attrs)
        return ops.Conv2d.apply(self, weight, bias, **attrs)

    def max_pool2d(self, kernel_size: Any, stride: Any = None) -> "Tensor":
        """2-D max pooling of an (N, C, H, W) tensor (see `functional.max_pool2d` for every option)."""
        k = int_pair(kernel_size, "max_pool2d", "kernel_size")
        s = k if stride is None else int_pair(stride, "max_pool2d", "stride")
        return ops.MaxPool2d.apply(self, kernel_size=k, stride=s)

    def relu_max_pool2d(self, kernel_size: Any, stride: Any = None) -> "Tensor":
        """max_pool2d(relu(self)) as one op (see `ops.fused`): the same values and gradients."""
        k = int_pair(kernel_size, "relu_max_pool2d", "kernel_size")
        s = k if stride is None else int_pair(stride, "relu_max_pool2d", "stride")
        return ops.ReluMaxPool2d.apply(self, kernel_size=k, stride=s)

    def avg_pool2d(self, kernel_size: Any, stride: Any = None) -> "Tensor":
        """2-D average pooling of an (N, C, H, W) tensor (see `functional.avg_pool2d` for every option)."""
        k = int_pair(kernel_size, "avg_pool2d", "kernel_size")
        s = k if stride is None else int_pair(stride, "avg_pool2d", "stride")
        return ops.AvgPool2d.apply(self, kernel_size=k, stride=s)

    @with_dim
    def log_softmax(self, axis: int = -1) -> "Tensor":
        """log(softmax(x)) along `axis`, computed stably (PyTorch's `dim=`)."""
        return ops.LogSoftmax.apply(self, axis=reduction_axis(axis, self.ndim, "log_softmax"))

    @with_dim
    def softmax(self, axis: int = -1) -> "Tensor":
        """e**x normalized to sum to 1 along `axis`, computed stably (PyTorch's `dim=`)."""
        return ops.Softmax.apply(self, axis=reduction_axis(axis, self.ndim, "softmax"))

    def cross_entropy(self, targets: Any, label_smoothing: float = 0.0) -> "Tensor":
        """Mean cross-entropy of these (N, C) logits against integer class targets (N,),
        each one-hot target mixed with the uniform distribution by `label_smoothing`."""
        check_label_smoothing("cross_entropy", label_smoothing)
        if label_smoothing:  # only then an attribute, so graphs of the plain loss read as before
            return ops.CrossEntropy.apply(self, _targets(targets), label_smoothing=float(label_smoothing))
        return ops.CrossEntropy.apply(self, _targets(targets))

    def nll_loss(self, targets: Any) -> "Tensor":
        """Mean negative log-likelihood of these (N, C) log-probabilities at integer targets (N,)."""
        return ops.NLLLoss.apply(self, _targets(targets))

    def mse_loss(self, target: Any) -> "Tensor":
        """Mean squared error; this tensor and target must have the same shape."""
        return ops.MSELoss.apply(self, self.as_operand(target, "mse_loss"))

    def dropout(self, p: float = 0.5, training: bool = True, generator: np.random.Generator | None = None) -> "Tensor":
        """In training, zero elements with probability p and scale the rest by 1/(1-p);
        otherwise return this tensor unchanged."""
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout: p must be in [0, 1], got {p}")
        if not training or p == 0.0:
            return self
        if self.dtype.kind != "f":
            raise TypeError(f"dropout: needs a floating-point tensor, got dtype {self.dtype} (shape {self.shape})")
        return ops.Dropout.apply(self, p=float(p), generator=generator or default_generator())


def where(condition: Any, a: Any, b: Any) -> Tensor:
    """a where condition holds, else b (elementwise, broadcast); differentiable in a and b."""
    cond = condition if isinstance(condition, Tensor) else Tensor(np.asarray(condition))  # the op checks it is bool
    if not isinstance(a, Tensor):
        if not isinstance(b, Tensor):
            a, b = Tensor(a), Tensor(b)
        else:
            a = b.as_operand(a, "where")
    a, b = a._operands(b, "where")  # noqa: SLF001  (same module)
    return ops.Where.apply(cond, a, b)


def _along_axis(index: np.ndarray, axis: int, shape: tuple[int, ...], op: str) -> tuple[np.ndarray, ...]:
    """The fancy index that picks index[...] along `axis` and the same position elsewhere;
    ShapeError for an index outside [0, shape[axis]) or larger than `shape` elsewhere."""
    if index.size and (index.min() < 0 or index.max() >= shape[axis]):
        bad = index.min() if index.min() < 0 else index.max()
        raise ShapeError(f"{op}: index {bad} is out of bounds for dimension {axis} with size {shape[axis]}")
    if any(i > n for d, (i, n) in enumerate(zip(index.shape, shape)) if d != axis):
        raise ShapeError(f"{op}: index of shape {index.shape} is larger than {shape} outside dimension {axis}")
    grids = list(np.indices(index.shape, sparse=True))
    grids[axis] = index
    return tuple(grids)


def _norm_index(index: Any) -> Any:
    """Replace tensors inside an index with their arrays."""
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, tuple):
        return tuple(i.data if isinstance(i, Tensor) else i for i in index)
    return index


def _targets(targets: Any) -> "Tensor":
    """Class targets as a tensor (lists, arrays and tensors accepted; the loss op checks them)."""
    return targets if isinstance(targets, Tensor) else Tensor(np.asarray(targets))


def _shape_args(shape: tuple[Any, ...]) -> tuple[int, ...]:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return tuple(int(n) for n in shape)


def _zeros(*shape: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor of zeros (float32 unless `dtype` says otherwise): `Tensor.zeros(2, 3)`."""
    dt = check_dtype(dtype or DEFAULT_FLOAT)
    return Tensor(np.zeros(_shape_args(shape), dtype=dt), requires_grad, dtype=dt)


def _ones(*shape: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor of ones (float32 unless `dtype` says otherwise): `Tensor.ones(2, 3)`."""
    dt = check_dtype(dtype or DEFAULT_FLOAT)
    return Tensor(np.ones(_shape_args(shape), dtype=dt), requires_grad, dtype=dt)


def _randn(*shape: Any, dtype: Any = None, requires_grad: bool = False,
           generator: np.random.Generator | None = None) -> Tensor:
    """Standard normal samples from `generator` (default: the package's, see `manual_seed`)."""
    rng = generator or default_generator()
    dt = check_dtype(dtype or DEFAULT_FLOAT)
    return Tensor(rng.standard_normal(_shape_args(shape)).astype(dt), requires_grad, dtype=dt)


def _arange(start: float, stop: float | None = None, step: float = 1, dtype: Any = None) -> Tensor:
    """numpy's arange as a tensor (int64 for integer arguments, else float32)."""
    values = np.arange(start, stop, step) if stop is not None else np.arange(start)
    return Tensor(values, dtype=dtype)


Tensor.zeros = staticmethod(_zeros)  # type: ignore[attr-defined]
Tensor.ones = staticmethod(_ones)  # type: ignore[attr-defined]
Tensor.randn = staticmethod(_randn)  # type: ignore[attr-defined]
Tensor.arange = staticmethod(_arange)  # type: ignore[attr-defined]


def tensor(data: Any, requires_grad: bool = False, dtype: Any = None) -> Tensor:
    """A new tensor from data (copied), PyTorch's `torch.tensor`: floating-point data becomes
    float32 unless `dtype` says otherwise."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


autograd.use_tensor_class(Tensor)


# ------------------------------------------------------------ gradients without .grad
def grad(outputs: "Tensor | list[Tensor]", inputs: "Tensor | list[Tensor]", grad_outputs: Any = None,
         retain_graph: bool | None = None, create_graph: bool = False, allow_unused: bool = False) -> tuple[Any, ...]:
    """The gradients of `outputs` with respect to `inputs`, returned as Tensors (as
    `torch.autograd.grad`; nothing is accumulated into `.grad`). `grad_outputs` holds
    d loss / d output for each output (default: ones, for scalars only). With
    `create_graph=True` the backward pass is recorded, so the results can be
    differentiated again; `retain_graph` defaults to `create_graph`. An input that
    does not influence the outputs is an error, or None with `allow_unused=True`."""
    outs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    ins = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    if grad_outputs is None or isinstance(grad_outputs, (Tensor, np.ndarray)):
        grad_outputs = [grad_outputs] * len(outs) if len(outs) == 1 or grad_outputs is None else [grad_outputs]
    grad_outputs = list(grad_outputs)
    if len(grad_outputs) != len(outs):
        raise ShapeError(f"grad: {len(outs)} outputs but {len(grad_outputs)} grad_outputs")
    for i, t in enumerate(ins):
        if not isinstance(t, Tensor) or not t.requires_grad:
            raise RuntimeError(f"grad: input {i} does not require grad (create it with requires_grad=True)")
    retain = create_graph if retain_graph is None else retain_graph
    totals: dict[int, Any] = {}
    for i, (out, g) in enumerate(zip(outs, grad_outputs)):
        if not isinstance(out, Tensor) or not out.requires_grad:
            raise RuntimeError(f"grad: output {i} does not require grad and has no recorded graph")
        seed = initial_gradient(out, g, create_graph, f"grad: output {i}")
        last = i == len(outs) - 1
        with compute_scope(backward=True):
            found = autograd.run_backward(out, seed, retain_graph=retain or not last, create_graph=create_graph,
                                          inputs=ins)
        for key, value in found.items():
            totals[key] = value if key not in totals else totals[key] + value
    results = []
    for i, t in enumerate(ins):
        value = totals.get(id(t))
        if value is None:
            if not allow_unused:
                raise RuntimeError(f"grad: input {i} (shape {t.shape}) was not used to compute the outputs; "
                                   "pass allow_unused=True to get None for it")
            results.append(None)
        else:
            results.append(value if isinstance(value, Tensor) else Tensor.wrap(value))
    return tuple(results)


def initial_gradient(out: "Tensor", given: Any, create_graph: bool, where: str) -> Any:
    """d loss / d out to start a backward pass: ones for a scalar, else `given` checked
    against out's shape; a Tensor when the pass records a graph, else an array."""
    if given is None:
        if out.size != 1:
            raise RuntimeError(f"{where}: a gradient can be implied only for a scalar output, got shape "
                               f"{out.shape}; pass one of that shape")
        g = np.ones_like(out.data)
    elif isinstance(given, Tensor):
        g = given if create_graph else given.data
    else:
        g = np.asarray(given, dtype=out.dtype)
    if g.shape != out.shape:
        raise ShapeError(f"{where}: gradient has shape {tuple(g.shape)}, expected {out.shape}")
    if g.dtype != out.dtype:
        g = g.astype(out.dtype)
    if create_graph and not isinstance(g, Tensor):
        g = Tensor.wrap(g)
    return g
