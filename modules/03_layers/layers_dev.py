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
# # Layers: parameters, modules and the multilayer perceptron
#
# A network is a function with **parameters**: numbers that training adjusts. This module builds the
# bookkeeping that every network needs (find all parameters, switch between training and evaluation,
# save and restore the numbers) in one base class, `Module`, and the layers built on it: `Linear`,
# `Sequential`, `Flatten` and `Dropout`. With the activations of module 02 they make a multilayer
# perceptron (MLP):
#
# ```
# x (N, 64) -> Linear(64, 128) -> ReLU -> Linear(128, 10) -> logits (N, 10)
# ```
#
# **Objectives.** By the end of this module you can:
#
# - mark trainable arrays as `Parameter`s and find them all in a tree of modules, each shared one once;
# - switch a model between training and evaluation, and save and restore its numbers;
# - build `Linear` with Kaiming or Xavier initialisation, and chain layers with `Sequential`;
# - write inverted `Dropout`, and explain why initialisation decides whether a deep network trains.
#
# | You write here | It becomes | Used by |
# |---|---|---|
# | this notebook, `layers.ipynb` | `tinytorch.core.layers` | losses (04), optimizers (07), training (08) |

# %%
#| default_exp core.layers

# %%
#| export
from __future__ import annotations

import math

import numpy as np

from tinytorch.core.tensor import Tensor

# %%
# Module 02's activations, for the examples and tests below (the exported layers do not need them), and its
# `Traced` probe, with which the tests check that each forward pass stays in the graph.
from tinytorch.core.activations import ReLU, Traced, assert_in_graph

# %% [markdown]
# ## 1. Parameters: one class before and after autograd
#
# A layer's forward pass is written once, with operations Tensors and Variables share
# (`x @ self.weight + self.bias`). What changes when autograd arrives is only what the weights
# *are*: to be trained, a weight must be a leaf `Variable(array, requires_grad=True)`, so that
# `loss.backward()` leaves a gradient in `weight.grad`.
#
# So a layer makes its weights with `Parameter`, and only that class changes:
#
# - here, `Parameter` is a `Tensor`: the layers compute their forward math and the tests in this
#   module run, with no autograd at all;
# - module 06, once autograd is complete, gives this module a `Parameter` that is a `Variable` with
#   `requires_grad=True`, in one cell: the same layers, made after that, build a graph, and an optimizer
#   (module 07) can update them. This module never looks ahead to find out.
#
# There is never a second copy of a layer. `Parameter` also marks which attributes of a module are
# trainable (a mask or a cached input is a Tensor too, but not a parameter), exactly as
# `torch.nn.Parameter` does. A `Tensor @ Variable` product is a Variable (Python hands the operation
# to the Variable), so plain Tensor inputs work with Variable weights.
#
# One helper reads the NumPy array behind a parameter, whichever base it has: a Tensor keeps its
# array in `.data`; a Variable keeps a Tensor in `.data`, whose `.data` is the array. Saving,
# loading and (in module 07) updating parameters write into that array in place.

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "layers-parameter", "locked": false, "solution": true}
#| export
class Parameter(Tensor):
    """A trainable array: a Tensor here; module 06 replaces this class by a `Variable(requires_grad=True)`.

    >>> Parameter(np.zeros((2, 3))).shape
    (2, 3)
    """

    __slots__ = ()  # no per-instance dict: a Parameter is exactly as lean as a Tensor


def array_of(value) -> np.ndarray:
    """The NumPy array behind a Tensor or a Variable (the same object, so writes to it change the value)."""
    ### BEGIN SOLUTION
    data = value.data
    return data.data if isinstance(data, Tensor) else data
    ### END SOLUTION

# %% [markdown]
# ### Test: parameters

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-layers-parameter", "locked": true, "points": 1, "solution": false}
def test_unit_parameter():
    weight = Parameter(np.ones((2, 3), dtype=np.float32))
    assert isinstance(weight, Tensor), f"a Parameter should be a Tensor, got {type(weight).__mro__}"
    assert weight.shape == (2, 3) and weight.dtype == np.float32, f"expected a (2, 3) float32 parameter, got {weight.shape}, {weight.dtype}"
    array_of(weight)[0, 0] = 5.0
    assert weight.numpy()[0, 0] == 5.0, "array_of should return the parameter's own array, not a copy"
    inner = Tensor(np.zeros(3, dtype=np.float32))
    variable_like = Parameter(np.zeros(3, dtype=np.float32))
    variable_like.data = inner  # as module 06's Variable holds its numbers: a Tensor in .data
    array = array_of(variable_like)
    assert isinstance(array, np.ndarray), (
        f"array_of should reach through a Variable (whose .data is a Tensor) to its array, got a {type(array).__name__}")
    array[1] = 5.0
    assert inner.numpy()[1] == 5.0, "array_of(variable) should return the array inside its Tensor, not a copy"

