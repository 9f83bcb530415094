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
# Training moves every weight against the gradient of the loss. This module builds **reverse-mode automatic
# differentiation**, the engine behind PyTorch's `loss.backward()`: while your code computes, each result records the
# operation that made it; one backward sweep over that record applies the chain rule and delivers the gradient of the
# loss with respect to every input, for a small multiple of the forward pass's arithmetic plus a fixed cost per call
# (Section 10), whatever the number of weights. Modules 01 to 04 gave the operations on Tensors; this module gives
# the engine and the operations a linear model needs (`add`, `subtract`, `multiply`, `matmul` and `sum`);
# module 06 writes the rest of the operations on it, and modules 07 to 11 train with both.
#
# **Objectives.** By the end of this module you can:
# - apply the chain rule by hand and check a gradient against finite differences;
# - record operations in a graph and send gradients back through it in reverse topological order, iteratively,
#   visiting each node once, with broadcasting undone;
# - say what the graph keeps, when it is released, and what must not change before backward runs;
# - write the backward rule of an operation and train a model with the engine.
#
# | You write here | It becomes | Used by |
# |---|---|---|
# | this notebook, `autograd.ipynb` | `tinytorch.core.autograd` | operations (06) and every later module |
#
# Requirements that a test checks are in bold or in a docstring; nothing else is graded.

# %%
#| default_exp core.autograd

# %%
#| export
from __future__ import annotations

import contextlib
import weakref
from typing import Callable

import numpy as np

from tinytorch.core.tensor import Tensor, axes_and_keepdims, promote_integers, reduction_axes, single_value

# %% [markdown]
# ## 1. Warm-up: the chain rule by hand
#
# If $L$ depends on $x$ only through $y$, then $\frac{\partial L}{\partial x} = \frac{\partial L}{\partial y}\frac{\partial y}{\partial x}$:
# whoever knows how much $L$ cares about $y$ multiplies by the **local derivative** of the operation that made $y$
# and hands the product to $x$. If $x$ is used several times, the contributions **add up**. `Scalar` below is a
# complete tiny engine except for that sweep: each operation stores its parents with the local derivative towards
# each. You write the sweep.
#
# ```
#  w=-3 ─┐
#        ├─ wx = w*x ─┐
#  x=2 ──┘            ├─ pre = wx + b ── out = tanh(pre)        d out/d w = (1 - out²) · 1 · x
#  b=1 ───────────────┘
# ```

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "autograd-warmup", "locked": false, "solution": true}
import math


class Scalar:
    """A number that remembers its parents, each with the local derivative d self / d parent."""

    def __init__(self, value: float, parents: tuple = ()):
        self.value, self.parents, self.grad = value, parents, 0.0

    def __add__(self, other): return Scalar(self.value + other.value, ((self, 1.0), (other, 1.0)))
    def __mul__(self, other): return Scalar(self.value * other.value, ((self, other.value), (other, self.value)))

    def tanh(self):
        t = math.tanh(self.value)
        return Scalar(t, ((self, 1.0 - t * t),))

def backward_by_hand(output: Scalar, order: list) -> None:
    """Set `s.grad` = d output / d s for every Scalar `s` in `order` (which lists each one after its parents).

    Start from output.grad = 1 and walk `order` backwards, from the output: each Scalar adds its `.grad`
    times the local derivative to the `.grad` of each parent (add: a parent may be used twice).
    """
    ### BEGIN SOLUTION
    output.grad = 1.0
    for node in reversed(order):
        for parent, local in node.parents:
            parent.grad += node.grad * local
    ### END SOLUTION

# %% [markdown]
# ### Test: the warm-up, against finite differences $\frac{f(v + h) - f(v - h)}{2h}$ for a small $h$

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-autograd-warmup", "locked": true, "points": 2, "solution": false}
def test_unit_warmup():
    x, three, two = Scalar(2.0), Scalar(3.0), Scalar(2.0)
    y = x * three
    z = y * two
    backward_by_hand(z, [x, three, y, two, z])
    assert x.grad != 0.0, "x got no gradient: set output.grad = 1, then walk `order` backwards (reversed(order))"
    assert x.grad != 1.0, "d(2 * 3x)/dx came out 1: multiply each gradient by the local derivative"
    assert x.grad == 6.0, f"d(2 * 3x)/dx should be 6, got {x.grad}: each Scalar adds its own .grad times the local " \
                          "derivative to each parent (parent.grad += node.grad * local)"
    x = Scalar(3.0)
    square = x * x
    backward_by_hand(square, [x, square])
    assert x.grad == 6.0, f"d(x*x)/dx at 3 should be 6: x is used twice, add both contributions (+=); got {x.grad}"

    def neuron(w, x, b):  # tanh((w x + b)²), and its order
        order = [w, x, b, w * x]
        for step in (lambda v: v + b, lambda v: v * v, Scalar.tanh):
            order.append(step(order[-1]))
        return order[-1], order

    values, h = [0.7, -1.2, 0.4], 1e-6
    leaves = [Scalar(v) for v in values]
    backward_by_hand(*neuron(*leaves))
    for i, leaf in enumerate(leaves):
        up, down = (neuron(*[Scalar(v + step * (j == i)) for j, v in enumerate(values)])[0].value for step in (h, -h))
        numeric = (up - down) / (2 * h)
        assert abs(leaf.grad - numeric) < 1e-6, f"input {i}: finite differences give {numeric:.6f}, backward_by_hand {leaf.grad:.6f}"

test_unit_warmup()
print("test_unit_warmup: passed")

# %% [markdown]
# That is all of backpropagation; the rest makes it work on arrays, builds `order` automatically, and makes it fast
# and safe. For arrays, with $g = \partial L/\partial y$ of $y$'s shape, each operation's **backward rule** maps $g$ to
# the gradient of each input, of that input's shape: `g * local_derivative` for an elementwise operation.
#
# ## 2. `Variable`: a value that remembers where it came from
#
# A `Variable` holds `data` (a `Tensor`; `v.numpy()` is its array), `requires_grad`, `grad` (after `backward()`, an
# array of `v`'s shape and dtype, else `None`) and `grad_fn`: the `Node` that made it, or `None` for a **leaf** (a
# value you made: a parameter if it requires grad, else a constant). A `Node` records one operation: its `name`, its
# result's shape and dtype, and one **edge** `(source, rule)` per input needing a gradient, leading to the Node that
# made that input, or to the input itself if it is a leaf. The graph is made of Nodes, as in PyTorch, not of
# Variables: it keeps alive only the arrays the rules saved (`a * b` saves `a` and `b`, `a + b` nothing), so an
# intermediate Variable your code drops is freed (Section 10 measures it), and dropping the output frees the graph.
#
# You write `Variable.__init__` and `_graph_edges`:
# - **data**: a `Tensor` is used as it is; a Variable's values are **shared** (a new leaf, as `detach()`); anything
#   else goes through `Tensor(data)` (lists become float32, float64 stays, junk raises `TypeError`); `None` raises
#   `TypeError`. **Only floating-point data may require grad**: integer data with `requires_grad=True` raises
#   `TypeError` naming the dtype (its gradient would be truncated).
# - **`grad_fn=` a Node** (how you add your own operation): the Variable requires grad, the Node learns its shape and
#   dtype, its edges go through `_graph_edges`; anything else raises `TypeError`.
# - **`_graph_edges(edges)`** keeps the edges whose input is a Variable that requires grad, each leading to the
#   input's `grad_fn`, or to the input itself if it is a leaf.
#
# The rest is given: operators call functions you write later (`x * y` calls `multiply(x, y)`); module 06 adds `/`,
# `**`, comparisons, indexing and PyTorch's other methods. A Variable hashes by identity, so the backward pass can key
# a dictionary by it.

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "autograd-variable", "locked": false, "solution": true}
#| export
class Node:
    """One operation: its `name`, its result's `shape` and `dtype`, and `edges` [(source, rule)]: `rule(g)` maps the
    result's gradient to the gradient of the input that `source` (its Node, or a leaf Variable) stands for."""
    __slots__ = ("name", "edges", "shape", "dtype", "retained")

    def __init__(self, name: str, edges: list):
        self.name = name
        self.edges = edges
        self.shape, self.dtype = None, None  # filled in by the Variable this Node makes
        self.retained = None  # a weak reference to that Variable, after its retain_grad()
    inputs = property(lambda self: tuple(source for source, _ in self.edges))
    def __repr__(self) -> str: return f"<{self.name}Backward>"

def _graph_edges(edges) -> list:
    """The `(input, rule)` edges worth recording, each leading to where its input came from.

    With `x` a leaf needing grad and `y = x * 2`: `_graph_edges([(x, r1), (y, r2), (2.0, r3)]) == [(x, r1), (y.grad_fn, r2)]`.
    """
    ### BEGIN SOLUTION
    return [(parent.grad_fn or parent, rule) for parent, rule in edges
            if isinstance(parent, Variable) and parent.requires_grad]
    ### END SOLUTION

