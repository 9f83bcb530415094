# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Autograd: gradients of any computation, automatically
#
# Training a network means nudging every weight in the direction that lowers the loss. That
# direction is the gradient: the derivative of one number, the loss, with respect to each of
# possibly millions of weights. Writing those derivatives by hand for every architecture is slow and
# error-prone; estimating them numerically costs two forward passes *per weight*.
#
# This module builds **reverse-mode automatic differentiation**, the engine inside PyTorch's
# `loss.backward()`. While your code computes, a `Variable` records which operation produced which
# value. Afterwards one backward sweep over that record applies the chain rule and delivers the
# exact gradient of the output with respect to every input, for about the cost of one more forward
# pass.
#
# | You write here | It becomes | Used by |
# |---|---|---|
# | `modules/05_autograd/autograd_dev.py` | `tinytorch.core.autograd` | layers, losses, optimizers, training |
#
# What you will build, in order: the `Variable` and its graph node; the rule of each operation;
# unbroadcasting; the topological order; the backward pass; `no_grad`; a gradient checker; the
# operations a network needs (matmul, activations, reductions, indexing, a stable log-softmax); a
# graph drawing. Then you will measure what the engine costs in time and memory.

# %%
#| default_exp core.autograd

# %%
#| export
from __future__ import annotations

import contextlib
import math
import shutil
import subprocess
import weakref
from typing import Callable

import numpy as np

from tinytorch.core.tensor import (Tensor, as_shape, axes_and_keepdims, correction_of, expanded_shape, normalized_axes,
                                   promote_integers, reduction_axes, single_value, squeezed_shape, swapped_axes,
                                   unsqueezed_shape)
from tinytorch.core.tensor import permute as tensor_permute
from tinytorch.core.tensor import reshape as tensor_reshape

# %% [markdown]
# ## 1. The chain rule, and the graph it runs on
#
# **One variable.** If $L$ depends on $x$ only through $y = f(x)$, then
#
# $$\frac{\partial L}{\partial x} = \frac{\partial L}{\partial y}\,\frac{\partial y}{\partial x}.$$
#
# Read it from left to right as a message passed backwards: whoever knows $\partial L / \partial y$
# (how much the loss cares about $y$) multiplies it by the *local* derivative $\partial y / \partial x$
# of the one operation that made $y$, and hands the product to $x$. No operation needs to know
# anything about the rest of the computation.
#
# **Several uses.** If $x$ feeds several operations, the loss feels every one of them, and the
# contributions add up (the multivariable chain rule):
#
# $$\frac{\partial L}{\partial x} = \sum_{\text{uses } y \text{ of } x} \frac{\partial L}{\partial y}\,\frac{\partial y}{\partial x}.$$
#
# **Arrays.** For arrays the product is a *vector-Jacobian product*: with $g = \partial L/\partial y$
# of $y$'s shape, $\partial L/\partial x_j = \sum_i g_i\, \partial y_i / \partial x_j$. We never build
# the Jacobian. For an elementwise operation it is diagonal, so the product is an elementwise
# multiply (`g * local_derivative`); for a matrix product it is another matrix product. Each
# operation's **backward rule** is exactly this: a function from $g$ to the gradient of each input,
# always of that input's shape.
#
# **The graph.** Record every operation as a node pointing at the values it consumed, and a
# computation becomes a directed acyclic graph. Here is $f(x, y) = (x + y)(x - y)$ at $x = 3, y = 2$:
#
# ```
#  forward (values)                         backward (gradients of f)
#
#  x=3 ──┬──► a = x + y = 5 ──┐             df/da = b = 1     df/db = a = 5
#        │                     ├─► f = a*b   df/dx = 1*1 + 5*1 = 6     (x is used twice: add)
#  y=2 ──┴──► b = x - y = 1 ──┘  = 5         df/dy = 1*1 + 5*(-1) = -4
# ```
#
# Since $f = x^2 - y^2$, the answers $2x = 6$ and $-2y = -4$ check out. Notice the order the backward
# pass must respect: the gradient of `f` first, then `a` and `b`, and only then `x` and `y`, because
# `x` has to collect the contributions of *both* `a` and `b` before it is complete. In general a
# node's gradient is ready once every node that consumed it has passed its share back: that is a
# **reverse topological order**, and Section 5 computes it.
#
# **Why reverse mode.** A network has one output (the loss) and many inputs (the weights). Going
# backwards from the one output produces the gradients of *all* inputs in one sweep, whose cost is a
# small multiple of the forward pass. (Forward mode, pushing derivatives from inputs to outputs, would
# need one sweep per input.)

# %% [markdown]
# ## 2. `Variable`: a value that remembers where it came from
#
# A `Variable` wraps a `Tensor` from module 01 and adds four things:
#
# | attribute | meaning |
# |---|---|
# | `data` | the `Tensor` holding the values (so the NumPy array is `v.data.data`) |
# | `requires_grad` | whether we want $\partial L / \partial v$ |
# | `grad` | after `backward()`, that gradient as a NumPy array of `v`'s shape and dtype (else `None`) |
# | `grad_fn` | the `Node` that produced `v`, or `None` for a *leaf* (a value you made yourself) |
#
# A **parameter** is simply a leaf with `requires_grad=True`. A **constant** (input data, a target, a
# plain number) has `requires_grad=False`; it never gets a `.grad`, and no gradient is computed for
# it. A result requires grad exactly when one of its inputs does.
#
# A `Node` is the record of one operation: its name, the shape and dtype of the value it made, and
# one **edge** per input that needs a gradient, pairing where that input came from with the rule
# that turns the output's gradient into the input's gradient. An edge leads to the `Node` that made
# the input, or, for a leaf, to the leaf Variable itself. So the graph is made of Nodes (and leaves),
# as in PyTorch, not of intermediate Variables:
#
# ```
#  Variables your code holds        the graph: f.grad_fn and what its edges lead to
#
#  x, y        (leaves)             <MulBackward> ──► <AddBackward> ──► x
#  a = x + y                              │                  └───────► y
#  b = x - y                              └─────────► <SubBackward> ──► x
#  f = a * b                                                 └───────► y
# ```
#
# Why not link the intermediate Variables themselves? Because then the graph would keep every
# intermediate array alive until the backward pass, needed or not. Linking Nodes, the graph keeps
# exactly the arrays the rules saved: `a * b` saves `a` and `b`, but `a + b` saves nothing, and an
# intermediate value nobody saved is freed as soon as your code drops it. Section 15 measures the
# difference this makes. Nodes point only backwards, so the graph hangs off the output: drop the
# output and the whole graph can be freed. There is no global tape.
#
# The class below is long, but most of it is forwarding: `x * y` calls `multiply(x, y)`, `x.exp()`
# calls `exp(x)`, and so on, functions you write in the sections that follow (Python looks a name up
# when the method runs, so the class may mention functions defined further down). Your part is the
# constructor.
#
# Two design decisions worth noticing:
# - `__slots__` fixes the attributes, which makes every Variable smaller and faster to create. A
#   network's forward pass creates thousands of them, so this is measurable (Section 15).
# - Comparisons (`== != > >= < <=`) return a plain boolean `Tensor`, a mask, as in PyTorch (a mask is
#   never differentiated). A Variable still hashes by identity (`__hash__ = object.__hash__`), so it
#   can be a key in a dictionary: the backward pass keeps its running gradients in one.
#
# The class ends with a block marked *given*: the rest of PyTorch's names (`permute`, `squeeze`,
# `clamp`, `var`, ...), forwarding to operations defined in Section 12b. You write none of them.

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "variable-class", "locked": false, "solution": true}
#| export
class Node:
    """The record of one operation: its `name`, the `shape` and `dtype` of its result, and its `edges`.

    Each edge is `(source, rule)`: `source` is the Node that made an input (or the input itself, if it is a
    leaf Variable) and `rule(g)` maps the result's gradient `g` to that input's gradient. To make your own
    differentiable operation: `Variable(value, grad_fn=Node("MyOp", [(x, lambda g: ...)]))`.
    """

    __slots__ = ("name", "edges", "shape", "dtype", "retained")

    def __init__(self, name: str, edges: list):
        self.name = name
        self.edges = edges
        self.shape, self.dtype = None, None  # filled in by the Variable this Node makes
        self.retained = None  # a weak reference to that Variable, after its retain_grad()

    @property
    def inputs(self) -> tuple:
        return tuple(source for source, _ in self.edges)

    def __repr__(self) -> str:
        return f"<{self.name}Backward>"


class Variable:
    """A Tensor that records the operations applied to it, so that `backward()` can differentiate them.

    >>> x = Variable([3.0], requires_grad=True)
    >>> (x * x).backward()
    >>> x.grad
    array([6.], dtype=float32)
    """

    __slots__ = ("data", "grad", "requires_grad", "grad_fn", "__weakref__")
    # NumPy must hand `array + variable` to Variable.__radd__ instead of looping over the Variable.
    __array_ufunc__ = None

    def __init__(self, data, requires_grad: bool = False, grad_fn: Node | None = None):
        """Wrap `data` (a list, number, NumPy array, Tensor or Variable) in a Tensor stored as `self.data`.

        A Tensor is used as it is; a Variable's values are shared (a new leaf, as with `detach()`); anything
        else goes through `Tensor(data)`, which makes lists and numbers float32 and refuses non-numeric data.
        Start with no gradient. A Variable with a `grad_fn` always requires grad; that Node learns the shape and
        dtype it produced, and its edges go through `_graph_edges` (Section 3).
        """
        ### BEGIN SOLUTION
        if isinstance(data, Variable):
            data = _wrap(data.data.data)
        elif not isinstance(data, Tensor):
            if data is None:
                raise TypeError("Variable data must be numeric, got None")
            data = Tensor(data)
        if requires_grad and data.dtype.kind != "f":
            raise TypeError(f"only floating-point data can require grad, got {data.dtype}: convert it first, "
                            "e.g. np.asarray(data, dtype=np.float32)")
        if grad_fn is not None:
            if not isinstance(grad_fn, Node):
                raise TypeError(f"grad_fn must be a Node or None, got {type(grad_fn).__name__}")
            grad_fn.edges = _graph_edges(grad_fn.edges)
            grad_fn.shape, grad_fn.dtype = data.shape, data.dtype
        self.data = data
        self.grad = None
        self.requires_grad = bool(requires_grad) or grad_fn is not None
        self.grad_fn = grad_fn
        ### END SOLUTION

    # --- what the values are ---
    @property
    def shape(self) -> tuple:
        return self.data.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.data.dtype

    @property
    def size(self) -> int:
        return self.data.data.size

    @property
    def ndim(self) -> int:
        return self.data.data.ndim

    def __len__(self) -> int:
        return len(self.data.data)

    def numpy(self) -> np.ndarray:
        return self.data.data

    def item(self) -> float:
        return self.data.data.item()

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        return self.data.data if dtype is None else self.data.data.astype(dtype)

    def __bool__(self) -> bool:
        return bool(single_value(self.data.data))

    def __repr__(self) -> str:
        body = np.array2string(self.data.data, separator=", ", prefix="Variable(")
        extra = f"grad_fn={self.grad_fn!r}" if self.grad_fn is not None else f"requires_grad={self.requires_grad}"
        return f"Variable({body}, dtype={self.dtype}, {extra})"

    # --- gradients ---
    def backward(self, gradient=None, retain_graph: bool = False) -> None:
        """Add d(self)/d(leaf) to the `.grad` of every leaf this Variable was computed from.

        A single-element output starts from a gradient of 1; any other needs `gradient` of its shape.
        Afterwards the graph's saved arrays are released, unless `retain_graph=True` (Section 6).
        """
        backpropagate(self, _seed(self, gradient), retain_graph)

    def zero_grad(self) -> None:
        self.grad = None

    def detach(self) -> Variable:
        """The same values as a new constant leaf, cut off from the graph."""
        return _make(self.data.data, False, None)

    def retain_grad(self) -> None:
        """Keep this intermediate Variable's gradient in `.grad` too (leaves always get theirs)."""
        if self.grad_fn is not None:
            self.grad_fn.retained = weakref.ref(self)  # weak: the graph must not keep the Variable alive

    # --- operators: each one is a function defined in a later section ---
    def __add__(self, other): return add(self, other)
    def __radd__(self, other): return add(other, self)
    def __sub__(self, other): return subtract(self, other)
    def __rsub__(self, other): return subtract(other, self)
    def __mul__(self, other): return multiply(self, other)
    def __rmul__(self, other): return multiply(other, self)
    def __truediv__(self, other): return divide(self, other)
    def __rtruediv__(self, other): return divide(other, self)
    def __matmul__(self, other): return matmul(self, other)
    def __rmatmul__(self, other): return matmul(other, self)
    def __pow__(self, exponent): return power(self, exponent)
    def __rpow__(self, base): return exponential_of(base, self)
    def __neg__(self): return negative(self)
    def __getitem__(self, index): return getitem(self, index)

    def __gt__(self, other): return self.data > _value(other)
    def __ge__(self, other): return self.data >= _value(other)
    def __lt__(self, other): return self.data < _value(other)
    def __le__(self, other): return self.data <= _value(other)
    # == and != go through Tensor's, which answers NotImplemented for what it cannot compare: `x == None` is False.
    def __eq__(self, other): return self.data == (other.data if isinstance(other, Variable) else other)
    def __ne__(self, other): return self.data != (other.data if isinstance(other, Variable) else other)
    __hash__ = object.__hash__  # by identity: defining == would otherwise make Variables unhashable

    def exp(self): return exp(self)
    def log(self): return log(self)
    def sqrt(self): return sqrt(self)
    def tanh(self): return tanh(self)
    def relu(self): return relu(self)
    def sigmoid(self): return sigmoid(self)
    def log_softmax(self, axis=-1, *, dim=None): return log_softmax(self, axis if dim is None else dim)

    # `Variable.sum(x)` works too: `self` is then whatever was passed, and reduce_sum accepts anything.
    # PyTorch's `dim=` and `keepdim=` are accepted as aliases of `axis=` and `keepdims=`.
    def sum(self, axis=None, keepdims=False, **names): return reduce_sum(self, *_reduction(self, axis, keepdims, names))
    def mean(self, axis=None, keepdims=False, **names): return reduce_mean(self, *_reduction(self, axis, keepdims, names))
    def max(self, axis=None, keepdims=False, **names): return reduce_max(self, *_reduction(self, axis, keepdims, names))
    def reshape(self, *shape): return reshape(self, *shape)
    def permute(self, *dims): return permute(self, *dims)
    @property
    def T(self): return permute(self)

    # --- given: more of PyTorch's names, each forwarding to an operation of Section 12b ---
    @property
    def is_leaf(self) -> bool: return self.grad_fn is None
    def requires_grad_(self, requires_grad: bool = True) -> Variable:
        if requires_grad and self.dtype.kind != "f":
            raise TypeError(f"only floating-point data can require grad, got {self.dtype}")
        if not requires_grad and self.grad_fn is not None:
            raise RuntimeError("requires_grad_(False) on a non-leaf: use detach() to get a constant copy instead")
        self.requires_grad = bool(requires_grad)
        return self
    def add(self, other): return add(self, other)
    def sub(self, other): return subtract(self, other)
    def mul(self, other): return multiply(self, other)
    def div(self, other): return divide(self, other)
    def matmul(self, other): return matmul(self, other)
    def neg(self): return negative(self)
    def abs(self): return absolute(self)
    def clamp(self, min=None, max=None): return clamp(self, min, max)
    clip = clamp
    def maximum(self, other): return maximum(self, other)
    def minimum(self, other): return minimum(self, other)
    def min(self, axis=None, keepdims=False, **names): return reduce_min(self, *_reduction(self, axis, keepdims, names))
    def var(self, axis=None, keepdims=False, *, correction=1, unbiased=None, **names):
        return variance(self, *_reduction(self, axis, keepdims, names), correction_of(correction, unbiased))
    def std(self, axis=None, keepdims=False, **options): return sqrt(self.var(axis, keepdims, **options))
    def logsumexp(self, axis=None, keepdims=False, **names): return logsumexp(self, *_reduction(self, axis, keepdims, names))
    def softmax(self, axis=-1, *, dim=None): return softmax(self, axis if dim is None else dim)
    def transpose(self, dim0, dim1): return transpose(self, dim0, dim1)
    def view(self, *shape): return reshape(self, *shape)
    def squeeze(self, dim=None): return reshape(self, squeezed_shape(self.shape, dim))
    def unsqueeze(self, dim): return reshape(self, unsqueezed_shape(self.shape, dim))
    def expand(self, *sizes): return expand(self, *sizes)
    def flip(self, *dims): return flip(self, *dims)


