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
# # Operations: the rest of what a network computes, on the engine of module 05
#
# Module 05 built the engine and enough operations for a linear model. A network needs more: division and powers,
# the exponential and logarithm behind softmax and cross-entropy, activation functions, means and maxima, reshaping
# and indexing. Each is a forward computation in NumPy plus one backward rule recorded through module 05's `record`;
# the engine does the rest. Because a wrong rule trains badly instead of crashing, this module starts with the tool
# that catches wrong rules: a numerical gradient checker.
#
# **Objectives.** By the end of this module you can:
# - check any backward rule against central differences, and say why a checker needs a tolerance and random weights;
# - write the rules of elementwise functions, reductions, reshapes and indexing, stable and dtype-preserving;
# - read a computational graph, and train a small network with the operations you wrote.
#
# | You write here | It becomes | Used by |
# |---|---|---|
# | this notebook, `operations.ipynb` | `tinytorch.core.operations` | activations, losses, layers on Variables; modules 07 to 11 |
#
# Requirements that a test checks are in bold or in a docstring; nothing else is graded.

# %%
#| default_exp core.operations

# %%
#| export
from __future__ import annotations

import math
import shutil
import subprocess
from typing import Callable

import numpy as np

from tinytorch.core import layers
from tinytorch.core.autograd import Node, Variable, _expand, _operands, _reduction, _same, _value, _wrap
from tinytorch.core.autograd import add, matmul, multiply, no_grad, record, subtract, topological_order
from tinytorch.core.tensor import Tensor, as_shape, correction_of, expanded_shape, normalized_axes, reduction_axes
from tinytorch.core.tensor import squeezed_shape, swapped_axes, unsqueezed_shape
from tinytorch.core.tensor import permute as tensor_permute
from tinytorch.core.tensor import reshape as tensor_reshape

# %% [markdown]
# ## 1. Variable's other operators and methods
#
# Module 05's `Variable` has `+`, `-`, `*`, `@` and `sum`. The given cell below adds the rest: `/`, `**`, unary `-`,
# comparisons (boolean `Tensor` masks, as in PyTorch), indexing, `requires_grad_()`, the reductions and shape
# methods, and PyTorch's method names (`x.clamp(0, 1)` is `clamp(x, 0, 1)`; `docs/pytorch.md` lists each). Python
# classes are open: setting an attribute of `Variable` gives every Variable the method, existing ones included. Each
# method calls its function by name when it runs, so the functions can be written further down, and rewritten in
# this notebook, after this cell.

# %%
#| export
class _VariableMethods:
    """The operators and methods this module gives Variable (copied onto it right below)."""
    def __truediv__(self, other): return divide(self, other)
    def __rtruediv__(self, other): return divide(other, self)
    def __neg__(self): return negative(self)
    def __pow__(self, exponent): return power(self, exponent)
    def __rpow__(self, base): return exponential_of(base, self)
    def __getitem__(self, index): return getitem(self, index)
    def __gt__(self, other): return self.data > _value(other)
    def __ge__(self, other): return self.data >= _value(other)
    def __lt__(self, other): return self.data < _value(other)
    def __le__(self, other): return self.data <= _value(other)
    # == and != go through Tensor's, which answers NotImplemented for what it cannot compare: `x == None` is False.
    def __eq__(self, other): return self.data == (other.data if isinstance(other, Variable) else other)
    def __ne__(self, other): return self.data != (other.data if isinstance(other, Variable) else other)
    __hash__ = object.__hash__  # by identity, still: the backward pass keys dictionaries by Variable

    def requires_grad_(self, requires_grad: bool = True) -> Variable:
        if requires_grad and self.dtype.kind != "f":
            raise TypeError(f"only floating-point data can require grad, got {self.dtype}")
        if not requires_grad and self.grad_fn is not None:
            raise RuntimeError("requires_grad_(False) on a non-leaf: use detach() to get a constant copy instead")
        self.requires_grad = bool(requires_grad)
        return self

    # PyTorch's `dim=` and `keepdim=` are aliases of `axis=` and `keepdims=`, as for `sum`.
    def mean(self, axis=None, keepdims=False, **names): return reduce_mean(self, *_reduction(self, axis, keepdims, names))
    def max(self, axis=None, keepdims=False, **names): return reduce_max(self, *_reduction(self, axis, keepdims, names))
    def min(self, axis=None, keepdims=False, **names): return reduce_min(self, *_reduction(self, axis, keepdims, names))
    def logsumexp(self, axis=None, keepdims=False, **names): return logsumexp(self, *_reduction(self, axis, keepdims, names))
    def var(self, axis=None, keepdims=False, *, correction=1, unbiased=None, **names):
        return variance(self, *_reduction(self, axis, keepdims, names), correction_of(correction, unbiased))
    def std(self, axis=None, keepdims=False, **options): return sqrt(self.var(axis, keepdims, **options))
    def softmax(self, axis=-1, *, dim=None): return softmax(self, axis if dim is None else dim)
    def log_softmax(self, axis=-1, *, dim=None): return log_softmax(self, axis if dim is None else dim)
    def reshape(self, *shape): return reshape(self, *shape)
    def view(self, *shape): return reshape(self, *shape)  # this engine never shares storage between results
    def permute(self, *dims): return permute(self, *dims)
    T = property(lambda self: permute(self))
    def transpose(self, dim0, dim1): return transpose(self, dim0, dim1)
    def squeeze(self, dim=None): return reshape(self, squeezed_shape(self.shape, dim))
    def unsqueeze(self, dim): return reshape(self, unsqueezed_shape(self.shape, dim))
    def expand(self, *sizes): return expand(self, *sizes)
    def flip(self, *dims): return flip(self, *dims)
    # PyTorch's method forms of functions.
    def add(self, other): return add(self, other)
    def sub(self, other): return subtract(self, other)
    def mul(self, other): return multiply(self, other)
    def div(self, other): return divide(self, other)
    def matmul(self, other): return matmul(self, other)
    def neg(self): return negative(self)
    def exp(self): return exp(self)
    def log(self): return log(self)
    def sqrt(self): return sqrt(self)
    def tanh(self): return tanh(self)
    def sigmoid(self): return sigmoid(self)
    def relu(self): return relu(self)
    def abs(self): return absolute(self)
    def clamp(self, min=None, max=None): return clamp(self, min, max)
    clip = clamp
    def maximum(self, other): return maximum(self, other)
    def minimum(self, other): return minimum(self, other)

for _name, _method in vars(_VariableMethods).items():
    if callable(_method) or isinstance(_method, property):  # not the class's own __doc__, __module__, ...
        setattr(Variable, _name, _method)

# %% [markdown]
# Module 03's layers make their weights with `Parameter`, a Tensor there: module 03 comes before autograd and never
# looks ahead. With this module `Variable` has every operation a layer, an activation or a loss uses, so the given
# cell below hands module 03 a `Parameter` that is a leaf Variable requiring grad. Every layer made once this module
# is imported (`Linear`, and the layers of modules 09 and 10) builds a graph and can be trained; code that trains
# imports this module (module 07's optimizers do). A name taken from `tinytorch.core.layers` before this module was
# imported still means module 03's Tensor class: later modules take `Parameter` from here.