class Variable:
    """A Tensor that records the operations applied to it: `x = Variable([3.0], requires_grad=True)`,
    `(x * x).backward()`, then `x.grad` is `array([6.], dtype=float32)`."""
    __slots__ = ("data", "grad", "requires_grad", "grad_fn", "__weakref__")  # small and quick to create
    __array_ufunc__ = None  # NumPy hands `array + variable` to Variable.__radd__ instead of looping over it

    def __init__(self, data, requires_grad: bool = False, grad_fn: Node | None = None):
        """Wrap `data` in a Tensor stored as `self.data`, with no gradient yet (see the requirements above)."""
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
    # --- given: the values ---
    shape = property(lambda self: self.data.data.shape)
    dtype = property(lambda self: self.data.data.dtype)
    size = property(lambda self: self.data.data.size)
    ndim = property(lambda self: self.data.data.ndim)
    is_leaf = property(lambda self: self.grad_fn is None)
    def __len__(self) -> int: return len(self.data.data)
    def numpy(self) -> np.ndarray: return self.data.data
    def item(self) -> float: return self.data.data.item()
    def __array__(self, dtype=None, copy=None) -> np.ndarray: return self.data.data if dtype is None else self.data.data.astype(dtype)
    def __bool__(self) -> bool: return bool(single_value(self.data.data))

    def __repr__(self) -> str:
        body = np.array2string(self.data.data, separator=", ", prefix="Variable(")
        extra = f"grad_fn={self.grad_fn!r}" if self.grad_fn is not None else f"requires_grad={self.requires_grad}"
        return f"Variable({body}, dtype={self.dtype}, {extra})"

    # --- given: gradients (Sections 6 and 7) ---
    def backward(self, gradient=None, retain_graph: bool = False) -> None:
        """Add d(self)/d(leaf) to the `.grad` of every leaf behind this Variable (Section 6)."""
        backpropagate(self, _seed(self, gradient), retain_graph)

    def zero_grad(self) -> None: self.grad = None
    def detach(self) -> Variable: return _make(self.data.data, False, None)  # same values, a constant leaf

    def retain_grad(self) -> None:  # keep this intermediate Variable's gradient in .grad too
        if self.grad_fn is not None:
            self.grad_fn.retained = weakref.ref(self)  # weak: the graph must not keep the Variable alive

    # --- given: operators, each calling a function of a later section (module 06 adds the others) ---
    def __add__(self, other): return add(self, other)
    def __radd__(self, other): return add(other, self)
    def __sub__(self, other): return subtract(self, other)
    def __rsub__(self, other): return subtract(other, self)
    def __mul__(self, other): return multiply(self, other)
    def __rmul__(self, other): return multiply(other, self)
    def __matmul__(self, other): return matmul(self, other)
    def __rmatmul__(self, other): return matmul(other, self)

    # `Variable.sum(x)` works too. PyTorch's `dim=` and `keepdim=` are aliases of `axis=` and `keepdims=`.
    def sum(self, axis=None, keepdims=False, **names): return reduce_sum(self, *_reduction(self, axis, keepdims, names))

def _reduction(x, axis, keepdims, names: dict) -> tuple:  # NumPy's names, or PyTorch's dim=/keepdim= (module 01)
    return axes_and_keepdims(np.ndim(_value(x)), axis, keepdims, **names)

_new = object.__new__

def _wrap(array: np.ndarray) -> Tensor:  # a Tensor around an array we made: no validation needed
    tensor = _new(Tensor)
    tensor.data = array
    return tensor

# %% [markdown]
# ### Test: creating Variables, by hand-made Nodes too

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-autograd-variable", "locked": true, "points": 2, "solution": false}
def raised(kind, action, what: str) -> str:
    """The message of the `kind` error that `action()` must raise (a helper for this lesson's tests)."""
    try:
        action()
    except kind as error:
        return str(error)
    except Exception as error:
        raise AssertionError(f"{what} should raise {kind.__name__}, got {type(error).__name__}: {error}") from None
    raise AssertionError(f"{what} should raise {kind.__name__}")

def test_unit_variable():
    x, t = Variable([2.0, 3.0], requires_grad=True), Tensor([1.0])
    assert isinstance(x.data, Tensor) and x.numpy().tolist() == [2.0, 3.0], f".data should be a Tensor of [2, 3], got {x.data!r}"
    assert x.requires_grad is True and x.grad is None and x.grad_fn is None, \
        f"a new leaf: requires_grad=True, grad=None, grad_fn=None; got {x.requires_grad}, {x.grad}, {x.grad_fn}"
    assert x.dtype == np.float32 and Variable(np.zeros(3)).dtype == np.float64, "lists give float32; float64 stays float64"
    assert Variable([1.0]).requires_grad is False and Variable(t).data is t, \
        "requires_grad defaults to False; a Tensor should be used as it is, not copied"
    assert Variable(x).numpy() is x.numpy() and Variable(x).grad_fn is None, "Variable(variable) should share the values, as a leaf"
    assert Variable(x).requires_grad is False, "Variable(variable) is a new leaf, as detach(): it requires grad only if " \
                                               "asked (requires_grad=True), whatever the source's requires_grad"
    for bad in ["abc", None, [[1, 2], [3]]]:
        raised(TypeError, lambda: Variable(bad), f"Variable({bad!r})")
    message = raised(TypeError, lambda: Variable(np.arange(3), requires_grad=True), "integer data with requires_grad=True")
    assert "int64" in message, f"the error should name the dtype: {message}"
    raised(TypeError, lambda: Variable(np.array([True, False]), requires_grad=True), "bool data with requires_grad=True")
    for floats in (np.zeros(2), np.zeros(2, np.float16)):
        try:
            Variable(floats, requires_grad=True)
        except TypeError as error:
            raise AssertionError(f"{floats.dtype} data may require grad (every floating-point dtype may), got TypeError: "
                                 f"{error}") from None
    y = Variable(x.numpy() * 2, grad_fn=Node("Double", [(x, lambda g: 2 * g)]))
    assert y.requires_grad, "the grad_fn= branch: a Variable made by a Node requires grad"
    assert y.grad_fn.shape == (2,) and y.grad_fn.dtype == np.float32, "the grad_fn= branch: the Node learns its shape and dtype"
    try:
        z = Variable(y.numpy() + x.numpy(), grad_fn=Node("Sum4", [(y, None), (x, None), (2.0, None), (Variable([1.0, 1.0]), None)]))
    except AttributeError as error:
        raise AssertionError(f"_graph_edges on an edge from the number 2.0 raised AttributeError ({error}): an input may be a "
                             "number or an array; keep only those that are Variables (isinstance) and require grad") from None
    sources = [source for source, _ in z.grad_fn.edges]
    assert sources == [y.grad_fn, x], \
        f"the grad_fn= branch goes through _graph_edges: edges to y's Node and to the leaf x, none for constants; got {sources}"
    raised(TypeError, lambda: Variable([1.0], grad_fn="Add"), "a grad_fn that is not a Node")

test_unit_variable()
print("test_unit_variable: passed")

# %% [markdown]
# ## 3. Recording an operation
#
# Every operation computes its value with NumPy and, if an input needs a gradient, attaches a `Node` with one edge
# per such input. Given helpers: `_value(x)` is the array behind an operand (a Python number stays a number, so
# `float32_array * 2.0` stays float32; integer constants become float32, as in PyTorch); `_operands(a, b)` does both
# and applies module 01's `promote_integers` for integer Variables; `_make(value, requires_grad, grad_fn)` builds the
# result. The two are given in their plainest form below; every operation calls both, and Section 10 measures what
# that costs and gives the engine faster versions.
#
# You write `record(value, name, *edges)`, the one way every operation of the course records itself (module 06's, and
# the convolutions, attention and fused kernels of later modules): **while recording is on (`_GRAD_ENABLED`, switched
# off by `no_grad` in Section 7) and `_graph_edges` keeps an edge, the result gets a `Node(name, kept)` and requires
# grad; otherwise it is a constant** (`requires_grad` False, `grad_fn` None), **or a plain `Tensor` when no input is a
# Variable**, so that a function written for Variables works on Tensors too. Then the first rules: $z = a + b$ sends $g$ to both;
# $z = a - b$ sends $-g$ to $b$; $z = ab$ sends $g b$ to $a$ and $g a$ to $b$. **Node names are `Add`, `Sub`, `Mul`**
# (module 06's `draw_graph` shows them). A rule returns the gradient for the *result's* shape (the engine sums
# broadcast axes away, Section 4), and **never changes `g` in place**: one array may be handed to several inputs.