def _reduction(x, axis, keepdims, names: dict) -> tuple:
    """(axes, keepdims) for a reduction method, from NumPy's names or PyTorch's `dim=`/`keepdim=` (module 01)."""
    return axes_and_keepdims(np.ndim(_value(x)), axis, keepdims, **names)


_new = object.__new__


def _wrap(array: np.ndarray) -> Tensor:
    """A Tensor around an array we made ourselves: skips Tensor's validation, which it would pass anyway."""
    tensor = _new(Tensor)
    tensor.data = array
    return tensor

# %% [markdown]
# ### Test: creating Variables

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-variable-class", "locked": true, "points": 2, "solution": false}
def test_unit_variable_class():
    x = Variable([2.0, 3.0], requires_grad=True)
    assert isinstance(x.data, Tensor), f".data should be a Tensor, got {type(x.data).__name__}"
    assert x.data.data.tolist() == [2.0, 3.0], f"values should be [2.0, 3.0], got {x.data.data}"
    assert x.requires_grad is True and x.grad is None and x.grad_fn is None, \
        f"a new leaf: requires_grad=True, grad=None, grad_fn=None; got {x.requires_grad}, {x.grad}, {x.grad_fn}"
    assert x.dtype == np.float32 and x.shape == (2,), f"a list should give float32 of shape (2,), got {x.dtype} {x.shape}"
    assert Variable(np.zeros(3)).dtype == np.float64, "a float64 array must stay float64"
    assert Variable(5).shape == (), f"a number should give shape (), got {Variable(5).shape}"
    t = Tensor([1.0])
    assert Variable(t).data is t, "a Tensor should be used as it is, not copied"
    shared = Variable(x)
    assert shared.data.data is x.data.data and shared.grad_fn is None, "Variable(variable) should share the values"
    assert Variable([1.0]).requires_grad is False, "requires_grad defaults to False"
    for bad in ["abc", None, [[1, 2], [3]]]:
        try:
            Variable(bad)
        except TypeError:
            continue
        raise AssertionError(f"Variable({bad!r}) should raise TypeError")
    try:
        Variable(np.arange(3), requires_grad=True)
    except TypeError as error:
        assert "int64" in str(error), f"the error should name the dtype, got: {error}"
    else:
        raise AssertionError("integer data with requires_grad=True should raise TypeError (its gradient would be truncated)")

test_unit_variable_class()
print("test_unit_variable_class: passed")

# %% [markdown]
# ## 3. Recording an operation
#
# Every operation does the same three things: compute the value with NumPy; decide whether the
# result needs a gradient; and if so, attach a `Node` whose edges say how to send a gradient back to
# each input that wants one. Three helpers hold what all operations share:
#
# - `_value(x)` returns the numbers behind an operand: the array of a Variable or Tensor, a Python
#   number as it is (NumPy then keeps the array's dtype: `float32_array * 2.0` stays float32), and
#   anything else through `Tensor(x)`, so lists work and junk is refused with module 01's message.
#   Integer constants become float32, so that multiplying a float32 Variable by an integer array
#   does not silently give float64 (NumPy's rule; PyTorch keeps float32, and so do we).
#   `_operands(a, b)` gives both operands' numbers at once and applies module 01's `promote_integers`
#   when one of them is an integer Variable (`counts * 0.5` is float32, as in PyTorch).
# - `_make(value, requires_grad, grad_fn)` builds the result Variable directly. Its values are an
#   array we just computed, so there is nothing to validate: skipping `__init__` here saves about a
#   microsecond on every operation, which adds up (Section 15 measures it).
# - The recording step, which you write, in two parts. `_graph_edges(edges)` keeps the edges whose
#   input is a Variable that requires grad, and points each at the input's `grad_fn` (or at the
#   input itself when it is a leaf, with no `grad_fn`). `_result(value, name, *edges)` uses it while
#   recording is on (`no_grad`, Section 7, turns it off through the flag `_GRAD_ENABLED`): with edges
#   left, the result gets a `Node`; with none, it is a constant.
#
# Then the first three operations. For $z = a + b$: $\partial z/\partial a = \partial z/\partial b = 1$,
# so both inputs receive $g$ unchanged. For $z = a - b$, $b$ receives $-g$. For $z = a \cdot b$, $a$
# receives $g \cdot b$ and $b$ receives $g \cdot a$: each rule is a small function of $g$ that
# remembers (in a closure) the values it needs. Two rules for any operation:
#
# 1. A rule returns the gradient for the *result's* shape. If NumPy broadcast an input to a larger
#    shape, the engine sums the gradient back down to the input's shape (Section 4), once, for every
#    operation. The rules stay simple.
# 2. A rule never changes `g` in place: the same array may be handed to several inputs.

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "record-operations", "locked": false, "solution": true}
#| export
_GRAD_ENABLED = True  # switched off inside `no_grad()`


def _value(x):
    """The numbers behind an operand: an array for a Variable, Tensor or list; a Python number unchanged."""
    if isinstance(x, Variable):
        return x.data.data
    kind = type(x)
    if kind is float or kind is int:
        return x
    if kind is np.ndarray and x.dtype.kind == "f":
        return x  # the common constant (a batch of data): nothing to check or convert
    if isinstance(x, np.generic) and x.dtype.kind in "iuf":
        return x.item()  # a NumPy scalar acts as a plain number: it must not turn float32 into float64
    if x is None:
        raise TypeError("expected a Variable, Tensor, array or number, got None")
    array = x.data if isinstance(x, Tensor) else Tensor(x).data
    # An integer constant must not turn float32 into float64 either (NumPy would; PyTorch does not).
    return array.astype(np.float32) if array.dtype.kind in "iu" else array


def _operands(a, b, division: bool = False) -> tuple:
    """The numbers behind two operands, with PyTorch's promotion if either is an integer Variable."""
    # Variables are by far the most common operands: reach their arrays without a call.
    av = a.data.data if type(a) is Variable else _value(a)
    bv = b.data.data if type(b) is Variable else _value(b)
    if (type(a) is Variable and av.dtype.kind != "f") or (type(b) is Variable and bv.dtype.kind != "f"):
        return promote_integers(av, bv, division)
    return av, bv


def _make(value, requires_grad: bool, grad_fn: Node | None) -> Variable:
    """A Variable around a value an operation just computed (no validation needed)."""
    if type(value) is not np.ndarray:  # NumPy returns scalars (np.float32(5.0)) for 0-d results
        value = Tensor(value).data
    result = _new(Variable)
    result.data = _wrap(value)
    result.grad = None
    result.requires_grad = requires_grad
    result.grad_fn = grad_fn
    if grad_fn is not None:
        grad_fn.shape, grad_fn.dtype = value.shape, value.dtype
    return result


def _graph_edges(edges) -> list:
    """The `(input, rule)` edges worth recording, each leading to where its input came from.

    Keep an edge only if its input is a Variable that requires grad; lead it to the input's `grad_fn`, or to
    the input itself if it is a leaf (`grad_fn` None). With `x` a leaf needing grad and `y = x * 2`:
    `_graph_edges([(x, r1), (y, r2), (2.0, r3)]) == [(x, r1), (y.grad_fn, r2)]`.
    """
    ### BEGIN SOLUTION
    return [(parent.grad_fn or parent, rule) for parent, rule in edges
            if isinstance(parent, Variable) and parent.requires_grad]
    ### END SOLUTION


def _result(value, name: str, *edges) -> Variable:
    """The output Variable of operation `name`: with a Node holding the recorded edges, or a constant.

    With no edge worth recording, or while `_GRAD_ENABLED` is False, the result is a constant:
    requires_grad False and grad_fn None.
    """
    ### BEGIN SOLUTION
    if _GRAD_ENABLED:
        kept = _graph_edges(edges)
        if kept:
            return _make(value, True, Node(name, kept))
    return _make(value, False, None)
    ### END SOLUTION


def _same(g):
    """The rule of an input that passes the gradient through unchanged (shared: no closure to create)."""
    return g


def add(a, b) -> Variable:
    """a + b with broadcasting; both inputs receive the output's gradient unchanged."""
    av, bv = _operands(a, b)
    ### BEGIN SOLUTION
    return _result(av + bv, "Add", (a, _same), (b, _same))
    ### END SOLUTION


def subtract(a, b) -> Variable:
    """a - b; a receives g, b receives -g."""
    av, bv = _operands(a, b)
    ### BEGIN SOLUTION
    return _result(av - bv, "Sub", (a, _same), (b, np.negative))
    ### END SOLUTION


def multiply(a, b) -> Variable:
    """a * b; a receives g * b, b receives g * a."""
    av, bv = _operands(a, b)
    ### BEGIN SOLUTION
    return _result(av * bv, "Mul", (a, lambda g: g * bv), (b, lambda g: g * av))
    ### END SOLUTION

# %% [markdown]
# ### Test: recording add, subtract and multiply
# There is no backward pass yet, so this test calls each recorded rule by hand with $g = 1$.

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-record-operations", "locked": true, "points": 3, "solution": false}
def test_unit_record_operations():
    x = Variable([2.0], requires_grad=True)
    y = Variable([3.0], requires_grad=True)
    one = np.ones(1, dtype=np.float32)
    for name, z, value, local in [("x + y", add(x, y), 5.0, (1.0, 1.0)),
                                  ("x - y", subtract(x, y), -1.0, (1.0, -1.0)),
                                  ("x * y", multiply(x, y), 6.0, (3.0, 2.0))]:
        assert isinstance(z, Variable), f"{name} should give a Variable, got {type(z).__name__}"
        assert z.data.data.tolist() == [value], f"{name}: expected value [{value}], got {z.data.data}"
        assert z.requires_grad and isinstance(z.grad_fn, Node), f"{name} of inputs needing grad should record a Node"
        edges = z.grad_fn.edges
        assert [parent for parent, _ in edges] == [x, y], f"{name}: the edges should lead to x and y, got {edges}"
        for input_name, (_, rule), expected in zip("xy", edges, local):
            got = float(rule(one)[0])
            assert got == expected, f"{name}: with g = 1 the backward rule of input {input_name} should give {expected}, got {got}"
    z = multiply(x, 2.0)
    assert [parent for parent, _ in z.grad_fn.edges] == [x], "a constant operand must get no edge"
    assert float(z.grad_fn.edges[0][1](one)[0]) == 2.0, "d(2x)/dx should be 2"
    assert z.grad_fn.shape == (1,) and z.grad_fn.dtype == np.float32, "a Node should know its result's shape and dtype"
    w = add(z, y)
    assert [parent for parent, _ in w.grad_fn.edges] == [z.grad_fn, y], \
        f"an edge should lead to the Node that made a non-leaf input, and to a leaf itself; got {w.grad_fn.edges}"
    constant = multiply(Variable([1.0]), Variable([2.0]))
    assert not constant.requires_grad and constant.grad_fn is None, "constants in, constant out: no Node"
    assert (x * 2.0).dtype == np.float32 and (x * np.float64(2.0)).dtype == np.float32, \
        "float32 times a number (Python or NumPy) should stay float32"
    assert (x * np.array([2])).dtype == np.float32, "float32 times an integer array should stay float32"
    assert isinstance(2.0 - x, Variable) and (2.0 - x).data.data.tolist() == [0.0], "2.0 - x should be a Variable [0.]"
    assert isinstance(Tensor([1.0]) + x, Variable), "Tensor + Variable should give a Variable"
    assert isinstance(np.ones(1) * x, Variable), "array * Variable should give a Variable"