# %%
#| export
class Parameter(Variable):
    """A trainable array: a leaf Variable that requires grad (module 03's `Parameter`, once autograd is complete).

    >>> Parameter(np.zeros(2)).requires_grad
    True
    """

    __slots__ = ()  # as lean as a Variable

    def __init__(self, data):
        super().__init__(data, requires_grad=True)


layers.Parameter = Parameter  # module 03's layers, and Module.parameters(), use this class from now on

# %% [markdown]
# ## 2. Checking gradients numerically
#
# A wrong backward rule does not crash: it trains badly. Compare every rule with the derivative's definition, the
# **central difference** $\frac{L(x + \epsilon e_i) - L(x - \epsilon e_i)}{2\epsilon}$, whose error is of order
# $\epsilon^2$ (a forward difference's is of order $\epsilon$). Requirements of `gradcheck(fn, *inputs, eps, atol, rtol)`:
# - **every element of every input Variable that requires grad** is checked, on float64 copies (float32 rounding
#   would drown the difference); the inputs' own `.grad` stay untouched;
# - a non-scalar output is reduced with fixed random weights, $L = \sum_k w_k\,\mathrm{out}_k$ (a plain sum would
#   hide some mistakes);
# - **the tolerance is `|analytic - numeric| <= atol + rtol * |numeric|`**, with the defaults given;
# - on a mismatch, **`AssertionError` naming the function, the input's position, the element and both numbers**
#   ("expected ... gave ..."); otherwise it returns True.
#
# The test feeds it subtly wrong rules: one wrong element, a wrong first input, a rule 20% off.

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "operations-gradcheck", "locked": false, "solution": true}
#| export
def gradcheck(fn: Callable, *inputs, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
              name: str | None = None) -> bool:
    """Compare the gradients from backward() with central differences; True, or AssertionError saying where.

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
# ### Test: gradcheck, on subtly wrong rules

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-operations-gradcheck", "locked": true, "points": 3, "solution": false}
def raised(kind, action, what: str) -> str:
    """The message of the `kind` error that `action()` must raise (a helper for this lesson's tests)."""
    try:
        action()
    except kind as error:
        return str(error)
    except Exception as error:
        raise AssertionError(f"{what} should raise {kind.__name__}, got {type(error).__name__}: {error}") from None
    raise AssertionError(f"{what} should raise {kind.__name__}")

def test_unit_gradcheck():
    rng = np.random.default_rng(1)
    a, b = Variable(rng.standard_normal((2, 3)), requires_grad=True), Variable(rng.standard_normal(3), requires_grad=True)
    for fn in (add, subtract, multiply):
        try:
            verdict = gradcheck(fn, a, b)
        except AssertionError as error:
            raise AssertionError(f"gradcheck rejected a correct {fn.__name__} ({error}): run backward(weights) once, before "
                                 "the loop over inputs; read the .grad of the float64 copies and nudge the copies' values, "
                                 "not the inputs'; divide the central difference by 2 eps") from None
        assert verdict is True, f"gradcheck should return True for a correct {fn.__name__}, got {verdict!r}"
    assert a.grad is None, "gradcheck must work on copies and leave the inputs' .grad alone"
    try:
        gradcheck(lambda v: v * v * v, Variable([2.0, 2.5], requires_grad=True), eps=1e-2, name="cube")
    except AssertionError as error:
        raise AssertionError(f"gradcheck rejected a correct x * x * x at eps=1e-2 ({error}): a forward difference has an "
                             "error of order eps; use the central difference (f(x+eps) - f(x-eps)) / (2 eps)") from None

    def product_with(name, rule_a, rule_b=None):  # p * q recorded with the rules given (b's right by default)
        rule_b = rule_b or (lambda g, p, q: g * p)

        def fn(p, q):
            pv, qv = p.numpy(), q.numpy()
            return record(pv * qv, name, (p, lambda g: rule_a(g, pv, qv)), (q, lambda g: rule_b(g, pv, qv)))

        fn.__name__ = name
        return fn

    last_element = np.zeros((2, 3))
    last_element[-1, -1] = 1.0
    for name, rule_a, rule_b, where, what in [
            ("zero_rule", lambda g, p, q: g * 0, lambda g, p, q: g * 0, "input", "fn on the float64 copies: nudge "
             "copies[i]'s values and read copies[i].grad, both from the run of fn on the copies"),
            ("wrong_second_input", lambda g, p, q: g * q, lambda g, p, q: g * (p + 1), "input 1", "every input"),
            ("wrong_first_input", lambda g, p, q: g * (q + 1), None, "input 0", "every input, not only the last"),
            ("wrong_last_element", lambda g, p, q: g * (q + last_element), None, "element (1, 2)", "every element, not only the first"),
            ("twenty_percent_off", lambda g, p, q: g * q * 1.2, None, "input 0", "the tolerance atol + rtol * |numeric| with rtol=1e-3")]:
        message = raised(AssertionError, lambda: gradcheck(product_with(name, rule_a, rule_b), a, b),
                         f"gradcheck of {name}, a wrong rule (it must check {what})")
        assert name in message and where in message, f"the message should name {name} and {where}: {message}"
        assert "expected" in message and "gave" in message, f"the message should give both numbers: {message}"
    message = raised(AssertionError, lambda: gradcheck(product_with("wrong_first_input", lambda g, p, q: g * (q + 1)), a, b,
                                                       name="named_by_caller"), "gradcheck of a wrong rule, with name=")
    assert "named_by_caller" in message, f"gradcheck should name the function by name= when it is given, got: {message}"

test_unit_gradcheck()
print("test_unit_gradcheck: passed")

# From here on the tests check gradients with `reference_gradcheck`. Graded, that is the lesson's own checker,
# which only the grader holds (it would answer the exercise above); in your notebook it is your `gradcheck`.
reference_gradcheck = gradcheck
### BEGIN HIDDEN TESTS
# Each case's function written with NumPy alone, by the case's name: the numbers this checker trusts. Its finite
# differences and expected values are computed here, in the grader, never by the code under test.
REFERENCE_FORMS = {
    "divide": lambda p, q: p / q, "reflected divide": lambda p: 1.0 / p, "negative": lambda p: -p,
    "power 3": lambda p: p ** 3, "power -0.5": lambda p: p ** -0.5, "power of a Variable exponent": lambda p, q: p ** q,
    "a Variable exponent, a constant base": lambda q: np.array([[0.7, 1.5, 2.0]]) ** q,
    "exp": np.exp, "log": np.log, "sqrt": np.sqrt, "tanh": np.tanh, "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "relu": lambda x: np.maximum(x, 0.0),
    "mean": lambda v: v.mean(), "mean axis -1 keepdims": lambda v: v.mean(axis=-1, keepdims=True),
    "mean axes (0, 1)": lambda v: v.mean(axis=(0, 1)), "mean axis 1": lambda v: v.mean(axis=1),
    "mean axes (1, 2)": lambda v: v.mean(axis=(1, 2)), "max": lambda v: v.max(), "max axis 0": lambda v: v.max(axis=0),
    "max axis 1": lambda v: v.max(axis=1), "max axis -1": lambda v: v.max(axis=-1),
    "max axis 2 keepdims": lambda v: v.max(axis=2, keepdims=True),
    "reshape": lambda v: v.reshape(4, 6), "reshape tuple -1": lambda v: v.reshape((-1,)), "permute": lambda v: v.transpose(),
    "permute 1 2 0": lambda v: v.transpose(1, 2, 0), ".T": lambda v: v.T, "slice": lambda v: v[1, :, 1:3],
    "integer arrays": lambda v: v[np.array([0, 1, 1]), np.array([2, 0, 0])], "boolean mask": lambda v: v[v > 0.5],
    "two-layer network": lambda w1, b1, w2, b2: np.mean((np.tanh(inputs[:8] @ w1 + b1) @ w2 + b2 - targets[:8]) ** 2),
}


def reference_gradcheck(fn: Callable, *inputs, name: str = "fn", eps: float = 1e-6, atol: float = 1e-5,
                        rtol: float = 1e-3) -> bool:
    """The lesson's gradient checker: `fn`'s value and its backward's gradients at `inputs` against the case's
    NumPy form (REFERENCE_FORMS) and central differences of it; True, or AssertionError naming the element."""
    reference = REFERENCE_FORMS[name.split(" of shape")[0]]
    values = [np.array(_value(x), dtype=np.float64) for x in inputs]
    leaves = [Variable(value, requires_grad=True) for value in values]
    out = fn(*leaves)
    expected = np.asarray(reference(*values), dtype=np.float64)
    got = np.asarray(_value(out), dtype=np.float64)
    assert got.shape == expected.shape and np.allclose(got, expected, atol=atol, rtol=rtol), \
        f"{name}: the value should be {np.round(expected, 4).ravel()[:4]}... of shape {expected.shape}, got " \
        f"{np.round(got, 4).ravel()[:4]}... of shape {got.shape}"
    weights = np.random.default_rng(7).standard_normal(expected.shape)
    out.backward(weights)
    for position, value in enumerate(values):
        numeric = np.zeros(value.size)
        for k in range(value.size):
            sides = []
            for step in (eps, -eps):
                nudged = list(values)
                nudged[position] = value.copy()
                nudged[position].reshape(-1)[k] += step
                sides.append(float(np.sum(reference(*nudged) * weights)))
            numeric[k] = (sides[0] - sides[1]) / (2 * eps)
        grad = leaves[position].grad
        analytic = np.zeros(value.shape) if grad is None else np.asarray(grad, dtype=np.float64)
        assert analytic.shape == value.shape, f"{name}: input {position} has shape {value.shape}, its gradient {analytic.shape}"
        wrong = np.flatnonzero(~np.isclose(analytic.reshape(-1), numeric, atol=atol, rtol=rtol))
        if wrong.size:
            k = wrong[0]
            element = tuple(int(i) for i in np.unravel_index(k, value.shape))
            raise AssertionError(f"{name}: input {position}, element {element}: finite "
                                 f"differences give {numeric[k]:.6g}, backward gave {analytic.reshape(-1)[k]:.6g}")
    return True
### END HIDDEN TESTS


def check_all(cases) -> None:
    """reference_gradcheck on each (name, fn, inputs); an error other than a wrong gradient names its case too."""
    for name, fn, inputs in cases:
        try:
            reference_gradcheck(fn, *inputs, name=name)
        except AssertionError:
            raise
        except Exception as error:
            raise AssertionError(f"{name}: {type(error).__name__}: {error}") from None


def random_leaf(rng, *shape) -> Variable:  # values away from 0, where division and logarithms are tame
    return Variable(rng.uniform(0.5, 2.0, shape), requires_grad=True)

# %% [markdown]
# ## 3. Division and powers
#
# | operation | rule for $a$ | rule for $b$ |
# |---|---|---|
# | $z = a / b$ | $g / b$ | $-g\,a / b^2 = -g\, z / b$ |
# | $z = -a$ | $-g$ | |
# | $z = a^p$ ($p$ a number) | $g\, p\, a^{p-1}$; **0 for $p = 0$, even at $a = 0$** | |
# | $z = a^b$ ($b$ a Variable) | $g\, b\, a^{b-1}$; 0 where $b = 0$ | $g\, z \ln a$; **0 where $a = 0$ and $b \ge 0$** |
#
# Division promotes integers as PyTorch does (`_operands(a, b, division=True)`: an integer Variable divided by an
# integer gives float32), and **each keeps float32** (a Python number as exponent or divisor does; `np.float64(p)`
# would make the result float64). **At $a = 0$ every power's rules must give numbers, not NaN**: write $p\,a^{p-1}$, never
# $p\,a^p / a$ (that is $0/0$), and mask $\ln 0 = -\infty$ where $z$ is 0 or 1 (PyTorch's choices: $0^b$ does not
# change with $b \ge 0$ there). Where PyTorch gives infinities or NaN, so do we: $0^{-1}$ is $\infty$, and a negative
# base has no real logarithm, so its exponent's gradient is NaN. Other exponents (a list, an array) raise `TypeError`;
# `2.0 ** x` is given, in Section 7.

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "operations-divide-power", "locked": false, "solution": true}
#| export
def divide(a, b) -> Variable:
    """a / b; a receives g / b, b receives -g * (a / b) / b."""
    av, bv = _operands(a, b, division=True)
    ### BEGIN SOLUTION
    out = av / bv
    return record(out, "Div", (a, lambda g: g / bv), (b, lambda g: -g * out / bv))
    ### END SOLUTION