# %%
# Given: the plainest form of two helpers every operation calls (Section 10 gives the engine faster ones).
def _operands(a, b, division: bool = False) -> tuple:
    """The numbers behind two operands, with PyTorch's promotion if either is an integer Variable."""
    av, bv = _value(a), _value(b)
    if any(isinstance(x, Variable) and x.dtype.kind != "f" for x in (a, b)):
        return promote_integers(av, bv, division)
    return av, bv

def _make(value, requires_grad: bool, grad_fn: Node | None) -> Variable:
    """A Variable around a value an operation just computed."""
    result = Variable(value)
    result.requires_grad, result.grad_fn = requires_grad, grad_fn
    if grad_fn is not None:
        grad_fn.shape, grad_fn.dtype = result.shape, result.dtype
    return result

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "autograd-record-operations", "locked": false, "solution": true}
#| export
_GRAD_ENABLED = True  # switched off inside `no_grad()`

def _value(x):
    """The numbers behind an operand: an array for a Variable, Tensor or list; a Python number unchanged."""
    kind = type(x)
    if kind is float or kind is int:  # first: the common constant of `x * 2.0`
        return x
    if isinstance(x, Variable):
        return x.data.data
    if kind is np.ndarray and x.dtype.kind == "f":
        return x  # the common constant (a batch of data): nothing to check or convert
    if isinstance(x, np.generic) and x.dtype.kind in "iuf":
        return x.item()  # a NumPy scalar acts as a plain number: it must not turn float32 into float64
    if x is None:
        raise TypeError("expected a Variable, Tensor, array or number, got None")
    array = x.data if isinstance(x, Tensor) else Tensor(x).data
    return array.astype(np.float32) if array.dtype.kind in "iu" else array

def record(value, name: str, *edges):
    """The result of operation `name`, with `edges` its (input, rule) pairs: a Variable whose Node keeps the edges
    that lead to an input needing grad, while recording is on; else a constant Variable; a Tensor if no input is a
    Variable. Every operation of the course, in this module and later ones, ends here."""
    ### BEGIN SOLUTION
    if _GRAD_ENABLED:
        kept = _graph_edges(edges)
        if kept:
            return _make(value, True, Node(name, kept))
    for source, _ in edges:
        if isinstance(source, Variable):
            return _make(value, False, None)
    return Tensor(value)
    ### END SOLUTION

def _same(g):  # the rule of an input that receives the gradient unchanged (shared: no closure to create)
    return g

def add(a, b) -> Variable:
    """a + b with broadcasting; both inputs receive the output's gradient unchanged."""
    av, bv = _operands(a, b)
    ### BEGIN SOLUTION
    return record(av + bv, "Add", (a, _same), (b, _same))
    ### END SOLUTION

def subtract(a, b) -> Variable:
    """a - b; a receives g, b receives -g."""
    av, bv = _operands(a, b)
    ### BEGIN SOLUTION
    return record(av - bv, "Sub", (a, _same), (b, np.negative))
    ### END SOLUTION

def multiply(a, b) -> Variable:
    """a * b; a receives g * b, b receives g * a."""
    av, bv = _operands(a, b)
    ### BEGIN SOLUTION
    return record(av * bv, "Mul", (a, lambda g: g * bv), (b, lambda g: g * av))
    ### END SOLUTION

# %% [markdown]
# ### Test: recording add, subtract and multiply (no backward pass yet: it calls each rule with $g = 1$)

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "autograd-run-rule", "locked": true, "solution": false}
def run_rule(rule, g: np.ndarray) -> tuple:
    """`rule(g)`, and `g` as it is afterwards: for the test below (given). Run here, beside your code: graded, the
    tests run outside your process and an array they pass reaches your code as a copy, so only here would a change
    made to `g` in place show."""
    result = rule(g)
    return result, g.copy()

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-autograd-record-operations", "locked": true, "points": 3, "solution": false}
def test_unit_record_operations():
    global _GRAD_ENABLED
    x, y = Variable([2.0], requires_grad=True), Variable([3.0], requires_grad=True)
    for name, z, value, local, node_name in [("x + y", add(x, y), 5.0, (1.0, 1.0), "Add"),
                                             ("x - y", subtract(x, y), -1.0, (1.0, -1.0), "Sub"),
                                             ("x * y", multiply(x, y), 6.0, (3.0, 2.0), "Mul")]:
        assert isinstance(z, Variable) and z.numpy().tolist() == [value], f"{name}: expected a Variable [{value}], got {z!r}"
        assert z.requires_grad and isinstance(z.grad_fn, Node), f"{name} of inputs needing grad should record a Node"
        assert z.grad_fn.name == node_name, f"{name}: the Node should be named {node_name!r}, got {z.grad_fn.name!r}"
        assert [parent for parent, _ in z.grad_fn.edges] == [x, y], f"{name}: the edges should lead to x and y"
        for input_name, (_, rule), expected in zip("xy", z.grad_fn.edges, local):
            result, g = run_rule(rule, np.ones(1, np.float32))
            assert isinstance(result, np.ndarray), f"{name}: the rule of input {input_name} should return a NumPy array, got " \
                f"{type(result).__name__}: compute it from the values (av, bv), not from the Variables a and b"
            got = float(result[0])
            assert got == expected, f"{name}: with g = 1 the rule of input {input_name} should give {expected}, got {got}"
            assert g.tolist() == [1.0], f"{name}: the rule of input {input_name} changed g in place (to {g.tolist()}): " \
                                        "return a new array (g * b, not g *= b or out=g); one g goes to several inputs"
    z = multiply(x, 2.0)
    assert [parent for parent, _ in z.grad_fn.edges] == [x], "a constant operand must get no edge"
    assert z.grad_fn.shape == (1,) and z.grad_fn.dtype == np.float32, "a Node should know its result's shape and dtype"
    assert [parent for parent, _ in add(z, y).grad_fn.edges] == [z.grad_fn, y], "an edge leads to the Node of a non-leaf"
    constant = multiply(Variable([1.0]), Variable([2.0]))
    assert not constant.requires_grad and constant.grad_fn is None, "constants in, constant out: no Node"
    _GRAD_ENABLED = False
    try:
        off, off_first_number = add(x, y), add(2.0, x)
    finally:
        _GRAD_ENABLED = True
    assert not off.requires_grad and off.grad_fn is None, "with _GRAD_ENABLED False the result must be a constant"
    for name, result in [("2.0 + x under no_grad", off_first_number), ("2.0 + x with x a constant", add(2.0, Variable([1.0])))]:
        assert type(result) is Variable and not result.requires_grad, f"{name}: expected a constant Variable, got " \
            f"{result!r}: a Variable among the inputs makes a Variable; look at any input, not only the first"
    assert (x * 2.0).dtype == np.float32 and (x * np.array([2])).dtype == np.float32, "float32 times a number stays float32"
    assert (2.0 - x).numpy().tolist() == [0.0] and isinstance(Tensor([1.0]) + x, Variable), "2.0 - x, Tensor + x: Variables"
    plain = add(Tensor([1.0]), 2.0)
    assert type(plain) is Tensor and plain.numpy().tolist() == [3.0], f"no Variable in, a Tensor out: got {plain!r}"

test_unit_record_operations()
print("test_unit_record_operations: passed")

# %% [markdown]
# ## 4. Broadcasting, and undoing it
#
# NumPy stretches operands: a bias `(3,)` added to a batch `(4, 3)` is used by every row. The rule of `add` hands the
# bias the result's gradient, of shape `(4, 3)`, and a gradient step on the bias then fails:

# %%
batch = Variable(np.ones((4, 3), np.float32), requires_grad=True)
bias = Variable(np.zeros(3, np.float32), requires_grad=True)
bias_rule = next(rule for source, rule in (batch + bias).grad_fn.edges if source is bias)
raw_gradient = bias_rule(np.ones((4, 3), np.float32))
try:
    bias.numpy()[...] -= 0.1 * raw_gradient  # what an optimizer step does
except ValueError as error:
    print(f"bias {bias.shape}, its raw gradient {raw_gradient.shape}: {error}")

