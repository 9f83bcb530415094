"""The operations of module 06, as exported to tinytorch.core.operations, on module 05's engine.

Every operation's gradient is checked with `gradcheck` on random shapes drawn by hypothesis (broadcasting
pairs, any axes, repeated indices), and `gradcheck` itself on wrong rules; the rest pins what later modules
rely on: PyTorch's tie rules, dtypes, comparisons, the operators module 06 gives Variable, clear errors, graph
drawing, and `tinytorch.core.autograd` offering all of it whichever module is imported first. PyTorch
comparisons are in test_operations_torch.py.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
import textwrap
import warnings
import weakref
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinytorch.core.autograd as autograd
import tinytorch.core.operations as operations
from autograd_testing import FEW, PAIRS, SHAPES, assert_dtype_is_preserved, axes_for, leaf, values
from tinytorch.core.autograd import Node, Variable, add, matmul, multiply, subtract
from tinytorch.core.operations import divide, draw_graph, exp, gradcheck, log, log_softmax, relu, sigmoid, sqrt, tanh
from tinytorch.core.tensor import Tensor


def away_from_zero(shape):
    """Values with |v| in [0.2, 2]: far from the kinks of relu and max, and from division by zero."""
    magnitudes = hnp.arrays(np.float64, shape, elements=st.floats(0.2, 2.0))
    signs = hnp.arrays(np.float64, shape, elements=st.sampled_from([-1.0, 1.0]))
    return st.builds(np.multiply, magnitudes, signs)


def distinct(shape):
    """Values with no ties, at least 0.1 apart (max and relu need a unique winner per slice)."""
    size = int(np.prod(shape))
    return st.permutations(list(range(size))).map(lambda order: (np.array(order, dtype=np.float64) / 10 - 0.05).reshape(shape))


# ---------------------------------------------------------------- gradients of every operation

BINARY = {
    "add": (add, False), "subtract": (subtract, False), "multiply": (multiply, False), "divide": (divide, True),
    "/": (lambda a, b: a / b, True),
}


@pytest.mark.parametrize("name", list(BINARY))
@FEW
@given(data=st.data())
def test_binary_operations_with_broadcasting_pass_gradcheck(name, data):
    fn, divides = BINARY[name]
    left_shape, right_shape = data.draw(PAIRS).input_shapes
    a = leaf(data.draw(values(left_shape)))
    b = leaf(data.draw(away_from_zero(right_shape) if divides else values(right_shape)))
    assert gradcheck(fn, a, b, name=name)


@FEW
@given(data=st.data())
def test_power_with_a_variable_exponent_passes_gradcheck(data):
    left_shape, right_shape = data.draw(PAIRS).input_shapes
    base = leaf(np.abs(data.draw(away_from_zero(left_shape))))  # positive: a real power with a real logarithm
    exponent = leaf(data.draw(values(right_shape)))
    assert gradcheck(lambda a, b: a ** b, base, exponent, name="a ** b")


@pytest.mark.parametrize("name", ["divide", "/"])
@pytest.mark.parametrize("constant", ["number", "array", "Tensor", "list"])
def test_binary_operations_with_a_constant_on_either_side(name, constant):
    fn, _ = BINARY[name]
    x = leaf([[0.5, -1.5, 2.0], [1.0, 0.7, -0.3]])
    raw = np.array([1.5, -2.0, 0.5])
    other = {"number": 1.5, "array": raw, "Tensor": Tensor(raw, dtype=np.float64), "list": raw.tolist()}[constant]
    assert gradcheck(lambda v: fn(v, other), x, name=f"{name}(x, {constant})")
    assert gradcheck(lambda v: fn(other, v), x, name=f"{name}({constant}, x)")


UNARY = {
    "exp": (exp, values), "log": (log, lambda s: values(s, 0.2, 3.0)), "sqrt": (sqrt, lambda s: values(s, 0.2, 3.0)),
    "tanh": (tanh, values), "sigmoid": (sigmoid, values), "relu": (relu, away_from_zero),
    "negative": (lambda v: -v, values), "power 2": (lambda v: v ** 2, values),
    "power -1.5": (lambda v: v ** -1.5, lambda s: values(s, 0.3, 3.0)), "power 0.5": (lambda v: v ** 0.5, lambda s: values(s, 0.2, 3.0)),
    "3 ** v": (lambda v: 3.0 ** v, values), "1 / v": (lambda v: 1.0 / v, away_from_zero),
    "2 - v": (lambda v: 2.0 - v, values), "method exp": (lambda v: v.exp(), values),
    "method relu": (lambda v: v.relu(), away_from_zero), "method sigmoid": (lambda v: v.sigmoid(), values),
    "method tanh": (lambda v: v.tanh(), values), "method log": (lambda v: v.log(), lambda s: values(s, 0.2, 3.0)),
    "method sqrt": (lambda v: v.sqrt(), lambda s: values(s, 0.2, 3.0)),
}


@pytest.mark.parametrize("name", list(UNARY))
@FEW
@given(data=st.data())
def test_elementwise_functions_pass_gradcheck(name, data):
    fn, strategy = UNARY[name]
    x = leaf(data.draw(strategy(data.draw(SHAPES))))
    assert gradcheck(fn, x, name=name)


@pytest.mark.parametrize("reduction", ["mean", "max"])
@FEW
@given(data=st.data())
def test_reductions_over_any_axes_pass_gradcheck(reduction, data):
    shape = data.draw(SHAPES)
    axis = data.draw(axes_for(len(shape)))
    keepdims = data.draw(st.booleans())
    x = leaf(data.draw(distinct(shape)))
    assert gradcheck(lambda v: getattr(v, reduction)(axis=axis, keepdims=keepdims), x, name=f"{reduction}({axis}, {keepdims})")


@FEW
@given(data=st.data())
def test_log_softmax_passes_gradcheck_on_any_axis(data):
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    x = leaf(data.draw(values(shape, -5.0, 5.0)))
    assert gradcheck(lambda v: log_softmax(v, axis=axis), x, name=f"log_softmax(axis={axis})")


@FEW
@given(data=st.data())
def test_reshape_permute_and_transpose_pass_gradcheck(data):
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=3))
    x = leaf(data.draw(values(shape)))
    permutation = tuple(data.draw(st.permutations(range(len(shape)))))
    assert gradcheck(lambda v: v.permute(*permutation), x, name=f"permute{permutation}")
    assert gradcheck(lambda v: v.permute(), x, name="permute()")
    assert gradcheck(lambda v: v.transpose(0, -1), x, name="transpose(0, -1)")
    assert gradcheck(lambda v: v.T, x, name=".T")
    assert gradcheck(lambda v: v.reshape(-1), x, name="reshape(-1)")
    assert gradcheck(lambda v: v.reshape((1, *reversed(shape))), x, name="reshape(tuple)")


@FEW
@given(data=st.data())
def test_indexing_passes_gradcheck_including_repeated_integer_indices(data):
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4))
    x = leaf(data.draw(values(shape)))
    rows = np.array(data.draw(st.lists(st.integers(0, shape[0] - 1), min_size=1, max_size=6)))
    basic = data.draw(hnp.basic_indices(shape, allow_newaxis=False, allow_ellipsis=True))
    mask = data.draw(hnp.arrays(np.bool_, shape))
    assert gradcheck(lambda v: v[rows], x, name=f"x[{rows.tolist()}]")
    assert gradcheck(lambda v: v[basic], x, name=f"x[{basic}]")
    assert gradcheck(lambda v: v[mask], x, name="x[mask]")


MATMUL_SHAPES = [((2, 3), (3, 4)), ((1, 2), (2, 1)), ((3,), (3, 2)), ((2, 3), (3,)), ((4,), (4,)),
                 ((2, 2, 3), (3, 2)), ((3, 2), (2, 2, 4)), ((2, 1, 2, 3), (3, 3, 1)), ((3,), (2, 3, 2))]


@pytest.mark.parametrize("left, right", MATMUL_SHAPES)
def test_matmul_passes_gradcheck_for_matrices_vectors_and_stacks(left, right):
    rng = np.random.default_rng(len(left) * 10 + len(right))
    a, b = leaf(rng.standard_normal(left)), leaf(rng.standard_normal(right))
    assert gradcheck(matmul, a, b, name=f"{left} @ {right}")
    assert gradcheck(lambda p, q: p @ q, a, b, name=f"{left} @ {right} operator")
    assert gradcheck(lambda p: p @ b.data.data, a) and gradcheck(lambda q: a.data.data @ q, b)


def test_a_two_layer_network_passes_gradcheck_for_every_parameter():
    rng = np.random.default_rng(0)
    x, targets = rng.standard_normal((5, 4)), np.array([0, 2, 1, 2, 0])
    params = [leaf(rng.standard_normal((4, 6))), leaf(rng.standard_normal(6)), leaf(rng.standard_normal((6, 3))),
              leaf(rng.standard_normal((1, 3)))]

    def cross_entropy(w1, b1, w2, b2):
        logits = (x @ w1 + b1).tanh() @ w2 + b2
        return -log_softmax(logits)[np.arange(5), targets].mean()

    assert gradcheck(cross_entropy, *params, name="two-layer cross-entropy")


def test_max_ties_follow_pytorch_and_relu_passes_none_at_zero():
    tied = Variable([[1.0, 3.0, 3.0], [2.0, 0.0, 0.0]], requires_grad=True)
    tied.max(axis=1).sum().backward()  # over one axis, the first maximum takes it all (torch.max(x, dim))
    assert tied.grad.tolist() == [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]
    everywhere = Variable([3.0, 1.0, 3.0, 3.0], requires_grad=True)
    everywhere.max().backward()
    np.testing.assert_allclose(everywhere.grad, [1 / 3, 0.0, 1 / 3, 1 / 3])
    x = Variable([-1.0, 0.0, 1.0], requires_grad=True)
    x.relu().sum().backward()
    assert x.grad.tolist() == [0.0, 0.0, 1.0], "relu's gradient at exactly 0 is 0, as in PyTorch"


# ---------------------------------------------------------------- dtypes

DTYPE_CASES = {
    "div": lambda a, b: a / b, "pow": lambda a, b: a ** 2 + b ** 3, "exp": lambda a, b: a.exp() + b,
    "log": lambda a, b: (a * a + 1).log() * b, "sqrt": lambda a, b: (a * a + 1).sqrt() - b, "tanh": lambda a, b: a.tanh() * b,
    "sigmoid": lambda a, b: a.sigmoid() + b, "relu": lambda a, b: a.relu() * b,
    "mean": lambda a, b: a.mean(axis=1, keepdims=True) + b, "max": lambda a, b: a.max(axis=0, keepdims=True) - b,
    "log_softmax": lambda a, b: a.log_softmax() * b, "index": lambda a, b: a[np.array([0, 0, 1])] + b[0],
    "reshape": lambda a, b: a.reshape(3, 2).T + b, "constant": lambda a, b: a * 2.0 + np.float64(1.0) - b / 3,
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(DTYPE_CASES))
def test_dtype_is_preserved_through_forward_and_backward(name, dtype):
    assert_dtype_is_preserved(name, DTYPE_CASES[name], dtype)


# ---------------------------------------------------------------- the operators module 06 gives Variable

@pytest.mark.parametrize("other", [Tensor([2.0, 4.0]), np.array([2.0, 4.0], dtype=np.float32), 2.0, 2, np.float32(2.0)])
def test_division_with_every_operand_kind_on_either_side_gives_a_variable(other):
    x = Variable([1.0, 2.0], requires_grad=True)
    assert all(isinstance(result, Variable) and result.requires_grad for result in (x / other, other / x))
    plain = other.data if isinstance(other, Tensor) else other
    assert (other / x).data.data.tolist() == (np.asarray(plain) / np.array([1.0, 2.0])).tolist()


def test_comparisons_return_plain_tensor_masks():
    x = Variable([-1.0, 0.0, 2.0], requires_grad=True)
    for mask, expected in [(x > 0, [0, 0, 1]), (x >= 0, [0, 1, 1]), (x < 0, [1, 0, 0]), (x <= 0, [1, 1, 0]),
                           (Tensor([0.0, 0.0, 0.0]) < x, [0, 0, 1])]:
        assert type(mask) is Tensor and mask.data.tolist() == expected
    assert (x * (x > 0)).requires_grad


# ---------------------------------------------------------------- errors

def test_other_clear_errors():
    x = Variable([1.0], requires_grad=True)
    with pytest.raises(TypeError, match=r"exponent of \*\* must be a number or a Variable, got list"):
        x ** [1.0]
    with pytest.raises(IndexError, match="whole numbers"):
        Variable(np.ones(3))[np.array([0.5])]


def test_log_of_non_positive_values_gives_nan_and_inf_with_a_warning():
    x = Variable([0.0, -1.0, 1.0], requires_grad=True)
    with pytest.warns(RuntimeWarning):
        out = log(x)
    assert out.data.data[0] == -np.inf and np.isnan(out.data.data[1]) and out.data.data[2] == 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        out.backward(np.ones(3))
    assert x.grad[2] == 1.0


# ---------------------------------------------------------------- memory

def test_a_saved_output_lives_until_the_graph_goes():
    x = Variable(np.ones((50, 50)), requires_grad=True)
    hidden = (x * 2.0).exp()
    array_ref = weakref.ref(hidden.data.data)
    loss = (hidden @ x).tanh().sum()
    del hidden
    assert array_ref() is not None, "exp's rule saved its output: it lives until the graph goes"
    loss.backward()
    del loss
    assert array_ref() is None, "after backward and dropping the output, the saved arrays should be freed"


# ---------------------------------------------------------------- gradcheck and draw_graph

def test_gradcheck_reports_input_element_and_both_numbers_on_a_wrong_rule():
    def bad_square(v):  # the rule claims d(v^2)/dv = v instead of 2v
        return Variable(v.data.data ** 2, grad_fn=Node("BadSquare", [(v, lambda g: g * v.data.data)]))

    a = Variable([1.0, 2.0], requires_grad=True)
    with pytest.raises(AssertionError) as failure:
        gradcheck(lambda p, q: p * 3.0 + bad_square(q), a, Variable([1.5, 3.0], requires_grad=True), name="bad_square")
    message = str(failure.value)
    assert "bad_square" in message and "input 1" in message and "element (0,)" in message
    numbers = re.search(r"expected (\S+) \(finite differences\), backward gave (\S+)", message)
    assert numbers, message
    expected, got = float(numbers.group(1)), float(numbers.group(2))
    assert abs(expected - 2 * got) < 1e-4 * abs(expected), f"the true gradient is twice the wrong one: {message}"
    assert a.grad is None, "gradcheck works on copies"


def test_gradcheck_catches_a_cut_graph_and_needs_an_input_to_check():
    with pytest.raises(AssertionError, match="gave 0"):
        gradcheck(lambda v: Variable(v.data.data * 2.0) + v * 0.0, Variable([1.0], requires_grad=True))
    with pytest.raises(ValueError, match="requires_grad"):
        gradcheck(lambda v: v * 2.0, Variable([1.0]))


def test_gradcheck_returns_true_and_honours_tolerances():
    x = Variable([0.3, -0.7], requires_grad=True)
    assert gradcheck(lambda v: v.tanh(), x) is True
    assert gradcheck(lambda v: v * 2.0, x, eps=1e-4, atol=1e-8, rtol=1e-8) is True


def test_draw_graph_text_form():
    x, y = Variable([3.0], requires_grad=True), Variable([2.0], requires_grad=True)
    a = x + y
    f = a * (x - y)
    f.backward(retain_graph=True)  # a released graph has no edges left to draw
    drawing = draw_graph(f, names={"x": x, "y": y, "a": a})
    lines = str(drawing).splitlines()
    assert lines[0].startswith("x = leaf") and "grad [6.]" in lines[0]
    assert lines[1].startswith("y = leaf") and "grad [-4.]" in lines[1]
    assert lines[2].startswith("a = Add(x, y)") and "value [5.]" in lines[2]
    assert lines[3].startswith("v3 = Sub(x, y)") and "value not kept" in lines[3]
    assert lines[4].startswith("v4 = Mul(a, v3)  <- output") and "value [5.]" in lines[4]
    assert str(draw_graph(f, names={"f": f})).splitlines()[-1].startswith("f = Mul(v2, v3)  <- output")
    assert repr(drawing) == str(drawing)
    assert '"x" -> "a"' in drawing.dot and drawing.dot.startswith("digraph")
    big = draw_graph(Variable(np.ones((10, 10)), requires_grad=True).sum())
    assert "<float64 (10, 10)>" in str(big)


def test_draw_graph_svg_when_graphviz_is_installed():
    if shutil.which("dot") is None:
        pytest.skip("graphviz's dot is not installed: only the text form is available")
    svg = draw_graph(Variable([1.0], requires_grad=True) * 2.0)._repr_svg_()
    assert svg is not None and "<svg" in svg


# ---------------------------------------------------------------- module 06 completes Variable, in one place

def test_module_06_gives_variable_its_operators():
    assert Variable.__truediv__ is operations._VariableMethods.__truediv__, "module 06 gives Variable its operators"
    assert not hasattr(autograd, "exp"), "module 05 does not offer module 06's names: import them from operations"


def test_the_engine_does_not_import_module_06_and_importing_06_completes_variable_and_layers():
    """No cycle: a fresh process importing layers and autograd loads no operations (and layers make Tensors);
    importing operations completes Variable and gives layers made from then on trainable Parameters."""
    package_root = Path(autograd.__file__).resolve().parents[2]
    script = textwrap.dedent("""
        import sys
        from tinytorch.core import layers
        from tinytorch.core.autograd import Variable
        from tinytorch.core.tensor import Tensor
        assert "tinytorch.core.operations" not in sys.modules, "module 03 or 05 imported module 06"
        assert not hasattr(Variable, "__truediv__") and type(layers.Linear(2, 1).weight).__mro__[1] is Tensor
        import tinytorch.core.operations
        linear = layers.Linear(2, 1)
        assert isinstance(linear.weight, Variable) and linear.weight.requires_grad, type(linear.weight).__mro__
        assert [name for name, _ in linear.named_parameters()] == ["weight", "bias"]
        x = Variable([2.0], requires_grad=True)
        (x / 4.0 + x.exp()).sum().backward()
        print(x.grad.tolist())
    """)
    result = subprocess.run([sys.executable, "-c", script], cwd=package_root, capture_output=True, text=True,
                            timeout=120, env={"PYTHONPATH": str(package_root), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert float(result.stdout.strip(" []\n")) == pytest.approx(0.25 + np.exp(2.0), rel=1e-6), result.stdout