def negative(a) -> Variable:
    """-a; a receives -g."""
    ### BEGIN SOLUTION
    return record(-_value(a), "Neg", (a, np.negative))
    ### END SOLUTION

def _number(value, what: str):  # a Python or NumPy number, or TypeError saying `what` it must be
    if isinstance(value, (Variable, Tensor, np.ndarray, list)):
        raise TypeError(f"{what}, got {type(value).__name__}")
    return _value(value)

def power(a, exponent) -> Variable:
    """a ** p for a number p: a receives g * p * a ** (p - 1), and 0 when p == 0 (even where a is 0).
    a ** b for a Variable b: a receives g * b * a ** (b - 1) (0 where b == 0); b receives g * a ** b * ln(a),
    0 where a == 0 and b >= 0."""
    if isinstance(exponent, Variable):
        return _variable_power(a, exponent)
    av, p = _operands(a, _number(exponent, "the exponent of ** must be a number or a Variable"))
    ### BEGIN SOLUTION
    return record(av ** p, "Pow", (a, (lambda g: g * (p * av ** (p - 1))) if p != 0 else np.zeros_like))
    ### END SOLUTION

def _variable_power(a, b) -> Variable:
    """a ** b with a Variable exponent b (see `power`)."""
    av, bv = _operands(a, b)
    with np.errstate(divide="ignore", invalid="ignore"):  # 0 ** -1 is inf, as in PyTorch: no warning
        out = av ** bv
    ### BEGIN SOLUTION
    def base_rule(g):
        with np.errstate(divide="ignore", invalid="ignore"):
            return g * np.where(bv == 0, 0, bv * av ** (bv - 1))

    def exponent_rule(g):
        with np.errstate(divide="ignore", invalid="ignore"):  # ln 0 = -inf, ln of a negative base is nan
            return g * np.where((av == 0) & (bv >= 0), 0, out * np.log(av))

    return record(out, "Pow", (a, base_rule), (b, exponent_rule))
    ### END SOLUTION