# %% [markdown]
# Each bias entry was used 4 times, so its gradient is the **sum** of the 4 row gradients. Broadcasting pads missing
# leading axes and repeats size-1 axes; `unbroadcast` undoes both by summing:
#
# ```
# operand shape       (3,)          (1, 3)         (4, 1)
# padded to           (1, 3)        (1, 3)         (4, 1)      1. missing leading axes are added
# stretched to        (4, 3)        (4, 3)         (4, 3)      2. size-1 axes are repeated
# gradient (4, 3) ->  sum axis 0    sum axis 0,    sum axis 1,
#                     -> (3,)       keep: (1, 3)   keep: (4, 1)
# ```
#
# The engine applies it whenever a rule's result does not have its input's shape, so every operation that broadcasts
# is right with no special case (tinygrad's insight: a broadcast is an expand, whose backward is a sum). **It keeps the
# dtype.**

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "autograd-unbroadcast", "locked": false, "solution": true}
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

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-autograd-unbroadcast", "locked": true, "points": 2, "solution": false}
def test_unit_unbroadcast():
    grad = np.arange(12, dtype=np.float32).reshape(3, 4)
    for shape, expected in [((4,), grad.sum(axis=0)), ((1, 4), grad.sum(axis=0, keepdims=True)), ((3, 4), grad),
                            ((3, 1), grad.sum(axis=1, keepdims=True)), ((), grad.sum()), ((1, 1), grad.sum().reshape(1, 1))]:
        try:
            got = unbroadcast(grad, shape)
        except ValueError as error:
            raise AssertionError(f"unbroadcast (3, 4) -> {shape} raised {error}: sum over the added leading axes "
                                 "and over the axes where the shape has size 1") from None
        assert got.shape == shape, f"unbroadcast to {shape}: expected shape {shape}, got {got.shape}"
        assert np.allclose(got, expected), f"unbroadcast to {shape}: expected {expected.tolist()}, got {got.tolist()} " \
                                           "(sum over the leading axes and over the axes of size 1)"
        assert got.dtype == np.float32, f"unbroadcast must keep float32, got {got.dtype}"
    try:
        deep = unbroadcast(np.ones((2, 3, 4)), (3, 1))
    except ValueError as error:
        raise AssertionError(f"unbroadcast (2, 3, 4) -> (3, 1) raised {error}: after the added leading axes, the size-1 "
                             "axis of shape (3, 1) is axis 1 + 1 of the gradient (added + axis)") from None
    assert deep.shape == (3, 1) and np.all(deep == 8), f"(2,3,4) -> (3,1) should be all 8, got {deep.tolist()}"

test_unit_unbroadcast()
print("test_unit_unbroadcast: passed")

# %% [markdown]
# ## 5. Topological order, without recursion
#
# The warm-up was handed `order`; now we compute it. A node may pass its gradient on only once every node that used
# it has contributed. Listing the nodes (Nodes, and the leaf Variables edges lead to) so that **each comes after
# everything its edges lead to**, then walking the list backwards, guarantees this. Depth-first search builds such a
# list: finish a node's inputs, then append the node. Requirements:
# - **Each node is expanded once: remember visited nodes in a set.** Otherwise a node reachable along $k$ paths is
#   expanded $k$ times, and `y = y + y` forty times has $2^{40}$ paths. A *list* of visited nodes is quadratic.
# - **No recursion**: Python stops at about 1,000 nested calls, and 3,000 operations must work. Keep a stack of
#   `(node, inputs_done)` pairs: pop a node the first time, push it back marked done, then push its unvisited inputs;
#   a node popped marked done has all its inputs appended, so append it.
# - **The walk starts from `root.grad_fn`** (or the root itself if it is a leaf) and follows only edges, so constants
#   stay out. The test counts your function's work and stops it, with a message, at ten steps per node.

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "autograd-topological-order", "locked": false, "solution": true}
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

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-autograd-topological-order", "locked": true, "points": 3, "solution": false}
def test_unit_topological_order():
    x, y = Variable([3.0], requires_grad=True), Variable([2.0], requires_grad=True)
    a, b = x + y, x - y
    f = a * b
    order = topological_order(f)
    assert len(order) == 5 and set(order) == {x, y, a.grad_fn, b.grad_fn, f.grad_fn}, \
        f"expected x, y and the Nodes of a, b, f once each (start from root.grad_fn), got {order}"
    position = {node: i for i, node in enumerate(order)}
    for node in order:
        for source in (node.inputs if isinstance(node, Node) else ()):
            assert position[source] < position[node], f"{source} must come before {node}, which uses it (append after the inputs)"
    assert order[-1] is f.grad_fn and topological_order(x) == [x], "the root's Node comes last; a leaf's graph is itself"
    doubled = x * 2.0
    shortcut = doubled + x  # x is an input of the root and, deeper, of `doubled`
    order = topological_order(shortcut)
    assert len(order) == len(set(order)), f"x * 2 + x: expected each node listed once, got {order}: x is pushed twice " \
                                          "(by the root and by x * 2); a node popped again once visited is skipped"
    assert order == [x, doubled.grad_fn, shortcut.grad_fn], \
        f"x * 2 + x: x must come before the Node of x * 2, which uses it, got {order}: a node is marked visited " \
        "when it is popped and expanded, not when it is pushed (x was pushed by the root, then skipped by x * 2)"
    assert len(topological_order(x * 2.0)) == 2, "a constant operand is not part of the order"
    steps = {"edges": 0, "compares": 0, "budget": 10 ** 9, "nodes": 0}  # no budget while the graphs are built

    def count(kind: str, advice: str) -> None:
        steps[kind] += 1
        assert steps[kind] <= steps["budget"], f"step budget exceeded: more than {steps['budget']:,} {advice} on a " \
                                               f"graph of {steps['nodes']:,} nodes"

    class CountedNode(Node):  # a Node that counts reads of its edges and == comparisons (`in` on a list)
        __slots__ = ()
        __hash__ = Node.__hash__
        edges = property(lambda self: count("edges", "reads of Node edges: remember visited nodes in a set and "
                                            "expand each node once") or Node.edges.__get__(self), Node.edges.__set__)

        def __eq__(self, other):
            count("compares", "node comparisons: `node in visited` on a list is quadratic; keep visited nodes in a set")
            return self is other

    def counted_graph(n: int, doubling: bool) -> Variable:
        v = Variable([1.0], requires_grad=True)
        for _ in range(n):
            v = Variable(v.numpy(), grad_fn=CountedNode("Step", [(v, _same)] * (2 if doubling else 1)))
        return v

    deep = x
    for _ in range(3000):  # deeper than Python's recursion limit (1,000)
        deep = deep * 1.0
    for name, root, nodes in [("y = y + y forty times (2**40 paths)", counted_graph(40, True), 41),
                              ("a chain of 1,000 nodes", counted_graph(1000, False), 1001),
                              ("a chain of 3,000 operations", deep, 3001)]:
        steps.update(edges=0, compares=0, budget=10 * nodes, nodes=nodes)
        try:
            got = len(topological_order(root))
        except RecursionError:
            raise AssertionError(f"RecursionError on {name}: use an explicit stack, not recursion") from None
        assert got == nodes, f"{name}: expected {nodes} entries, each node listed once, got {got}"

test_unit_topological_order()
print("test_unit_topological_order: passed")

# %% [markdown]
# **Why iterative, and why once per node.** The recursive version is four lines and correct, and fails exactly where
# real graphs live (a recurrent network over 1,000 time steps); a traversal without a visited set expands a node once
# per path, and the paths double with every `y = y + y`:

# %%
def recursive_order(node, order: list, visited: set) -> list:
    if node not in visited:
        visited.add(node)
        for source in (node.inputs if isinstance(node, Node) else ()):
            recursive_order(source, order, visited)
        order.append(node)
    return order

def paths_to_leaves(node) -> int:  # the expansions of a traversal without a visited set: one per path
    return 1 if not isinstance(node, Node) else 1 + sum(paths_to_leaves(source) for source in node.inputs)

chain_of_5000 = Variable([1.0], requires_grad=True)
for _ in range(5000):
    chain_of_5000 = chain_of_5000 * 1.0
try:
    recursive_order(chain_of_5000.grad_fn, [], set())
except RecursionError as error:
    print(f"recursive order on 5,000 operations: RecursionError ({error}); iterative: {len(topological_order(chain_of_5000)):,} nodes")
doubled = Variable([1.0], requires_grad=True)
for n in range(1, 17):
    doubled = doubled + doubled
    if n % 5 == 0:
        print(f"y = y + y {n:>2} times: {len(topological_order(doubled)):>3} nodes, {paths_to_leaves(doubled.grad_fn):>9,} expansions without a visited set")

