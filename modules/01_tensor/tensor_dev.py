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
# # Tensor: the data structure every later module stands on
#
# A neural network is, at run time, a pile of arrays of numbers and a recipe for combining them.
# This module builds the container for those arrays, `Tensor`, and the handful of operations every
# later module needs: elementwise arithmetic with broadcasting, matrix multiplication, reductions and
# reshaping.
#
# Our `Tensor` wraps a NumPy array. NumPy already does the arithmetic fast, in C; what we add is a
# small, predictable interface with clear errors, the same one PyTorch offers, so that module 05
# can teach a `Variable` to differentiate through exactly these operations.
#
# **Objectives.** By the end of this module you can:
#
# - store numbers as a `Tensor` with a shape and a dtype, and refuse data that is not numeric;
# - add, multiply and compare tensors of different shapes by broadcasting;
# - multiply matrices (and batches of them) with errors that name the shapes;
# - reduce, reshape and permute a tensor, and build one from zeros, ones or random numbers.
#
# | You write here | It becomes | Used by |
# |---|---|---|
# | this notebook, `tensor.ipynb` | `tinytorch.core.tensor` | every later module |

# %%
#| default_exp core.tensor

# %%
#| export
from __future__ import annotations

import numpy as np

# %% [markdown]
# ## 1. What a tensor is
#
# A tensor is an n-dimensional grid of numbers of one type. Its **shape** says how many entries lie
# along each axis; its **dtype** says how each number is stored.
#
# ```
# scalar      shape ()          5.0
# vector      shape (3,)        [1. 2. 3.]
# matrix      shape (2, 3)      [[1. 2. 3.]
#                                [4. 5. 6.]]
# batch       shape (64, 28, 28)  64 images of 28 x 28 pixels
# ```
#
# **Memory layout.** However many axes it has, the data sits in one flat block of memory. NumPy
# finds entry `[i, j]` of a `(2, 3)` float32 matrix at byte `i * 12 + j * 4`: the numbers 12 and 4
# are its *strides*. Reshaping or transposing usually only changes shape and strides, not the bytes,
# which is why those operations are nearly free.
#
# **Why float32.** Deep learning defaults to 32-bit floats: half the memory and memory bandwidth of
# float64, and ample precision for weights trained by noisy gradient steps. So `Tensor([1, 2])` is
# float32. A NumPy array already has a dtype, and the tensor keeps it, as does an explicit
# `dtype=np.float64`: gradient checking in module 06 needs float64 precision, and class labels are
# integers. Results of operations keep the dtype NumPy gives them (`x > 0` is a boolean mask).
#
# **What is not a tensor.** Strings, Python objects and ragged lists (`[[1, 2], [3]]`) have no
# numeric grid shape. Rejecting them at construction, with a message that says why, saves a student
# from a confusing failure ten operations later.

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "tensor-class", "locked": false, "solution": true}
#| export
class Tensor:
    """An n-dimensional array of numbers with a PyTorch-like interface, backed by NumPy.

    >>> t = Tensor([[1, 2], [3, 4]])
    >>> t.shape, t.dtype
    ((2, 2), dtype('float32'))
    """

    # Makes NumPy hand `array + tensor` to Tensor.__radd__ instead of looping over the tensor.
    __array_ufunc__ = None

    def __init__(self, data, dtype=None):
        """Store `data` as a NumPy array in `self.data`.

        Python lists and numbers become float32; NumPy arrays and Tensors keep their dtype; an explicit
        `dtype` always wins. Non-numeric or ragged data, or a non-numeric `dtype` (object, str), raises a
        TypeError naming it.
        """
        ### BEGIN SOLUTION
        if isinstance(data, Tensor):
            data = data.data
        if dtype is None:
            dtype = data.dtype if isinstance(data, (np.ndarray, np.generic)) else np.float32
        if np.dtype(dtype).kind not in "biuf":
            raise TypeError(f"Tensor dtype must be bool, integer or floating point, got dtype={dtype!r}")
        try:
            array = np.asarray(data)
        except (TypeError, ValueError) as error:
            raise TypeError(f"Tensor data must be numeric and rectangular, got {_describe(data)}: {error}") from None
        if array.dtype.kind not in "biuf":
            raise TypeError(f"Tensor data must be numeric, got dtype {array.dtype} from {_describe(data)}")
        self.data = array.astype(dtype, copy=False)
        ### END SOLUTION

    @property
    def shape(self) -> tuple:
        return self.data.shape

    @property
    def size(self) -> int:
        return self.data.size

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    def __repr__(self) -> str:
        body = np.array2string(self.data, separator=", ", prefix="Tensor(")
        return f"Tensor({body}, dtype={self.dtype})"

    def __len__(self) -> int:
        return len(self.data)

    def numpy(self) -> np.ndarray:
        return self.data

    def item(self) -> float:
        return self.data.item()

    def __bool__(self) -> bool:
        return bool(single_value(self.data))

    def __array__(self, dtype=None, copy=None) -> np.ndarray:  # np.asarray(tensor)
        return self.data if dtype is None else self.data.astype(dtype)

    # Arithmetic, matrix multiplication, reductions and reshaping: each defined in its own
    # section below. A class body may name functions defined later; they are looked up when called.
    def __add__(self, other): return elementwise(np.add, self, other)
    def __radd__(self, other): return elementwise(np.add, other, self)
    def __sub__(self, other): return elementwise(np.subtract, self, other)
    def __rsub__(self, other): return elementwise(np.subtract, other, self)
    def __mul__(self, other): return elementwise(np.multiply, self, other)
    def __rmul__(self, other): return elementwise(np.multiply, other, self)
    def __truediv__(self, other): return elementwise(np.true_divide, self, other)
    def __rtruediv__(self, other): return elementwise(np.true_divide, other, self)
    def __pow__(self, other): return elementwise(np.power, self, other)
    def __gt__(self, other): return elementwise(np.greater, self, other)
    def __ge__(self, other): return elementwise(np.greater_equal, self, other)
    def __lt__(self, other): return elementwise(np.less, self, other)
    def __le__(self, other): return elementwise(np.less_equal, self, other)
    def __rpow__(self, other): return elementwise(np.power, other, self)
    def __neg__(self): return Tensor(-self.data)
    def __matmul__(self, other): return matmul(self, other)
    def __rmatmul__(self, other): return matmul(other, self)
    def __getitem__(self, index): return Tensor(self.data[_unwrap(index)])

    def exp(self): return Tensor(np.exp(self.data))
    def log(self): return Tensor(np.log(self.data))
    def sqrt(self): return Tensor(np.sqrt(self.data))
    def tanh(self): return Tensor(np.tanh(self.data))

    def sum(self, axis=None, keepdims=False, **names): return reduce(np.sum, self, *axes_and_keepdims(self.ndim, axis, keepdims, **names))
    def mean(self, axis=None, keepdims=False, **names): return reduce(np.mean, self, *axes_and_keepdims(self.ndim, axis, keepdims, **names))
    def max(self, axis=None, keepdims=False, **names): return reduce(np.max, self, *axes_and_keepdims(self.ndim, axis, keepdims, **names))
    def argmax(self, axis=None): return Tensor(np.argmax(self.data, axis=axis))

    def reshape(self, *shape): return reshape(self, *shape)
    def permute(self, *dims): return permute(self, *dims)
    def transpose(self, dim0, dim1): return permute(self, swapped_axes(self.ndim, dim0, dim1))
    @property
    def T(self): return permute(self, *reversed(range(self.ndim)))

    # Given: more of PyTorch's names, so that code written for PyTorch runs here (docs/pytorch.md lists them).
    __hash__ = object.__hash__  # defining == would otherwise make Tensors unhashable
    def __eq__(self, other): return elementwise(np.equal, self, other)
    def __ne__(self, other): return elementwise(np.not_equal, self, other)
    def add(self, other): return self + other
    def sub(self, other): return self - other
    def mul(self, other): return self * other
    def div(self, other): return self / other
    def matmul(self, other): return self @ other
    def neg(self): return -self
    def abs(self): return Tensor(np.abs(self.data))
    def clamp(self, min=None, max=None): return Tensor(np.clip(self.data, min, max))
    clip = clamp
    def maximum(self, other): return elementwise(np.maximum, self, other)
    def minimum(self, other): return elementwise(np.minimum, self, other)
    def min(self, axis=None, keepdims=False, **names): return reduce(np.min, self, *axes_and_keepdims(self.ndim, axis, keepdims, **names))
    def var(self, axis=None, keepdims=False, *, correction=1, unbiased=None, **names):
        axes, keep = axes_and_keepdims(self.ndim, axis, keepdims, **names)
        return Tensor(np.var(self.data, axis=axes, keepdims=keep, ddof=correction_of(correction, unbiased)))
    def std(self, axis=None, keepdims=False, **options): return self.var(axis, keepdims, **options).sqrt()
    def view(self, *shape): return reshape(self, *shape)
    def squeeze(self, dim=None): return reshape(self, squeezed_shape(self.shape, dim))
    def unsqueeze(self, dim): return reshape(self, unsqueezed_shape(self.shape, dim))
    def expand(self, *sizes): return Tensor(np.broadcast_to(self.data, expanded_shape(self.shape, as_shape(sizes))))
    def flip(self, *dims): return Tensor(np.flip(self.data, as_shape(dims)))