test_unit_record_operations()
print("test_unit_record_operations: passed")

# %% [markdown]
# ## 4. Broadcasting, and undoing it
#
# A bias of shape `(10,)` added to a batch of shape `(64, 10)` is stretched by NumPy to `(64, 10)`:
# every bias entry is *used 64 times*. By the "several uses" form of the chain rule its gradient is
# the sum of the 64 row gradients. In general, NumPy broadcasting does two things, and `unbroadcast`
# undoes both by summing:
#
# ```
# operand shape       (10,)        (1, 10)       (64, 1)
# padded to           (1, 10)      (1, 10)       (64, 1)      1. missing leading axes are added
# stretched to        (64, 10)     (64, 10)      (64, 10)     2. size-1 axes are repeated
# gradient (64, 10) -> sum axis 0   sum axis 0,    sum axis 1,
#                      -> (10,)     keep -> (1,10) keep -> (64,1)
# ```
#
# Because the engine applies `unbroadcast` whenever a rule's result does not have its input's shape,
# every operation that broadcasts (`+ - * /`, and the batch axes of `@`) gets it right with no special
# case. (tinygrad makes the same point: broadcasting is an expand, and an expand's backward is a sum.)

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "unbroadcast", "locked": false, "solution": true}
#| export
def unbroadcast(grad: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum `grad` down to `shape`: over the leading axes broadcasting added, and over the axes where
    `shape` has size 1 but `grad` does not.

    >>> unbroadcast(np.ones((64, 10)), (10,)).tolist() == [64.0] * 10
    True
    """
    ### BEGIN SOLUTION
    added = grad.ndim - len(shape)
    stretched = tuple(added + axis for axis, size in enumerate(shape) if size == 1 and grad.shape[added + axis] != 1)
    axes = tuple(range(added)) + stretched
    summed = grad.sum(axis=axes, keepdims=True) if axes else grad
    return summed.reshape(shape)
    ### END SOLUTION

# %% [markdown]
# ### Test: unbroadcast

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-unbroadcast", "locked": true, "points": 2, "solution": false}
def test_unit_unbroadcast():
    grad = np.arange(12, dtype=np.float32).reshape(3, 4)
    cases = [((4,), grad.sum(axis=0)), ((1, 4), grad.sum(axis=0, keepdims=True)),
             ((3, 1), grad.sum(axis=1, keepdims=True)), ((), grad.sum()), ((1, 1), grad.sum().reshape(1, 1)),
             ((3, 4), grad)]
    for shape, expected in cases:
        got = unbroadcast(grad, shape)
        assert got.shape == shape, f"unbroadcast to {shape}: expected shape {shape}, got {got.shape}"
        assert np.allclose(got, expected), f"unbroadcast to {shape}: expected {expected.tolist()}, got {got.tolist()}"
        assert got.dtype == np.float32, f"unbroadcast must keep float32, got {got.dtype}"
    deep = unbroadcast(np.ones((2, 3, 4)), (3, 1))
    assert deep.shape == (3, 1) and np.all(deep == 8), f"(2,3,4) -> (3,1) should be all 8, got {deep.tolist()}"

test_unit_unbroadcast()
print("test_unit_unbroadcast: passed")

# %% [markdown]
# ## 5. Topological order, without recursion
#
# The nodes of the graph are the `Node`s and the leaf Variables their edges lead to. The backward
# pass may hand a node's gradient on only when it is complete, that is, after every node that used
# it has contributed. Listing the nodes so that each comes **after all of its inputs** (a
# topological order) and walking that list **backwards** guarantees exactly this.
#
# Depth-first search gives such a list: finish a node's inputs, then append the node. Two details
# make it correct and fast:
#
# - **Visit each node once.** Remember visited nodes in a set. The old version of this lesson instead
#   had every node call `backward` on its inputs right away: a node reachable along $k$ paths was
#   processed $k$ times. After `y = y + y` forty times there are $2^{40}$ paths from `y` to `x`:
#   about a trillion steps, instead of forty.
# - **No recursion.** A recursive search needs one Python stack frame per level of depth, and Python
#   stops at about a thousand (`RecursionError`): a 1,000-step recurrent network, or 1,000 tiny
#   operations, would crash it. Keep your own stack of `(node, inputs_done)` pairs instead: pop a node
#   the first time and push it back marked done, with its unvisited inputs on top; when a node marked
#   done comes off the stack, all its inputs have been appended, so append it.
#
# The walk starts from the root's `grad_fn` (or from the root itself, if it is a leaf) and follows
# only edges, so constants and everything computed under `no_grad` stay out of the order.

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "topological-order", "locked": false, "solution": true}
#| export
def topological_order(root: Variable) -> list:
    """The graph behind `root`: its Nodes and leaf Variables, each listed after everything its edges lead to.

    >>> x = Variable([1.0], requires_grad=True); y = x * 2; z = y + x
    >>> topological_order(z) == [x, y.grad_fn, z.grad_fn]
    True
    """
    ### BEGIN SOLUTION
    order: list = []
    visited: set = set()
    stack = [(root.grad_fn or root, False)]
    while stack:
        node, inputs_done = stack.pop()
        if inputs_done:
            order.append(node)
            continue
        if node in visited:
            continue
        visited.add(node)
        stack.append((node, True))
        if isinstance(node, Node):  # a leaf Variable has no edges
            for source, _ in reversed(node.edges):  # reversed: the first input is finished first
                if source not in visited:
                    stack.append((source, False))
    return order
    ### END SOLUTION

# %% [markdown]
# ### Test: topological order

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-topological-order", "locked": true, "points": 3, "solution": false}
def test_unit_topological_order():
    x = Variable([3.0], requires_grad=True)
    y = Variable([2.0], requires_grad=True)
    a, b = x + y, x - y
    f = a * b
    order = topological_order(f)
    expected = {x, y, a.grad_fn, b.grad_fn, f.grad_fn}
    assert len(order) == 5 and set(order) == expected, f"expected x, y and the Nodes of a, b, f once each, got {order}"
    position = {node: i for i, node in enumerate(order)}
    for node in order:
        for source in (node.inputs if isinstance(node, Node) else ()):
            assert position[source] < position[node], f"{source} must come before {node}, which uses it"
    assert order[-1] is f.grad_fn, "the root's Node comes last"
    assert topological_order(x) == [x], "a leaf's graph is the leaf itself"
    z = x
    for _ in range(40):
        z = z + z
    assert len(topological_order(z)) == 41, "y = y + y forty times is 41 nodes: each must be listed once"
    deep = x
    for _ in range(5000):
        deep = deep * 1.0
    assert len(topological_order(deep)) == 5001, "a chain of 5,000 operations must work (no recursion)"
    assert len(topological_order(x * 2.0)) == 2, "a constant operand is not part of the order"

test_unit_topological_order()
print("test_unit_topological_order: passed")

# %% [markdown]
# ## 6. The backward pass
#
# With the order in hand, backpropagation is a short loop. Keep a dictionary `pending` from node to
# the gradient that has reached it so far, starting with the seed at the root's node. Then, for each
# node in **reverse** topological order:
#
# 1. take its gradient out of `pending` (it is complete now; taking it out also lets its memory go);
# 2. if the node is a leaf Variable, add the gradient to its `.grad`, and go on;
# 3. otherwise it is a `Node`. If its Variable asked to `retain_grad()` (and still exists), add the
#    gradient to that Variable's `.grad` too. Then, for each edge `(source, rule)`: compute
#    `rule(gradient)`, `unbroadcast` it if its shape differs from the source's (a Node knows the shape
#    and dtype of its result, a leaf knows its own), cast it if its dtype differs, and add it to
#    `pending[source]`.
#
# Two details matter:
#
# - **Accumulate, never overwrite.** A value used twice receives two contributions in `pending`.
#   Across calls, `.grad` of a leaf also accumulates: `loss1.backward(); loss2.backward()` leaves the
#   sum of both gradients, which is what gradient accumulation over several mini-batches needs, and
#   why training loops call `zero_grad()` before each step.
# - **A leaf's `.grad` is its own array.** `_same` hands one array to several inputs, so store a
#   *copy* in `.grad` (of the leaf's dtype): an optimizer may then change it in place safely.
#
# - **Release the graph as you go.** Once a Node has passed its gradient on, its rules (and the
#   arrays they saved) are no longer needed. Unless the caller asked for `retain_graph=True`, set
#   `node.edges = _RELEASED` (an empty tuple): the saved activations are freed during the backward pass
#   instead of when the output is dropped (Section 15 measures it). A second backward through a
#   released Node would silently miss its inputs, so it raises a `RuntimeError` instead, as PyTorch does.
#
# `Variable.backward(gradient, retain_graph)` (in the class above) calls `_seed` to build the starting
# gradient: ones for a single-element output; for any other output you must pass a gradient of its
# shape, as in PyTorch, since "the gradient of a vector" is not one thing.

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "backpropagate", "locked": false, "solution": true}
#| export
def _seed(root: Variable, gradient) -> np.ndarray:
    """The gradient backward() starts from: ones for a single-element output, else `gradient`, checked."""
    if not root.requires_grad:
        raise RuntimeError("backward() on a Variable that does not require grad: none of its inputs has "
                           "requires_grad=True, or it was computed under no_grad()")
    value = root.data.data
    if gradient is None:
        if value.size != 1:
            raise RuntimeError(f"backward() without a gradient needs a single-element output, got shape {value.shape}: "
                               "reduce it first (e.g. .sum()) or pass backward(gradient) of that shape")
        return np.ones_like(value)
    seed = np.asarray(_value(gradient), dtype=value.dtype)
    if seed.shape != value.shape:
        if seed.size != 1 or value.size != 1:
            raise RuntimeError(f"backward(gradient): the gradient's shape {seed.shape} differs from the output's shape {value.shape}")
        seed = seed.reshape(value.shape)
    return seed


_RELEASED: tuple = ()  # the edges of a Node whose backward has run (every recorded Node has a list)


def _released_error(node: Node) -> RuntimeError:
    return RuntimeError(f"backward through {node!r} a second time, but its saved values were released after the "
                        "first backward: pass backward(retain_graph=True) the first time to keep the graph")


def _accumulate(variable: Variable, grad: np.ndarray) -> None:
    """Add `grad` to `variable.grad`, stored as the Variable's own array of its own dtype."""
    grad = np.array(grad, dtype=variable.data.data.dtype)  # a copy: `grad` may be shared with other inputs
    variable.grad = grad if variable.grad is None else variable.grad + grad


def backpropagate(root: Variable, seed: np.ndarray, retain_graph: bool = False) -> None:
    """Send `seed` (the gradient of the final result with respect to `root`) back through root's graph.

    Visits each node once, in reverse topological order; every leaf that requires grad gets its gradient
    added to `.grad`. Each Node's edges are replaced by `_RELEASED` once used, unless `retain_graph`; meeting
    a released Node raises `_released_error(node)`.
    """
    ### BEGIN SOLUTION
    order = topological_order(root)
    pending = {order[-1]: seed}
    for node in reversed(order):
        grad = pending.pop(node)  # complete: every node that used `node` came earlier in this loop
        if isinstance(node, Variable):  # a leaf (a Variable, or a subclass such as a Parameter)
            _accumulate(node, grad)
            continue
        if node.edges is _RELEASED:
            raise _released_error(node)
        if node.retained is not None and node.retained() is not None:
            _accumulate(node.retained(), grad)
        for source, rule in node.edges:
            source_grad = rule(grad)
            if source_grad.shape != source.shape:
                source_grad = unbroadcast(source_grad, source.shape)
            if source_grad.dtype != source.dtype:
                source_grad = source_grad.astype(source.dtype)
            previous = pending.get(source)
            pending[source] = source_grad if previous is None else previous + source_grad
        if not retain_graph:
            node.edges = _RELEASED
    ### END SOLUTION

# %% [markdown]
# ### Test: the backward pass on the lesson's examples

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-backpropagate", "locked": true, "points": 4, "solution": false}
def test_unit_backpropagate():
    x, y = Variable([2.0], requires_grad=True), Variable([3.0], requires_grad=True)
    (x * y).backward()
    assert x.grad.tolist() == [3.0] and y.grad.tolist() == [2.0], f"d(xy): expected x.grad [3.0], y.grad [2.0]; got {x.grad}, {y.grad}"

    x, y = Variable([3.0], requires_grad=True), Variable([2.0], requires_grad=True)
    ((x + y) * (x - y)).backward()
    assert x.grad.tolist() == [6.0] and y.grad.tolist() == [-4.0], \
        f"(x+y)(x-y) at x=3, y=2: expected grads [6.0] and [-4.0], got {x.grad}, {y.grad}"

    a, b = Variable([2.0], requires_grad=True), Variable([3.0], requires_grad=True)
    (a * b + a * b).backward()
    assert a.grad.tolist() == [6.0] and b.grad.tolist() == [4.0], f"2ab: expected [6.0], [4.0], got {a.grad}, {b.grad}"

    variables = [Variable([float(i)], requires_grad=True) for i in range(100)]
    total = variables[0]
    for v in variables[1:]:
        total = add(total, v)
    total.backward()
    assert total.data.data.tolist() == [4950.0], f"0 + 1 + ... + 99 should be 4950, got {total.data.data}"
    wrong = [i for i, v in enumerate(variables) if v.grad is None or v.grad.tolist() != [1.0]]
    assert not wrong, f"each of the 100 variables should get grad [1.0]; wrong for {wrong[:5]}"

    z = Variable([1.0], requires_grad=True)
    multiply(z, 2.0).backward()
    assert z.grad.tolist() == [2.0], f"after z*2, expected z.grad [2.0], got {z.grad}"
    multiply(z, 3.0).backward()
    assert z.grad.tolist() == [5.0], f"gradients accumulate across graphs: expected [5.0] after z*3, got {z.grad}"

    w = Variable([1.0], requires_grad=True)
    r = w
    for _ in range(40):
        r = r + r
    r.backward()
    assert w.grad.tolist() == [2.0 ** 40], f"y = y + y forty times: expected grad 2**40, got {w.grad}"

    batch, bias_row, bias_flat = Variable(np.ones((4, 3)), requires_grad=True), \
        Variable(np.zeros((1, 3)), requires_grad=True), Variable(np.zeros(3), requires_grad=True)
    ((batch + bias_row) * (batch + bias_flat)).backward(np.ones((4, 3)))
    assert bias_row.grad.shape == (1, 3) and bias_flat.grad.shape == (3,), \
        f"bias gradients must keep the bias's shape: expected (1, 3) and (3,), got {bias_row.grad.shape}, {bias_flat.grad.shape}"
    assert np.allclose(bias_flat.grad, 4.0), f"each bias entry is used by 4 rows: expected 4.0, got {bias_flat.grad}"

    try:
        (batch * 2.0).backward()
    except RuntimeError as error:
        assert "(4, 3)" in str(error), f"the error should name the output's shape, got: {error}"
    else:
        raise AssertionError("backward() on a (4, 3) output without a gradient should raise RuntimeError")

    g = Variable(np.ones(2, dtype=np.float32), requires_grad=True)
    (g * np.full(2, 3.0)).backward(np.ones(2))  # a float64 constant makes the result float64
    assert g.grad.dtype == np.float32, f"a float32 leaf should get a float32 gradient, got {g.grad.dtype}"

    kept = Variable([2.0], requires_grad=True)
    square = kept * kept
    square.backward(retain_graph=True)
    square.backward()
    assert kept.grad.tolist() == [8.0], f"with retain_graph=True a second backward adds again: expected [8.], got {kept.grad}"
    assert square.grad_fn.edges is _RELEASED, "after a backward without retain_graph the Node's edges should be _RELEASED"
    try:
        square.backward()
    except RuntimeError as error:
        assert "retain_graph=True" in str(error), f"the error should say to pass retain_graph=True, got: {error}"
    else:
        raise AssertionError("a second backward through a released graph should raise RuntimeError")

test_unit_backpropagate()
print("test_unit_backpropagate: passed")

# %% [markdown]
# ## 7. Turning recording off: `no_grad`, `detach`, `zero_grad`
#
# Evaluation, and an optimizer's parameter update, compute with Variables but must not be
# differentiated: recording them would waste time and, worse, keep every intermediate array alive
# in a graph nobody will use. Inside `with no_grad():` (or in a function decorated with `@no_grad()`)
# `_result` records nothing: results are constants, and each intermediate array is freed as soon as
# Python drops it.
#
# `no_grad` saves the previous state and restores it on exit, even when an exception escapes, so
# `no_grad` blocks nest correctly. `x.detach()` gives the same values as a new constant leaf;
# `x.zero_grad()` sets `.grad` back to `None` (as PyTorch's `set_to_none` does, so the next backward
# stores a fresh array instead of adding to zeros).

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "no-grad", "locked": false, "solution": true}
#| export
class no_grad(contextlib.ContextDecorator):
    """Record no graph inside `with no_grad():`, or in a function decorated with `@no_grad()` (or `@no_grad`)."""

    def __new__(cls, function: Callable | None = None):
        instance = super().__new__(cls)
        instance._previous = []
        return instance(function) if function is not None else instance  # bare @no_grad

    def __init__(self, function: Callable | None = None):
        pass

    def __enter__(self) -> no_grad:
        global _GRAD_ENABLED
        ### BEGIN SOLUTION
        self._previous.append(_GRAD_ENABLED)
        _GRAD_ENABLED = False
        ### END SOLUTION
        return self

    def __exit__(self, *exc) -> bool:
        global _GRAD_ENABLED
        ### BEGIN SOLUTION
        _GRAD_ENABLED = self._previous.pop()
        ### END SOLUTION
        return False