test_unit_parameter()
print("test_unit_parameter: passed")

# %% [markdown]
# ## 2. `Module`: the bookkeeping every network shares
#
# A network is a tree of modules: an MLP holds layers, a layer holds parameters. `Module` walks that
# tree by looking at each module's attributes (`vars(self)`, in the order they were assigned):
#
# - an attribute that is a `Parameter` is one of this module's parameters;
# - an attribute that is a `Module` (or a list or tuple of modules) is a child, walked in turn.
#
# Names are paths through the tree, as in PyTorch: a model with `self.hidden = Linear(...)` has a
# parameter `hidden.weight`; in a `Sequential` the children are named by position, `0.weight`. A
# parameter shared by two layers is listed once, so an optimizer updates it once.
#
# On this walk sit the other duties:
#
# | method | what it does |
# |---|---|
# | `module(x)` | runs `module.forward(x)` |
# | `parameters()`, `named_parameters()` | every parameter, without and with its name |
# | `zero_grad()` | sets every parameter's `.grad` to `None` (gradients accumulate, so clear them before each backward) |
# | `train()`, `eval()` | set `.training` on the module and all its children (Dropout behaves differently in each) |
# | `state_dict()` | `{name: copy of the parameter's array}`: what a checkpoint stores |
# | `load_state_dict(state)` | writes such a dict back into the parameters, checking names and shapes first |
#
# `training` is a class attribute (`True`), so a subclass need not call `super().__init__()`: its
# modules start in training mode, and `eval()` sets the attribute on each instance.

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "layers-module", "locked": false, "solution": true}
#| export
class Module:
    """Base of every layer and model: finds parameters and children by looking at the attributes.

    >>> class Affine(Module):
    ...     def __init__(self):
    ...         self.scale = Parameter(np.ones(3))
    ...     def forward(self, x):
    ...         return x * self.scale
    >>> [name for name, _ in Affine().named_parameters()]
    ['scale']
    """

    training = True

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def named_children(self) -> list[tuple[str, Module]]:
        """The modules held directly by this one, as (name, module); a list attribute gives name.0, name.1, ..."""
        children = []
        for name, value in vars(self).items():
            if isinstance(value, Module):
                children.append((name, value))
            elif isinstance(value, (list, tuple)):
                children.extend((f"{name}.{index}", item) for index, item in enumerate(value) if isinstance(item, Module))
        return children

    def named_modules(self, prefix: str = "") -> list[tuple[str, Module]]:
        """This module and all below it, as (name prefix, module): ("", self), ("hidden.", ...), ..."""
        ### BEGIN SOLUTION
        found = [(prefix, self)]
        for name, child in self.named_children():
            found.extend(child.named_modules(f"{prefix}{name}."))
        return found
        ### END SOLUTION

    def named_parameters(self) -> list[tuple[str, Parameter]]:
        """Every parameter in the tree as (dotted name, parameter), each shared parameter once."""
        ### BEGIN SOLUTION
        found, seen = [], set()
        for prefix, module in self.named_modules():
            for name, value in vars(module).items():
                if isinstance(value, Parameter) and id(value) not in seen:
                    seen.add(id(value))
                    found.append((prefix + name, value))
        return found
        ### END SOLUTION

    def parameters(self) -> list[Parameter]:
        return [parameter for _, parameter in self.named_parameters()]

    def zero_grad(self) -> None:
        """Forget the gradients of the last backward pass (PyTorch's default: set them to None)."""
        ### BEGIN SOLUTION
        for parameter in self.parameters():
            parameter.grad = None
        ### END SOLUTION

    def train(self, mode: bool = True) -> Module:
        """Put this module and every child into training mode (or evaluation mode with mode=False)."""
        ### BEGIN SOLUTION
        for _, module in self.named_modules():
            module.training = mode
        return self
        ### END SOLUTION

    def eval(self) -> Module:
        return self.train(False)

    def state_dict(self) -> dict[str, np.ndarray]:
        """{parameter name: a copy of its array}; a copy, so later training does not change a saved state."""
        ### BEGIN SOLUTION
        return {name: array_of(parameter).copy() for name, parameter in self.named_parameters()}
        ### END SOLUTION

    def load_state_dict(self, state: dict) -> None:
        """Copy arrays from `state` into the parameters of the same names, in place.

        Checks everything first, so a bad checkpoint changes nothing: a missing or unexpected name, or
        an array of the wrong shape, raises a ValueError that names it.
        """
        ### BEGIN SOLUTION
        own = dict(self.named_parameters())
        missing = [name for name in own if name not in state]
        unexpected = [name for name in state if name not in own]
        if missing or unexpected:
            raise ValueError(f"state_dict does not match {type(self).__name__}: missing {missing}, unexpected {unexpected}")
        for name, parameter in own.items():
            shape = np.shape(state[name])
            if shape != parameter.shape:
                raise ValueError(f"state_dict entry '{name}' has shape {shape}, but the parameter has shape {parameter.shape}")
        for name, parameter in own.items():
            np.copyto(array_of(parameter), np.asarray(state[name]), casting="same_kind")
        ### END SOLUTION

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        children = self.named_children()
        if not children:
            return f"{type(self).__name__}({self.extra_repr()})"
        lines = [f"  ({name}): " + repr(child).replace("\n", "\n  ") for name, child in children]
        return f"{type(self).__name__}(\n" + "\n".join(lines) + "\n)"