# %% [markdown]
# ## 6. The backward pass
#
# Keep a dictionary `pending` from node to the gradient that has reached it so far, starting with `{order[-1]: seed}`.
# Then for each node in **reverse** topological order:
# 1. take its gradient out of `pending`: it is complete now. **A node with no gradient when it is reached raises
#    `RuntimeError` saying the order must be walked in reverse** (it means it was not);
# 2. a leaf Variable: `_accumulate` the gradient into its `.grad`, go on;
# 3. a `Node`: **if its Variable called `retain_grad()` (and still exists: `node.retained()` is not None), accumulate
#    into that Variable's `.grad` too** (with `_accumulate`, as a leaf: it adds up across backward calls). Then for each edge `(source, rule)`: `rule(gradient)`, **`unbroadcast` it if
#    its shape differs from the source's, cast it to the source's dtype if that differs** (a Node knows its result's
#    shape and dtype), and **add** it to `pending[source]`, never in place (the array may be the caller's seed).
#
# Also: **`.grad` accumulates across calls** (`loss1.backward(); loss2.backward()` leaves the sum; training loops
# call `zero_grad()`). **`_accumulate` stores a fresh array of the leaf's dtype**: `_same` hands one array to several
# inputs and optimizers change `.grad` in place, so two leaves must never share one. **Release the graph**: after a
# Node has passed its gradient on, unless `retain_graph=True`, set `node.edges = _RELEASED`, freeing what its rules
# saved; **meeting a released Node raises `_released_error(node)`**, a `RuntimeError` telling you to pass
# `retain_graph=True`, as in PyTorch. The given `_seed` builds the starting gradient: ones for a single-element
# output; any other output needs `backward(gradient)` of its shape.

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "autograd-backpropagate", "locked": false, "solution": true}
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
    ### BEGIN SOLUTION
    grad = np.array(grad, dtype=variable.data.data.dtype)  # a copy: `grad` may be shared with other inputs
    variable.grad = grad if variable.grad is None else variable.grad + grad
    ### END SOLUTION

def backpropagate(root: Variable, seed: np.ndarray, retain_graph: bool = False) -> None:
    """Send `seed` (the gradient of the final result with respect to `root`) back through root's graph."""
    ### BEGIN SOLUTION
    order = topological_order(root)
    pending = {order[-1]: seed}
    for node in reversed(order):
        try:
            grad = pending.pop(node)  # complete: every node that used `node` came earlier in this loop
        except KeyError:
            raise RuntimeError(f"backward reached {node!r} before any gradient: walk the topological order in reverse") from None
        if isinstance(node, Variable):  # a leaf (a Variable, or a subclass such as a Parameter)
            _accumulate(node, grad)
            continue
        if node.edges is _RELEASED:
            raise _released_error(node)
        if node.retained is not None and node.retained() is not None:
            _accumulate(node.retained(), grad)
        for source, rule in node.edges:
            source_grad = grad if rule is _same else rule(grad)  # _same(grad) is grad: a call saved per Add edge
            if source_grad.shape != source.shape:
                source_grad = unbroadcast(source_grad, source.shape)
            if source_grad.dtype is not source.dtype:  # NumPy's dtypes are shared objects: `is` is the cheap test
                source_grad = source_grad.astype(source.dtype, copy=False)
            previous = pending.get(source)
            pending[source] = source_grad if previous is None else previous + source_grad
        if not retain_graph:
            # Its rules' saved arrays are freed now, mid-walk: the gradients still to come reuse their memory
            # (a GPT training step 7% faster than freeing them all at the end, benchmarks/acceleration.md).
            node.edges = _RELEASED
    ### END SOLUTION

# %% [markdown]
# ### Test: the backward pass

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-autograd-backpropagate", "locked": true, "points": 4, "solution": false}
def test_unit_backpropagate():
    global topological_order

    class UnhashableRoot(Variable):  # cannot key a dictionary: `pending` must be keyed by the root's Node
        __slots__ = ()
        __hash__ = None

    calls, leaf = [], Variable([2.0], requires_grad=True)
    root = UnhashableRoot(leaf.numpy() * 3, grad_fn=Node("Triple", [(leaf, lambda g: calls.append(g) or g * 3)]))
    try:
        root.backward()
    except TypeError as error:
        if "unhashable" not in str(error):
            raise
        raise AssertionError("backward of 3x keyed `pending` by the root Variable: the walk meets Nodes and leaves, "
                             "never the root Variable; start with {order[-1]: seed}, keyed by the root's Node") from None
    except (RuntimeError, KeyError) as error:
        if root.grad_fn.edges is _RELEASED and not calls:  # the walk started right, then the edges were gone
            raise AssertionError(f"backward of 3x stopped ({type(error).__name__}) at a node with no gradient, though the "
                                 "walk did start at the root's Node, in reverse: that Node's edges were released before its "
                                 "gradient went along them; release (node.edges = _RELEASED) after the loop over node.edges") from None
        if isinstance(error, KeyError):
            raise AssertionError(f"KeyError {error}: a node was reached before its gradient; walk reversed(order)") from None
        raise
    assert leaf.grad is not None and leaf.grad.tolist() == [3.0], f"backward of 3x: expected x.grad [3.], got {leaf.grad}"
    x, y = Variable([3.0], requires_grad=True), Variable([2.0], requires_grad=True)
    try:
        ((x + y) * (x - y)).backward()
    except KeyError as error:
        raise AssertionError(f"KeyError {error}: a node was reached before its gradient; walk reversed(order)") from None
    assert x.grad.tolist() == [6.0] and y.grad.tolist() == [-4.0], \
        f"(x+y)(x-y) at 3, 2: expected [6.], [-4.] (x and y are used twice: add the contributions), got {x.grad}, {y.grad}"
    (x * 2.0).backward()
    assert x.grad.tolist() == [8.0], f".grad accumulates across backward calls: expected [8.] after x*2, got {x.grad}"
    seed = np.ones((4, 3), np.float32)
    batch, bias_row, bias = (Variable(np.full(shape, value, np.float32), requires_grad=True)
                             for shape, value in [((4, 3), 1.0), ((1, 3), 0.0), (3, 0.0)])
    ((batch + bias_row) + (batch + bias)).backward(seed)
    assert bias_row.grad.shape == (1, 3) and bias.grad.shape == (3,), \
        f"bias gradients must keep the bias's shape (unbroadcast): got {bias_row.grad.shape}, {bias.grad.shape}"
    assert np.all(bias.grad == 4.0) and np.all(bias_row.grad == 4.0) and np.all(seed == 1.0), \
        f"each bias entry is used by 4 rows: expected 4, got {bias_row.grad.tolist()} and {bias.grad.tolist()}; add " \
        "into pending with +, never in place: one array (here the caller's seed) may be pending at several nodes"
    p, q = Variable([1.0, 2.0], requires_grad=True), Variable([3.0, 4.0], requires_grad=True)
    (p + q).backward(np.ones(2))
    assert not np.shares_memory(p.grad, q.grad), "p + q: the two leaves share one .grad array (_accumulate must store a copy)"
    seen, g32 = [], Variable(np.ones(2, dtype=np.float32), requires_grad=True)
    spy = Variable(g32.numpy() * 2, grad_fn=Node("Spy", [(g32, lambda g: seen.append(g.dtype) or g * 2)]))
    (spy * np.full(2, 3.0)).backward(np.ones(2))  # a float64 constant makes the product float64
    assert seen == [np.float32], f"a gradient reaching a float32 Node must be cast to float32 (the input's dtype), got {seen}"
    assert g32.grad.dtype == np.float32, f"a float32 leaf must get a float32 gradient, got {g32.grad.dtype}"
    h = x * 2.0
    h.retain_grad()
    (h * h).backward()
    assert h.grad is not None and h.grad.tolist() == [12.0], f"retain_grad(): h = 6 should get d(h*h)/dh = [12.], got {h.grad}"
    twice = x * 2.0
    twice.retain_grad()
    square_twice = twice * twice
    square_twice.backward(retain_graph=True)
    square_twice.backward()
    assert twice.grad.tolist() == [24.0], f"retain_grad(): a retained .grad accumulates across backward calls as a " \
                                          f"leaf's does (_accumulate): expected 12 + 12 = [24.] after two, got {twice.grad}"
    kept = Variable([2.0], requires_grad=True)
    square = kept * kept
    square.backward(retain_graph=True)
    square.backward()
    assert kept.grad.tolist() == [8.0], f"with retain_graph=True a second backward adds again: expected [8.], got {kept.grad}"
    assert square.grad_fn.edges is _RELEASED, "after a backward without retain_graph the Node's edges should be _RELEASED"
    solo = Variable([5.0], requires_grad=True)
    try:
        solo.backward()
    except RuntimeError as error:
        raise AssertionError(f"a leaf's backward() on itself raised RuntimeError ({error}): its order is [leaf], so start "
                             "with pending = {order[-1]: seed}, not {root.grad_fn: seed} (None for a leaf)") from None
    assert solo.grad is not None and solo.grad.tolist() == [1.0], f"a leaf's backward() on itself: expected .grad [1.], got {solo.grad}"
    message = raised(RuntimeError, square.backward, "a second backward through a released graph")
    assert "retain_graph=True" in message, f"the RuntimeError should say to pass retain_graph=True, got: {message}"
    forwards = topological_order
    topological_order = lambda root: list(reversed(forwards(root)))  # noqa: E731 (a wrong order, on purpose)
    try:
        message = raised(RuntimeError, (kept * kept).backward, "backward walking the order forwards")
    finally:
        topological_order = forwards
    assert "reverse" in message, f"backward walking the order forwards: the RuntimeError should say 'reverse', got: {message}"
    message = raised(RuntimeError, (batch * 2.0).backward, "backward() on a (4, 3) output without a gradient")
    assert "(4, 3)" in message, f"the error should name the output's shape, got: {message}"

