"""Einstein summation: one op for every product-and-sum of named axes.

`einsum_plan` rewrites an equation into its explicit form (no `...`, an output
always given, a fresh letter for each axis of size 1 that another operand broadcasts),
so the op and its gradient see only plain letters. The gradient of an operand is
itself an einsum: the output's gradient times the other operands, summed down to
that operand's letters; an axis repeated in one operand (a diagonal, `ii->i`) gets an
identity matrix, and a letter found in no other place (summed away, `ij->i`) a vector
of ones. So first and second derivatives need no other rule.
"""

from __future__ import annotations

import string

import numpy as np

from ..autograd import Function
from ..errors import ShapeError

LETTERS = string.ascii_letters


def einsum_plan(equation: str, shapes: list[tuple[int, ...]]) -> str:
    """The explicit equation for operands of `shapes`; ShapeError naming what does not fit."""
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(shapes):
        raise ShapeError(f"einsum: '{equation}' names {len(terms)} operands, got {len(shapes)}")
    for term in terms + ([rhs] if arrow else []):
        letters = term.replace("...", "")
        if term.count("...") > 1 or any(c not in LETTERS for c in letters):
            raise ShapeError(f"einsum: '{equation}': subscripts must be letters with at most one '...' per operand")
    unused = iter(c for c in LETTERS if c not in eq)
    dots = max((len(s) - len(t.replace("...", "")) for t, s in zip(terms, shapes) if "..." in t), default=0)
    dot_letters = "".join(next(unused) for _ in range(dots))
    explicit = []
    for term, shape in zip(terms, shapes):
        named = len(term.replace("...", ""))
        extra = len(shape) - named
        if extra < 0 or (extra and "..." not in term):
            raise ShapeError(f"einsum: '{term}' has {named} subscripts for an operand of shape {shape}")
        explicit.append(term.replace("...", dot_letters[dots - extra:] if extra else ""))
    if not arrow:
        counts = {c: "".join(explicit).count(c) for c in set("".join(explicit)) - set(dot_letters)}
        rhs = dot_letters + "".join(sorted((c for c, n in counts.items() if n == 1), key=LETTERS.index))
    else:
        rhs = rhs.replace("...", dot_letters)
        if len(set(rhs)) != len(rhs) or any(c not in "".join(explicit) for c in rhs):
            raise ShapeError(f"einsum: '{equation}': each output subscript must appear once, and in an operand")
    sizes: dict[str, int] = {}
    for term, shape in zip(explicit, shapes):
        for c, n in zip(term, shape):
            if n != 1 or c not in sizes:
                if sizes.get(c, 1) not in (1, n):
                    raise ShapeError(f"einsum: '{equation}': subscript '{c}' has sizes {sizes[c]} and {n} "
                                     f"(shapes {shapes})")
                sizes[c] = n
    renamed = ["".join(next(unused) if n == 1 and sizes[c] != 1 else c
                       for c, n in zip(term, shape)) for term, shape in zip(explicit, shapes)]
    for term, shape in zip(renamed, shapes):  # a repeated subscript takes a diagonal: equal sizes
        for c in set(term):
            if len({n for d, n in zip(term, shape) if d == c}) > 1:
                raise ShapeError(f"einsum: '{equation}': the repeated subscript '{c}' has unequal sizes in {shape}")
    return ",".join(renamed) + "->" + rhs


class Einsum(Function):
    name = "einsum"

    @staticmethod
    def forward(ctx, *arrays, equation):
        ctx.save_for_backward(*arrays)
        return np.asarray(np.einsum(equation, *arrays, optimize=True))

    @staticmethod
    def backward(ctx, grad):
        operands = ctx.saved_tensors
        lhs, rhs = ctx.attrs["equation"].split("->")
        terms = lhs.split(",")
        sizes = {c: n for term, x in zip(terms, operands) for c, n in zip(term, x.shape)}
        return tuple(_operand_grad(grad, rhs, terms, operands, k, sizes) if ctx.needs_input_grad[k] else None
                     for k in range(len(operands)))


def _operand_grad(grad, rhs: str, terms: list[str], operands, k: int, sizes: dict[str, int]):
    """d(out)/d(operand k) applied to `grad`: an einsum down to operand k's subscripts."""
    used = set(rhs).union(*(terms[j] for j in range(len(terms)) if j != k))
    fresh = iter(c for c in LETTERS if c not in "".join(terms) + rhs)
    subs, values, target = [rhs], [grad], ""
    for c in terms[k]:
        if c in target:  # a repeated subscript: the gradient lands on the diagonal
            d = next(fresh)
            subs.append(c + d)
            values.append(np.eye(sizes[c], dtype=grad.dtype))
            target += d
        else:
            target += c
    for j, term in enumerate(terms):
        if j != k:
            subs.append(term)
            values.append(operands[j])
    for c in dict.fromkeys(terms[k]):
        if c not in used:  # summed away in operand k alone: every element gets the output's gradient
            subs.append(c)
            values.append(np.ones(sizes[c], dtype=grad.dtype))
    return Einsum.call(*values, equation=",".join(subs) + "->" + target)