# %% [markdown]
# ### Test: Module

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-layers-module", "locked": true, "points": 2, "solution": false}
class Scale(Module):
    def __init__(self, size):
        self.factor = Parameter(np.full(size, 2.0, dtype=np.float32))
        self.note = Tensor(np.zeros(size))  # a Tensor, but not a parameter

    def forward(self, x):
        return x * self.factor


class Model(Module):
    def __init__(self):
        self.first = Scale(3)
        self.blocks = [Scale(3), Scale(3)]
        self.offset = Parameter(np.zeros(3, dtype=np.float32))
        self.blocks[1].factor = self.blocks[0].factor  # one parameter used twice: listed once

    def forward(self, x):
        for block in [self.first, *self.blocks]:
            x = block(x)
        return x + self.offset


def test_unit_module():
    class Wrapper(Module):
        def __init__(self, inner):
            self.inner = inner

    model = Model()
    names = [name for name, _ in model.named_parameters()]
    expected = ["offset", "first.factor", "blocks.0.factor"]
    assert len(names) == len(set(names)) == 3, f"a parameter used twice must be listed once (the optimizer would step it twice), got {names}"
    assert names == expected, f"expected parameter names {expected} (own first, then children), got {names}"
    nested = [name for name, _ in Wrapper(model).named_parameters()]
    assert nested == [f"inner.{name}" for name in expected], f"names should be full paths from the top module, got {nested}"
    assert np.allclose(model(Tensor([1.0, 1.0, 1.0])).numpy(), 8.0), "forward should be reached through __call__"

    assert model.training and model.blocks[1].training, "modules start in training mode"
    assert model.eval() is model, "eval() should return the module"
    assert not model.training, "eval() should set training to False: train(mode) must use its mode"
    assert not model.blocks[1].training, "eval() should reach every child"
    model.train()
    assert model.first.training, "train() should reach every child"

    for parameter in model.parameters():
        parameter.grad = np.ones(parameter.shape)
    model.zero_grad()
    assert all(parameter.grad is None for parameter in model.parameters()), "zero_grad should set every .grad to None"

test_unit_module()
print("test_unit_module: passed")

# %% [markdown]
# ### Test: state_dict and load_state_dict

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-layers-state-dict", "locked": true, "points": 2, "solution": false}
def test_unit_state_dict():
    model = Model()
    expected = ["offset", "first.factor", "blocks.0.factor"]
    state = model.state_dict()
    assert sorted(state) == sorted(expected) and all(isinstance(v, np.ndarray) for v in state.values()), \
        f"state_dict should map each parameter name to an array, got {state}"
    array_of(model.offset)[:] = 7.0
    assert state["offset"][0] == 0.0, "state_dict should hold copies, not the live arrays"
    model.load_state_dict(state)
    assert model.offset.numpy()[0] == 0.0, "load_state_dict should write the saved values back"
    held = array_of(model.offset)
    model.load_state_dict({name: value.astype(np.float64) + 1 for name, value in state.items()})
    assert model.offset.dtype == np.float32, (
        f"loading float64 arrays should keep the float32 parameters float32 (write into them), got {model.offset.dtype}")
    assert array_of(model.offset) is held and held[0] == 1.0, (
        "load_state_dict should write into the parameters' own arrays in place (np.copyto), not replace them: "
        "an optimizer holds those arrays")
    model.load_state_dict(state)
    half_bad = {**{name: value + 1 for name, value in state.items()}, "blocks.0.factor": np.zeros(5)}
    try:
        model.load_state_dict(half_bad)
    except ValueError:
        pass
    assert model.offset.numpy()[0] == 0.0, "a state that fails a check must change nothing: check every entry before writing"
    for bad, words in [({**state, "extra": np.zeros(1)}, "extra"), ({k: v for k, v in state.items() if k != "offset"}, "offset"),
                       ({**state, "offset": np.zeros(4)}, "(4,)"), ({**state, "offset": np.zeros((1, 3))}, "(1, 3)")]:
        try:
            model.load_state_dict(bad)
        except ValueError as error:
            assert words in str(error), f"the error should name {words!r}: {error}"
        except Exception as error:
            raise AssertionError(f"a state with a problem about {words!r} should raise ValueError, got {type(error).__name__}: {error}") from None
        else:
            raise AssertionError(f"load_state_dict should refuse a state with a problem about {words!r}")

