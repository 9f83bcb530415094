"""The autograd engine of module 05, as exported to tinytorch.core.autograd.

Its operations (add, subtract, multiply, matmul, sum) are checked against central finite differences on
random shapes drawn by hypothesis, broadcasting pairs included; the rest pins the behaviour later modules
rely on: the lesson's numbers, linear-time and recursion-free backward, unbroadcast bias gradients, dtypes,
no_grad, errors, and the graph being freed after use. Only module 05's names are used, so these tests pass
for a student who has not written module 06 (test_operations.py) yet. PyTorch comparisons are in
test_autograd_torch.py.
"""
from __future__ import annotations

import gc
import shutil
import textwrap
import time
import weakref
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autograd_testing import (FEW, PAIRS, SHAPES, assert_backward_matches_differences, assert_dtype_is_preserved,
                              axes_for, leaf, values)
from conftest import run_with_package_from
from tinytorch.core.autograd import (
    Node, Variable, add, is_grad_enabled, matmul, multiply, no_grad, reduce_sum, subtract, topological_order,
    unbroadcast,
)
from tinytorch.core.tensor import Tensor

# ---------------------------------------------------------------- gradients of every operation

BINARY = {
    "add": add, "subtract": subtract, "multiply": multiply,
    "+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
}


@pytest.mark.parametrize("name", list(BINARY))
@FEW
@given(data=st.data())
def test_binary_operations_with_broadcasting_match_finite_differences(name, data):
    left_shape, right_shape = data.draw(PAIRS).input_shapes
    assert_backward_matches_differences(BINARY[name], data.draw(values(left_shape)), data.draw(values(right_shape)),
                                        name=name)


@pytest.mark.parametrize("name", ["add", "subtract", "multiply"])
@pytest.mark.parametrize("constant", ["number", "array", "Tensor", "list"])
def test_binary_operations_with_a_constant_on_either_side(name, constant):
    fn = BINARY[name]
    x = np.array([[0.5, -1.5, 2.0], [1.0, 0.7, -0.3]])
    raw = np.array([1.5, -2.0, 0.5])
    other = {"number": 1.5, "array": raw, "Tensor": Tensor(raw, dtype=np.float64), "list": raw.tolist()}[constant]
    assert_backward_matches_differences(lambda v: fn(v, other), x, name=f"{name}(x, {constant})")
    assert_backward_matches_differences(lambda v: fn(other, v), x, name=f"{name}({constant}, x)")


@FEW
@given(data=st.data())
def test_sum_over_any_axes_matches_finite_differences(data):
    shape = data.draw(SHAPES)
    axis = data.draw(axes_for(len(shape)))
    keepdims = data.draw(st.booleans())
    x = data.draw(values(shape))
    assert_backward_matches_differences(lambda v: v.sum(axis=axis, keepdims=keepdims), x, name=f"sum({axis}, {keepdims})")
    assert_backward_matches_differences(lambda v: reduce_sum(v, axis, keepdims), x, name=f"reduce_sum({axis}, {keepdims})")


MATMUL_SHAPES = [((2, 3), (3, 4)), ((1, 2), (2, 1)), ((3,), (3, 2)), ((2, 3), (3,)), ((4,), (4,)),
                 ((2, 2, 3), (3, 2)), ((3, 2), (2, 2, 4)), ((2, 1, 2, 3), (3, 3, 1)), ((3,), (2, 3, 2))]


@pytest.mark.parametrize("left, right", MATMUL_SHAPES)
def test_matmul_matches_finite_differences_for_matrices_vectors_and_stacks(left, right):
    rng = np.random.default_rng(len(left) * 10 + len(right))
    a, b = rng.standard_normal(left), rng.standard_normal(right)
    assert_backward_matches_differences(matmul, a, b, name=f"{left} @ {right}")
    assert_backward_matches_differences(lambda p, q: p @ q, a, b, name=f"{left} @ {right} operator")
    assert_backward_matches_differences(lambda p: p @ b, a, name=f"{left} @ array")
    assert_backward_matches_differences(lambda q: a @ q, b, name=f"array @ {right}")