def is_grad_enabled() -> bool:
    """Whether operations are being recorded right now."""
    return _GRAD_ENABLED

# %% [markdown]
# ### Test: no_grad, detach, zero_grad

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-no-grad", "locked": true, "points": 2, "solution": false}
def test_unit_no_grad():
    w = Variable([2.0], requires_grad=True)
    with no_grad():
        assert not is_grad_enabled(), "inside no_grad recording should be off"
        y = w * 3.0
        with no_grad():
            pass
        assert not is_grad_enabled(), "a nested no_grad must not turn recording back on when it ends"
    assert is_grad_enabled(), "recording should be back on after the with block"
    assert not y.requires_grad and y.grad_fn is None, f"results under no_grad should be constants, got {y!r}"

    @no_grad()
    def evaluate(v):
        return v * 2.0

    @no_grad
    def evaluate_bare(v):
        return v * 2.0

    assert not evaluate(w).requires_grad and not evaluate_bare(w).requires_grad, "@no_grad should record nothing"
    try:
        with no_grad():
            raise KeyError("boom")
    except KeyError:
        pass
    assert is_grad_enabled(), "recording must be restored even when an exception leaves the block"

    d = (w * 3.0).detach()
    assert not d.requires_grad and d.grad_fn is None and d.data.data.tolist() == [6.0], f"detach should give a constant [6.], got {d!r}"
    (w * 3.0).backward()
    assert w.grad.tolist() == [3.0], f"expected w.grad [3.0], got {w.grad}"
    w.zero_grad()
    assert w.grad is None, "zero_grad should set .grad to None"
    (w * d).backward()
    assert w.grad.tolist() == [6.0], f"a detached value is a constant factor: expected w.grad [6.0], got {w.grad}"

test_unit_no_grad()
print("test_unit_no_grad: passed")

# %% [markdown]
# ## 8. Checking gradients numerically
#
# A wrong backward rule does not crash: it quietly trains badly. The defence is to compare every rule
# with the definition of the derivative. For a scalar function $L$ of an input $x$, the **central
# difference**
#
# $$\frac{\partial L}{\partial x_i} \approx \frac{L(x + \epsilon e_i) - L(x - \epsilon e_i)}{2\epsilon}$$
#
# has error of order $\epsilon^2$. `gradcheck(fn, *inputs)` does this for every element of every
# input that requires grad. Details that make it trustworthy:
#
# - It works on **float64 copies** of the inputs: in float32 (about 7 digits) the difference of two
#   nearly equal losses is mostly rounding noise.
# - A non-scalar output is reduced to a scalar with **fixed random weights**, $L = \sum_k w_k\, \mathrm{out}_k$.
#   Random weights catch mistakes that a plain sum would hide (such as a rule that sums where it should not).
# - On a mismatch it raises `AssertionError` naming the function, the input, the element, and both
#   numbers, so a failing test tells you where to look.

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "gradcheck", "locked": false, "solution": true}
#| export
def gradcheck(fn: Callable, *inputs, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
              name: str | None = None) -> bool:
    """Compare the gradients from backward() with central differences; True, or AssertionError saying where.

    Every input that is a Variable with requires_grad=True is checked (on a float64 copy); other inputs are
    passed through as constants.

    >>> gradcheck(lambda a, b: a * b, Variable([2.0], requires_grad=True), Variable([3.0], requires_grad=True))
    True
    """
    label = name or getattr(fn, "__name__", "fn")
    copies = [Variable(np.array(_value(x), dtype=np.float64), requires_grad=x.requires_grad)
              if isinstance(x, Variable) else x for x in inputs]
    checked = [i for i, x in enumerate(copies) if isinstance(x, Variable) and x.requires_grad]
    if not checked:
        raise ValueError("gradcheck needs at least one input Variable with requires_grad=True")
    out = fn(*copies)
    if not isinstance(out, Variable):
        raise TypeError(f"gradcheck: {label} must return a Variable, got {type(out).__name__}")
    weights = np.random.default_rng(0).standard_normal(out.shape)

    def objective() -> float:
        with no_grad():
            return float(np.sum(_value(fn(*copies)) * weights))

    ### BEGIN SOLUTION
    if out.requires_grad:
        out.backward(weights)
    for i in checked:
        x = copies[i]
        values = x.data.data
        analytic = x.grad if x.grad is not None else np.zeros_like(values)
        if analytic.shape != values.shape:
            raise AssertionError(f"gradcheck({label}): input {i} has shape {values.shape} "
                                 f"but backward gave a gradient of shape {analytic.shape}")
        for index in np.ndindex(values.shape):
            original = values[index]
            values[index] = original + eps
            above = objective()
            values[index] = original - eps
            below = objective()
            values[index] = original
            numeric = (above - below) / (2 * eps)
            got = float(analytic[index])
            if not abs(got - numeric) <= atol + rtol * abs(numeric):
                raise AssertionError(f"gradcheck({label}): input {i} (shape {values.shape}), element {index}: "
                                     f"expected {numeric:.6g} (finite differences), backward gave {got:.6g}")
    return True
    ### END SOLUTION

# %% [markdown]
# ### Test: gradcheck
# It must pass a correct rule, and catch a wrong one with a message that says where.

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-gradcheck", "locked": true, "points": 3, "solution": false}
def test_unit_gradcheck():
    rng = np.random.default_rng(1)
    a = Variable(rng.standard_normal((2, 3)), requires_grad=True)
    b = Variable(rng.standard_normal((3,)), requires_grad=True)
    for name, fn in [("add", add), ("subtract", subtract), ("multiply", multiply)]:
        assert gradcheck(fn, a, b, name=name) is True, f"gradcheck should pass for a correct {name}"
    assert a.grad is None, "gradcheck must work on copies and leave the inputs' .grad alone"

    def wrong_multiply(p, q):  # claims d(p*q)/dq = p + 1
        pv, qv = p.data.data, q.data.data
        return _result(pv * qv, "WrongMul", (p, lambda g: g * qv), (q, lambda g: g * (pv + 1)))

    try:
        gradcheck(wrong_multiply, a, b)
    except AssertionError as error:
        message = str(error)
        assert "wrong_multiply" in message and "input 1" in message, f"the message should name the function and input 1: {message}"
        assert "expected" in message and "gave" in message, f"the message should give both numbers: {message}"
    else:
        raise AssertionError("gradcheck should raise AssertionError for a wrong backward rule")

test_unit_gradcheck()
print("test_unit_gradcheck: passed")

# %% [markdown]
# From here on, the lesson's tests check gradients with `reference_gradcheck`, the lesson's own checker
# (given, and locked): a test must not depend on the code it grades, and your `gradcheck` has had its own
# test above. It checks the same thing as yours, all elements of an input at once at the end.

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "autograd-reference-gradcheck", "locked": true, "solution": false}
def reference_gradcheck(fn: Callable, *inputs, name: str = "fn", eps: float = 1e-6, atol: float = 1e-5,
                        rtol: float = 1e-3) -> bool:
    """The lesson's gradient checker, used by its tests (given): True, or AssertionError naming the element."""
    leaves = [Variable(np.array(_value(x), dtype=np.float64), requires_grad=True)
              if isinstance(x, Variable) and x.requires_grad else x for x in inputs]
    out = fn(*leaves)
    weights = np.random.default_rng(7).standard_normal(out.shape)
    out.backward(weights)

    def weighted_output() -> float:
        with no_grad():
            return float(np.sum(_value(fn(*leaves)) * weights))

    for position, leaf in enumerate(leaves):
        if not (isinstance(leaf, Variable) and leaf.requires_grad):
            continue
        nudged = leaf.data.data.reshape(-1)  # a view: changing it changes the input
        numeric = np.empty(nudged.size)
        for k in range(nudged.size):
            saved = nudged[k]
            nudged[k] = saved + eps
            up = weighted_output()
            nudged[k] = saved - eps
            numeric[k] = (up - weighted_output()) / (2 * eps)
            nudged[k] = saved
        analytic = np.zeros(leaf.data.data.shape) if leaf.grad is None else np.asarray(leaf.grad)
        assert analytic.shape == leaf.data.data.shape, \
            f"{name}: input {position} has shape {leaf.data.data.shape}, its gradient {analytic.shape}"
        wrong = np.flatnonzero(~np.isclose(analytic.reshape(-1), numeric, atol=atol, rtol=rtol))
        if wrong.size:
            k = wrong[0]
            element = tuple(int(i) for i in np.unravel_index(k, analytic.shape))
            raise AssertionError(f"{name}: input {position}, element {element}: finite "
                                 f"differences give {numeric[k]:.6g}, backward gave {analytic.reshape(-1)[k]:.6g}")
    return True