test_unit_state_dict()
print("test_unit_state_dict: passed")

# %% [markdown]
# ## 3. `Linear`: an affine map with a good starting point
#
# $$y = xW + b, \qquad x: (N, \text{in}),\ W: (\text{in}, \text{out}),\ b: (\text{out},),\ y: (N, \text{out}).$$
#
# We store $W$ as `(in_features, out_features)` so the forward pass is `x @ W` with no transpose (PyTorch
# stores the transpose, `(out, in)`, and computes `x @ W.T`). The bias broadcasts over the batch axis,
# which module 05 undoes for its gradient by summing over that axis.
#
# **Initialisation** decides whether a deep network can train at all. Each output of a layer sums
# `in_features` products; if the weights have variance $\mathrm{Var}(W)$ and the inputs variance
# $v$, the outputs have variance $\text{in} \cdot \mathrm{Var}(W) \cdot v$. Too large and the signal
# explodes layer after layer; too small and it dies. Two rules keep it steady:
#
# - **Kaiming (He)**, for ReLU networks: $\mathrm{Var}(W) = 2/\text{in}$ (ReLU zeroes half the signal,
#   the factor 2 puts it back). Uniform on $[-a, a]$ has variance $a^2/3$, so $a = \sqrt{6/\text{in}}$.
# - **Xavier (Glorot)**, for tanh and sigmoid: $\mathrm{Var}(W) = 2/(\text{in} + \text{out})$, so
#   $a = \sqrt{6/(\text{in} + \text{out})}$.
#
# Biases start at zero. An optional `rng` (a NumPy `Generator`) makes the initial weights
# reproducible; `dtype=np.float64` gives the precision gradient checks need. The forward pass checks
# the input's last axis, so a wrong shape fails with a message that names the layer.

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "layers-linear", "locked": false, "solution": true}
#| export
INITS = ("kaiming", "xavier")


class Linear(Module):
    """y = x @ weight + bias, with weight of shape (in_features, out_features).

    `weight` is uniform on [-a, a] (`rng.uniform`), a = sqrt(6 / in_features) for "kaiming" or
    sqrt(6 / (in_features + out_features)) for "xavier", in `dtype`; `bias` is zeros of shape
    (out_features,), or None with bias=False. Both are Parameters.

    >>> layer = Linear(3, 2, rng=np.random.default_rng(0))
    >>> layer(Tensor(np.ones((4, 3)))).shape
    (4, 2)
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *, init: str = "kaiming",
                 rng: np.random.Generator | None = None, dtype=np.float32):
        if int(in_features) != in_features or int(out_features) != out_features or in_features < 1 or out_features < 1:
            raise ValueError(f"Linear needs positive integer sizes, got in_features={in_features}, out_features={out_features}")
        if init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {init!r}")
        self.in_features, self.out_features = int(in_features), int(out_features)
        ### BEGIN SOLUTION
        rng = rng if rng is not None else np.random.default_rng()
        fan = self.in_features if init == "kaiming" else self.in_features + self.out_features
        bound = math.sqrt(6.0 / fan)  # uniform on [-bound, bound] has variance bound**2 / 3
        self.weight = Parameter(rng.uniform(-bound, bound, (self.in_features, self.out_features)).astype(dtype))
        self.bias = Parameter(np.zeros(self.out_features, dtype=dtype)) if bias else None
        ### END SOLUTION

    def forward(self, x):
        """x @ weight (+ bias); a ValueError names the layer when x's last axis is not in_features."""
        if x.shape[-1:] != (self.in_features,):
            raise ValueError(f"{self!r} expects inputs whose last axis has size {self.in_features}, got shape {x.shape}")
        ### BEGIN SOLUTION
        out = x @ self.weight
        return out if self.bias is None else out + self.bias
        ### END SOLUTION

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"