def test_a_linear_model_with_squared_error_matches_finite_differences():
    rng = np.random.default_rng(0)
    x, targets = rng.standard_normal((5, 4)), rng.standard_normal((5, 2))

    def squared_error(w, b):
        error = x @ w + b - targets
        return (error * error).sum() * (1 / len(x))

    assert_backward_matches_differences(squared_error, rng.standard_normal((4, 2)), rng.standard_normal(2),
                                        name="linear model")


# ---------------------------------------------------------------- the lesson's numbers

def test_lesson_example_product():
    x, y = Variable([2.0], requires_grad=True), Variable([3.0], requires_grad=True)
    z = x * y
    z.backward()
    assert z.data.data.tolist() == [6.0] and x.grad.tolist() == [3.0] and y.grad.tolist() == [2.0]


def test_lesson_example_difference_of_squares():
    x, y = Variable([3.0], requires_grad=True), Variable([2.0], requires_grad=True)
    f = multiply(add(x, y), subtract(x, y))
    f.backward()
    assert f.data.data.tolist() == [5.0]
    assert x.grad.tolist() == [6.0] and y.grad.tolist() == [-4.0]


def test_lesson_example_matmul():
    a, b = Variable([[1.0, 2.0]], requires_grad=True), Variable([[3.0], [4.0]], requires_grad=True)
    c = matmul(a, b)
    c.backward()
    assert c.data.data.tolist() == [[11.0]]
    assert a.grad.tolist() == [[3.0, 4.0]] and b.grad.tolist() == [[1.0], [2.0]]


def test_lesson_example_hundred_variable_sum():
    variables = [Variable([float(i)], requires_grad=True) for i in range(100)]
    total = variables[0]
    for v in variables[1:]:
        total = add(total, v)
    total.backward()
    assert total.data.data.tolist() == [4950.0]
    assert all(v.grad.tolist() == [1.0] for v in variables)


def test_lesson_example_accumulation_across_two_graphs():
    z = Variable([1.0], requires_grad=True)
    multiply(z, 2.0).backward()
    assert z.grad.tolist() == [2.0]
    multiply(z, 3.0).backward()
    assert z.grad.tolist() == [5.0]


def test_variable_sum_static_call_with_float32_and_float64_scalars():
    for dtype in (np.float32, np.float64):
        s = Variable(dtype(2.5), requires_grad=True)
        total = Variable.sum(s)
        total.backward()
        assert total.dtype == dtype and s.grad.dtype == dtype and s.grad.shape == () and s.grad == 1.0
    vector = Variable(np.arange(4, dtype=np.float32), requires_grad=True)
    assert Variable.sum(vector).item() == 6.0 and Variable.sum(vector, axis=0, keepdims=True).shape == (1,)


# ---------------------------------------------------------------- graph shape and cost

def test_deep_chain_of_100000_operations_backpropagates_without_recursion():
    x = Variable(np.ones(1), requires_grad=True)
    y = x
    for _ in range(50_000):
        y = y * 1.0001
        y = y + 0.5
    y.backward()
    np.testing.assert_allclose(x.grad, [1.0001 ** 50_000], rtol=1e-9)
    del y  # freeing a 100,000-deep graph must not overflow the C stack either
    assert x.grad is not None


def test_reused_values_cost_one_visit_per_node():
    x = Variable([1.0], requires_grad=True)
    y = x
    for _ in range(40):
        y = y + y
    assert len(topological_order(y)) == 41
    start = time.perf_counter()
    y.backward()
    elapsed = time.perf_counter() - start
    assert x.grad.tolist() == [2.0 ** 40]
    assert elapsed < 0.5, f"40 doublings should take microseconds, took {elapsed:.3f} s (re-walking shared subgraphs?)"