def _describe(data) -> str:
    """A short description of bad input for error messages."""
    text = repr(data)
    return f"{type(data).__name__} {text[:60] + '...' if len(text) > 60 else text}"


def single_value(array: np.ndarray) -> np.ndarray:
    """The array, if it holds exactly one value; otherwise the ValueError PyTorch raises (as RuntimeError)."""
    if array.size != 1:
        amount = "no values" if array.size == 0 else "more than one value"
        raise ValueError(f"Boolean value of Tensor with {amount} is ambiguous (shape {array.shape}): "
                         "use .any() or .all() on the NumPy array, or compare one element")
    return array


def _unwrap(index):
    """Lets a Tensor (or a tuple holding Tensors) index another Tensor."""
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, tuple):
        return tuple(_unwrap(part) for part in index)
    return index

# %% [markdown]
# ### Test: creating tensors
# A tensor from a list is float32, an explicit dtype is kept, and non-numeric data is refused with a
# `TypeError` that says what was wrong.

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-tensor-creation", "locked": true, "points": 2, "solution": false}
def test_unit_tensor_creation():
    t = Tensor([[1, 2, 3], [4, 5, 6]])
    assert t.shape == (2, 3), f"shape should be (2, 3), got {t.shape}"
    assert t.size == 6, f"size should be 6, got {t.size}"
    assert t.dtype == np.float32, f"a list should become float32, got {t.dtype}"
    assert isinstance(t.data, np.ndarray), f".data should be a NumPy array, got {type(t.data)}"
    assert Tensor(5).shape == (), "a number should become a 0-dimensional tensor"
    assert Tensor([1, 2], dtype=np.float64).dtype == np.float64, "an explicit dtype must be kept"
    assert Tensor(np.array([1, 2]), dtype=np.float32).dtype == np.float32, "an explicit dtype must be kept, for an array too"
    assert Tensor(np.zeros(3, dtype=np.float64)).dtype == np.float64, "a float64 array must stay float64"
    assert Tensor(Tensor([1.0])).dtype == np.float32, "a Tensor built from a Tensor keeps its dtype"
    assert Tensor(np.array([1, 2])).dtype == np.int64, "an integer array keeps its dtype"
    assert Tensor(Tensor(np.array([1, 2]))).dtype == np.int64, (
        f"a Tensor built from an integer Tensor keeps its dtype (int64), got {Tensor(Tensor(np.array([1, 2]))).dtype}")
    assert Tensor(np.float64(1.5)).dtype == np.float64, (
        f"a NumPy number (np.float64(1.5)) keeps its dtype like an array, got {Tensor(np.float64(1.5)).dtype}")
    try:
        mask = Tensor(np.array([True, False]))
    except TypeError as error:
        raise AssertionError(f"a boolean array (a mask) is numeric data and should be accepted, got: {error}") from None
    assert mask.dtype == np.bool_, f"a boolean array (a mask) should stay bool, got {mask.dtype}"
    for bad in ["abc", "1.5", [[1, 2], [3]], {"a": 1}, [object()], None]:
        try:
            Tensor(bad)
        except TypeError:
            continue
        except Exception as error:
            raise AssertionError(f"Tensor({bad!r}) should raise TypeError, got {type(error).__name__}: {error}") from None
        raise AssertionError(f"Tensor({bad!r}) should raise TypeError")
    for bad_dtype in [object, "str"]:
        try:
            Tensor([1.0], dtype=bad_dtype)
        except TypeError as error:
            assert str(bad_dtype) in str(error) or "object" in str(error), f"the error should name the dtype: {error}"
        else:
            raise AssertionError(f"Tensor([1.0], dtype={bad_dtype!r}) should raise TypeError")
    assert "Tensor(" in repr(t) and "float32" in repr(t), f"repr should show values and dtype, got {repr(t)}"