# %% [markdown]
# ### Test: Linear

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-layers-linear", "locked": true, "points": 4, "solution": false}
def test_unit_linear():
    layer = Linear(3, 2, rng=np.random.default_rng(0))
    names = [name for name, _ in layer.named_parameters()]
    assert names == ["weight", "bias"], f"Linear's parameters should be ['weight', 'bias'], got {names}"
    assert layer.weight.shape == (3, 2) and layer.bias.shape == (2,), f"weight (3, 2) and bias (2,), got {layer.weight.shape}, {layer.bias.shape}"
    assert layer.weight.dtype == np.float32, f"weights should default to float32, got {layer.weight.dtype}"
    assert layer.bias.dtype == np.float32, f"the bias should have the weights' dtype, float32, got {layer.bias.dtype}"
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    out = layer(Tensor(x))
    expected = x @ layer.weight.numpy() + layer.bias.numpy()
    assert out.shape == (4, 2) and np.allclose(out.numpy(), expected, atol=1e-5), f"expected {expected}, got {out.numpy()}"
    assert out.dtype == np.float32, f"a float32 input through a float32 layer should stay float32, got {out.dtype}"
    assert np.array_equal(Linear(3, 2, rng=np.random.default_rng(0)).weight.numpy(), layer.weight.numpy()), \
        "the same rng seed should give the same weights"
    no_bias = Linear(3, 2, bias=False, rng=np.random.default_rng(0))
    assert no_bias.bias is None and len(no_bias.parameters()) == 1, "bias=False means no bias"
    try:
        plain = no_bias(Tensor(x))
    except TypeError as error:
        raise AssertionError(f"Linear(3, 2, bias=False) should compute x @ weight alone (there is no bias to add): {error}") from None
    assert np.allclose(plain.numpy(), x @ no_bias.weight.numpy(), atol=1e-5), (
        f"Linear(3, 2, bias=False) should compute x @ weight, got {plain.numpy()}")
    assert Linear(3, 2, dtype=np.float64).weight.dtype == np.float64, "dtype=np.float64 should give float64 weights"

    wide = Linear(1000, 500, rng=np.random.default_rng(1))
    mean = wide.weight.numpy().mean()
    assert abs(mean) < 0.001, f"Kaiming weights should be centred on 0 (uniform on [-a, a]), got mean {mean:.4f}"
    std, expected_std = wide.weight.numpy().std(), math.sqrt(2 / 1000)
    assert abs(std / expected_std - 1) < 0.02, f"Kaiming weights should have std sqrt(2/in) = {expected_std:.4f}, got {std:.4f}"
    xavier = Linear(1000, 500, init="xavier", rng=np.random.default_rng(1)).weight.numpy().std()
    assert abs(xavier / math.sqrt(2 / 1500) - 1) < 0.02, f"Xavier weights should have std sqrt(2/(in+out)), got {xavier:.4f}"
    assert np.all(np.abs(wide.weight.numpy()) <= math.sqrt(6 / 1000)), "Kaiming-uniform weights lie within sqrt(6/in)"
    assert np.all(Linear(4, 3).bias.numpy() == 0), "biases should start at zero"
    assert repr(layer) == "Linear(in_features=3, out_features=2, bias=True)", f"unexpected repr {layer!r}"
    traced = Linear(3, 2)
    traced.weight, traced.bias = Traced(traced.weight.numpy()), Traced(traced.bias.numpy())
    x_traced = Traced(x)
    out = traced(x_traced)
    for source, name in [(x_traced, "its input"), (traced.weight, "its weight"), (traced.bias, "its bias")]:
        assert_in_graph(out, source, "Linear", name)
    for make in [lambda: layer(Tensor(np.ones((4, 5)))), lambda: Linear(0, 3), lambda: Linear(3, 2, init="normal")]:
        try:
            make()
        except ValueError:
            continue
        raise AssertionError("a wrong input shape, a zero size or an unknown init should raise ValueError")

test_unit_linear()
print("test_unit_linear: passed")