# %% [markdown]
# ## 9. Division, powers and matrix multiplication
#
# | operation | rule for $a$ | rule for $b$ |
# |---|---|---|
# | $z = a / b$ | $g / b$ | $-g\,a / b^2 = -g\, z / b$ |
# | $z = a^p$ ($p$ a number) | $g\, p\, a^{p-1}$ | |
# | $z = c^a$ ($c$ a number) | $g\, z \ln c$ | |
# | $z = -a$ | $-g$ | |
# | $Z = A B$ | $G B^\top$ | $A^\top G$ |
#
# The matrix rule follows from $Z_{ij} = \sum_t A_{it} B_{tj}$: entry $A_{it}$ influences row $i$ of
# $Z$ through $B_{tj}$, so $\partial L/\partial A_{it} = \sum_j G_{ij} B_{tj} = (G B^\top)_{it}$.
# A shape check remembers it: $G$ is `(m, n)`, $A$ is `(m, k)`, and `(m, n) @ (n, k)` is the only
# way to get `(m, k)`. With stacks of matrices, `@` works on the last two axes and broadcasts the
# rest, so use `swapaxes(-1, -2)` for the transpose; the engine sums any broadcast batch axes away.
# A 1-D operand is a row on the left and a column on the right; NumPy drops that axis from the
# result, so the rule puts it back before multiplying and removes it after.
#
# NumPy's error for mismatched shapes does not show them; ours names both, as module 01's does.

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "more-arithmetic", "locked": false, "solution": true}
#| export
def divide(a, b) -> Variable:
    """a / b; a receives g / b, b receives -g * (a / b) / b."""
    av, bv = _operands(a, b, division=True)
    ### BEGIN SOLUTION
    out = av / bv
    return _result(out, "Div", (a, lambda g: g / bv), (b, lambda g: -g * out / bv))
    ### END SOLUTION


def negative(a) -> Variable:
    """-a; a receives -g."""
    ### BEGIN SOLUTION
    return _result(-_value(a), "Neg", (a, np.negative))
    ### END SOLUTION


def _number(exponent, what: str):
    if isinstance(exponent, (Variable, Tensor, np.ndarray, list)):
        raise TypeError(f"{what} must be a number, got {type(exponent).__name__}")
    return _value(exponent)


def power(a, exponent) -> Variable:
    """a ** p for a number p; a receives g * p * a ** (p - 1), and 0 when p == 0 (even where a is 0)."""
    av, p = _operands(a, _number(exponent, "the exponent of **"))
    ### BEGIN SOLUTION
    return _result(av ** p, "Pow", (a, (lambda g: g * (p * av ** (p - 1))) if p != 0 else np.zeros_like))
    ### END SOLUTION


def exponential_of(base, a) -> Variable:
    """base ** a for a number base (the reflected `2.0 ** x`); a receives g * out * ln(base).

    For base 0, PyTorch's convention: 0 where a >= 0 (out is 0 or 1), -inf where a < 0.
    """
    c, av = _operands(_number(base, "the base of **"), a)
    ### BEGIN SOLUTION
    out = c ** av
    if c == 0:
        slope = np.where(av >= 0, 0, -np.inf).astype(out.dtype)
        return _result(out, "RPow", (a, lambda g: g * slope))
    log_c = math.log(c) if c > 0 else math.nan
    return _result(out, "RPow", (a, lambda g: g * out * log_c))
    ### END SOLUTION


def matmul(a, b) -> Variable:
    """a @ b (matrices, stacks of matrices, or vectors); a receives g @ b.T, b receives a.T @ g."""
    av, bv = np.asarray(_value(a)), np.asarray(_value(b))
    try:
        out = av @ bv
    except ValueError:
        raise ValueError(f"matmul shape mismatch: {av.shape} @ {bv.shape}") from None
    ### BEGIN SOLUTION
    if av.ndim >= 2 and bv.ndim >= 2:
        return _result(out, "MatMul", (a, lambda g: g @ bv.swapaxes(-1, -2)), (b, lambda g: av.swapaxes(-1, -2) @ g))
    left = av if av.ndim >= 2 else av[None, :]    # (k,) on the left is a (1, k) row
    right = bv if bv.ndim >= 2 else bv[:, None]   # (k,) on the right is a (k, 1) column

    def as_matrix(g):  # put back the axes NumPy dropped from the result
        g = g if bv.ndim >= 2 else g[..., None]
        return g if av.ndim >= 2 else g[..., None, :]

    def grad_a(g):
        full = as_matrix(g) @ right.swapaxes(-1, -2)
        return full if av.ndim >= 2 else full[..., 0, :]

    def grad_b(g):
        full = left.swapaxes(-1, -2) @ as_matrix(g)
        return full if bv.ndim >= 2 else full[..., 0]

    return _result(out, "MatMul", (a, grad_a), (b, grad_b))
    ### END SOLUTION

# %% [markdown]
# ### Test: division, powers and matmul

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-more-arithmetic", "locked": true, "points": 3, "solution": false}
def test_unit_more_arithmetic():
    A = Variable([[1.0, 2.0]], requires_grad=True)
    B = Variable([[3.0], [4.0]], requires_grad=True)
    C = matmul(A, B)
    assert C.data.data.tolist() == [[11.0]], f"[[1, 2]] @ [[3], [4]] should be [[11]], got {C.data.data}"
    C.backward()
    assert A.grad.tolist() == [[3.0, 4.0]] and B.grad.tolist() == [[1.0], [2.0]], \
        f"matmul [[1, 2]] @ [[3], [4]]: expected A.grad [[3, 4]] (G @ B.T) and B.grad [[1], [2]] (A.T @ G), " \
        f"got {A.grad.tolist()} and {B.grad.tolist()}"

    rng = np.random.default_rng(2)
    def leaf(*shape):
        return Variable(rng.uniform(0.5, 2.0, shape), requires_grad=True)
    checks = [
        ("divide", lambda p, q: p / q, (leaf(2, 3), leaf(3))),
        ("reflected divide", lambda p: 1.0 / p, (leaf(3),)),
        ("reflected subtract", lambda p: 2.0 - p, (leaf(3),)),
        ("negative", lambda p: -p, (leaf(2, 2),)),
        ("power 3", lambda p: p ** 3, (leaf(4),)),
        ("power -0.5", lambda p: p ** -0.5, (leaf(4),)),
        ("2 ** p", lambda p: 2.0 ** p, (leaf(3),)),
        ("matmul", matmul, (leaf(2, 3), leaf(3, 4))),
        ("matmul vector @ matrix", matmul, (leaf(3), leaf(3, 2))),
        ("matmul matrix @ vector", matmul, (leaf(2, 3), leaf(3))),
        ("matmul vector @ vector", matmul, (leaf(3), leaf(3))),
        ("matmul batched @ matrix", matmul, (leaf(2, 2, 3), leaf(3, 2))),
    ]
    for name, fn, inputs in checks:
        reference_gradcheck(fn, *inputs, name=name)

    try:
        matmul(Variable(np.ones((2, 3))), Variable(np.ones((2, 3))))
    except ValueError as error:
        assert "(2, 3) @ (2, 3)" in str(error), f"the error should name both shapes, got: {error}"
    else:
        raise AssertionError("(2, 3) @ (2, 3) should raise ValueError")
    base = Variable([-1.0, 0.0, 2.0], requires_grad=True)
    with np.errstate(divide="ignore"):  # 0 ** -1 is inf, which NumPy warns about
        (0.0 ** base).backward(np.ones(3))  # (no sum() before Section 11)
    assert base.grad.tolist() == [-np.inf, 0.0, 0.0], f"0 ** x: expected gradient [-inf, 0, 0] (PyTorch's), got {base.grad}"
    zero = Variable([0.0, 2.0], requires_grad=True)
    (zero ** 0).backward(np.ones(2))
    assert zero.grad.tolist() == [0.0, 0.0], f"x ** 0 is constant: expected gradient [0, 0] even at 0, got {zero.grad}"
    try:
        leaf(2) ** leaf(2)
    except TypeError as error:
        assert "exponent" in str(error), f"the error should say the exponent must be a number, got: {error}"
    else:
        raise AssertionError("a Variable exponent should raise TypeError")

test_unit_more_arithmetic()
print("test_unit_more_arithmetic: passed")

# %% [markdown]
# ## 10. Elementwise functions
#
# Each rule multiplies $g$ by the function's derivative, preferably written with the output
# $z$ the forward pass already computed (saved, so nothing is recomputed):
#
# | $z$ | $\partial z / \partial x$ | note |
# |---|---|---|
# | $e^x$ | $z$ | |
# | $\ln x$ | $1/x$ | $x \le 0$ gives NaN or $-\infty$ with NumPy's warning, as `torch.log` does |
# | $\sqrt{x}$ | $1 / (2z)$ | |
# | $\tanh x$ | $1 - z^2$ | |
# | $\sigma(x) = 1/(1+e^{-x})$ | $z(1 - z)$ | computed as $e^{-\log(1 + e^{-x})}$ with `np.logaddexp`: no overflow, full precision in both tails |
# | $\max(x, 0)$ (ReLU) | $1$ where $z > 0$, else $0$ | at exactly 0 we choose 0, as PyTorch does |

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "elementwise-functions", "locked": false, "solution": true}
#| export
def exp(x) -> Variable:
    """e ** x; x receives g * e ** x."""
    ### BEGIN SOLUTION
    out = np.exp(_value(x))
    return _result(out, "Exp", (x, lambda g: g * out))
    ### END SOLUTION


def log(x) -> Variable:
    """Natural logarithm; x receives g / x."""
    ### BEGIN SOLUTION
    xv = _value(x)
    return _result(np.log(xv), "Log", (x, lambda g: g / xv))
    ### END SOLUTION


def sqrt(x) -> Variable:
    """Square root; x receives g / (2 sqrt(x))."""
    ### BEGIN SOLUTION
    out = np.sqrt(_value(x))
    return _result(out, "Sqrt", (x, lambda g: g / (2 * out)))
    ### END SOLUTION


def tanh(x) -> Variable:
    """Hyperbolic tangent; x receives g * (1 - tanh(x) ** 2)."""
    ### BEGIN SOLUTION
    out = np.tanh(_value(x))
    return _result(out, "Tanh", (x, lambda g: g * (1 - out * out)))
    ### END SOLUTION


def sigmoid(x) -> Variable:
    """1 / (1 + e ** -x), computed stably; x receives g * s * (1 - s)."""
    ### BEGIN SOLUTION
    out = np.exp(-np.logaddexp(0, -_value(x)))
    return _result(out, "Sigmoid", (x, lambda g: g * out * (1 - out)))
    ### END SOLUTION


def relu(x) -> Variable:
    """max(x, 0); x receives g where x > 0, else 0."""
    ### BEGIN SOLUTION
    out = np.maximum(_value(x), 0)
    return _result(out, "ReLU", (x, lambda g: g * (out > 0)))
    ### END SOLUTION

# %% [markdown]
# ### Test: elementwise functions

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-elementwise-functions", "locked": true, "points": 3, "solution": false}
def test_unit_elementwise_functions():
    rng = np.random.default_rng(3)
    signed = rng.choice([-1.0, 1.0], (3, 4)) * rng.uniform(0.1, 2.0, (3, 4))  # away from ReLU's kink at 0
    positive = rng.uniform(0.2, 3.0, (3, 4))
    for name, fn, values in [("exp", exp, signed), ("log", log, positive), ("sqrt", sqrt, positive),
                             ("tanh", tanh, signed), ("sigmoid", sigmoid, signed), ("relu", relu, signed)]:
        reference_gradcheck(fn, Variable(values, requires_grad=True), name=name)
        x32 = Variable(values.astype(np.float32), requires_grad=True)
        out = fn(x32)
        out.backward(np.ones(out.shape, dtype=np.float32))
        assert out.dtype == np.float32 and x32.grad.dtype == np.float32, \
            f"{name} should keep float32 in both passes, got {out.dtype} and {x32.grad.dtype}"
    assert np.allclose(Variable([1.0]).exp().data.data, np.e), "Variable.exp() should be a method too"
    tails = sigmoid(Variable(np.array([-1000.0, -30.0, 0.0, 1000.0]))).data.data
    assert np.allclose(tails, [0.0, 9.357622968840175e-14, 0.5, 1.0], rtol=1e-9, atol=0), f"sigmoid tails wrong: {tails}"
    import warnings
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        logs = log(Variable([0.0, -1.0])).data.data
    assert logs[0] == -np.inf and np.isnan(logs[1]), f"log(0) should be -inf and log(-1) nan, got {logs}"
    assert caught, "log of non-positive values should let NumPy's RuntimeWarning through"

test_unit_elementwise_functions()
print("test_unit_elementwise_functions: passed")