test_unit_backpropagate()
print("test_unit_backpropagate: passed")

# %% [markdown]
# ### What must not change between forward and backward
#
# A rule saves **references** to the arrays it needs, not copies (copies would double the graph's memory). So editing
# a saved array in place after the forward pass silently changes the gradient:

# %%
x = Variable([1.0, 2.0, 3.0], requires_grad=True)
y = x * x
x.numpy()[0] = 999.0  # an in-place edit between forward and backward
y.backward(np.ones(3))
print(f"x.grad = {x.grad} (the forward pass saw x = [1, 2, 3]: d(x²)/dx was [2, 4, 6])")

# %% [markdown]
# The rule this engine follows, and asks of you: **between a forward pass and its backward, no array the graph may
# have saved is modified in place.** Operations never modify their inputs, rules never modify `g`; only code writing
# into `.numpy()` can break it. So an optimizer updates parameters in place only *after* `backward()`, and the next
# forward pass builds a new graph. PyTorch checks this with a version counter per tensor; this engine does not, to
# keep each operation cheap.
#
# ## 7. Turning recording off: `no_grad`
#
# Evaluation must not be differentiated: recording would waste time and keep saved arrays alive. **Inside
# `with no_grad():` (or a function decorated with `@no_grad()` or `@no_grad`) results are constants; on exit the
# previous state comes back, even when an exception escapes, so blocks nest.** `x.detach()` is the same values as a
# new constant leaf; `x.zero_grad()` sets `.grad` to `None` (PyTorch's `set_to_none`).

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "autograd-no-grad", "locked": false, "solution": true}
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

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-autograd-no-grad", "locked": true, "points": 2, "solution": false}
def test_unit_no_grad():
    w = Variable([2.0], requires_grad=True)
    with no_grad():
        assert not is_grad_enabled(), "inside no_grad recording should be off"
        y = w * 3.0
        with no_grad():
            pass
        assert not is_grad_enabled(), "a nested no_grad must not turn recording back on when it ends (restore the previous state)"
    assert is_grad_enabled() and not y.requires_grad and y.grad_fn is None, f"no_grad results are constants, got {y!r}"
    for decorated in (no_grad()(lambda v: v * 2.0), no_grad(lambda v: v * 2.0)):
        assert not decorated(w).requires_grad, "functions decorated with @no_grad() and @no_grad record nothing"
    raised(KeyError, no_grad()(lambda: {}["boom"]), "a lookup of a missing key")
    global _GRAD_ENABLED
    reused = no_grad()  # one instance entered twice, as a recursive function decorated with @no_grad is
    try:
        with reused:
            with reused:
                pass
        assert is_grad_enabled(), "a no_grad re-entered (one instance nested, as in a recursive @no_grad function) must " \
                                  "restore the state of each entry on exit: keep the previous states on a stack (self._previous)"
    finally:
        _GRAD_ENABLED = True
    assert is_grad_enabled(), "recording must be restored even when an exception leaves the block"
    d = (w * 3.0).detach()
    (w * d).backward()
    assert not d.requires_grad and w.grad.tolist() == [6.0], f"a detached value is a constant factor: expected [6.], got {w.grad}"
    w.zero_grad()
    assert w.grad is None, "zero_grad should set .grad to None"

test_unit_no_grad()
print("test_unit_no_grad: passed")

# %% [markdown]
# ## 8. Matrix products and sums
#
# A linear layer computes `x @ W + b` and a loss ends in a sum: two more rules, and the engine trains a model.
#
# **The matrix product** $Z = AB$: entry $A_{it}$ meets $B_{tj}$ in every $Z_{ij}$, so
# $\partial L/\partial A_{it} = \sum_j G_{ij} B_{tj} = (G B^\top)_{it}$, and likewise $\partial L/\partial B = A^\top G$;
# the shapes remember it, `(m, n) @ (n, k)` is the only way to get `(m, k)`. **Stacks of matrices** broadcast their
# batch axes, so transpose with `swapaxes(-1, -2)` (the engine sums broadcast batch axes away). **A 1-D operand** is
# a row on the left and a column on the right, and NumPy drops that axis from the result: the rule puts it back,
# multiplies, and removes it. **A shape mismatch raises `ValueError` naming both shapes.**

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "autograd-matmul", "locked": false, "solution": true}
#| export
def matmul(a, b) -> Variable:
    """a @ b (matrices, stacks of matrices, or vectors); a receives g @ b.T, b receives a.T @ g."""
    av, bv = np.asarray(_value(a)), np.asarray(_value(b))
    try:
        out = av @ bv
    except ValueError:
        raise ValueError(f"matmul shape mismatch: {av.shape} @ {bv.shape}") from None
    ### BEGIN SOLUTION
    if av.ndim >= 2 and bv.ndim >= 2:
        return record(out, "MatMul", (a, lambda g: g @ bv.swapaxes(-1, -2)), (b, lambda g: av.swapaxes(-1, -2) @ g))
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

    return record(out, "MatMul", (a, grad_a), (b, grad_b))
    ### END SOLUTION

# %% [markdown]
# ### Test: matmul

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-autograd-matmul", "locked": true, "points": 2, "solution": false}
def linear_gradient(fn, shape: tuple, seed: np.ndarray) -> np.ndarray:
    """d sum(seed * fn(x)) / dx for `fn` linear in x (a helper for these tests): exactly fn's response to each unit array."""
    units = np.eye(math.prod(shape)).reshape(-1, *shape)
    return np.array([np.sum(seed * fn(unit)) for unit in units]).reshape(shape)

def test_unit_matmul():
    A, B = Variable([[1.0, 2.0]], requires_grad=True), Variable([[3.0], [4.0]], requires_grad=True)
    try:
        (A @ B).backward()
    except ValueError as error:
        raise AssertionError(f"[[1, 2]] @ [[3], [4]]: backward raised {error}; a receives G @ B.T, b receives A.T @ G") from None
    assert A.grad.tolist() == [[3.0, 4.0]] and B.grad.tolist() == [[1.0], [2.0]], \
        f"[[1, 2]] @ [[3], [4]]: expected A.grad [[3, 4]] (G @ B.T), B.grad [[1], [2]] (A.T @ G); got {A.grad.tolist()}, {B.grad.tolist()}"
    rng = np.random.default_rng(3)
    for p, q in [((2, 3), (3, 4)), ((3,), (3, 2)), ((2, 3), (3,)), ((3,), (3,)), ((2, 2, 3), (3, 2)), ((2, 3), (2, 3, 2))]:
        a, b = (Variable(rng.standard_normal(shape), requires_grad=True) for shape in (p, q))
        out = matmul(a, b)
        seed = rng.standard_normal(out.shape)
        try:
            out.backward(seed)
        except ValueError as error:
            raise AssertionError(f"{p} @ {q}: backward raised {error}; a receives G @ B.T, b receives A.T @ G "
                                 "(swapaxes(-1, -2) for stacks of matrices; a 1-D operand's gradient drops again the "
                                 "axis its rule put back)") from None
        for name, x, product in [("a", a, lambda unit: unit @ b.numpy()), ("b", b, lambda unit: a.numpy() @ unit)]:
            expected = linear_gradient(product, x.shape, seed)
            assert x.grad.shape == x.shape and np.allclose(x.grad, expected), \
                f"{p} @ {q}: {name}.grad should be {np.round(expected, 3).tolist()}, got {np.round(x.grad, 3).tolist()}"
    message = raised(ValueError, lambda: matmul(Variable(np.ones((2, 3))), Variable(np.ones((2, 3)))), "(2, 3) @ (2, 3)")
    assert "(2, 3) @ (2, 3)" in message, f"the error should name both shapes, got: {message}"

test_unit_matmul()
print("test_unit_matmul: passed")

# %% [markdown]
# **The sum** over `axis`: every entry receives the gradient of the sum it went into, so put the reduced axes back
# (the given `_expand`) and broadcast $g$ to the input's shape. **Return a real array, not a broadcast view**
# (`np.broadcast_to(...).copy()`): a view has zero strides, is read-only, and NumPy's matrix multiply does not hand it
# to the fast BLAS routine. The given first lines make `axis` a tuple of axes, or None for all (module 01's
# `reduction_axes`, which lets a 0-d Variable sum over axis 0 or -1, as PyTorch does). **The sum keeps the dtype; a
# full sum has shape `()`.**

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "autograd-sum", "locked": false, "solution": true}
#| export
def _expand(g: np.ndarray, axis, keepdims: bool) -> np.ndarray:
    """Put back the axes a reduction removed, so `g` broadcasts against the reduction's input."""
    return g if keepdims or axis is None else np.expand_dims(g, axis)