def test_each_rule_runs_once_per_edge_in_a_diamond():
    calls = []
    x = Variable([2.0], requires_grad=True)

    def counted(name, parent, factor):
        return Variable(parent.data.data * factor, grad_fn=Node(name, [(parent, lambda g: calls.append(name) or g * factor)]))

    top = counted("top", x, 3.0)
    left, right = counted("left", top, 2.0), counted("right", top, 5.0)
    (left + right).backward()
    assert sorted(calls) == ["left", "right", "top"], calls
    assert x.grad.tolist() == [21.0]


@FEW
@given(edges=st.lists(st.tuples(st.integers(0, 30), st.integers(0, 30)), min_size=1, max_size=40))
def test_topological_order_lists_every_node_once_after_its_inputs(edges):
    nodes = [Variable([1.0], requires_grad=True)]
    for i, j in edges:  # each new node uses two earlier nodes (possibly the same one twice)
        nodes.append(nodes[i % len(nodes)] * nodes[j % len(nodes)])
    order = topological_order(nodes[-1])
    assert len(order) == len(set(order)) and order[-1] is (nodes[-1].grad_fn or nodes[-1])
    assert set(order) == {node.grad_fn or node for node in nodes if _reachable(nodes[-1], node)}
    position = {node: k for k, node in enumerate(order)}
    for node in order:
        for source in (node.inputs if isinstance(node, Node) else ()):
            assert position[source] < position[node]


def _reachable(root, target) -> bool:
    """Whether `target` (a Variable) is in root's graph, by brute force over the edges."""
    wanted, seen, frontier = target.grad_fn or target, set(), [root.grad_fn or root]
    while frontier:
        node = frontier.pop()
        if node is wanted:
            return True
        if node not in seen and isinstance(node, Node):
            seen.add(node)
            frontier.extend(node.inputs)
    return False


# ---------------------------------------------------------------- broadcasting and dtypes

@pytest.mark.parametrize("bias_shape", [(3,), (1, 3)])
def test_bias_gradient_has_the_bias_shape(bias_shape):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 2))
    weight = leaf(rng.standard_normal((2, 3)))
    bias = leaf(np.zeros(bias_shape))
    out = x @ weight + bias
    (out * out).sum().backward()
    assert bias.grad.shape == bias_shape and weight.grad.shape == (2, 3)
    expected = (2 * (x @ weight.data.data)).sum(axis=0)
    np.testing.assert_allclose(bias.grad.reshape(-1), expected)


@given(shapes=PAIRS)
@settings(max_examples=40, deadline=None)
def test_unbroadcast_matches_summing_the_broadcast_axes(shapes):
    left, right = shapes.input_shapes
    grad = np.random.default_rng(0).standard_normal(shapes.result_shape)
    for shape in (left, right):
        reduced = unbroadcast(grad, shape)
        assert reduced.shape == shape
        # the gradient of sum(g * broadcast(x)) with respect to x, computed by brute force
        expected = np.zeros(shape)
        for index in np.ndindex(shape):
            one_hot = np.zeros(shape)
            one_hot[index] = 1.0
            expected[index] = np.sum(grad * np.broadcast_to(one_hot, shapes.result_shape))
        np.testing.assert_allclose(reduced, expected)


DTYPE_CASES = {
    "add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b, "matmul": lambda a, b: a @ b.sum(axis=0),
    "sum": lambda a, b: a.sum(axis=0) * b, "sum keepdims": lambda a, b: a.sum(axis=1, keepdims=True) - b,
    "constant": lambda a, b: a * 2.0 + np.float64(1.0) - b * 3,
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(DTYPE_CASES))
def test_dtype_is_preserved_through_forward_and_backward(name, dtype):
    assert_dtype_is_preserved(name, DTYPE_CASES[name], dtype)