# %% [markdown]
# ### Test: division and powers

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-operations-divide-power", "locked": true, "points": 2, "solution": false}
def test_unit_divide_power():
    rng = np.random.default_rng(2)
    check_all([("divide", lambda p, q: p / q, (random_leaf(rng, 2, 3), random_leaf(rng, 3))),
               ("reflected divide", lambda p: 1.0 / p, (random_leaf(rng, 3),)), ("negative", lambda p: -p, (random_leaf(rng, 2, 2),)),
               ("power 3", lambda p: p ** 3, (random_leaf(rng, 4),)), ("power -0.5", lambda p: p ** -0.5, (random_leaf(rng, 4),))])
    for name, fn in [("x / 2", lambda v: v / 2), ("2 / x", lambda v: 2 / v), ("-x", lambda v: -v), ("x ** 3", lambda v: v ** 3),
                     ("x ** -0.5", lambda v: v ** -0.5), ("x ** x", lambda v: v ** v)]:
        x32 = Variable(np.array([0.5, 2.0], np.float32), requires_grad=True)
        out = fn(x32)
        out.backward(np.ones(2, np.float32))
        assert out.dtype == np.float32 and x32.grad.dtype == np.float32, \
            f"{name} of float32 should stay float32 in both passes, got {out.dtype} and {x32.grad.dtype} (a NumPy " \
            "float64 number such as np.float64(p) makes float64; keep the Python number)"
    zero = Variable([0.0, 2.0], requires_grad=True)
    try:
        (zero ** 0).backward(np.ones(2))
    except AttributeError as error:
        raise AssertionError(f"x ** 0: backward raised AttributeError ({error}): a rule returns an array of g's shape "
                             "(np.zeros_like(g)), not the number 0") from None
    assert zero.grad.tolist() == [0.0, 0.0], f"x ** 0 is constant: expected gradient [0, 0] even at 0, got {zero.grad}"
    for p, expected in [(1, [1.0, 1.0]), (2, [0.0, 4.0]), (3, [0.0, 12.0])]:
        zero = Variable([0.0, 2.0], requires_grad=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            (zero ** p).backward(np.ones(2))
        assert zero.grad.tolist() == expected, f"x ** {p} at [0, 2]: expected gradient {expected}, got {zero.grad.tolist()} " \
                                               f"(write p * x ** (p - 1), not p * x ** p / x, which is 0 / 0 at 0)"
    check_all([("power of a Variable exponent", lambda p, q: p ** q, (random_leaf(rng, 2, 3), random_leaf(rng, 3))),
               ("a Variable exponent, a constant base", lambda q: Variable([[0.7, 1.5, 2.0]]) ** q, (random_leaf(rng, 2, 3),))])
    base, exponent = Variable([0.0, 0.0, 2.0], requires_grad=True), Variable([0.0, 2.0, 3.0], requires_grad=True)
    (base ** exponent).backward(np.ones(3))
    expected = [0.0, 0.0, 8 * math.log(2)]
    assert base.grad.tolist() == [0.0, 0.0, 12.0] and np.allclose(exponent.grad, expected), \
        f"[0, 0, 2] ** [0, 2, 3]: expected gradients [0, 0, 12] and {np.round(expected, 4).tolist()} (0 where the base is 0 " \
        f"and the exponent >= 0: ln 0 is -inf), got {base.grad.tolist()} and {np.round(exponent.grad, 4).tolist()}"
    base, exponent = Variable([0.0], requires_grad=True), Variable([-1.0], requires_grad=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        (base ** exponent).backward(np.ones(1))
    assert exponent.grad.tolist() == [-np.inf], f"0 ** -1 is inf, so its exponent's gradient is inf * ln 0 = -inf, as in " \
        f"PyTorch (mask only where the base is 0 and the exponent >= 0), got {exponent.grad.tolist()}"
    message = raised(TypeError, lambda: random_leaf(rng, 2) ** [1.0, 2.0], "a list exponent")
    assert "exponent" in message, f"the error should say what the exponent must be, got: {message}"

test_unit_divide_power()
print("test_unit_divide_power: passed")
# %% [markdown]
# ## 4. Elementwise functions
#
# Each elementwise rule multiplies $g$ by the derivative, written with the saved output $z$ where possible (the
# docstrings give each). $\ln x$ for $x \le 0$ gives NaN or $-\infty$ with NumPy's warning, as `torch.log`. ReLU's
# gradient is **0 at exactly 0** (PyTorch's choice). **The sigmoid must not overflow**: $1/(1 + e^{-x})$ overflows
# for $x < -709$ with a warning; $e^{-\log(1 + e^{-x})}$ with `np.logaddexp` does not. **Each keeps float32 in both
# passes.**

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "operations-elementwise", "locked": false, "solution": true}
#| export
def exp(x) -> Variable:
    """e ** x; x receives g * e ** x."""
    ### BEGIN SOLUTION
    out = np.exp(_value(x))
    return record(out, "Exp", (x, lambda g: g * out))
    ### END SOLUTION

def log(x) -> Variable:
    """Natural logarithm; x receives g / x."""
    ### BEGIN SOLUTION
    xv = _value(x)
    return record(np.log(xv), "Log", (x, lambda g: g / xv))
    ### END SOLUTION

def sqrt(x) -> Variable:
    """Square root; x receives g / (2 sqrt(x))."""
    ### BEGIN SOLUTION
    out = np.sqrt(_value(x))
    return record(out, "Sqrt", (x, lambda g: g / (2 * out)))
    ### END SOLUTION

def tanh(x) -> Variable:
    """Hyperbolic tangent; x receives g * (1 - tanh(x) ** 2)."""
    ### BEGIN SOLUTION
    out = np.tanh(_value(x))
    return record(out, "Tanh", (x, lambda g: g * (1 - out * out)))
    ### END SOLUTION

def sigmoid(x) -> Variable:
    """1 / (1 + e ** -x), computed stably; x receives g * s * (1 - s)."""
    ### BEGIN SOLUTION
    out = np.exp(-np.logaddexp(0, -_value(x)))
    return record(out, "Sigmoid", (x, lambda g: g * out * (1 - out)))
    ### END SOLUTION

def relu(x) -> Variable:
    """max(x, 0); x receives g where x > 0, else 0."""
    ### BEGIN SOLUTION
    out = np.maximum(_value(x), 0)
    return record(out, "ReLU", (x, lambda g: g * (out > 0)))
    ### END SOLUTION

# %% [markdown]
# ### Test: exp, log, sqrt

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-operations-exp-log-sqrt", "locked": true, "points": 2, "solution": false}
def elementwise_cases(names, seed: int) -> list:
    """(name, function, input) for check_all, after a float32 run of each (given)."""
    rng = np.random.default_rng(seed)
    signed = rng.choice([-1.0, 1.0], (3, 4)) * rng.uniform(0.1, 2.0, (3, 4))  # away from ReLU's kink at 0
    positive = rng.uniform(0.2, 3.0, (3, 4))
    cases = []
    for name in names:
        fn = globals()[name]
        values = positive if name in ("log", "sqrt") else signed
        x32 = Variable(values.astype(np.float32), requires_grad=True)
        fn(x32).backward(np.ones(values.shape, np.float32))
        assert fn(x32).dtype == np.float32 and x32.grad.dtype == np.float32, f"{name} should keep float32 in both passes"
        cases.append((name, fn, (Variable(values, requires_grad=True),)))
    return cases

def test_unit_exp_log_sqrt():
    check_all(elementwise_cases(["exp", "log", "sqrt"], seed=4))
    import warnings
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        logs = log(Variable([0.0, -1.0])).numpy()
    assert logs[0] == -np.inf and np.isnan(logs[1]) and caught, f"log(0) is -inf, log(-1) nan, with NumPy's warning; got {logs}"

test_unit_exp_log_sqrt()
print("test_unit_exp_log_sqrt: passed")

# %% [markdown]
# ### Test: tanh, sigmoid, relu

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-operations-tanh-sigmoid-relu", "locked": true, "points": 2, "solution": false}
def test_unit_tanh_sigmoid_relu():
    check_all(elementwise_cases(["tanh", "sigmoid", "relu"], seed=5))
    with np.errstate(over="raise"):
        try:
            tails = sigmoid(Variable(np.array([-1000.0, -30.0, 0.0, 1000.0]))).numpy()
        except FloatingPointError as error:
            raise AssertionError(f"sigmoid overflows on [-1000, -30, 0, 1000] ({error}): compute it as "
                                 "exp(-logaddexp(0, -x))") from None
    assert np.allclose(tails, [0.0, 9.357622968840175e-14, 0.5, 1.0], rtol=1e-9, atol=0), f"sigmoid tails wrong: {tails}"
    kink = Variable([0.0, 1.0], requires_grad=True)
    relu(kink).backward(np.ones(2))
    assert kink.grad.tolist() == [0.0, 1.0], f"relu's gradient is 0 at exactly 0 (as PyTorch), got {kink.grad}"

test_unit_tanh_sigmoid_relu()
print("test_unit_tanh_sigmoid_relu: passed")

# %% [markdown]
# ## 5. Reductions
#
# Reductions move gradients back to where the numbers came from, as module 05's `sum` does (its `_expand` puts the
# reduced axes back). `mean`: the sum's rule divided by the count, **as a real array, not a broadcast view**. `max`:
# only the largest entry moved the result; **ties follow PyTorch** through the given `_tie_share` (over one axis the
# first largest takes it all; over all axes tied entries share equally). Reductions keep the dtype; a full reduction
# has shape `()`; a 0-d Variable reduces over axis 0 or -1, as PyTorch allows.

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "operations-reductions", "locked": false, "solution": true}
#| export
def _drop(kept: np.ndarray, axis, keepdims: bool) -> np.ndarray:
    """A reduction's result computed with keepdims=True, without the reduced axes unless `keepdims`."""
    return kept if keepdims else (kept.reshape(()) if axis is None else np.squeeze(kept, axis))