# %% [markdown]
# ## 4. `Sequential` and `Flatten`
#
# `Sequential(a, b, c)` is the composition $c(b(a(x)))$: the output of each layer is the input of the
# next. Its layers can be modules or any callable, such as the activations of module 02 (they have
# no parameters, so the parameter walk can pass them by). Children are named by position, so an MLP's
# parameters are `0.weight, 0.bias, 2.weight, 2.bias`, the names PyTorch gives them.
#
# `Flatten` turns a batch of images `(N, 8, 8)` into a batch of vectors `(N, 64)` for a `Linear`
# layer: one `reshape`, keeping the batch axis.

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "layers-sequential", "locked": false, "solution": true}
#| export
class Sequential(Module):
    """Applies its layers in order.

    >>> from tinytorch.core.activations import ReLU
    >>> model = Sequential(Linear(4, 8), ReLU(), Linear(8, 2))
    >>> [name for name, _ in model.named_parameters()]
    ['0.weight', '0.bias', '2.weight', '2.bias']
    """

    def __init__(self, *layers):
        self.layers = list(layers)

    def named_children(self) -> list[tuple[str, Module]]:
        return [(str(index), layer) for index, layer in enumerate(self.layers) if isinstance(layer, Module)]

    def forward(self, x):
        """Each layer applied to the output of the one before."""
        ### BEGIN SOLUTION
        for layer in self.layers:
            x = layer(x)
        return x
        ### END SOLUTION

    def __getitem__(self, index):
        return self.layers[index]

    def __len__(self) -> int:
        return len(self.layers)

    def __repr__(self) -> str:
        lines = [f"  ({index}): " + repr(layer).replace("\n", "\n  ") for index, layer in enumerate(self.layers)]
        return "Sequential(\n" + "\n".join(lines) + "\n)"


class Flatten(Module):
    """(N, d1, d2, ...) -> (N, d1 * d2 * ...)."""

    def forward(self, x):
        """One reshape that keeps the first (batch) axis."""
        ### BEGIN SOLUTION
        return x.reshape(x.shape[0], -1)
        ### END SOLUTION

# %% [markdown]
# ### Test: Sequential and Flatten

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-layers-sequential", "locked": true, "points": 3, "solution": false}
def test_unit_sequential():
    flat = Flatten()(Tensor(np.zeros((7, 3, 4, 5))))
    assert flat.shape == (7, 60), f"Flatten should keep the batch axis and merge the rest: (7, 3, 4, 5) -> (7, 60), got {flat.shape}"
    rng = np.random.default_rng(0)
    model = Sequential(Flatten(), Linear(4, 8, rng=rng), ReLU(), Linear(8, 3, rng=rng))
    names = [name for name, _ in model.named_parameters()]
    expected_names = ["1.weight", "1.bias", "3.weight", "3.bias"]
    assert names == expected_names, f"expected {expected_names}, got {names}"
    images = rng.standard_normal((5, 2, 2)).astype(np.float32)
    out = model(Tensor(images))
    w1, b1, w2, b2 = (p.numpy() for p in model.parameters())
    expected = np.maximum(images.reshape(5, 4) @ w1 + b1, 0) @ w2 + b2
    assert out.shape == (5, 3), f"expected output shape (5, 3), got {out.shape}"
    assert np.allclose(out.numpy(), expected, atol=1e-5), f"Sequential should chain its layers: expected {expected}, got {out.numpy()}"
    assert len(model) == 4 and isinstance(model[1], Linear), "Sequential should support len() and indexing"
    assert "(2): ReLU()" in repr(model), f"the repr should list every layer, got:\n{model!r}"
    model.eval()
    assert not model[1].training and not model[3].training, "eval() on a Sequential should reach its layers"

test_unit_sequential()
print("test_unit_sequential: passed")

# %% [markdown]
# ## 5. `Dropout`
#
# Dropout fights overfitting: during training it sets each input to zero with probability $p$, so
# no unit can rely on any particular other unit. To keep the expected value of each entry unchanged,
# the survivors are scaled up by $1/(1-p)$ ("inverted dropout"):
#
# $$\mathrm{Dropout}(x)_i = \frac{m_i}{1-p}\, x_i, \qquad m_i \sim \mathrm{Bernoulli}(1 - p),
#   \qquad \mathbb{E}[\mathrm{Dropout}(x)_i] = x_i.$$
#
# In evaluation mode (`model.eval()`) it does nothing, so predictions are deterministic and need no
# rescaling. The mask is a constant array, and multiplying by it is one operation, whose gradient is
# the same scaled mask: dropped units get no gradient for this example. With $p = 1$ everything is
# dropped and the output is zero.

# %% nbgrader={"schema_version": 3, "grade": false, "grade_id": "layers-dropout", "locked": false, "solution": true}
#| export
class Dropout(Module):
    """Zeroes each entry with probability p and scales the rest by 1/(1-p), in training mode only.

    >>> Dropout(0.5).eval()(Tensor([1.0, 2.0]))
    Tensor([1., 2.], dtype=float32)
    """

    def __init__(self, p: float = 0.5, rng: np.random.Generator | None = None):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability must be between 0 and 1, got {p}")
        self.p = p
        self.rng = rng if rng is not None else np.random.default_rng()

    def forward(self, x):
        """In training mode, x times a constant mask: 0 with probability p, else 1/(1-p); in eval mode, x itself."""
        ### BEGIN SOLUTION
        if not self.training or self.p == 0.0:
            return x
        keep = self.rng.random(x.shape) >= self.p
        scale = 0.0 if self.p == 1.0 else 1.0 / (1.0 - self.p)
        return x * (keep * scale).astype(x.dtype)
        ### END SOLUTION

    def extra_repr(self) -> str:
        return f"p={self.p}"