def reduce_sum(x, axis=None, keepdims: bool = False) -> Variable:
    """Sum over `axis` (all axes by default); every entry receives the gradient of its sum."""
    xv = np.asarray(_value(x))
    axis = reduction_axes(axis, xv.ndim)
    ### BEGIN SOLUTION
    return record(xv.sum(axis=axis, keepdims=keepdims), "Sum",
                  (x, lambda g: np.broadcast_to(_expand(g, axis, keepdims), xv.shape).copy()))
    ### END SOLUTION

# %% [markdown]
# ### Test: sum

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "autograd-real-array", "locked": true, "solution": false}
def gives_real_array(rule, g: np.ndarray) -> bool:
    """Whether `rule(g)` is a real array (writeable, no zero strides), not a broadcast view: for the test below (given).
    Asked here, beside your code: graded, the tests run outside your process, and an array reaches them as a copy."""
    result = rule(g)
    return bool(result.flags.writeable) and 0 not in result.strides

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-autograd-sum", "locked": true, "points": 2, "solution": false}
def test_unit_sum():
    rng = np.random.default_rng(6)
    x = Variable(rng.standard_normal((2, 3, 4)), requires_grad=True)
    for axis, keepdims in [(None, False), (1, False), ((0, 2), True), (-1, False), ((0, 1), False)]:
        out, expected = x.sum(axis=axis, keepdims=keepdims), x.numpy().sum(axis=axis, keepdims=keepdims)
        where = f"sum(axis={axis}, keepdims={keepdims})"
        assert out.shape == expected.shape and np.allclose(out.numpy(), expected), f"{where}: expected {expected.round(3)}, got {out!r}"
        seed, x.grad = rng.standard_normal(out.shape), None
        try:
            out.backward(seed)
        except ValueError as error:
            raise AssertionError(f"{where}: backward raised {error}; put the reduced axes back (_expand) first") from None
        expected = linear_gradient(lambda unit: unit.sum(axis=axis, keepdims=keepdims), x.shape, seed)
        assert np.allclose(x.grad, expected), f"{where}: each entry should receive the gradient of its sum, " \
                                              f"{expected.round(3).tolist()}; got {x.grad.round(3).tolist()}"
    spread = reduce_sum(Variable(np.ones((3, 2), np.float32), requires_grad=True), 0).grad_fn.edges[0][1]
    assert gives_real_array(spread, np.ones(2, np.float32)), "sum's rule returned a broadcast view: return a real array (.copy())"
    s32 = Variable(np.float32(3.0), requires_grad=True)
    total = Variable.sum(s32)
    total.backward()
    assert total.dtype == np.float32 and s32.grad.dtype == np.float32 and total.shape == (), "a float32 sum is float32, shape ()"
    scalar = Variable(np.float64(2.0), requires_grad=True)
    (scalar.sum(0) + scalar.sum(-1)).backward()
    assert scalar.grad == 2.0, f"a 0-d Variable sums over axis 0 or -1 (each gives 1), got {scalar.grad}"

test_unit_sum()
print("test_unit_sum: passed")

# %% [markdown]
# The engine is complete. Module 06 writes the rest of the operations on it (division, powers, `exp`, `mean`,
# indexing, ...) in `tinytorch.core.operations`, and gives `Variable` their operators and methods there, in one cell:
# code that uses them (`x / 2`, `x.exp()`, `x[i]`) imports `tinytorch.core.operations`. This module never refers to
# module 06: it reads, and works, on its own.

# %% [markdown]
# ## 9. Everything together: a model learns
#
# Linear regression on real data with nothing but this module: scikit-learn's diabetes table (442 patients, 10
# measurements each, no download) predicts a disease score a year later with `inputs @ w + b`. Each step computes the
# mean squared error, zeroes the old gradients, runs `backward()`, then moves each parameter against its gradient by
# writing into `p.numpy()`: plain NumPy, so nothing is recorded (module 07's optimizers do the same), after
# `backward()`, as Section 6's in-place rule asks. NumPy's least-squares solver gives the best loss possible.

# %%
from sklearn.datasets import load_diabetes

features, scores = load_diabetes(return_X_y=True, scaled=False)
inputs = ((features - features.mean(0)) / features.std(0)).astype(np.float32)  # each measurement in standard units
targets = ((scores - scores.mean()) / scores.std()).astype(np.float32).reshape(-1, 1)
w, b = Variable(np.zeros((10, 1), np.float32), requires_grad=True), Variable(np.zeros(1, np.float32), requires_grad=True)
losses = []
for step in range(300):
    error = inputs @ w + b - targets
    loss = (error * error).sum() * (1 / len(inputs))  # the mean squared error
    w.zero_grad(), b.zero_grad()
    loss.backward()
    for p in (w, b):
        p.numpy()[...] -= 0.1 * p.grad
    losses.append(loss.item())
best = np.linalg.lstsq(np.c_[inputs, np.ones(len(inputs))], targets, rcond=None)[1].item() / len(inputs)  # its squared error, averaged
print(f"mean squared error: step 0 {losses[0]:.4f}, step 50 {losses[50]:.4f}, step 299 {losses[-1]:.4f}; "
      f"least squares {best:.4f} (the model explains {1 - losses[-1]:.0%} of the variance)")

# %% [markdown]
# ### Test: the model learned

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-autograd-training", "locked": true, "points": 2, "solution": false}
def test_unit_training():
    assert losses[-1] < 1.01 * best, f"300 steps should come within 1% of the least-squares loss {best:.4f}, got {losses[-1]:.4f}"
    assert all(p.grad.dtype == np.float32 and p.grad.shape == p.shape for p in (w, b)), \
        "every parameter's gradient should be float32 with the parameter's shape"

test_unit_training()
print("test_unit_training: passed")

# %% [markdown]
# ## 10. Systems analysis: what the engine costs
#
# **(a) Time.** Each node is visited once, so the work per operation is the same for a chain of 1,000 operations and
# one of 20,000 (far past Python's recursion limit); whether the *time* per operation is too, the table measures. On
# one-element arrays the arithmetic is nothing, so both passes measure Python's overhead per operation, and the graph
# of one operation shows the fixed cost of a `backward()` call, split into its largest parts.

# %%
import gc
import tracemalloc

from tinytorch.core.tensor import best_time

def chain(n: int) -> Variable:
    out = Variable(np.ones(1), requires_grad=True)
    for i in range(n):
        out = out * 1.0001 if i % 2 else out + 0.5
    return out

def per_call_us(fn, calls: int) -> float:
    return best_time(lambda: [fn() for _ in range(calls)], repeat=3) / calls * 1e6