@pytest.mark.parametrize("constant", [np.array([2, 3]), Tensor(np.array([2, 3])), [2, 3], np.array([True, False])])
def test_integer_and_boolean_constants_keep_float32(constant):
    x = leaf([1.0, 2.0], np.float32)
    for out in (x * constant, constant * x, x + constant, x - constant):
        assert out.dtype == np.float32, f"{type(constant).__name__} constant turned float32 into {out.dtype}"
    assert (leaf([1.0, 2.0]) * constant).dtype == np.float64


def test_only_floating_point_data_can_require_grad():
    with pytest.raises(TypeError, match="int64"):
        Variable(np.arange(3), requires_grad=True)
    assert Variable(np.arange(3)).dtype == np.int64, "integer data without grad (e.g. class labels) is allowed"


def test_float32_leaf_gets_float32_grad_even_through_float64_constants():
    x = leaf([1.0, 2.0], np.float32)
    out = x * np.array([3.0, 4.0])  # a float64 array: the result is float64, as in NumPy
    assert out.dtype == np.float64
    out.sum().backward()
    assert x.grad.dtype == np.float32 and x.grad.tolist() == [3.0, 4.0]


# ---------------------------------------------------------------- requires_grad, no_grad, detach

def test_requires_grad_propagates_exactly_when_an_input_requires_it():
    tracked, constant = Variable([1.0], requires_grad=True), Variable([2.0])
    assert (tracked * constant).requires_grad and (constant * tracked).requires_grad
    assert not (constant * constant).requires_grad and (constant * constant).grad_fn is None
    assert not (constant + 1.0).requires_grad
    out = tracked * constant + constant
    out.backward()
    assert constant.grad is None, "a constant never gets .grad"
    assert tracked.grad.tolist() == [2.0]


def test_no_grad_records_nothing_and_restores_the_previous_state():
    w = Variable([3.0], requires_grad=True)
    with no_grad():
        out = w * w + 1.0
        assert not is_grad_enabled()
        with no_grad():
            pass
        assert not is_grad_enabled()
    assert is_grad_enabled() and not out.requires_grad and out.grad_fn is None
    with pytest.raises(ZeroDivisionError):
        with no_grad():
            1 / 0
    assert is_grad_enabled()

    @no_grad()
    def called():
        return w * 2.0

    @no_grad
    def bare():
        return w * 2.0

    assert not called().requires_grad and not bare().requires_grad and is_grad_enabled()
    assert w.grad is None


def test_detach_shares_values_and_stops_gradients():
    w = Variable([3.0], requires_grad=True)
    d = (w * 2.0).detach()
    assert not d.requires_grad and d.grad_fn is None and d.data.data.tolist() == [6.0]
    (w * d).backward()
    assert w.grad.tolist() == [6.0]
    assert w.detach().data.data is w.data.data


def test_zero_grad_and_setting_grad_to_none():
    w = Variable([1.0, 2.0], requires_grad=True)
    (w * w).sum().backward()
    assert w.grad.tolist() == [2.0, 4.0]
    w.zero_grad()
    assert w.grad is None
    (w * 3.0).sum().backward()
    assert w.grad.tolist() == [3.0, 3.0]
    w.grad = None
    (w * 1.0).sum().backward()
    assert w.grad.tolist() == [1.0, 1.0]


def test_leaf_grad_is_an_own_array_that_may_be_changed_in_place():
    a, b = Variable([1.0], requires_grad=True), Variable([1.0], requires_grad=True)
    (a + b).backward()  # both receive the very same gradient array from the add rule
    a.grad *= 10
    assert b.grad.tolist() == [1.0]


def test_retain_grad_keeps_an_intermediate_gradient():
    x = Variable([2.0], requires_grad=True)
    hidden = x * 3.0
    hidden.retain_grad()
    (hidden * hidden).backward()
    assert hidden.grad.tolist() == [12.0] and x.grad.tolist() == [36.0]