# %% [markdown]
# ### Test: Dropout

# %% nbgrader={"schema_version": 3, "grade": true, "grade_id": "test-layers-dropout", "locked": true, "points": 2, "solution": false}
def test_unit_dropout():
    x = Tensor(np.ones((200, 500), dtype=np.float32))
    dropout = Dropout(0.3, rng=np.random.default_rng(0))
    out = dropout(x).numpy()
    assert np.all(x.numpy() == 1), "Dropout changed its input in place: return x times the mask, a new tensor"
    assert not np.all(out == out[0]), "every entry needs its own coin, but all rows share one mask: draw it with x's shape"
    dropped = (out == 0).mean()
    assert abs(dropped - 0.3) < 0.01, f"about 30% of entries should be zero, got {dropped:.3f}"
    assert np.allclose(out[out != 0], 1 / 0.7), f"survivors should be scaled by 1/(1-p) = {1 / 0.7:.4f}, got {np.unique(out)}"
    assert abs(out.mean() - 1.0) < 0.01, f"the mean should stay about 1, got {out.mean():.4f}"
    assert out.dtype == np.float32, f"Dropout should keep float32, got {out.dtype}"
    assert not np.array_equal(dropout(x).numpy(), out), "each call should draw a new mask from self.rng, got the same one twice"
    assert np.array_equal(dropout.eval()(x).numpy(), x.numpy()), "in eval mode Dropout should return its input unchanged"
    try:
        everything = Dropout(1.0)(x).numpy()
    except ZeroDivisionError as error:
        raise AssertionError(f"Dropout(1.0) should zero everything (scale 0, there is no 1/(1-p) = 1/0): {error}") from None
    assert np.all(everything == 0), "Dropout(1.0) should zero everything in training mode"
    assert np.array_equal(Dropout(0.0)(x).numpy(), x.numpy()), "Dropout(0.0) should change nothing"
    traced = Traced(np.ones((4, 5), dtype=np.float32))
    assert_in_graph(Dropout(0.5)(traced), traced, "Dropout")
    try:
        Dropout(1.5)
    except ValueError:
        pass
    else:
        raise AssertionError("Dropout(1.5) should raise ValueError")

test_unit_dropout()
print("test_unit_dropout: passed")

# %% [markdown]
# ## 6. Looking ahead: the same layers, trained
#
# With modules 05 and 06 complete, the package's layers (`tinytorch.core.layers`, exported from this notebook) make
# their weights with module 06's `Parameter`, a Variable, so a loss computed from an MLP's output can be
# differentiated with respect to all of them. This cell shows it when it can.

# %%
import tinytorch.core.layers as package_layers

try:
    from tinytorch.core.operations import Parameter as TrainableParameter
    TrainableParameter(np.zeros(1)).exp()  # modules 05 and 06 still to be written (stubs) raise NotImplementedError
except (ImportError, NotImplementedError):
    print("autograd (modules 05 and 06) is not complete yet: parameters are Tensors; come back after module 06.")
else:
    mlp = package_layers.Sequential(package_layers.Linear(4, 8, rng=np.random.default_rng(0)), ReLU(),
                                    package_layers.Linear(8, 1, rng=np.random.default_rng(1)))
    (mlp(Tensor(np.ones((3, 4), dtype=np.float32))) ** 2).mean().backward()
    for name, parameter in mlp.named_parameters():
        print(f"{name:9} {type(parameter).__name__:9} grad shape {parameter.grad.shape}")

# %% [markdown]
# ## 7. Systems analysis: size, initialisation, batching
#
# **Size.** Parameters and their float32 memory for a few MLPs. Training needs more than this: a
# gradient per parameter, optimizer state (module 07) and the activations kept for backward.

# %%
print(f"{'MLP':22} {'parameters':>11} {'float32 KB':>11}")
for sizes in [(64, 128, 10), (784, 256, 10), (784, 512, 512, 10)]:
    layers = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        layers += [Linear(fan_in, fan_out), ReLU()]
    count = sum(parameter.size for parameter in Sequential(*layers[:-1]).parameters())
    print(f"{'-'.join(map(str, sizes)):22} {count:>11,} {count * 4 / 1024:>11.1f}")