def _tie_share(hits: np.ndarray, axis, dtype) -> np.ndarray:
    """Which entries of a max (or min) get its gradient, as PyTorch decides: of tied entries, the first along a
    single axis (torch.max(x, dim)); an equal share each over all or several axes (torch.max(x), torch.amax)."""
    if axis is not None and len(axis) == 1:
        return hits & (np.cumsum(hits, axis=axis[0]) == 1)
    return hits / hits.sum(axis=axis, keepdims=True, dtype=dtype)

def reduce_mean(x, axis=None, keepdims: bool = False) -> Variable:
    """Mean over `axis`; every entry receives the gradient of its mean divided by the count."""
    xv = np.asarray(_value(x))
    axis = reduction_axes(axis, xv.ndim)
    ### BEGIN SOLUTION
    total = xv.sum(axis=axis, keepdims=keepdims)  # then divide: xv.mean() costs three times as much on small arrays
    count = xv.size // max(np.size(total), 1)
    return record(total / count, "Mean", (x, lambda g: np.broadcast_to(_expand(g, axis, keepdims) / count, xv.shape).copy()))
    ### END SOLUTION

def reduce_max(x, axis=None, keepdims: bool = False) -> Variable:
    """Largest entry over `axis`; the gradient goes to the largest entry (ties: `_tie_share`)."""
    xv = np.asarray(_value(x))
    axis = reduction_axes(axis, xv.ndim)
    ### BEGIN SOLUTION
    top = xv.max(axis=axis, keepdims=True)
    return record(_drop(top, axis, keepdims), "Max",
                  (x, lambda g: _tie_share(xv == top, axis, xv.dtype) * _expand(g, axis, keepdims)))
    ### END SOLUTION

# %% [markdown]
# ### Test: reductions

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "operations-real-array", "locked": true, "solution": false}
def gives_real_array(rule, g: np.ndarray) -> bool:
    """Whether `rule(g)` is a real array (writeable, no zero strides), not a broadcast view: for the test below (given).
    Asked here, beside your code: graded, the tests run outside your process, and an array reaches them as a copy."""
    result = rule(g)
    return bool(result.flags.writeable) and 0 not in result.strides

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-operations-reductions", "locked": true, "points": 2, "solution": false}
def test_unit_reductions():
    rng = np.random.default_rng(6)
    x = Variable(rng.permutation(24).reshape(2, 3, 4) / 4.0, requires_grad=True)  # no ties
    check_all([(name, fn, (x,)) for name, fn in [
        ("mean", lambda v: v.mean()),
        ("mean axis -1 keepdims", lambda v: v.mean(axis=-1, keepdims=True)), ("mean axes (0, 1)", lambda v: v.mean(axis=(0, 1))),
        ("max", lambda v: v.max()), ("max axis 0", lambda v: v.max(axis=0)), ("max axis 2 keepdims", lambda v: v.max(axis=2, keepdims=True))]])
    square = Variable(rng.permutation(9).reshape(3, 3) / 4.0, requires_grad=True)  # g of shape (3,) broadcasts as a row
    for name, fn, v in [("mean axis 1", lambda v: v.mean(axis=1), x), ("mean axes (1, 2)", lambda v: v.mean(axis=(1, 2)), x),
                        ("mean axis 1", lambda v: v.mean(axis=1), square), ("max axis -1", lambda v: v.max(axis=-1), x),
                        ("max axis 1", lambda v: v.max(axis=1), square)]:
        try:
            check_all([(f"{name} of shape {v.shape}", fn, (v,))])
        except AssertionError as error:
            raise AssertionError(f"{error}: over a later axis, without keepdims, g lacks the reduced axes; put them back "
                                 "(_expand(g, axis, keepdims)) before spreading it over the input") from None
    for name, ours, expected in [("mean axis -1", x.mean(axis=-1), x.numpy().mean(axis=-1)),
                                 ("mean axes (0, 1)", x.mean(axis=(0, 1)), x.numpy().mean(axis=(0, 1)))]:
        assert np.allclose(ours.numpy(), expected), f"{name} values: got {ours.numpy().ravel()[:3]}..., expected {expected.ravel()[:3]}..."
    spread = Variable(np.ones((3, 2), np.float32), requires_grad=True).mean(axis=0).grad_fn.edges[0][1]
    assert gives_real_array(spread, np.ones(2, np.float32)), "mean's rule returned a broadcast view: return a real array (.copy())"
    m32 = Variable(np.ones(3, np.float32), requires_grad=True)
    assert m32.mean().dtype == np.float32 and m32.max().shape == (), "a float32 mean is float32; a full reduction has shape ()"
    tied = Variable([1.0, 3.0, 3.0], requires_grad=True)
    tied_rows = Variable([[1.0, 5.0, 5.0], [4.0, 4.0, 0.0], [0.0, 2.0, 7.0]], requires_grad=True)
    tied.max().backward(np.float64(2.0))
    tied_rows.max(axis=1).backward(np.array([1.0, 2.0, 3.0]))
    expected_rows = [[0.0, 1.0, 0.0], [2.0, 0.0, 0.0], [0.0, 0.0, 3.0]]
    assert tied.grad.tolist() == [0.0, 1.0, 1.0] and tied_rows.grad.tolist() == expected_rows, \
        f"max ties (_tie_share): over all axes tied entries share g = 2, over one axis the first largest of each row " \
        f"takes that row's g; expected [0, 1, 1] and {expected_rows}, got {tied.grad.tolist()}, {tied_rows.grad.tolist()}"
    scalar = Variable(np.float64(2.0), requires_grad=True)
    (scalar.max(0) + scalar.mean(-1)).backward()
    assert scalar.grad == 2.0, f"a 0-d Variable reduces over axis 0 or -1 (each gives 1), got {scalar.grad}"