test_unit_tensor_creation()
print("test_unit_tensor_creation: passed")

# %% [markdown]
# ## 2. Elementwise arithmetic and broadcasting
#
# `a + b` adds matching entries. When shapes differ, NumPy **broadcasts**: it lines the shapes up
# from the right, and each pair of sizes must be equal or contain a 1. A size-1 axis (or a missing
# one) is stretched, without copying, to match the other:
#
# ```
# x       (64, 10)            a batch of 64 rows
# bias        (10,)  -> (1, 10) -> (64, 10)   the same bias added to every row
# result  (64, 10)
# ```
#
# `(3, 1) + (1, 4)` gives `(3, 4)`; `(3,) + (4,)` is an error. Remember this picture: module 05 has
# to undo it, because the gradient of `bias` must have shape `(10,)`, not `(64, 10)`.
#
# All our arithmetic goes through one function, `elementwise(op, a, b)`. It turns each operand into
# an array (a Tensor, a NumPy array or a Python number), applies the NumPy function `op`, and wraps
# the result. For an operand it does not understand, it returns `NotImplemented`: Python then asks the
# *other* operand, which is how `Tensor * Variable` will produce a Variable in module 05.
#
# One rule is given: integer data meeting a float (`counts * 0.5`), or divided, becomes float32, as in
# PyTorch. NumPy would make it float64, and a float64 value would then spread through the network.

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "tensor-elementwise", "locked": false, "solution": true}
#| export
_SCALARS = (int, float, bool, np.number, np.bool_)


def as_array(value):
    """The NumPy array behind a Tensor, array or number; `NotImplemented` for anything else."""
    ### BEGIN SOLUTION
    if isinstance(value, Tensor):
        return value.data
    if isinstance(value, (np.ndarray, *_SCALARS)):
        return value
    return NotImplemented
    ### END SOLUTION