# %% [markdown]
# **Initialisation.** Push 512 standard-normal inputs through 20 layers of `Linear(256, 256)` and
# ReLU, and print the standard deviation of the activations after layers 1, 5, 10 and 20, for four
# initial weight scales. (The naive ones are written in with `load_state_dict`.)

# %%
def activation_std(scale, depth=20, width=256, seed=0):
    rng = np.random.default_rng(seed)
    x, stds = Tensor(rng.standard_normal((512, width)).astype(np.float32)), {}
    for layer_number in range(1, depth + 1):
        layer = Linear(width, width, init="xavier" if scale == "xavier" else "kaiming", rng=rng)
        if isinstance(scale, float):
            layer.load_state_dict({"weight": rng.standard_normal((width, width)) * scale, "bias": np.zeros(width)})
        x = ReLU()(layer(x))
        stds[layer_number] = float(x.numpy().astype(np.float64).std())  # float64: the exploding case overflows float32 squares
    return stds


print(f"{'weights':16} {'layer 1':>10} {'layer 5':>10} {'layer 10':>10} {'layer 20':>10}")
for label, scale in [("normal, std 0.01", 0.01), ("normal, std 1", 1.0), ("xavier", "xavier"), ("kaiming", "kaiming")]:
    stds = activation_std(scale)
    print(f"{label:16} " + " ".join(f"{stds[n]:>10.3g}" for n in (1, 5, 10, 20)))

# %% [markdown]
# Each layer multiplies the signal's scale by about $\sigma_W \sqrt{256/2}$. With std 0.01 that is
# 0.11: the signal shrinks ninefold per layer and vanishes; with std 1 it is 11.3: it explodes; Xavier, designed for tanh, loses a factor of
# $\sqrt2$ per ReLU layer; Kaiming keeps it steady. Gradients flow back through the same weights, so
# they vanish or explode the same way.
#
# **Batching.** The time of a forward pass of the 64-128-10 MLP, in total and per example, for
# growing batches. A batch of one pays the fixed Python cost of every operation for one example; a
# batch of 256 shares it among 256, and the matmuls run at BLAS speed.

# %%
from tinytorch.core.tensor import best_time


mlp = Sequential(Linear(64, 128), ReLU(), Linear(128, 10))
print(f"{'batch':>6} {'forward (us)':>13} {'per example (us)':>17}")
for batch_size in [1, 16, 256, 4096]:
    inputs = Tensor(np.random.default_rng(0).standard_normal((batch_size, 64)).astype(np.float32))
    elapsed = best_time(lambda: mlp(inputs)) * 1e6
    print(f"{batch_size:>6} {elapsed:>13.1f} {elapsed / batch_size:>17.2f}")

# %% [markdown]
# ## 8. Reflection
#
# Answer in a sentence or three each.

# %% [markdown]
# **Q1.** `Parameter` is a `Tensor` before autograd (modules 05-06) and a `Variable` after. What would go wrong if
# instead module 05 shipped its own `Linear` class built on Variables, next to the one written here?

# %% [markdown] nbgrader={"schema_version": 3, "grade": true, "grade_id": "reflect-layers-one-path", "locked": false, "points": 2, "solution": true}
# There would be two versions of the same math that could drift apart: a fix or a new feature (a check,
# an initialisation) in one would be missing in the other, code importing the wrong one would silently
# not train, and every test would have to be written twice. With one class, whatever the tests of this
# module prove about `Linear` holds for the layer that is trained later.

# %% [markdown]
# **Q2.** Why does `Dropout` scale the kept entries by $1/(1-p)$ during training, rather than scaling
# by $(1-p)$ at evaluation time? What would happen if you forgot to call `model.eval()` before
# measuring accuracy?

# %% [markdown] nbgrader={"schema_version": 3, "grade": true, "grade_id": "reflect-layers-dropout", "locked": false, "points": 2, "solution": true}
# Both keep the expected activations equal between training and evaluation; scaling during training
# leaves the evaluation path untouched, so a deployed model needs no dropout code at all. Forgetting
# `eval()` keeps dropping units at random: predictions become noisy and differ between runs, and
# accuracy is usually lower than the model's real accuracy.

# %% [markdown]
# ## Summary
#
# `Parameter` marks trainable arrays and becomes a `Variable` once autograd exists; `Module` walks
# the tree of modules for parameters, modes and state; `Linear` starts with Kaiming or Xavier weights;
# `Sequential`, `Flatten` and `Dropout` complete the kit for an MLP. Export with
# `tito module complete 03_layers`; module 04 measures how wrong the MLP's outputs are.