print(f"{'operations':>10} {'forward us/op':>14} {'backward us/op':>15}")
per_operation = {}
for n in [1, 1_000, 20_000]:
    calls, out = max(1, 2_000 // n), chain(n)
    forward, backward = per_call_us(lambda: chain(n), calls), per_call_us(lambda: out.backward(retain_graph=True), calls)
    per_operation[n] = (forward / n, backward / n)
    print(f"{n:>10,} {forward / n:>14.2f} {backward / n:>15.2f}")
growth = [large / small for large, small in zip(per_operation[20_000], per_operation[1_000])]
print(f"from 1,000 to 20,000 operations the time per operation changed x{growth[0]:.1f} forward, x{growth[1]:.1f} "
      "backward: " + ("flat, as one visit per node predicts" if max(growth) < 1.25 else
                      "it grows, though each node is still visited once (see below)"))
gc.disable()  # Python's cyclic garbage collector, paused for one more forward pass
try:
    paused = best_time(lambda: chain(20_000), repeat=1) / 20_000 * 1e6
finally:
    gc.enable()
print(f"forward of 20,000 operations with the garbage collector paused: {paused:.2f} us/op "
      f"({per_operation[20_000][0]:.2f} with it)")
one, leaf = chain(1), Variable(np.ones(1), requires_grad=True)
print("parts of one backward() call: " + ", ".join(f"{label} {per_call_us(fn, 2_000):.2f} us" for label, fn in [
    ("topological_order", lambda: topological_order(one)), ("_seed", lambda: _seed(one, None)),
    ("_accumulate", lambda: _accumulate(leaf, one.numpy()))]))
del out

# %% [markdown]
# **(b) Memory.** `tracemalloc` counts the bytes still held, with the loss alive, after the forward pass of an 8-layer
# linear network `h @ w + b` (width 64, batch 2,048, float32; an activation function, from module 06, would not change
# the picture): as built (Nodes keep what rules saved); with every intermediate Variable also kept (what a graph
# linking Variables would hold); after `backward(retain_graph=True)`; after a plain `backward()`, which releases the
# saved arrays; and under `no_grad`.

# %%
rng = np.random.default_rng(0)
mlp_weights = [Variable((rng.standard_normal((64, 64)) / 8).astype(np.float32), requires_grad=True) for _ in range(8)]
mlp_bias = Variable(np.zeros(64, np.float32), requires_grad=True)
mlp_input = rng.standard_normal((2048, 64)).astype(np.float32)

def mlp_forward(keep: list | None = None, backward: bool = False, retain_graph: bool = False):
    h = mlp_input
    for weight in mlp_weights:
        z = h @ weight
        h = z + mlp_bias
        if keep is not None:
            keep += [z, h]
    loss = (h * h).sum()
    if backward:
        loss.backward(retain_graph=retain_graph)
    return loss, keep

def held_megabytes(step) -> float:  # MB still allocated after `step()`, while what it returned is alive
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    alive = step()
    held = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    del alive
    for parameter in mlp_weights + [mlp_bias]:
        parameter.zero_grad()
    return held / 1e6

rows = [("graph (Nodes keep what rules saved)", held_megabytes(mlp_forward)),
        ("graph + every intermediate Variable", held_megabytes(lambda: mlp_forward(keep=[]))),
        ("after backward(retain_graph=True)", held_megabytes(lambda: mlp_forward(backward=True, retain_graph=True))),
        ("after backward() (graph released)", held_megabytes(lambda: mlp_forward(backward=True))),
        ("forward under no_grad", held_megabytes(no_grad()(mlp_forward)))]
print(f"{'held after the forward pass, loss alive':<40} {'MB':>7} {'activations':>12}")
for label, megabytes in rows:
    print(f"{label:<40} {megabytes:>7.2f} {megabytes / (mlp_input.nbytes / 1e6):>12.1f}")
print(f"every Variable kept: {rows[1][1] / rows[0][1]:.1f}x the graph's memory; releasing after backward frees "
      f"{rows[2][1] - rows[3][1]:.2f} MB")

# %% [markdown]
# **(c) The fast paths.** Every operation calls `_operands` and `_make`, so on one-element arrays they are a large
# part of what an operation costs. Section 3 gave them in their plainest form: `_value` for each operand, and
# `Variable(value)`, which checks and converts an array the operation has just computed. The engine's versions below
# (given; these are the ones the package exports) ask each operand's type once and read the usual operands (a
# Variable, a Python float) directly, and build the result with `object.__new__`, skipping checks in `__init__` that
# cannot fail there. The same results, tested by every test above; the table times the chain of (a) with each pair.

# %%
plain_helpers = {"_operands": _operands, "_make": _make}  # Section 3's, before the cell below replaces them

# %%
#| export
def _operands(a, b, division: bool = False) -> tuple:
    """The numbers behind two operands, with PyTorch's promotion if either is an integer Variable."""
    # Every operation starts here, so each operand's type is asked once and the usual operands (a Variable, a
    # Python float as in `x * 2.0`) are read without calling `_value`: 2% fewer instructions per one-element
    # operation (callgrind).
    a_type, b_type = type(a), type(b)
    av = a.data.data if a_type is Variable else a if a_type is float else _value(a)
    bv = b.data.data if b_type is Variable else b if b_type is float else _value(b)
    # Only a constant can hold integers (requires_grad needs floats): most operands skip the dtype test.
    if (a_type is Variable and not a.requires_grad and av.dtype.kind != "f"
            or b_type is Variable and not b.requires_grad and bv.dtype.kind != "f"):
        return promote_integers(av, bv, division)
    return av, bv

def _make(value, requires_grad: bool, grad_fn: Node | None) -> Variable:
    """A Variable around a value an operation just computed (no validation needed)."""
    if type(value) is not np.ndarray:  # NumPy returns scalars (np.float32(5.0)) for 0-d results
        value = Tensor(value).data
    tensor = _new(Tensor)  # _wrap(value) without the call: every operation comes through here
    tensor.data = value
    result = _new(Variable)
    result.data = tensor
    result.grad = None
    result.requires_grad = requires_grad
    result.grad_fn = grad_fn
    if grad_fn is not None:
        grad_fn.shape, grad_fn.dtype = value.shape, value.dtype
    return result

# %%
engine_helpers = {"_operands": _operands, "_make": _make}

def chain_us_per_operation(helpers: dict, n: int = 200) -> float:  # forward and backward of chain(n), per operation
    globals().update(helpers)
    try:
        return per_call_us(lambda: chain(n).backward(), 20) / n
    finally:
        globals().update(engine_helpers)

rounds = [(chain_us_per_operation(plain_helpers), chain_us_per_operation(engine_helpers)) for _ in range(3)]
plain_us, engine_us = min(plain for plain, _ in rounds), min(engine for _, engine in rounds)
print(f"{'helpers':<22} {'us/op (forward + backward)':>27}")
print(f"{'plain (Section 3)':<22} {plain_us:>27.2f}\n{'engine (exported)':<22} {engine_us:>27.2f}")
print(f"the engine's helpers take {1 - engine_us / plain_us:.0%} off each operation of a one-element chain")

# %% [markdown]
# Reading the tables:
# - (a) The work is linear, one visit per node, and depth is no problem. The time per operation is what the line under
#   the table says: it may grow on a long chain although the visits do not multiply, because two costs grow with the
#   graph. Python's garbage collector runs as objects are created and now and then examines every live one, and a
#   graph of 20,000 operations is over a hundred thousand objects (the line with the collector paused shows its share
#   here); and such a graph no longer fits in the CPU's caches, so each visit waits for memory more often. Backward
#   costs less per operation than forward: the forward pass checks operands and builds Nodes, the backward pass calls
#   one rule per edge. One `backward()` call costs several microseconds whatever the sizes: the order (a list, a set, a stack of
#   tuples), the seed, the dictionary of pending gradients, a rule call and the copy into `.grad`, each a microsecond
#   or two of Python and NumPy overhead. On large arrays the arithmetic dominates (module 06 times each rule).
# - (b) The graph holds one batch-sized array per layer: each layer's output, saved by the next matmul's rule. Keeping
#   every Variable also keeps each matmul output, which `add` did not need: the ratio printed is what linking Nodes
#   saves. A plain `backward()` frees the saved arrays while `loss` is alive (the `.grad` arrays remain);
#   `retain_graph=True` keeps them until `loss` is dropped; `no_grad` keeps nothing. Hence evaluation under
#   `no_grad`, and gradient checkpointing (recomputing activations) for very deep models.
# - (c) The fast paths change no result, only the bookkeeping around it: on one-element arrays, where bookkeeping is
#   all there is, they are worth the fraction printed (`benchmarks/autograd_bench.py` holds the engine to a per-operation
#   target against PyTorch); on large arrays the arithmetic hides them. They come after the plain versions because
#   they are only worth their obscurity once the plain ones are known to be right.
#
# ## 11. Reflection
#
# **Q1.** A 100-layer network is trained with batch size 256 and layer width 1,024 in float32. Using table (b),
# estimate the memory the graph holds between forward and backward. What could halve it, and at what cost?

# %% [markdown] nbgrader={"schema_version": 3, "grade": true, "grade_id": "reflect-autograd-memory", "locked": false, "points": 3, "solution": true}
# Each layer keeps about one activation of 256 x 1,024 x 4 bytes = 1 MB, so roughly 100 MB for 100 layers, on top of
# the weights (400 MB) and their gradients. Halving the batch halves it (noisier gradients, or accumulation over two
# half-batches, which costs time); float16/bfloat16 activations halve it at some precision risk; gradient
# checkpointing keeps every k-th activation and recomputes the rest during backward (about one extra forward pass).

# %% [markdown]
# **Q2.** `backward()` adds to `.grad` instead of overwriting it. Give one situation where this is what you want, and
# the bug a training loop gets when it forgets `zero_grad()`.

# %% [markdown] nbgrader={"schema_version": 3, "grade": true, "grade_id": "reflect-autograd-accumulation", "locked": false, "points": 3, "solution": true}
# A weight shared by two layers receives gradient from both; gradient accumulation adds several small batches'
# backward calls up to one large batch's gradient. Forgetting `zero_grad()` makes each step use the sum of all
# gradients so far: steps grow and point partly in stale directions, so training oscillates or diverges.

# %% [markdown]
# ## Summary
#
# You computed a first gradient by hand, then built a reverse-mode engine: `Variable` records each operation as a
# `Node` whose edges hold the rules; `unbroadcast` makes every gradient match its input's shape; `topological_order`
# and `backpropagate` visit each node once, without recursion, and release the graph; `no_grad` turns recording off;
# `matmul` and `sum` were enough to fit a linear model to real data. Next: `tito module complete 05_autograd`, then
# module 06 writes the other operations on this engine.