# %% [markdown]
# ## 11. Reductions, reshaping and indexing
#
# These operations move numbers around rather than change them, so their rules move gradients
# back to where the numbers came from:
#
# - **`sum`**: every input entry contributes with weight 1, so each receives the gradient of the sum
#   it went into: put back the reduced axes (`np.expand_dims`, unless `keepdims`) and broadcast. The
#   rule returns a real array rather than a broadcast view: NumPy's matrix multiply would not hand a
#   view with zero strides to the fast BLAS routine.
# - **`mean`**: the same, divided by the number of entries averaged.
# - **`max`**: only the largest entry moved the result. Ties need a choice (any split is a valid
#   subgradient); we make PyTorch's, through the given `_tie_share`: over one axis the first largest
#   entry gets the whole gradient (as `torch.max(x, dim)`), over all axes the tied entries share it
#   equally (as `torch.max(x)`).
# - **`reshape`**: reshape the gradient back. **`permute`**: permute back with the inverse
#   permutation (`np.argsort(dims)`).
# - **indexing** `x[index]`: scatter the gradient into zeros of `x`'s shape. With integer arrays an
#   entry can be picked twice (`x[[0, 0]]`), and then both gradients must be added: `np.add.at`
#   does that, where `zeros[index] += g` would keep only one. This is what cross-entropy needs:
#   `log_probs[np.arange(n), targets]` picks each row's target entry.
#
# Reductions keep the dtype (a float32 sum is float32) and a full reduction gives shape `()`, like
# PyTorch. The given first lines turn `axis` into a tuple of axes, or None for all (module 01's
# `reduction_axes`, which also lets a 0-d Variable reduce over axis 0 or -1, as PyTorch does). `Variable.sum(x)`, the spelling of the old lesson, is the same method called through the
# class.

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "reductions-and-shapes", "locked": false, "solution": true}
#| export
def _expand(g: np.ndarray, axis, keepdims: bool) -> np.ndarray:
    """Put back the axes a reduction removed, so `g` broadcasts against the reduction's input."""
    return g if keepdims or axis is None else np.expand_dims(g, axis)


def _drop(kept: np.ndarray, axis, keepdims: bool) -> np.ndarray:
    """A reduction's result computed with keepdims=True, without the reduced axes unless `keepdims`."""
    return kept if keepdims else (kept.reshape(()) if axis is None else np.squeeze(kept, axis))


def _tie_share(hits: np.ndarray, axis, dtype) -> np.ndarray:
    """Which entries of a max (or min) get its gradient, as PyTorch decides: of tied entries, the first along a
    single axis (torch.max(x, dim)); an equal share each over all or several axes (torch.max(x), torch.amax)."""
    if axis is not None and len(axis) == 1:
        return hits & (np.cumsum(hits, axis=axis[0]) == 1)
    return hits / hits.sum(axis=axis, keepdims=True, dtype=dtype)


def reduce_sum(x, axis=None, keepdims: bool = False) -> Variable:
    """Sum over `axis` (all axes by default); every entry receives the gradient of its sum."""
    xv = np.asarray(_value(x))
    axis = reduction_axes(axis, xv.ndim)
    ### BEGIN SOLUTION
    return _result(xv.sum(axis=axis, keepdims=keepdims), "Sum",
                   (x, lambda g: np.broadcast_to(_expand(g, axis, keepdims), xv.shape).copy()))
    ### END SOLUTION


def reduce_mean(x, axis=None, keepdims: bool = False) -> Variable:
    """Mean over `axis`; every entry receives the gradient of its mean divided by the count."""
    xv = np.asarray(_value(x))
    axis = reduction_axes(axis, xv.ndim)
    ### BEGIN SOLUTION
    out = xv.mean(axis=axis, keepdims=keepdims)
    count = xv.size // max(np.size(out), 1)
    return _result(out, "Mean", (x, lambda g: np.broadcast_to(_expand(g, axis, keepdims) / count, xv.shape).copy()))
    ### END SOLUTION


def reduce_max(x, axis=None, keepdims: bool = False) -> Variable:
    """Largest entry over `axis`; the gradient goes to the largest entry (ties: `_tie_share`)."""
    xv = np.asarray(_value(x))
    axis = reduction_axes(axis, xv.ndim)
    ### BEGIN SOLUTION
    top = xv.max(axis=axis, keepdims=True)
    return _result(_drop(top, axis, keepdims), "Max",
                   (x, lambda g: _tie_share(xv == top, axis, xv.dtype) * _expand(g, axis, keepdims)))
    ### END SOLUTION


def reshape(x, *shape) -> Variable:
    """The same entries in a new shape (`reshape(x, 2, 3)` or `reshape(x, (2, 3))`); gradient reshaped back."""
    xv = np.asarray(_value(x))
    out = tensor_reshape(_wrap(xv), *shape).data  # module 01 checks the shape and names it in its error
    ### BEGIN SOLUTION
    return _result(out, "Reshape", (x, lambda g: g.reshape(xv.shape)))
    ### END SOLUTION


def permute(x, *dims) -> Variable:
    """The axes in the order given, `permute(x, 2, 0, 1)` (reversed when none are given); the gradient is
    permuted back."""
    xv = np.asarray(_value(x))
    dims = normalized_axes(as_shape(dims), xv.ndim) if as_shape(dims) else ()
    out = tensor_permute(_wrap(xv), *dims).data
    ### BEGIN SOLUTION
    inverse = tuple(np.argsort(dims)) if dims else None  # reversing the axes undoes itself
    return _result(out, "Permute", (x, lambda g: g.transpose(inverse)))
    ### END SOLUTION


def _index_part(part):
    """One part of an index as NumPy wants it: Tensors and Variables as arrays, whole-number floats as ints."""
    if isinstance(part, Variable):
        part = part.data.data
    if isinstance(part, Tensor):
        part = part.data
    if isinstance(part, (list, tuple)):  # inside an index, a tuple is a list of positions, as in NumPy
        part = np.asarray(part)
    if isinstance(part, np.ndarray) and part.dtype.kind == "f":
        if not np.all(part == np.round(part)):
            raise IndexError(f"an index array must hold whole numbers, got {part.ravel()[:5]}")
        part = part.astype(np.int64)
    return part


def getitem(x, index) -> Variable:
    """x[index] with NumPy indexing, integer arrays included; the gradient is scattered back (repeats add up)."""
    xv = np.asarray(_value(x))
    parts = tuple(_index_part(part) for part in index) if isinstance(index, tuple) else _index_part(index)
    out = xv[parts]
    ### BEGIN SOLUTION
    repeats_possible = any(isinstance(part, np.ndarray) and part.dtype.kind in "iu"
                           for part in (parts if isinstance(parts, tuple) else (parts,)))

    def rule(g):
        full = np.zeros(xv.shape, dtype=np.result_type(g, xv))
        if repeats_possible:
            np.add.at(full, parts, g)
        else:
            full[parts] = g
        return full

    return _result(out, "Index", (x, rule))
    ### END SOLUTION

# %% [markdown]
# ### Test: reductions, reshaping and indexing

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-reductions-and-shapes", "locked": true, "points": 3, "solution": false}
def test_unit_reductions_and_shapes():
    rng = np.random.default_rng(4)
    values = rng.permutation(24).reshape(2, 3, 4) / 4.0  # distinct: no ties for max
    x = Variable(values, requires_grad=True)
    checks = [("sum", lambda v: v.sum()), ("sum axis 1", lambda v: v.sum(axis=1)),
              ("sum axes (0, 2) keepdims", lambda v: v.sum(axis=(0, 2), keepdims=True)),
              ("mean", lambda v: v.mean()), ("mean axis -1 keepdims", lambda v: v.mean(axis=-1, keepdims=True)),
              ("max", lambda v: v.max()), ("max axis 0", lambda v: v.max(axis=0)),
              ("max axis 2 keepdims", lambda v: v.max(axis=2, keepdims=True)),
              ("reshape", lambda v: v.reshape(4, 6)), ("reshape tuple -1", lambda v: v.reshape((-1,))),
              ("permute", lambda v: v.permute()), ("permute 0 2 1", lambda v: v.permute(0, 2, 1)),
              (".T", lambda v: v.T), ("slice", lambda v: v[1, :, 1:3]),
              ("integer arrays", lambda v: v[np.array([0, 1, 1]), np.array([2, 0, 0])]),
              ("boolean mask", lambda v: v[values > 2.0])]
    for name, fn in checks:
        reference_gradcheck(fn, x, name=name)

    s32 = Variable(np.float32(3.0), requires_grad=True)
    total = Variable.sum(s32)
    total.backward()
    assert total.dtype == np.float32 and s32.grad.dtype == np.float32 and s32.grad == 1.0, \
        f"Variable.sum of a float32 scalar should work and stay float32, got {total.dtype}, grad {s32.grad}"
    assert Variable(np.ones((2, 3), np.float32)).sum().shape == (), "a full sum should have shape ()"

    logits = Variable(np.zeros((3, 2)), requires_grad=True)
    picked = logits[np.arange(3), np.array([1, 1, 0])]
    picked.sum().backward()
    assert logits.grad.tolist() == [[0, 1], [0, 1], [1, 0]], f"picking targets should scatter 1s, got {logits.grad.tolist()}"
    twice = Variable(np.zeros(3), requires_grad=True)
    twice[np.array([0, 0, 2])].sum().backward()
    assert twice.grad.tolist() == [2.0, 0.0, 1.0], f"an entry picked twice gets both gradients: expected [2, 0, 1], got {twice.grad.tolist()}"
    float_targets = Tensor([1, 0])  # module 01 stores these as float32
    assert Variable(np.eye(2))[np.arange(2), float_targets].data.data.tolist() == [0.0, 0.0], \
        "a Tensor of whole numbers should work as an index"

    tied = Variable([1.0, 3.0, 3.0], requires_grad=True)
    tied.max().backward()
    assert tied.grad.tolist() == [0.0, 0.5, 0.5], f"tied maxima share the gradient: expected [0, .5, .5], got {tied.grad.tolist()}"
    tied_rows = Variable([[3.0, 3.0], [1.0, 2.0]], requires_grad=True)
    tied_rows.max(axis=1).sum().backward()
    assert tied_rows.grad.tolist() == [[1.0, 0.0], [0.0, 1.0]], \
        f"over one axis the first maximum takes the gradient (as torch.max(x, dim)), got {tied_rows.grad.tolist()}"
    repeated = Variable(np.zeros((2, 3)), requires_grad=True)
    repeated[:, (0, 0)].sum().backward()
    assert repeated.grad.tolist() == [[2, 0, 0], [2, 0, 0]], f"x[:, (0, 0)] picks column 0 twice, got {repeated.grad.tolist()}"
    scalar = Variable(np.float64(2.0), requires_grad=True)
    (scalar.sum(0) + scalar.mean(-1)).backward()
    assert scalar.grad == 2.0, f"a 0-d Variable reduces over axis 0 or -1 (each gives 1), got {scalar.grad}"

test_unit_reductions_and_shapes()
print("test_unit_reductions_and_shapes: passed")

# %% [markdown]
# ## 12. A stable log-softmax
#
# Classification losses need $\log \mathrm{softmax}(x)_i = x_i - \log \sum_j e^{x_j}$. Computed
# literally, $e^{1000}$ overflows to infinity and the result is NaN. Subtracting the row maximum $m$
# first changes nothing mathematically ($x_i - m - \log\sum_j e^{x_j - m}$) but keeps every exponent
# at most 0. It could be assembled from the operations above, but as one operation its backward is
# short: with $s = \mathrm{softmax}(x) = e^{z}$,
#
# $$\frac{\partial L}{\partial x} = g - s \sum_j g_j .$$
#
# Cross-entropy is then `-log_softmax(logits)[np.arange(n), targets].mean()`.

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "log-softmax", "locked": false, "solution": true}
#| export
def log_softmax(x, axis: int = -1) -> Variable:
    """log(softmax(x)) along `axis`, stable for large inputs; x receives g - softmax(x) * g.sum(axis)."""
    xv = np.asarray(_value(x))
    ### BEGIN SOLUTION
    shifted = xv - xv.max(axis=axis, keepdims=True)
    out = shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
    return _result(out, "LogSoftmax", (x, lambda g: g - np.exp(out) * g.sum(axis=axis, keepdims=True)))
    ### END SOLUTION

# %% [markdown]
# ### Test: log-softmax

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-log-softmax", "locked": true, "points": 2, "solution": false}
def test_unit_log_softmax():
    rng = np.random.default_rng(5)
    logits = Variable(rng.standard_normal((4, 5)), requires_grad=True)
    reference_gradcheck(log_softmax, logits, name="log_softmax")
    reference_gradcheck(lambda v: v.log_softmax(axis=0), logits, name="log_softmax axis 0")
    probabilities = np.exp(log_softmax(logits).data.data)
    assert np.allclose(probabilities.sum(axis=1), 1.0), f"softmax rows should sum to 1, got {probabilities.sum(axis=1)}"
    huge = log_softmax(Variable([[1000.0, 0.0], [-1000.0, -1000.0]])).data.data
    assert np.all(np.isfinite(huge)), f"log_softmax must not overflow on large inputs, got {huge}"
    assert np.allclose(huge, [[0.0, -1000.0], [np.log(0.5), np.log(0.5)]]), f"expected [[0, -1000], [log .5, log .5]], got {huge}"
    targets = np.array([0, 3, 1, 4])
    loss = -log_softmax(logits)[np.arange(4), targets].mean()
    loss.backward()
    softmax = np.exp(log_softmax(logits.detach()).data.data)
    expected = (softmax - np.eye(5)[targets]) / 4
    assert np.allclose(logits.grad, expected), f"cross-entropy gradient should be (softmax - onehot) / n, got {logits.grad}"

test_unit_log_softmax()
print("test_unit_log_softmax: passed")