def _is_float(value) -> bool:
    return isinstance(value, float) or getattr(value, "dtype", np.dtype(int)).kind == "f"


def _float32_if_integer(value):
    is_integer_array = isinstance(value, np.ndarray) and value.dtype.kind in "biu"
    return value.astype(np.float32) if is_integer_array else value


def promote_integers(left, right, division: bool = False):
    """PyTorch's promotion: integer (or bool) arrays meeting a float, or divided, become float32.

    NumPy would give float64 (`int32 array * 0.5`); PyTorch gives its default float, float32, and so do we.
    """
    if division or _is_float(left) or _is_float(right):
        return _float32_if_integer(left), _float32_if_integer(right)
    return left, right


def elementwise(op, a, b):
    """Apply the NumPy function `op` to `a` and `b` with broadcasting and return a Tensor.

    Pass the operands through `promote_integers` first (`division` when `op` is `np.true_divide`).

    >>> elementwise(np.add, Tensor([[1, 2]]), 10)
    Tensor([[11., 12.]], dtype=float32)
    """
    ### BEGIN SOLUTION
    left, right = as_array(a), as_array(b)
    if left is NotImplemented or right is NotImplemented:
        return NotImplemented
    left, right = promote_integers(left, right, division=op is np.true_divide)
    try:
        return Tensor(op(left, right))
    except ValueError:
        raise ValueError(f"cannot broadcast shapes {np.shape(left)} and {np.shape(right)} for {op.__name__}") from None
    ### END SOLUTION

# %% [markdown]
# ### Test: arithmetic and broadcasting

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-tensor-arithmetic", "locked": true, "points": 3, "solution": false}
def test_unit_tensor_arithmetic():
    a = Tensor([[1.0, 2.0], [3.0, 4.0]])
    b = Tensor([10.0, 20.0])
    checks = {
        "a + b": (a + b, [[11, 22], [13, 24]]),
        "a - b": (a - b, [[-9, -18], [-7, -16]]),
        "a * 2": (a * 2, [[2, 4], [6, 8]]),
        "a / 2": (a / 2, [[0.5, 1], [1.5, 2]]),
        "1 - a": (1 - a, [[0, -1], [-2, -3]]),
        "2 / a": (2 / a, [[2, 1], [2 / 3, 0.5]]),
        "array + a": (np.ones((2, 2)) + a, [[2, 3], [4, 5]]),
        "a ** 2": (a ** 2, [[1, 4], [9, 16]]),
    }
    for text, (result, expected) in checks.items():
        assert isinstance(result, Tensor), f"{text} should be a Tensor, got {type(result).__name__}"
        assert np.allclose(result.numpy(), expected), f"{text}: expected {expected}, got {result.numpy().tolist()}"
    assert (a * 2).dtype == np.float32, f"float32 * number should stay float32, got {(a * 2).dtype}"
    try:
        scaled = a * np.float32(2)
    except TypeError as error:
        raise AssertionError(f"a NumPy number is a number: a * np.float32(2) should work, got: {error}") from None
    assert np.allclose(scaled.numpy(), [[2, 4], [6, 8]]), f"a * np.float32(2) should be [[2, 4], [6, 8]], got {scaled}"
    doubles = Tensor(np.array([1.0, 2.0]))
    assert (doubles + doubles).dtype == np.float64, f"float64 + float64 should stay float64, got {(doubles + doubles).dtype}"
    integers = Tensor(np.array([1, 2], dtype=np.int32))
    for text, result in {"int32 * 0.5": integers * 0.5, "int32 ** 0.5": integers ** 0.5, "int32 / 2": integers / 2}.items():
        assert result.dtype == np.float32, f"{text} should be float32 (PyTorch's default float), got {result.dtype}"
    for text, result in {"int32 + 1": integers + 1, "int32 * int32": integers * integers}.items():
        assert result.dtype == np.int32, f"{text} should stay int32 (only a float or a division promotes), got {result.dtype}"
    column, row = Tensor([[1.0], [2.0], [3.0]]), Tensor([[1.0, 2.0, 3.0, 4.0]])
    assert (column + row).shape == (3, 4), f"(3,1) + (1,4) should broadcast to (3, 4), got {(column + row).shape}"
    try:
        unknown = Tensor([1.0]).__add__("text")
    except TypeError as error:
        raise AssertionError(f"an unknown operand type should give NotImplemented (so that Python asks the other "
                             f"operand), not raise: {error}") from None
    assert unknown is NotImplemented, f"an unknown operand type should give NotImplemented, got {unknown!r}"
    try:
        Tensor([1.0, 2.0, 3.0]) + Tensor([1.0, 2.0])
    except ValueError as error:
        assert "(3,)" in str(error) and "(2,)" in str(error), f"the error should name both shapes: {error}"
    else:
        raise AssertionError("(3,) + (2,) should raise ValueError")

test_unit_tensor_arithmetic()
print("test_unit_tensor_arithmetic: passed")