test_unit_reductions()
print("test_unit_reductions: passed")

# %% [markdown]
# ## 6. Shapes and indexing
#
# `reshape`: reshape $g$ back. `permute`: permute back with the inverse permutation
# (`np.argsort(dims)`). `x[index]`: scatter $g$ into zeros of `x`'s shape; **an entry picked twice (`x[[0, 0]]`, or a
# tuple `x[:, (0, 0)]`) gets both gradients**: `np.add.at` adds them, where `zeros[index] = g` keeps one.
# Cross-entropy needs this: `log_probs[np.arange(n), targets]`. **Whole-number float index arrays (a `Tensor` of
# targets) work as integers.**

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "operations-shapes-indexing", "locked": false, "solution": true}
#| export
def reshape(x, *shape) -> Variable:
    """The same entries in a new shape (`reshape(x, 2, 3)` or `reshape(x, (2, 3))`); gradient reshaped back."""
    xv = np.asarray(_value(x))
    out = tensor_reshape(_wrap(xv), *shape).data  # module 01 checks the shape and names it in its error
    ### BEGIN SOLUTION
    return record(out, "Reshape", (x, lambda g: g.reshape(xv.shape)))
    ### END SOLUTION

def permute(x, *dims) -> Variable:
    """The axes in the order given, `permute(x, 2, 0, 1)` (reversed when none are given); gradient permuted back."""
    xv = np.asarray(_value(x))
    dims = normalized_axes(as_shape(dims), xv.ndim) if as_shape(dims) else ()
    out = tensor_permute(_wrap(xv), *dims).data
    ### BEGIN SOLUTION
    inverse = tuple(np.argsort(dims)) if dims else None  # reversing the axes undoes itself
    return record(out, "Permute", (x, lambda g: g.transpose(inverse)))
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

    return record(out, "Index", (x, rule))
    ### END SOLUTION

# %% [markdown]
# ### Test: shapes and indexing

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-operations-shapes-indexing", "locked": true, "points": 2, "solution": false}
def test_unit_shapes_indexing():
    values = np.random.default_rng(7).standard_normal((2, 3, 4))
    shape = Variable(values, requires_grad=True).reshape(4, 6).grad_fn.edges[0][1](np.ones((4, 6))).shape
    assert shape == (2, 3, 4), f"reshape's rule should reshape g back to the input's shape (2, 3, 4), got {shape}"
    check_all([(name, fn, (Variable(values, requires_grad=True),)) for name, fn in [
        ("reshape", lambda v: v.reshape(4, 6)), ("reshape tuple -1", lambda v: v.reshape((-1,))),
        ("permute", lambda v: v.permute()), ("permute 1 2 0", lambda v: v.permute(1, 2, 0)), (".T", lambda v: v.T),
        ("slice", lambda v: v[1, :, 1:3]), ("integer arrays", lambda v: v[np.array([0, 1, 1]), np.array([2, 0, 0])]),
        ("boolean mask", lambda v: v[values > 0.5])]])
    twice, repeated = Variable(np.zeros(3), requires_grad=True), Variable(np.zeros((2, 3)), requires_grad=True)
    twice[np.array([0, 0, 2])].sum().backward()
    repeated[:, (0, 0)].sum().backward()
    assert twice.grad.tolist() == [2.0, 0.0, 1.0] and repeated.grad.tolist() == [[2, 0, 0], [2, 0, 0]], \
        f"an entry picked twice gets both gradients (np.add.at): got {twice.grad.tolist()}, {repeated.grad.tolist()}"
    assert Variable(np.eye(2))[np.arange(2), Tensor([1, 0])].numpy().tolist() == [0.0, 0.0], "a Tensor of whole numbers indexes"

test_unit_shapes_indexing()
print("test_unit_shapes_indexing: passed")

# %% [markdown]
# ## 7. Given: the rest of PyTorch's vocabulary
#
# Nothing to write here: these complete the names you will meet in PyTorch (`docs/pytorch.md` lists each with its
# PyTorch spelling), each with the shape you know: the value, next to it the rule, recorded through `record`. Worth
# reading: `log_softmax` subtracts the row maximum before exponentiating ($e^{1000}$ would overflow), and its rule is
# $g - \mathrm{softmax}(x)\sum_j g_j$; `expand`'s rule is just $g$, because `unbroadcast` sums it back.

# %%
#| export
def exponential_of(base, a) -> Variable:
    """base ** a for a number base (`2.0 ** x`); a receives g * out * ln(base); base 0 as PyTorch (0, or -inf where a < 0)."""
    c, av = _operands(_number(base, "the base of ** must be a number"), a)
    with np.errstate(divide="ignore"):  # 0 ** negative is inf, as in PyTorch: no warning
        out = c ** av
    if c == 0:
        slope = np.where(av >= 0, 0, -np.inf).astype(out.dtype)
        return record(out, "RPow", (a, lambda g: g * slope))
    log_c = math.log(c) if c > 0 else math.nan
    return record(out, "RPow", (a, lambda g: g * out * log_c))

def log_softmax(x, axis: int = -1) -> Variable:
    """log(softmax(x)) along `axis`, stable for large inputs; x receives g - softmax(x) * g.sum(axis)."""
    xv = np.asarray(_value(x))
    shifted = xv - xv.max(axis=axis, keepdims=True)
    out = shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
    return record(out, "LogSoftmax", (x, lambda g: g - np.exp(out) * g.sum(axis=axis, keepdims=True)))

def transpose(x, dim0: int, dim1: int) -> Variable:
    """Swap axes `dim0` and `dim1`, as PyTorch's `transpose` does (`.T` reverses all, `permute` reorders)."""
    return permute(x, swapped_axes(np.ndim(_value(x)), dim0, dim1))