# %% [markdown]
# ## 12b. Given: the rest of PyTorch's vocabulary
#
# Nothing to write here. These operations complete the set of names you will meet in PyTorch
# (`docs/pytorch.md` lists them all with their PyTorch spelling). Each one has the shape you know: the
# value, and next to it the rule that sends $g$ back, recorded through `_result`. Read a few of the
# rules; each follows from the sections above.
#
# | operation | value | rule for the input |
# |---|---|---|
# | `transpose(x, 0, 1)`, `squeeze`, `unsqueeze`, `view` | `permute` / `reshape` | theirs |
# | `expand(x, *sizes)` | broadcast to `sizes` (-1 keeps a size) | $g$: the engine's `unbroadcast` sums it back |
# | `flip(x, dims)` | reverse along `dims` | flip $g$ back |
# | `abs(x)` | $\lvert x \rvert$ | $g\,\mathrm{sign}(x)$ (0 at 0, as PyTorch) |
# | `clamp(x, min, max)` | clip | $g$ where $\min \le x \le \max$, else 0 |
# | `maximum(a, b)`, `minimum(a, b)` | elementwise | $g$ to the winner; ties give $g/2$ to each, as PyTorch |
# | `min(x, axis)` | like `max` | like `max`, ties included |
# | `var(x, axis, correction=1)` | $\sum (x - \bar x)^2 / (n - c)$ | $2 g (x - \bar x) / (n - c)$ |
# | `logsumexp(x, axis)` | $m + \log \sum e^{x - m}$ | $g\, e^{x - \mathrm{out}}$ = $g$ times softmax |
# | `softmax(x, axis)` | $s = e^{x - m} / \sum e^{x - m}$ | $s\,(g - \sum_j g_j s_j)$ |
#
# `std` is `sqrt(var)`; `clip` is `clamp`. `var`'s `correction` is PyTorch's name for NumPy's `ddof`:
# 1 (the default) divides by $n - 1$, and PyTorch's older `unbiased=False` means `correction=0`.

# %%
#| export
def transpose(x, dim0: int, dim1: int) -> Variable:
    """Swap axes `dim0` and `dim1`, as PyTorch's `transpose` does (`.T` reverses all, `permute` reorders)."""
    return permute(x, swapped_axes(np.ndim(_value(x)), dim0, dim1))


def expand(x, *sizes) -> Variable:
    """Broadcast to `sizes` (-1 keeps a size) without copying; the engine sums the gradient back."""
    xv = np.asarray(_value(x))
    return _result(np.broadcast_to(xv, expanded_shape(xv.shape, as_shape(sizes))), "Expand", (x, _same))


def flip(x, *dims) -> Variable:
    """Reverse the order of the entries along `dims` (all axes when none are given)."""
    xv = np.asarray(_value(x))
    axes = normalized_axes(as_shape(dims), xv.ndim) if as_shape(dims) else None
    return _result(np.flip(xv, axes), "Flip", (x, lambda g: np.flip(g, axes)))


def absolute(x) -> Variable:
    """|x|; x receives g * sign(x), which is 0 at 0 as in PyTorch."""
    xv = _value(x)
    return _result(np.abs(xv), "Abs", (x, lambda g: g * np.sign(xv)))


def clamp(x, min=None, max=None) -> Variable:
    """x limited to [min, max] (either may be None); x receives g where min <= x <= max, else 0."""
    if min is None and max is None:
        raise ValueError("clamp needs at least one of min and max")
    xv = _value(x)
    low, high = -np.inf if min is None else _value(min), np.inf if max is None else _value(max)
    inside = (xv >= low) & (xv <= high)
    return _result(np.clip(xv, low, high).astype(xv.dtype, copy=False), "Clamp", (x, lambda g: g * inside))


def _pick_larger_or_smaller(a, b, choose, wins, name: str) -> Variable:
    """maximum or minimum: `choose` computes it, `wins(a, b)` says where a wins; ties give each input half."""
    av, bv = _operands(a, b)
    out = choose(av, bv)
    to_a = (wins(av, bv) + 0.5 * (av == bv)).astype(out.dtype)
    return _result(out, name, (a, lambda g: g * to_a), (b, lambda g: g * (1 - to_a)))


def maximum(a, b) -> Variable:
    """The larger of a and b, elementwise with broadcasting; g goes to the larger (half each on a tie)."""
    return _pick_larger_or_smaller(a, b, np.maximum, np.greater, "Maximum")


def minimum(a, b) -> Variable:
    """The smaller of a and b, elementwise with broadcasting; g goes to the smaller (half each on a tie)."""
    return _pick_larger_or_smaller(a, b, np.minimum, np.less, "Minimum")


def reduce_min(x, axis=None, keepdims: bool = False) -> Variable:
    """Smallest entry over `axis`; the gradient goes to the smallest entry (ties: `_tie_share`, as in max)."""
    xv = np.asarray(_value(x))
    axis = reduction_axes(axis, xv.ndim)
    bottom = xv.min(axis=axis, keepdims=True)
    return _result(_drop(bottom, axis, keepdims), "Min",
                   (x, lambda g: _tie_share(xv == bottom, axis, xv.dtype) * _expand(g, axis, keepdims)))


def variance(x, axis=None, keepdims: bool = False, correction: int = 1) -> Variable:
    """Sum of squared deviations from the mean over `axis`, divided by n - correction (PyTorch's `var`)."""
    xv = np.asarray(_value(x))
    axis = reduction_axes(axis, xv.ndim)
    count = xv.size if axis is None else math.prod(xv.shape[a] for a in axis)
    centered = xv - xv.mean(axis=axis, keepdims=True)
    divisor = xv.dtype.type(count - correction)  # a NumPy number: 0 gives inf or nan with a warning, as in PyTorch
    out = (centered * centered).sum(axis=axis, keepdims=keepdims) / divisor
    return _result(out, "Var", (x, lambda g: _expand(g, axis, keepdims) * (2 / divisor) * centered))


def _finite_max(xv: np.ndarray, axis) -> np.ndarray:
    """The max over `axis` (kept), with infinite maxima replaced by 0 so that x - max stays meaningful."""
    top = xv.max(axis=axis, keepdims=True)
    return np.where(np.isfinite(top), top, 0)


def logsumexp(x, axis=None, keepdims: bool = False) -> Variable:
    """log(sum(exp(x))) over `axis`, shifted by the max so nothing overflows; x receives g * softmax(x)."""
    xv = np.asarray(_value(x))
    axis = reduction_axes(axis, xv.ndim)
    top = _finite_max(xv, axis)
    kept = top + np.log(np.exp(xv - top).sum(axis=axis, keepdims=True))
    return _result(_drop(kept, axis, keepdims), "LogSumExp", (x, lambda g: _expand(g, axis, keepdims) * np.exp(xv - kept)))


def softmax(x, axis: int = -1) -> Variable:
    """exp(x) / sum(exp(x)) along `axis`, shifted by the max; x receives s * (g - sum(g * s))."""
    xv = np.asarray(_value(x))
    exps = np.exp(xv - _finite_max(xv, axis))
    out = exps / exps.sum(axis=axis, keepdims=True)
    return _result(out, "Softmax", (x, lambda g: out * (g - (g * out).sum(axis=axis, keepdims=True))))

# %% [markdown]
# A few of them at work, next to what PyTorch would print:

# %%
scores = Variable([[1.0, 3.0, 3.0], [-2.0, 0.5, 4.0]], requires_grad=True)
spread = scores.clamp(min=0.0).softmax(dim=1).var(dim=1, keepdim=True) + scores.abs().logsumexp(dim=(0, 1))
spread.sum().backward()
print(spread)
print(scores.grad)

# %% [markdown]
# ## 13. Seeing the graph
#
# `draw_graph(output)` lists the graph in topological order, one line per node: its name, the
# operation and the nodes it used, its shape, and the value and `.grad` of the Variables it knows:
# the leaves, the output, and any Variable you name with `names={"a": a}` (the graph itself keeps no
# intermediate values, Section 2). In Jupyter it renders as a picture when the graphviz program
# `dot` is installed (`apt install graphviz`), and as this text otherwise. Constants are not drawn:
# they have no edge.

# %%
#| export
def _summary(array) -> str:
    if array is None:
        return "-"
    array = np.asarray(array)
    if array.size <= 6:
        return np.array2string(array, precision=4, separator=", ").replace("\n", "")
    return f"<{array.dtype} {array.shape}>"


def _dot_escape(text: str) -> str:
    """Escape the characters that structure a graphviz record label."""
    for special in '\\{}|<>"':
        text = text.replace(special, "\\" + special)
    return text


class GraphDrawing:
    """A computational graph as text (`str`/`repr`), DOT source (`.dot`), and SVG in Jupyter when `dot` exists."""

    def __init__(self, text: str, dot: str):
        self.text, self.dot = text, dot

    def __repr__(self) -> str:
        return self.text

    def _repr_svg_(self) -> str | None:
        if shutil.which("dot") is None:
            return None  # Jupyter then shows the text
        done = subprocess.run(["dot", "-Tsvg"], input=self.dot, capture_output=True, text=True, timeout=60)
        return done.stdout if done.returncode == 0 else None


def draw_graph(output: Variable, names: dict | None = None) -> GraphDrawing:
    """Draw the graph `output` was computed from: each node's operation, inputs, shape, value and gradient.

    `names` maps labels to Variables (`{"x": x, "h": h}`). The values and gradients of leaves, of the output
    and of named Variables are shown; the graph itself keeps no other intermediate value.
    """
    known = {output.grad_fn or output: (None, output)}  # node -> (label, the Variable it made)
    known.update({variable.grad_fn or variable: (label, variable) for label, variable in (names or {}).items()})
    nodes = topological_order(output)
    ids = {node: (known[node][0] if node in known else None) or f"v{i}" for i, node in enumerate(nodes)}
    lines, dot = [], ["digraph autograd {", "  rankdir=LR;", '  node [shape=record, style=filled, fontname="monospace"];']
    for node in nodes:
        name, is_node = ids[node], isinstance(node, Node)
        variable = known[node][1] if node in known else (None if is_node else node)
        operation = f"{node.name}({', '.join(ids[source] for source in node.inputs)})" if is_node else "leaf"
        value = _summary(variable.data.data) if variable is not None else "not kept"
        grad = _summary(variable.grad) if variable is not None else "-"
        marker = "  <- output" if variable is output else ""
        lines.append(f"{name} = {operation}{marker}  shape {node.shape}  value {value}  grad {grad}")
        fields = [name, operation.split("(")[0], f"shape {node.shape}", f"value {value}", f"grad {grad}"]
        fill = "gold" if variable is output else ("white" if is_node else "lightblue")
        dot.append(f'  "{name}" [label="{" | ".join(_dot_escape(field) for field in fields)}", fillcolor={fill}];')
        dot.extend(f'  "{ids[source]}" -> "{name}";' for source in (node.inputs if is_node else ()))
    dot.append("}")
    return GraphDrawing("\n".join(lines), "\n".join(dot))


# %% [markdown]
# The lesson's example, $(x + y)(x - y)$ at $x = 3$, $y = 2$, after `backward()`. A backward pass
# releases the graph it walked (Section 6); `retain_graph=True` keeps it, here so that it can be drawn.

# %%
x = Variable([3.0], requires_grad=True)
y = Variable([2.0], requires_grad=True)
a, b = x + y, x - y
f = a * b
f.backward(retain_graph=True)
drawing = draw_graph(f, names={"x": x, "y": y, "a": a, "b": b, "f": f})
print(drawing)
drawing

# %% [markdown]
# ### Test: the text form of a drawing

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-draw-graph", "locked": true, "points": 1, "solution": false}
def test_unit_draw_graph():
    x = Variable([3.0], requires_grad=True)
    y = Variable([2.0], requires_grad=True)
    a = x + y
    f = a * (x - y)
    f.backward(retain_graph=True)
    text = str(draw_graph(f, names={"x": x, "y": y, "a": a}))
    lines = text.splitlines()
    assert len(lines) == 5, f"5 nodes should give 5 lines, got {len(lines)}:\n{text}"
    assert lines[-1].startswith("v4 = Mul(a, v3)  <- output") and "value [5.]" in lines[-1], \
        f"the last line should be the output, v4 = Mul(a, v3), value [5.]:\n{text}"
    assert "x = leaf" in text and "grad [6.]" in text and "grad [-4.]" in text, f"leaves should show their grads:\n{text}"
    assert "a = Add(x, y)" in text and "value [5.]" in lines[2], f"a named Variable shows its value:\n{text}"
    assert "v3 = Sub(x, y)" in text and "not kept" in lines[3], f"an unnamed intermediate has no value to show:\n{text}"
    assert "digraph" in draw_graph(f).dot, "the DOT source should be available for graphviz"

test_unit_draw_graph()
print("test_unit_draw_graph: passed")

# %% [markdown]
# ## 14. Everything together: a network learns
#
# A two-layer network, written with nothing but the operations above, fits $y = \sin(x)$ on 64
# points. Parameters are leaves with `requires_grad=True`; each step computes the loss, zeroes the
# old gradients, runs `backward()`, and moves every parameter against its gradient with the
# recording off. (Modules 03 to 07 wrap exactly this in layers, losses, optimizers and a trainer.)

# %%
rng = np.random.default_rng(0)
inputs = np.linspace(-3, 3, 64, dtype=np.float32).reshape(-1, 1)
targets = np.sin(inputs)
W1 = Variable(rng.standard_normal((1, 32)).astype(np.float32), requires_grad=True)
b1 = Variable(np.zeros(32, dtype=np.float32), requires_grad=True)
W2 = Variable((rng.standard_normal((32, 1)) / np.sqrt(32)).astype(np.float32), requires_grad=True)
b2 = Variable(np.zeros(1, dtype=np.float32), requires_grad=True)
parameters = [W1, b1, W2, b2]


def fit_loss() -> Variable:
    hidden = (inputs @ W1 + b1).tanh()
    return ((hidden @ W2 + b2 - targets) ** 2).mean()


losses = []
for step in range(500):
    loss = fit_loss()
    for p in parameters:
        p.zero_grad()
    loss.backward()
    with no_grad():
        for p in parameters:
            p.data.data -= 0.1 * p.grad
    losses.append(loss.item())
print(f"mean squared error: step 0 {losses[0]:.4f}, step 100 {losses[100]:.4f}, step 499 {losses[-1]:.5f}")