# %% [markdown]
# ## 3. Matrix multiplication
#
# For `A` of shape `(m, k)` and `B` of shape `(k, n)`, `A @ B` has shape `(m, n)`:
# $C_{ij} = \sum_{t} A_{it} B_{tj}$. The inner sizes must agree. A linear layer is one matmul, and
# most of a network's arithmetic is matmuls, so this is the operation that has to be fast: NumPy
# hands it to an optimised BLAS library.
#
# NumPy's own error for a mismatch (`matmul: Input operand 1 has a mismatch in its core
# dimension 0 ...`) does not show the shapes. Ours names both, which is the first thing anybody
# debugging a network needs to see.

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "tensor-matmul", "locked": false, "solution": true}
#| export
def matmul(a, b) -> Tensor:
    """Matrix product of two Tensors (or arrays); a ValueError names both shapes on mismatch.

    >>> matmul(Tensor([[1, 2]]), Tensor([[3], [4]]))
    Tensor([[11.]], dtype=float32)
    """
    ### BEGIN SOLUTION
    left, right = as_array(a), as_array(b)
    if left is NotImplemented or right is NotImplemented:
        return NotImplemented
    left_shape, right_shape = np.shape(left), np.shape(right)
    if len(left_shape) == 0 or len(right_shape) == 0:
        raise ValueError(f"matmul needs arrays with at least one dimension, got shapes {left_shape} and {right_shape}")
    inner_right = right_shape[0] if len(right_shape) == 1 else right_shape[-2]
    if left_shape[-1] != inner_right:
        raise ValueError(f"matmul shape mismatch: {left_shape} @ {right_shape} "
                         f"(inner sizes {left_shape[-1]} and {inner_right} differ)")
    return Tensor(np.matmul(left, right))
    ### END SOLUTION

# %% [markdown]
# ### Test: matrix multiplication

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-tensor-matmul", "locked": true, "points": 2, "solution": false}
def test_unit_tensor_matmul():
    product = Tensor([[1.0, 2.0]]) @ Tensor([[3.0], [4.0]])
    assert isinstance(product, Tensor), f"@ should give a Tensor, got {type(product).__name__}"
    assert product.shape == (1, 1) and product.numpy()[0, 0] == 11.0, f"[[1, 2]] @ [[3], [4]] should be [[11]], got {product.numpy()}"
    a = Tensor(np.arange(6).reshape(2, 3))
    b = Tensor(np.arange(12).reshape(3, 4))
    assert np.allclose((a @ b).numpy(), np.arange(6).reshape(2, 3) @ np.arange(12).reshape(3, 4)), "a @ b disagrees with NumPy"
    try:
        batched = Tensor(np.ones((5, 2, 3))) @ Tensor(np.ones((5, 3, 4)))
    except ValueError as error:
        raise AssertionError(f"a batch of matrices, (5, 2, 3) @ (5, 3, 4), should multiply matrix by matrix: {error}") from None
    assert batched.shape == (5, 2, 4), f"(5, 2, 3) @ (5, 3, 4) should have shape (5, 2, 4), got {batched.shape}"
    try:
        vector_product = a @ Tensor([1.0, 2.0, 3.0])
    except (IndexError, ValueError) as error:
        raise AssertionError(f"a matrix times a vector, (2, 3) @ (3,), should work (a 1-d right side has its inner "
                             f"size on axis 0): {type(error).__name__}: {error}") from None
    assert np.allclose(vector_product.numpy(), [8.0, 26.0]), f"(2, 3) @ (3,) should be [8, 26], got {vector_product}"
    try:
        Tensor(2.0) @ a
    except ValueError as error:
        assert "()" in str(error), f"the error for a 0-d tensor should name its shape (), got: {error}"
    except Exception as error:
        raise AssertionError(f"a 0-d tensor @ a matrix should raise ValueError naming the shapes, "
                             f"got {type(error).__name__}: {error}") from None
    else:
        raise AssertionError("a 0-d tensor @ a matrix should raise ValueError (matmul needs at least one dimension)")
    try:
        a @ a
    except ValueError as error:
        assert "(2, 3)" in str(error), f"the error should name both shapes, got: {error}"
    else:
        raise AssertionError("(2, 3) @ (2, 3) should raise ValueError")

test_unit_tensor_matmul()
print("test_unit_tensor_matmul: passed")

# %% [markdown]
# ## 4. Reductions and reshaping
#
# A **reduction** collapses an axis: `sum`, `mean` and `max` over `axis=0` of a `(64, 10)` tensor give
# shape `(10,)`; with `keepdims=True` the axis stays as size 1, `(1, 10)`, which broadcasts back against
# the original (handy for `x - x.max(axis=1, keepdims=True)`, the first step of a stable softmax).
# With `axis=None` everything is reduced to a single number.
#
# **Reshaping** reads the same entries in the same order into a new shape (`(2, 3)` to `(3, 2)` or
# `(6,)`); one size may be `-1`, meaning "whatever is left". **Permuting** puts the axes in a new order:
# `permute(t, 1, 0)` turns `(2, 3)` into `(3, 2)` and moves entry `[i, j]` to `[j, i]`; `t.T` reverses
# all axes and `t.transpose(0, 1)` swaps two, as in PyTorch. All of these only change NumPy's strides
# when they can.

