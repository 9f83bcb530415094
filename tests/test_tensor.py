"""The Tensor of module 01, as exported to tinytorch.core.tensor."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tinytorch.core.tensor import Tensor, matmul, ones, randn, zeros


def test_construction_and_properties():
    t = Tensor([[1, 2, 3], [4, 5, 6]])
    assert t.shape == (2, 3) and t.size == 6 and t.ndim == 2
    assert t.dtype == np.float32
    assert isinstance(t.data, np.ndarray)


@pytest.mark.parametrize("data, dtype, expected", [
    ([1, 2], None, np.float32),
    (3, None, np.float32),
    (np.arange(3), None, np.int64),
    (np.array([True]), None, np.bool_),
    (np.zeros(2, dtype=np.float64), None, np.float64),
    (np.float64(1.5), None, np.float64),
    ([1, 2], np.float64, np.float64),
    ([1, 2], np.int64, np.int64),
    (np.zeros(2, dtype=np.float16), None, np.float16),
])
def test_dtype_rules(data, dtype, expected):
    assert Tensor(data, dtype=dtype).dtype == expected


@pytest.mark.parametrize("bad", ["text", ["a", "b"], [[1, 2], [3]], {"a": 1}, [object()], None])
def test_non_numeric_data_is_refused_with_a_type_error(bad):
    with pytest.raises(TypeError, match="Tensor data must be numeric"):
        Tensor(bad)


def test_arithmetic_with_every_kind_of_operand():
    a = Tensor([1.0, 2.0])
    for result, expected in [
        (a + 1, [2, 3]), (1 + a, [2, 3]), (a - 1, [0, 1]), (1 - a, [0, -1]),
        (a * 3, [3, 6]), (3 * a, [3, 6]), (a / 2, [0.5, 1]), (2 / a, [2, 1]),
        (a + np.ones(2, np.float32), [2, 3]), (np.ones(2, np.float32) + a, [2, 3]),
        (a + a, [2, 4]), (-a, [-1, -2]), (a ** 2, [1, 4]),
    ]:
        assert isinstance(result, Tensor)
        np.testing.assert_allclose(result.data, expected)
        assert result.dtype == np.float32


def test_unknown_operands_defer_to_the_other_type():
    class Other:
        def __radd__(self, other):
            return "other took over"

        def __rmatmul__(self, other):
            return "other took over @"

    assert Tensor([1.0]) + Other() == "other took over"
    assert Tensor([[1.0]]) @ Other() == "other took over @"
    with pytest.raises(TypeError):
        Tensor([1.0]) + "text"


def test_mixed_dtypes_promote_like_numpy():
    assert (Tensor([1.0]) + np.array([1.0])).dtype == np.float64
    assert (Tensor([1.0]) + Tensor([1.0], dtype=np.float64)).dtype == np.float64
    assert (Tensor(np.array([1, 2])) + 1).dtype == np.int64


def test_comparisons_give_boolean_tensors():
    mask = Tensor([-1.0, 0.0, 2.0]) > 0
    assert mask.dtype == np.bool_ and mask.data.tolist() == [False, False, True]


def test_matmul_shapes_and_error_message():
    assert (Tensor([[1, 2]]) @ Tensor([[3], [4]])).data.tolist() == [[11.0]]
    assert matmul(np.ones((2, 3)), Tensor(np.ones(3))).shape == (2,)
    batch = Tensor(np.ones((5, 2, 3))) @ Tensor(np.ones((3, 4)))
    assert batch.shape == (5, 2, 4)
    with pytest.raises(ValueError, match=r"\(2, 3\) @ \(2, 3\)"):
        Tensor(np.ones((2, 3))) @ Tensor(np.ones((2, 3)))
    with pytest.raises(ValueError, match="at least one dimension"):
        Tensor(2.0) @ Tensor([1.0])


def test_reductions_keep_dtype_and_axes():
    for dtype in (np.float32, np.float64):
        t = Tensor(np.arange(6).reshape(2, 3), dtype=dtype)
        assert t.sum().dtype == dtype and t.mean(axis=0).dtype == dtype
        assert t.sum(axis=1, keepdims=True).shape == (2, 1)
        assert t.max(axis=0).data.tolist() == [3, 4, 5]
        assert t.argmax(axis=1).data.tolist() == [2, 2]


def test_shape_operations():
    t = Tensor(np.arange(6))
    assert t.reshape(2, 3).shape == (2, 3) and t.reshape((3, -1)).shape == (3, 2)
    assert t.reshape(2, 3).T.data.tolist() == [[0, 3], [1, 4], [2, 5]]
    assert Tensor(np.zeros((2, 3, 4))).permute(1, 0, 2).shape == (3, 2, 4)
    assert Tensor(np.zeros((2, 3, 4))).transpose(0, 2).shape == (4, 3, 2)
    with pytest.raises(ValueError, match=r"shape \(6,\)"):
        t.reshape(4, 2)


def test_indexing_with_tensors_and_arrays():
    t = Tensor(np.arange(12).reshape(3, 4))
    assert t[1].data.tolist() == [4, 5, 6, 7]
    assert t[np.arange(3), Tensor([0, 1, 2], dtype=np.int64)].data.tolist() == [0, 5, 10]


def test_constructors():
    assert zeros(2, 3).shape == (2, 3) and zeros((2, 3)).shape == (2, 3)
    assert ones(3, dtype=np.float64).dtype == np.float64
    a, b = randn(4, rng=np.random.default_rng(1)), randn(4, rng=np.random.default_rng(1))
    assert np.array_equal(a.data, b.data) and a.dtype == np.float32


def test_repr_shows_values_and_dtype():
    assert repr(Tensor([1, 2])) == "Tensor([1., 2.], dtype=float32)"


shapes = hnp.array_shapes(min_dims=0, max_dims=4, min_side=1, max_side=4)


@settings(max_examples=60, deadline=None)
@given(hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, max_side=4),
       st.sampled_from(["__add__", "__sub__", "__mul__", "__truediv__"]))
def test_broadcasting_matches_numpy(broadcast, operator):
    rng = np.random.default_rng(0)
    left, right = (rng.standard_normal(shape).astype(np.float32) + 3 for shape in broadcast.input_shapes)
    result = getattr(Tensor(left), operator)(Tensor(right))
    expected = getattr(left, operator)(right)
    assert result.shape == np.shape(expected) == broadcast.result_shape
    np.testing.assert_allclose(result.data, expected, rtol=1e-6)


@settings(max_examples=40, deadline=None)
@given(shapes, shapes)
def test_incompatible_shapes_name_both(first, second):
    try:
        np.broadcast_shapes(first, second)
    except ValueError:  # NumPy cannot broadcast them, so Tensor must refuse too
        with pytest.raises(ValueError) as error:
            Tensor(np.ones(first)) + Tensor(np.ones(second))
        assert str(first) in str(error.value) and str(second) in str(error.value)


@pytest.mark.parametrize("dtype", [object, "str", "U3", np.str_])
def test_non_numeric_dtypes_are_refused_with_their_name(dtype):
    with pytest.raises(TypeError, match="dtype"):
        Tensor([1.0, 2.0], dtype=dtype)


def test_numpy_asarray_of_a_tensor_is_its_array():
    t = Tensor([[1.0, 2.0]])
    assert np.asarray(t) is t.data and np.asarray(t, dtype=np.float64).dtype == np.float64