def test_custom_operation_through_node():
    x = Variable([1.0, 2.0], requires_grad=True)
    cube = Variable(x.data.data ** 3, grad_fn=Node("Cube", [(x, lambda g: g * 3 * x.data.data ** 2)]))
    assert cube.requires_grad and repr(cube.grad_fn) == "<CubeBackward>"
    cube.sum().backward()
    assert x.grad.tolist() == [3.0, 12.0]


def test_a_subclass_of_variable_works_as_a_parameter():
    class Parameter(Variable):
        def __init__(self, data):
            Variable.__init__(self, data, requires_grad=True)  # spelled unlike module 03's solution, which a workspace must not show

    weight = Parameter(np.ones((2, 2), dtype=np.float32))
    out = (Tensor([[1.0, 2.0]]) @ weight).sum()
    out.backward()
    assert isinstance(out, Variable) and weight.grad.tolist() == [[1.0, 1.0], [2.0, 2.0]]


# ---------------------------------------------------------------- the operand protocol

@pytest.mark.parametrize("other", [Tensor([2.0, 4.0]), np.array([2.0, 4.0], dtype=np.float32), 2.0, 2, np.float32(2.0)])
def test_every_operator_with_every_operand_kind_on_either_side_gives_a_variable(other):
    x = Variable([1.0, 2.0], requires_grad=True)
    results = [x + other, other + x, x - other, other - x, x * other, other * x]
    assert all(isinstance(result, Variable) and result.requires_grad for result in results)
    assert (other - x).data.data.tolist() == (np.asarray(_plain(other)) - np.array([1.0, 2.0])).tolist()


def _plain(value):
    return value.data if isinstance(value, Tensor) else value


def test_tensor_and_array_matmul_with_a_variable_gives_a_variable():
    w = Variable(np.ones((2, 2), dtype=np.float32), requires_grad=True)
    for left in (Tensor([[1.0, 2.0]]), np.array([[1.0, 2.0]], dtype=np.float32)):
        out = left @ w
        assert isinstance(out, Variable) and out.requires_grad and out.data.data.tolist() == [[3.0, 3.0]]
    assert isinstance(w @ Tensor([[1.0], [1.0]]), Variable)


def test_variable_properties_and_conversions():
    v = Variable(np.arange(6, dtype=np.float64).reshape(2, 3), requires_grad=True)
    assert v.shape == (2, 3) and v.dtype == np.float64 and v.size == 6 and v.ndim == 2 and len(v) == 2
    assert v.numpy() is v.data.data and np.asarray(v) is v.data.data
    assert Variable([4.0]).item() == 4.0
    assert "requires_grad=True" in repr(v) and "MulBackward" in repr(v * 2.0)
    assert Variable(Tensor([1.0])).dtype == np.float32 and Variable(v).data.data is v.data.data
    assert {v: 1}[v] == 1, "a Variable can be a dictionary key"


# ---------------------------------------------------------------- errors

@pytest.mark.parametrize("bad", ["text", ["a"], [[1, 2], [3]], {"a": 1}, object(), None])
def test_non_numeric_data_is_refused(bad):
    with pytest.raises(TypeError, match="numeric"):
        Variable(bad)


def test_non_numeric_operand_is_refused():
    with pytest.raises(TypeError, match="numeric"):
        Variable([1.0]) + "text"


def test_matmul_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(2, 3\) @ \(2, 4\)"):
        matmul(Variable(np.ones((2, 3))), Variable(np.ones((2, 4))))
    with pytest.raises(ValueError, match=r"\(3,\) @ \(2,\)"):
        Variable(np.ones(3)) @ np.ones(2)