# %% [markdown]
# Given first: small helpers that let a Tensor (and, in modules 05 and 06, a Variable)
# accept PyTorch's spellings: `dim=`/`keepdim=` for `axis=`/`keepdims=`, a tuple of axes, `transpose(0, 1)`
# swapping two axes, `squeeze`, `unsqueeze`, `expand`, and `var(correction=)`. `docs/pytorch.md` lists
# every name.

# %%
#| export
def normalized_axes(axis, ndim: int) -> tuple:
    """`axis` (an int or a sequence of ints, negative counting from the end) as a tuple of axes in [0, ndim)."""
    axes = tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)
    for a in axes:
        if not -ndim <= a < ndim:
            raise IndexError(f"axis {a} is out of range for a tensor with {ndim} dimensions")
    return tuple(a % ndim for a in axes)


def reduction_axes(axis, ndim: int):
    """`axis` (an int, a tuple of ints or None) as a tuple of non-negative axes, or None for all of them.

    A 0-d tensor has nothing to reduce over: PyTorch accepts axis 0 or -1 there and reduces everything.
    """
    if axis is None:
        return None
    axes = normalized_axes(axis, max(ndim, 1))
    return axes if ndim else None


def axes_and_keepdims(ndim: int, axis=None, keepdims=False, *, dim=None, keepdim=None) -> tuple:
    """A reduction's axes and keepdims from NumPy's names (`axis`, `keepdims`) or PyTorch's (`dim`, `keepdim`)."""
    axis = axis if dim is None else dim
    return reduction_axes(axis, ndim), bool(keepdims if keepdim is None else keepdim)


def swapped_axes(ndim: int, dim0: int, dim1: int) -> tuple:
    """The permutation that swaps axes `dim0` and `dim1`, as PyTorch's `transpose(dim0, dim1)` does."""
    order = list(range(ndim))
    first, second = normalized_axes((dim0, dim1), max(ndim, 1))
    if ndim:
        order[first], order[second] = order[second], order[first]
    return tuple(order)


def squeezed_shape(shape: tuple, dim=None) -> tuple:
    """`shape` without its size-1 axes (or without `dim`, if that axis has size 1; PyTorch ignores others)."""
    dims = range(len(shape)) if dim is None else normalized_axes(dim, max(len(shape), 1))
    return tuple(size for axis, size in enumerate(shape) if not (axis in dims and size == 1))


def unsqueezed_shape(shape: tuple, dim: int) -> tuple:
    """`shape` with a new size-1 axis at position `dim` (negative counts from the end of the new shape)."""
    (position,) = normalized_axes(dim, len(shape) + 1)
    return shape[:position] + (1,) + shape[position:]


def expanded_shape(shape: tuple, sizes: tuple) -> tuple:
    """PyTorch's `expand(*sizes)`: the broadcast target, where -1 keeps the tensor's own size."""
    own = (None,) * (len(sizes) - len(shape)) + tuple(shape)
    if len(sizes) < len(shape) or any(size == -1 and have is None for size, have in zip(sizes, own)):
        raise ValueError(f"expand: cannot expand shape {tuple(shape)} to {sizes}")
    return tuple(have if size == -1 else size for size, have in zip(sizes, own))


def correction_of(correction=1, unbiased=None) -> int:
    """The divisor's correction of `var`/`std` (n - correction): PyTorch's `unbiased=False` means 0, True means 1."""
    return correction if unbiased is None else int(bool(unbiased))

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "tensor-reduce-reshape", "locked": false, "solution": true}
#| export
def reduce(op, tensor: Tensor, axis=None, keepdims=False) -> Tensor:
    """Apply a NumPy reduction (np.sum, np.mean, np.max) over `axis`; `keepdims` keeps reduced axes as size 1.

    >>> reduce(np.sum, Tensor([[1, 2], [3, 4]]), axis=0)
    Tensor([4., 6.], dtype=float32)
    """
    ### BEGIN SOLUTION
    return Tensor(op(tensor.data, axis=axis, keepdims=keepdims))
    ### END SOLUTION


def as_shape(sizes: tuple) -> tuple:
    """Sizes given one by one, `(3, 2)`, or as one tuple or list, `((3, 2),)`, as a plain tuple `(3, 2)`.

    Like PyTorch, `reshape`, `permute` and the constructors below accept both spellings.
    """
    return tuple(sizes[0]) if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)) else tuple(sizes)


def reshape(tensor: Tensor, *shape) -> Tensor:
    """The same entries in a new shape: `reshape(t, 3, 2)` or `reshape(t, (3, 2))`; one size may be -1."""
    shape = as_shape(shape)
    ### BEGIN SOLUTION
    try:
        return Tensor(tensor.data.reshape(shape))
    except ValueError:
        raise ValueError(f"cannot reshape a tensor of shape {tensor.shape} ({tensor.size} entries) into {shape}") from None
    ### END SOLUTION