def expand(x, *sizes) -> Variable:
    """Broadcast to `sizes` (-1 keeps a size) without copying; the engine sums the gradient back."""
    xv = np.asarray(_value(x))
    return record(np.broadcast_to(xv, expanded_shape(xv.shape, as_shape(sizes))), "Expand", (x, _same))

def flip(x, *dims) -> Variable:
    """Reverse the order of the entries along `dims` (all axes when none are given)."""
    xv = np.asarray(_value(x))
    axes = normalized_axes(as_shape(dims), xv.ndim) if as_shape(dims) else None
    return record(np.flip(xv, axes), "Flip", (x, lambda g: np.flip(g, axes)))

def absolute(x) -> Variable:
    """|x|; x receives g * sign(x), which is 0 at 0 as in PyTorch."""
    xv = _value(x)
    return record(np.abs(xv), "Abs", (x, lambda g: g * np.sign(xv)))

def clamp(x, min=None, max=None) -> Variable:
    """x limited to [min, max] (either may be None); x receives g where min <= x <= max, else 0."""
    if min is None and max is None:
        raise ValueError("clamp needs at least one of min and max")
    xv = _value(x)
    low, high = -np.inf if min is None else _value(min), np.inf if max is None else _value(max)
    inside = (xv >= low) & (xv <= high)
    return record(np.clip(xv, low, high).astype(xv.dtype, copy=False), "Clamp", (x, lambda g: g * inside))

def _pick_larger_or_smaller(a, b, choose, wins, name: str) -> Variable:
    """maximum or minimum: `choose` computes it, `wins(a, b)` says where a wins; ties give each input half."""
    av, bv = _operands(a, b)
    out = choose(av, bv)
    to_a = (wins(av, bv) + 0.5 * (av == bv)).astype(out.dtype)
    return record(out, name, (a, lambda g: g * to_a), (b, lambda g: g * (1 - to_a)))

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
    return record(_drop(bottom, axis, keepdims), "Min",
                  (x, lambda g: _tie_share(xv == bottom, axis, xv.dtype) * _expand(g, axis, keepdims)))

def variance(x, axis=None, keepdims: bool = False, correction: int = 1) -> Variable:
    """Sum of squared deviations from the mean over `axis`, divided by n - correction (PyTorch's `var`)."""
    xv = np.asarray(_value(x))
    axis = reduction_axes(axis, xv.ndim)
    count = xv.size if axis is None else math.prod(xv.shape[a] for a in axis)
    centered = xv - xv.mean(axis=axis, keepdims=True)
    divisor = xv.dtype.type(count - correction)  # a NumPy number: 0 gives inf or nan with a warning, as in PyTorch
    out = (centered * centered).sum(axis=axis, keepdims=keepdims) / divisor
    return record(out, "Var", (x, lambda g: _expand(g, axis, keepdims) * (2 / divisor) * centered))

def _finite_max(xv: np.ndarray, axis) -> np.ndarray:  # the max over `axis` (kept), infinite maxima replaced by 0
    top = xv.max(axis=axis, keepdims=True)
    return np.where(np.isfinite(top), top, 0)

def logsumexp(x, axis=None, keepdims: bool = False) -> Variable:
    """log(sum(exp(x))) over `axis`, shifted by the max so nothing overflows; x receives g * softmax(x)."""
    xv = np.asarray(_value(x))
    axis = reduction_axes(axis, xv.ndim)
    top = _finite_max(xv, axis)
    kept = top + np.log(np.exp(xv - top).sum(axis=axis, keepdims=True))
    return record(_drop(kept, axis, keepdims), "LogSumExp", (x, lambda g: _expand(g, axis, keepdims) * np.exp(xv - kept)))

def softmax(x, axis: int = -1) -> Variable:
    """exp(x) / sum(exp(x)) along `axis`, shifted by the max; x receives s * (g - sum(g * s))."""
    xv = np.asarray(_value(x))
    exps = np.exp(xv - _finite_max(xv, axis))
    out = exps / exps.sum(axis=axis, keepdims=True)
    return record(out, "Softmax", (x, lambda g: out * (g - (g * out).sum(axis=axis, keepdims=True))))

# %% [markdown]
# ## 8. Seeing the graph (given)
#
# `draw_graph(output, names={"a": a})` lists the graph in topological order, one line per node: the operation and the
# nodes it used, the shape, and the value and `.grad` of the Variables it knows (the leaves, the output, and those you
# name; the graph does not keep other intermediates: "not kept"). In Jupyter it is a picture when graphviz's `dot` is
# installed. `retain_graph=True` keeps the graph after backward, so that it can be drawn.

# %%
#| export
def _summary(array) -> str:  # up to six numbers in full, else the dtype and shape
    if array is None:
        return "-"
    array = np.asarray(array)
    return np.array2string(array, precision=4, separator=", ").replace("\n", "") if array.size <= 6 else f"<{array.dtype} {array.shape}>"

def _dot_escape(text: str) -> str:  # the characters that structure a graphviz record label get a backslash
    return "".join("\\" + char if char in '\\{}|<>"' else char for char in text)

class GraphDrawing:
    """A computational graph as text (`str`/`repr`), DOT source (`.dot`), and SVG in Jupyter when `dot` exists."""
    def __init__(self, text: str, dot: str): self.text, self.dot = text, dot
    def __repr__(self) -> str: return self.text

    def _repr_svg_(self) -> str | None:  # None: Jupyter shows the text instead
        if shutil.which("dot") is None:
            return None
        done = subprocess.run(["dot", "-Tsvg"], input=self.dot, capture_output=True, text=True, timeout=60)
        return done.stdout if done.returncode == 0 else None

def draw_graph(output: Variable, names: dict | None = None) -> GraphDrawing:
    """Draw the graph `output` was computed from: each node's operation, inputs, shape, value and gradient."""
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

# %%
x, y = Variable([3.0], requires_grad=True), Variable([2.0], requires_grad=True)
a = x + y
f = a * (x - y)
f.backward(retain_graph=True)
draw_graph(f, names={"x": x, "y": y, "a": a})

# %% [markdown]
# ## 9. Everything together: a network learns
#
# A two-layer network fits $y = \sin(x)$ on 64 points with nothing but the operations above. Each step computes the
# loss, zeroes the old gradients, runs `backward()`, then moves every parameter against its gradient by writing into
# `p.numpy()` with plain NumPy: not an operation on Variables, so nothing is recorded and no `no_grad` is needed
# (module 07's optimizers do the same), and after `backward()`, as module 05's in-place rule asks.

# %%
rng = np.random.default_rng(0)
inputs = np.linspace(-3, 3, 64, dtype=np.float32).reshape(-1, 1)
targets = np.sin(inputs)
parameters = [Variable(array.astype(np.float32), requires_grad=True) for array in
              (rng.standard_normal((1, 32)), np.zeros(32), rng.standard_normal((32, 1)) / np.sqrt(32), np.zeros(1))]

def fit_loss(w1, b1, w2, b2, rows=slice(None)) -> Variable:
    hidden = (inputs[rows] @ w1 + b1).tanh()
    return ((hidden @ w2 + b2 - targets[rows]) ** 2).mean()