def test_backward_on_a_non_scalar_needs_a_gradient():
    out = Variable(np.ones((2, 3)), requires_grad=True) * 2.0
    with pytest.raises(RuntimeError, match=r"\(2, 3\)"):
        out.backward()
    with pytest.raises(RuntimeError, match=r"\(3,\).*\(2, 3\)"):  # RuntimeError, as PyTorch's
        out.backward(np.ones(3))
    out.backward(np.ones((2, 3)))


def test_backward_on_a_constant_is_an_error():
    with pytest.raises(RuntimeError, match="does not require grad"):
        (Variable([1.0]) * 2.0).backward()


def test_a_grad_fn_must_be_a_node():
    with pytest.raises(TypeError, match="grad_fn"):
        Variable([1.0], grad_fn=lambda g: g)


# ---------------------------------------------------------------- memory

def test_graph_is_freed_after_backward_and_dropping_the_output():
    gc.disable()  # prove the graph has no reference cycles: plain reference counting must free it
    try:
        x = Variable(np.ones((50, 50)), requires_grad=True)
        hidden = x * 2.0 + 1.0
        hidden_ref, array_ref = weakref.ref(hidden), weakref.ref(hidden.data.data)
        loss = (hidden @ x).sum()
        unsaved_ref = weakref.ref((x * 3.0).data.data)
        del hidden
        assert hidden_ref() is None, "the graph links Nodes: an intermediate Variable is freed once dropped"
        assert array_ref() is not None, "an array a rule saved (matmul's input) lives until the graph goes"
        assert unsaved_ref() is None, "an array no rule saved is freed at once"
        loss.backward()
        del loss
        assert array_ref() is None, "after backward and dropping the output, the saved arrays should be freed"
        assert x.grad is not None and x.grad.shape == (50, 50)
    finally:
        gc.enable()


def test_no_grad_keeps_no_graph():
    x = Variable(np.ones(10), requires_grad=True)
    with no_grad():
        hidden = x * 2.0
        ref = weakref.ref(hidden)
        out = hidden * hidden
        del hidden
    assert ref() is None and out.grad_fn is None


# ---------------------------------------------------------------- the engine on its own

def test_the_engine_works_without_module_06(tmp_path):
    """A student who completed module 05 but has not exported module 06 has an autograd.py and no operations.py:
    the engine trains without it, and module 06's names are reported missing in the usual way."""
    package = Path(__import__("tinytorch").__file__).parent
    shutil.copytree(package, tmp_path / "tinytorch", ignore=shutil.ignore_patterns("__pycache__", "operations.py"))
    script = textwrap.dedent("""
        import tinytorch.core.autograd as autograd
        from tinytorch.core.autograd import Variable
        w = Variable([[1.0], [2.0]], requires_grad=True)
        ((Variable([[3.0, 4.0]]) @ w - 1.0) * 2.0).sum().backward()
        print(w.grad.ravel().tolist())
        try:
            autograd.exp
        except AttributeError as error:
            print(error)
    """)
    result = run_with_package_from(tmp_path, script)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["[6.0, 8.0]", "module 'tinytorch.core.autograd' has no attribute 'exp'"]


def test_backward_through_a_shared_part_of_a_released_graph_raises():
    x = Variable([1.0, 2.0], requires_grad=True)
    hidden = x * x
    (hidden * 2.0).sum().backward()
    with pytest.raises(RuntimeError, match="retain_graph"):
        (hidden * 3.0).sum().backward()


def test_release_frees_the_saved_arrays():
    class Saved(np.ndarray):  # a weak reference tells us whether the graph still holds the array
        pass

    x = Variable(np.ones(3), requires_grad=True)
    activation = x * 2.0
    probe = activation.numpy().view(Saved)
    activation.data.data = probe
    alive = weakref.ref(probe)
    loss = (activation * activation).sum()
    del activation, probe
    gc.collect()
    assert alive() is not None, "before backward the multiply's rule holds the activation"
    loss.backward()
    gc.collect()
    assert alive() is None, "after backward (no retain_graph) the saved activation should be freed while loss lives"