def permute(tensor: Tensor, *dims) -> Tensor:
    """The axes in the order given, `permute(t, 2, 0, 1)` or `permute(t, (2, 0, 1))`; reversed when none are given."""
    dims = as_shape(dims)
    ### BEGIN SOLUTION
    return Tensor(np.transpose(tensor.data, dims or None))
    ### END SOLUTION

# %% [markdown]
# ### Test: reductions and reshaping

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-tensor-reduce-reshape", "locked": true, "points": 2, "solution": false}
def test_unit_tensor_reduce_reshape():
    t = Tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    assert t.sum().item() == 21.0, f"sum of everything should be 21, got {t.sum()}"
    assert t.sum(axis=0).numpy().tolist() == [5.0, 7.0, 9.0], f"sum over axis 0 should be [5, 7, 9], got {t.sum(axis=0)}"
    assert t.sum(axis=1, keepdims=True).shape == (2, 1), f"keepdims should keep a size-1 axis, got {t.sum(axis=1, keepdims=True).shape}"
    assert t.mean(axis=1).numpy().tolist() == [2.0, 5.0], f"mean over axis 1 should be [2, 5], got {t.mean(axis=1)}"
    assert t.max(axis=1).numpy().tolist() == [3.0, 6.0], f"max over axis 1 should be [3, 6], got {t.max(axis=1)}"
    assert t.sum().dtype == np.float32, f"a float32 sum should stay float32, got {t.sum().dtype}"
    assert t.reshape(3, 2).shape == (3, 2) and t.reshape((-1,)).shape == (6,), "reshape should accept sizes or a tuple"
    assert t.T.shape == (3, 2) and np.array_equal(t.T.numpy(), t.numpy().T), (
        f"t.T should move entry [i, j] to [j, i] (a reshape keeps the reading order, a transpose does not); got {t.T}")
    cube = np.arange(24.0).reshape(2, 3, 4)
    assert np.array_equal(permute(Tensor(cube), 2, 0, 1).numpy(), cube.transpose(2, 0, 1)), (
        "permute(t, 2, 0, 1) should put axis 2 first, then 0, then 1, moving the entries with their axes")
    try:
        reversed_cube = permute(Tensor(cube))
    except ValueError as error:
        raise AssertionError(f"permute(t) with no axes given should reverse them all: {error}") from None
    assert np.array_equal(reversed_cube.numpy(), cube.transpose()), (
        f"permute(t) with no axes given should reverse them all, (2, 3, 4) to (4, 3, 2); got {reversed_cube.shape}")
    try:
        t.reshape(4, 2)
    except ValueError as error:
        assert "(2, 3)" in str(error), f"the error should name the shape, got: {error}"
    else:
        raise AssertionError("reshaping 6 entries into (4, 2) should raise ValueError")

test_unit_tensor_reduce_reshape()
print("test_unit_tensor_reduce_reshape: passed")

# %% [markdown]
# ## 5. Making tensors
#
# Networks start from tensors of zeros (biases), ones, and random numbers (weights). Like PyTorch's,
# our constructors take the shape as separate sizes or as one tuple, and default to float32.
# `randn` takes a NumPy `Generator` so that an experiment can be repeated exactly from a seed.

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "tensor-constructors", "locked": false, "solution": true}
#| export
def zeros(*shape, dtype=np.float32) -> Tensor:
    """A tensor of zeros: `zeros(2, 3)` or `zeros((2, 3))`."""
    ### BEGIN SOLUTION
    return Tensor(np.zeros(as_shape(shape), dtype=dtype))
    ### END SOLUTION


def ones(*shape, dtype=np.float32) -> Tensor:
    """A tensor of ones: `ones(2, 3)` or `ones((2, 3))`."""
    ### BEGIN SOLUTION
    return Tensor(np.ones(as_shape(shape), dtype=dtype))
    ### END SOLUTION


def randn(*shape, dtype=np.float32, rng: np.random.Generator | None = None) -> Tensor:
    """A tensor of standard normal samples: `randn(2, 3, rng=np.random.default_rng(0))`."""
    ### BEGIN SOLUTION
    rng = rng if rng is not None else np.random.default_rng()
    return Tensor(rng.standard_normal(as_shape(shape)).astype(dtype))
    ### END SOLUTION