losses = []
for step in range(500):
    loss = fit_loss(*parameters)
    for p in parameters:
        p.zero_grad()
    loss.backward()
    for p in parameters:
        p.numpy()[...] -= 0.1 * p.grad
    losses.append(loss.item())
print(f"mean squared error: step 0 {losses[0]:.4f}, step 100 {losses[100]:.4f}, step 499 {losses[-1]:.5f}")

# %% [markdown]
# ### Test: the network learned

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-operations-training", "locked": true, "points": 2, "solution": false}
def test_unit_training():
    assert losses[-1] < 0.02 and losses[-1] < losses[0] / 10, f"the loss should fall tenfold, below 0.02: {losses[0]:.4f} -> {losses[-1]:.4f}"
    assert all(p.grad.dtype == np.float32 and p.grad.shape == p.shape for p in parameters), \
        "every parameter's gradient should be float32 with the parameter's shape"
    reference_gradcheck(lambda *p: fit_loss(*p, rows=slice(8)), *parameters, name="two-layer network")

test_unit_training()
print("test_unit_training: passed")

# %% [markdown]
# ## 10. Systems analysis: what each rule costs
#
# On a million float32 numbers the arithmetic outweighs Python's fixed cost per operation (module 05, Section 10), so
# timing each operation's forward pass and its backward rule (called directly, with $g$ of ones) against the NumPy
# expression it computes shows what each rule costs.

# %%
from tinytorch.core.tensor import best_time

rng = np.random.default_rng(0)
big = Variable(rng.uniform(0.5, 2.0, (1000, 1000)).astype(np.float32), requires_grad=True)
picks = rng.integers(0, 1000, 1000)  # 1,000 rows picked at random: some twice
cases = [("exp", exp, np.exp), ("tanh", tanh, np.tanh), ("sigmoid", sigmoid, lambda v: 1 / (1 + np.exp(-v))),
         ("relu", relu, lambda v: np.maximum(v, 0)), ("mean over rows", lambda x: x.mean(axis=1), lambda v: v.mean(axis=1)),
         ("max over rows", lambda x: x.max(axis=1), lambda v: v.max(axis=1)),
         ("log_softmax over rows", log_softmax, lambda v: v - np.log(np.exp(v).sum(axis=1, keepdims=True))),
         ("x[2:-2] (a slice)", lambda x: x[2:-2], lambda v: v[2:-2]), ("x[picks] (repeats)", lambda x: x[picks], lambda v: v[picks])]
print(f"{'operation':22} {'NumPy ms':>9} {'forward ms':>11} {'rule ms':>8}")
ms = {}  # operation -> (NumPy, forward, rule) in milliseconds
for name, operation, numpy_form in cases:
    rule, ones = operation(big).grad_fn.edges[0][1], np.ones(operation(big).shape, np.float32)
    ms[name] = [best_time(step, repeat=5) * 1e3 for step in (lambda: numpy_form(big.numpy()), lambda: operation(big), lambda: rule(ones))]
    print(f"{name:22} {ms[name][0]:>9.2f} {ms[name][1]:>11.2f} {ms[name][2]:>8.2f}")

def compared(what: str, ratio: float) -> str:  # what the measured ratio says, in words
    verdict = "about the same" if 0.8 <= ratio <= 1.25 else "less" if ratio < 1 else "more"
    return f"{what}: x{ratio:.2f}, {verdict}"

print(compared("exp's rule against computing exp", ms["exp"][2] / ms["exp"][1]))
print(compared("the stable sigmoid against the naive formula", ms["sigmoid"][1] / ms["sigmoid"][0]))
print(compared("max's rule against max", ms["max over rows"][2] / ms["max over rows"][1]))
print(compared("x[picks]'s rule against x[picks]", ms["x[picks] (repeats)"][2] / ms["x[picks] (repeats)"][1]))

# %% [markdown]
# Reading the table (the lines under it give the ratios measured on this machine):
# - The forward pass costs what NumPy costs: wrapping an operation adds a few microseconds, nothing at this size. The
#   sigmoid's stable `logaddexp` form does more arithmetic than the naive formula: the price of never overflowing and
#   of full precision in the tails (`1 - tanh` forms lose it).
# - Most rules are less arithmetic than their operation, because they reuse the saved result: `exp`'s rule is one
#   multiplication, where `exp` evaluates a polynomial per number. Whether that is also less *time* depends on the
#   machine: where NumPy computes float32 `exp` with SIMD instructions (most x86 CPUs), `exp` runs about as fast as
#   memory delivers the numbers, and the rule, which reads and writes as much memory, costs about the same.
# - Some rules do more work than their operation. `max` over rows finds the largest entries again and breaks ties
#   with a cumulative sum. A slice is a view, free to take, but its rule writes $g$ into a new array of zeros of the
#   whole input's size. Indexing with repeats needs `np.add.at`, NumPy's unbuffered scatter-add, one number at a time
#   (the last line measures it); compiled libraries sort the indices and add runs (PyTorch's `index_add_`).
#
# ## 11. Reflection
#
# **Q1.** `gradcheck` reduces a non-scalar output with random weights, not a plain sum. Give a wrong backward rule
# that a check with a plain sum (every $g$ equal to 1) would pass, and say why.

# %% [markdown] nbgrader={"schema_version": 3, "grade": true, "grade_id": "reflect-operations-weights", "locked": false, "points": 3, "solution": true}
# `permute` whose rule permutes $g$ with `dims` instead of the inverse permutation: with $g$ all ones, any
# rearrangement of the entries is still all ones, so the wrong rule gives the right answer. Likewise a `reshape` rule
# that reshapes to the right shape but in the wrong order, or a softmax rule that ignores $g$'s values (the gradient of
# a sum of softmax outputs is 0 whatever the rule does with a constant $g$). Random weights make every entry of $g$
# different, so an entry sent to the wrong place shows.

# %% [markdown]
# **Q2.** Composing `log(softmax(x))` from `exp`, `sum`, division and `log` gives the same function as the given
# `log_softmax`. Name two things the single operation does better, using this module's rules and tables.

# %% [markdown] nbgrader={"schema_version": 3, "grade": true, "grade_id": "reflect-operations-fused", "locked": false, "points": 3, "solution": true}
# It is stable: it subtracts the row maximum before exponentiating, so logits of 1,000 give finite values, where
# `exp(1000)` overflows to infinity and the composed form returns NaN or -inf. And it is cheaper: one Node and one
# saved array instead of four Nodes each saving an input, and one rule, $g - \mathrm{softmax}(x)\sum_j g_j$, instead
# of four rules in sequence; fewer Python calls and fewer passes over memory.

# %% [markdown]
# ## Summary
#
# You wrote a numerical gradient checker and checked every rule after it with the lesson's own: division and powers,
# `exp`, `log`, `sqrt`, `tanh`, a sigmoid that never overflows, ReLU, `mean` and `max` with PyTorch's ties, reshapes
# and indexing whose repeated entries add up. `Variable` now has PyTorch's operators and method names, and a
# two-layer network learned with them. Next: `tito module complete 06_operations`; module 07 replaces the
# hand-written update with optimizers.