# %% [markdown]
# ### Test: the network learned

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-training", "locked": true, "points": 2, "solution": false}
def test_unit_training():
    assert losses[-1] < 0.02, f"after 500 steps the loss should be below 0.02, got {losses[-1]:.4f}"
    assert losses[-1] < losses[0] / 10, f"the loss should fall at least tenfold, went {losses[0]:.4f} -> {losses[-1]:.4f}"
    assert all(p.grad.dtype == np.float32 and p.grad.shape == p.shape for p in parameters), \
        "every parameter's gradient should be float32 with the parameter's shape"
    assert reference_gradcheck(lambda w1, bias1, w2, bias2: ((((inputs[:8] @ w1 + bias1).tanh()) @ w2 + bias2 - targets[:8]) ** 2).mean(),
                     *parameters, name="two-layer network")

test_unit_training()
print("test_unit_training: passed")

# %% [markdown]
# ## 15. Systems analysis: what the engine costs
#
# Four measurements on the engine you built.
#
# **(a) Time grows linearly with the graph.** Each node is visited once, so doubling the number of
# operations should double the backward time, and the time per node should stay flat. For contrast,
# the strategy of the old lesson, every node immediately recursing into its inputs, is timed on
# the graph `y = y + y` repeated `n` times, which has $2^n$ paths.

# %%
import gc
import sys
import time
import tracemalloc


from tinytorch.core.tensor import best_time


def chain(n: int, dtype=np.float64) -> tuple[Variable, Variable]:
    leaf = Variable(np.ones(1, dtype=dtype), requires_grad=True)
    out = leaf
    for i in range(n):
        out = out * 1.0001 if i % 2 else out + 0.5
    return leaf, out


print(f"{'operations':>10} {'forward ms':>11} {'backward ms':>12} {'backward us/op':>15}")
for n in [1_000, 4_000, 16_000, 64_000]:
    forward = best_time(lambda: chain(n), repeat=3)  # 3 runs: the big chains take a while (and grading has a timeout)
    leaf, out = chain(n)
    backward = best_time(lambda: out.backward(retain_graph=True), repeat=3)
    print(f"{n:>10,} {forward * 1e3:>11.1f} {backward * 1e3:>12.1f} {backward / n * 1e6:>15.2f}")


def recursive_backward(node, grad) -> int:
    """The old lesson's strategy: pass the gradient to each input at once, recursing. Returns rule calls."""
    if not isinstance(node, Node):
        return 0
    return sum(1 + recursive_backward(source, rule(grad)) for source, rule in node.edges)


print(f"\n{'y = y + y, n times':>18} {'ours: nodes':>12} {'ours ms':>8} {'recursive: rule calls':>22} {'recursive ms':>13}")
for n in [8, 12, 16]:
    leaf = Variable([1.0], requires_grad=True)
    doubled = leaf
    for _ in range(n):
        doubled = doubled + doubled
    ours = best_time(lambda: doubled.backward(retain_graph=True))
    calls = recursive_backward(doubled.grad_fn, np.ones(1))
    naive = best_time(lambda: recursive_backward(doubled.grad_fn, np.ones(1)), repeat=1)
    print(f"{n:>18} {len(topological_order(doubled)):>12} {ours * 1e3:>8.2f} {calls:>22,} {naive * 1e3:>13.1f}")
print(f"At n = 40 the recursive strategy would make {2 ** 41 - 2:,} rule calls: "
      f"about {(2 ** 41) * naive / calls / 86400:.0f} days at the rate above.")

# %% [markdown]
# **(b) Depth: 100,000 operations.** Python allows about 1,000 nested calls, so any recursive
# traversal fails on a long chain; the explicit stack does not care.

# %%
start = time.perf_counter()
leaf, out = chain(100_000)
built = time.perf_counter() - start
start = time.perf_counter()
out.backward(retain_graph=True)  # kept for the recursive strategy below
walked = time.perf_counter() - start
expected = 1.0001 ** 50_000
print(f"100,000-operation chain: forward {built:.2f} s, backward {walked:.2f} s; "
      f"d out / d leaf = {leaf.grad[0]:.6f} (exact: {expected:.6f})")
try:
    recursive_backward(out.grad_fn, np.ones(1))
except RecursionError:
    print(f"The recursive strategy fails on the same chain: RecursionError (Python's limit is {sys.getrecursionlimit()}).")
del leaf, out

# %% [markdown]
# **(c) Memory: the graph keeps the activations.** Between the forward and the backward pass, the
# graph holds every array a rule will need: the inputs of each multiply and matmul, the outputs of
# each `exp`, `tanh`, `relu`. For a network that is every layer's activations, so the memory grows
# with the batch size (and with depth). `tracemalloc` counts the bytes Python and NumPy hold after a
# forward pass with recording on; after `backward(retain_graph=True)` and after a plain `backward()`,
# with the loss still held in both cases (only the release of Section 6 differs); and after a forward
# pass with recording off (`no_grad`).

# %%
def mlp_loss(batch: int, rng) -> Variable:
    x = rng.standard_normal((batch, 64)).astype(np.float32)
    h = x
    for weight in mlp_weights:
        h = (h @ weight).relu()
    return (h ** 2).mean()


rng = np.random.default_rng(0)
mlp_weights = [Variable((rng.standard_normal((64, 64)) / 8).astype(np.float32), requires_grad=True) for _ in range(8)]
def held_megabytes(batch: int, retain_graph: bool) -> tuple[float, float]:
    """MB held after the forward pass, and after backward(retain_graph) with the loss still alive."""
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    loss = mlp_loss(batch, rng)
    forward = tracemalloc.get_traced_memory()[0] - base
    loss.backward(retain_graph=retain_graph)
    backward = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    del loss
    for weight in mlp_weights:
        weight.zero_grad()
    return forward / 1e6, backward / 1e6


def no_grad_megabytes(batch: int) -> float:
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    with no_grad():
        loss = mlp_loss(batch, rng)
    plain = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    return plain / 1e6


print(f"{'batch':>6} {'graph held MB':>14} {'after backward, retained MB':>28} {'after backward, released MB':>28} "
      f"{'no_grad MB':>11} {'one activation MB':>18}")
for batch in [256, 1024, 4096]:
    held, retained = held_megabytes(batch, retain_graph=True)
    _, released = held_megabytes(batch, retain_graph=False)
    print(f"{batch:>6} {held:>14.2f} {retained:>28.2f} {released:>28.2f} {no_grad_megabytes(batch):>11.2f} "
          f"{batch * 64 * 4 / 1e6:>18.2f}")

# %% [markdown]
# **(d) The fixed cost of one operation.** On a one-element array NumPy's arithmetic takes well under
# a microsecond; everything else a recorded operation costs is bookkeeping: creating the result
# Variable, its Tensor, the Node and the rule's closure, and later one step of the backward loop.
# The table splits that cost, and shows what skipping `__init__` in `_make` buys.

# %%
one = np.ones(1, dtype=np.float32)
tracked = Variable(one, requires_grad=True)
constant = Variable(one)
repeats = 2_000


def per_call_us(fn) -> float:
    def calls():
        for _ in range(repeats):
            fn()
    return best_time(calls, repeat=7) / repeats * 1e6


gc.collect()  # start from a clean heap: the previous cells made big graphs


def record_and_backward():
    (tracked * 1.5).backward()


rows = [
    ("NumPy alone: one * 1.5", per_call_us(lambda: one * 1.5)),
    ("Variable(array) through __init__", per_call_us(lambda: Variable(one))),
    ("_make(array, False, None)", per_call_us(lambda: _make(one, False, None))),
    ("constant * 1.5 (nothing recorded)", per_call_us(lambda: constant * 1.5)),
    ("tracked * 1.5 (recorded)", per_call_us(lambda: tracked * 1.5)),
    ("tracked * 1.5, then backward()", per_call_us(record_and_backward)),
]
print(f"{'one operation on a 1-element array':<38} {'microseconds':>12}")
for label, microseconds in rows:
    print(f"{label:<38} {microseconds:>12.2f}")

# %% [markdown]
# What to read in these tables:
#
# - (a) The backward time per operation is flat: linear in the graph size. The recursive strategy's
#   work doubles with every `y = y + y`, which is what made the old lesson hang on graphs that reuse
#   values. (The *forward* time per operation creeps up on big graphs for a Python reason: the cycle
#   garbage collector periodically scans every live container object, and a graph of 64,000
#   operations is a few hundred thousand of them.)
# - (b) Depth is only a matter of time, not of crashing.
# - (c) With recording on, the forward pass keeps about one array of the batch's size per layer: the
#   ReLU output, saved once and shared by ReLU's rule and the next matmul's rule (plus the input `x`
#   and the squared output the loss saved). The matmul's output was used once and freed: no rule
#   needs it, and the graph links Nodes, not Variables (Section 2); linking the Variables would keep
#   it too and double the memory. So the graph's memory grows linearly with the batch, and with depth.
#   Under `no_grad` each array is dropped as soon as the next layer is computed. A plain `backward()`
#   releases the saved arrays while `loss` is still alive: what remains are the weights' `.grad` arrays
#   (8 x 16 KB) and the loss itself. With `retain_graph=True` the activations stay until `loss` is
#   dropped, which is the price of being able to run backward again. This is
#   why evaluation runs under `no_grad`, and why very deep models trade compute for memory by
#   recomputing activations in the backward pass (gradient checkpointing).
# - (d) For small arrays the bookkeeping, not the arithmetic, is the cost: a few microseconds per
#   recorded operation against a fraction of one for NumPy. For a 64 x 128 matrix product the
#   arithmetic dominates and the same few microseconds disappear. This is why deep learning
#   frameworks batch work into large arrays, and why this engine keeps its per-operation path short
#   (`__slots__`, `_make`, no copies, `unbroadcast` only when shapes differ).

# %% [markdown]
# ## 16. Reflection
#
# Answer in a few sentences each; your reasoning is what is graded.

# %% [markdown]
# **Q1.** A 100-layer network is trained with batch size 256 and layer width 1,024 in float32. Using
# table (c), estimate the memory the graph holds between the forward and the backward pass. What
# could you change to halve it, and what does each option cost?

# %% [markdown] nbgrader={"schema_version": 3, "grade": true, "grade_id": "reflect-autograd-memory", "locked": false, "points": 3, "solution": true}
# Each layer keeps about one activation of 256 x 1,024 x 4 bytes = 1 MB (the ReLU output), so
# roughly 100 MB for 100 layers; the weights' own 400 MB and their gradients come on top. Halving
# the batch halves it, at the cost of noisier gradients or more steps (or gradient accumulation over
# two half-batches, which costs time). Float16 or bfloat16 activations halve it at some precision
# risk. Gradient checkpointing keeps only every k-th activation and recomputes the rest during
# backward: about one extra forward pass of compute, for memory that grows like the square root of
# the depth instead of linearly.

# %% [markdown]
# **Q2.** `backward()` adds to `.grad` instead of overwriting it. Give one situation where this is
# exactly what you want, and describe the bug you get in a training loop that forgets `zero_grad()`.

# %% [markdown] nbgrader={"schema_version": 3, "grade": true, "grade_id": "reflect-autograd-accumulation", "locked": false, "points": 3, "solution": true}
# Accumulation is right whenever one parameter receives gradient from several places: a weight
# shared by two layers, or gradient accumulation, where several small batches' `backward()` calls add
# up to the gradient of one large batch that would not fit in memory. Forgetting `zero_grad()` makes
# each step use the sum of all gradients so far: the effective step grows every iteration and
# points partly in stale directions, so training oscillates or diverges instead of converging.

# %% [markdown]
# **Q3.** The old lesson's backward pass made each node call `backward` on its inputs immediately.
# Using table (a), explain why that is exponential on `y = y + y` but correct and linear on a chain,
# and what the topological order changes.

# %% [markdown] nbgrader={"schema_version": 3, "grade": true, "grade_id": "reflect-autograd-order", "locked": false, "points": 3, "solution": true}
# Calling inputs immediately processes a node once per *path* from the output to it. A chain has one
# path to each node, so it is linear (but recursion depth equals the chain length, which crashes past
# about 1,000). In `y = y + y` both edges of every node lead to the same input, so the paths double
# at each level: 2^n visits. The topological order makes each node wait until every consumer has
# added its contribution, then processes it once with the summed gradient: one visit per node and
# one rule call per edge, whatever the number of paths, with no recursion.

# %% [markdown]
# **Q4.** Reverse mode computes the gradient of one output with respect to all inputs in one
# backward pass. When would forward mode (one pass per input, carrying derivatives forward with the
# values) be the better choice?

# %% [markdown] nbgrader={"schema_version": 3, "grade": true, "grade_id": "reflect-autograd-modes", "locked": false, "points": 2, "solution": true}
# When there are few inputs and many outputs: for example the derivative of a whole trajectory or
# image with respect to one or two parameters, or a Jacobian-vector product. Forward mode also needs
# no stored graph, since derivatives travel with the values, so its memory does not grow with the
# length of the computation; reverse mode must keep the activations until the backward pass.

# %% [markdown]
# ## Summary
#
# You built a reverse-mode automatic differentiation engine: `Variable` records each operation as a
# `Node` whose edges hold the local backward rules; `unbroadcast` makes every gradient match its
# input's shape; `topological_order` and `backpropagate` visit each node once, without recursion;
# `gradcheck` verifies any rule against finite differences; and `no_grad` turns recording off. You
# measured that backward time grows linearly with the graph and that the graph's memory is the
# network's activations.
#
# Next, export it with `tito module complete 05_autograd`. The layers, losses and optimizers of the
# following modules compute with these Variables, and `loss.backward()` trains them.