# %% [markdown]
# ### Test: constructors

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-tensor-constructors", "locked": true, "points": 1, "solution": false}
def test_unit_tensor_constructors():
    assert zeros(2, 3).shape == (2, 3) and zeros((2, 3)).numpy().sum() == 0, "zeros(2, 3) should be a (2, 3) tensor of 0"
    assert ones(4).numpy().tolist() == [1, 1, 1, 1], f"ones(4) should be four ones, got {ones(4)}"
    for name, made in {"zeros(2)": zeros(2), "ones(2)": ones(2), "randn(2)": randn(2)}.items():
        assert made.dtype == np.float32, f"{name} should default to float32, got {made.dtype}"
    assert ones(2, dtype=np.float64).dtype == np.float64, "constructors keep the dtype asked for"
    try:
        drawn = randn((2, 3), rng=np.random.default_rng(0))
    except TypeError as error:
        raise AssertionError(f"randn((2, 3)) should accept the shape as one tuple, like randn(2, 3): {error}") from None
    assert drawn.shape == (2, 3), f"randn((2, 3)) should have shape (2, 3), got {drawn.shape}"
    first, second = randn(3, 3, rng=np.random.default_rng(7)), randn(3, 3, rng=np.random.default_rng(7))
    assert np.array_equal(first.numpy(), second.numpy()), "the same seed should give the same numbers"
    big = randn(10_000, rng=np.random.default_rng(0)).numpy()
    assert abs(big.mean()) < 0.05 and abs(big.std() - 1) < 0.05, f"randn should be mean 0, std 1; got {big.mean():.3f}, {big.std():.3f}"

test_unit_tensor_constructors()
print("test_unit_tensor_constructors: passed")

# %% [markdown]
# ## 6. Systems analysis: what operations cost
#
# Two measurements on the Tensor you just built.
#
# 1. **Memory.** `nbytes` is `size x itemsize`: float32 halves the memory of float64.
# 2. **Time.** An elementwise add touches each number once, so its time grows linearly with size; a
#    square matmul does $n^3$ multiply-adds on $n^2$ numbers, so it grows much faster. For small
#    tensors neither dominates: the fixed cost of a Python call does. That fixed cost is why module 05
#    keeps its per-operation bookkeeping lean.

#
# Every systems analysis in the course times code the same way, with `best_time`: run it a few times
# and keep the fastest run, the one least disturbed by whatever else the machine was doing. Later
# modules import it from here, and `one_blas_thread` with it: the matrices of this course are small, and
# NumPy's BLAS splitting one product over two threads costs more than it saves (on a busy machine the
# second thread waits for a core and a product becomes many times slower), so timings are taken on one.

# %%
#| exporti
import contextlib
import time

try:
    from threadpoolctl import threadpool_limits
except ImportError:  # comes with scikit-learn; without it, BLAS runs as configured
    threadpool_limits = None


def best_time(fn, repeat: int = 5) -> float:
    """The fastest of `repeat` calls of `fn()`, in seconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def one_blas_thread():
    """NumPy's BLAS held to one thread while timing (`with one_blas_thread(): ...`)."""
    return threadpool_limits(1, "blas") if threadpool_limits else contextlib.nullcontext()

# %%
print(f"{'n':>6} {'float32 MB':>11} {'float64 MB':>11} {'add n*n (ms)':>13} {'matmul n*n (ms)':>16}")
for n in [64, 256, 1024]:
    a32, a64 = randn(n, n), randn(n, n, dtype=np.float64)
    print(f"{n:>6} {a32.numpy().nbytes / 1e6:>11.2f} {a64.numpy().nbytes / 1e6:>11.2f} "
          f"{best_time(lambda: a32 + a32) * 1e3:>13.3f} {best_time(lambda: a32 @ a32) * 1e3:>16.3f}")

tiny = Tensor([1.0])
per_call_us = best_time(lambda: [tiny + tiny for _ in range(1000)]) * 1e3
print(f"\nAdding two 1-element tensors: {per_call_us:.2f} microseconds per call (Python overhead, not arithmetic)")

# %% [markdown]
# ## 7. Reflection
#
# Answer in a sentence or three each. There are no single right answers; your reasoning is graded.

# %% [markdown]
# **Q1.** A model has 100 million parameters. How much memory do its weights take in float32, and in
# float64? Where besides the weights does training spend memory?

# %% [markdown] nbgrader={"schema_version": 3, "grade": true, "grade_id": "reflect-tensor-dtype", "locked": false, "points": 2, "solution": true}
# 400 MB in float32 and 800 MB in float64 (4 and 8 bytes a number). Training also holds a gradient
# for every weight, the optimizer's state (Adam keeps two more copies) and the activations saved for
# the backward pass, which grow with the batch size.

# %% [markdown]
# **Q2.** Broadcasting adds a `(10,)` bias to a `(64, 10)` batch without copying the bias 64 times.
# When you later need the gradient of the bias, which shape must it have, and how would you get it
# from a `(64, 10)` gradient?

# %% [markdown] nbgrader={"schema_version": 3, "grade": true, "grade_id": "reflect-tensor-broadcast", "locked": false, "points": 2, "solution": true}
# It must have the bias's own shape, `(10,)`. Each bias entry influenced all 64 rows, so its gradient
# is the sum of the `(64, 10)` gradient over the broadcast axis 0.

# %% [markdown]
# ## Summary
#
# You built `Tensor`: numeric data with a default dtype of float32, elementwise arithmetic that
# broadcasts and hands unknown operands to the other type, a matmul that names shapes when they do
# not fit, reductions, reshaping and constructors. Next, export it with
# `tito module complete 01_tensor`; module 05 builds automatic differentiation on top of it.
