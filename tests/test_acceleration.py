"""Module 13: each fused operation is one graph node that computes what the composed operations compute (to 1e-6
in float64, gradients included) and passes the reference gradient checker; FusedGPT is module 11's GPT with them, whose
checkpoints load into GPT and back (PyTorch's side: tests/test_acceleration_torch.py)."""
from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from tinytorch.core import transformer
from tinytorch.core.acceleration import (FusedCrossEntropyLoss, FusedGPT, FusedLayerNorm, FusedMultiHeadAttention,
                                         causal_attention, fused_layer_norm, softmax_cross_entropy)
from tinytorch.core.attention import LayerNorm, MultiHeadAttention, layer_norm, scaled_dot_product_attention
from tinytorch.core.autograd import Variable, no_grad
from tinytorch.core.losses import CrossEntropyLoss
from tinytorch.core.operations import gradcheck
from tinytorch.core.profiling import Profiler
from tinytorch.core.tensor import Tensor
from tinytorch.core.transformer import GPT, PerPositionLogits

pytestmark = pytest.mark.module("acceleration")


def normal(*shape, seed=0, dtype=np.float64):
    return Variable(np.random.default_rng(seed).standard_normal(shape).astype(dtype), requires_grad=True)


def graph_names(root) -> set:
    names, stack, seen = set(), [root.grad_fn], set()
    while stack:
        node = stack.pop()
        if node is None or not hasattr(node, "edges") or id(node) in seen:
            continue
        seen.add(id(node))
        names.add(node.name)
        stack.extend(source for source, _ in node.edges)
    return names


@pytest.mark.parametrize("shape", [(7, 5), (3, 5, 4)])
def test_fused_cross_entropy_equals_module_04s(shape):
    logits = normal(*shape)
    targets = np.random.default_rng(1).integers(0, 5, (shape[0], *shape[2:]))
    twin = Variable(logits.numpy().copy(), requires_grad=True)
    fused, composed = FusedCrossEntropyLoss()(logits, targets), CrossEntropyLoss()(twin, targets)
    assert abs(fused.item() - composed.item()) < 1e-6
    fused.backward()
    composed.backward()
    np.testing.assert_allclose(logits.grad, twin.grad, atol=1e-6)
    assert "SoftmaxCrossEntropy" in graph_names(fused) and "LogSoftmax" not in graph_names(fused)


def test_fused_cross_entropy_is_one_node_checked_numerically_and_keeps_float32():
    targets = np.array([2, 0, 1, 1])
    loss = softmax_cross_entropy(normal(4, 3), targets)
    assert loss.grad_fn.name == "SoftmaxCrossEntropy" and len(loss.grad_fn.edges) == 1
    assert gradcheck(lambda x: softmax_cross_entropy(x, targets), normal(4, 3, seed=2))
    small = softmax_cross_entropy(normal(4, 3, dtype=np.float32), targets)
    assert small.numpy().dtype == np.float32
    small.backward()
    assert small.grad_fn is not None


def test_fused_cross_entropy_refuses_bad_targets_naming_them():
    with pytest.raises(ValueError, match="out of range"):
        softmax_cross_entropy(normal(2, 3), [0, 3])
    with pytest.raises(ValueError, match=r"targets of shape \(2,\)"):
        softmax_cross_entropy(normal(2, 3), [[0, 1]])
    with pytest.raises(ValueError, match=r"logits of shape \(N, C\)"):
        softmax_cross_entropy(normal(2, 3, 4), [0, 1])
    with pytest.raises(ValueError, match="whole numbers"):
        softmax_cross_entropy(normal(2, 3), [0.5, 1])


def test_causal_attention_equals_the_composed_form_forward_and_backward():
    q, k, v = normal(2, 3, 6, 4, seed=0), normal(2, 3, 6, 4, seed=1), normal(2, 3, 6, 5, seed=2)
    twins = [Variable(x.numpy().copy(), requires_grad=True) for x in (q, k, v)]
    fused, composed = causal_attention(q, k, v), scaled_dot_product_attention(*twins, causal=True)
    np.testing.assert_allclose(fused.numpy(), composed.numpy(), atol=1e-6)
    g = np.random.default_rng(3).standard_normal(fused.shape)
    fused.backward(g)
    composed.backward(g)
    for mine, theirs in zip((q, k, v), twins):
        np.testing.assert_allclose(mine.grad, theirs.grad, atol=1e-6)
    assert graph_names(fused) == {"CausalAttention"}


def test_causal_attention_gradcheck_and_a_graph_walked_twice():
    inputs = normal(1, 2, 5, 3, seed=4), normal(1, 2, 5, 3, seed=5), normal(1, 2, 5, 2, seed=6)
    assert gradcheck(causal_attention, *inputs)
    out = causal_attention(*inputs).sum()
    out.backward(retain_graph=True)
    first = [x.grad.copy() for x in inputs]
    out.backward()  # the same gradients again, accumulated: the cached backward pass must not leak between calls
    for x, once in zip(inputs, first):
        np.testing.assert_allclose(x.grad, 2 * once, atol=1e-12)


def test_causal_attention_without_gradients_and_on_bad_shapes():
    q = normal(1, 4, 3)
    with no_grad():
        assert causal_attention(q, q, q).grad_fn is None
    assert isinstance(causal_attention(*[Tensor(np.ones((2, 3)))] * 3), Tensor)
    with pytest.raises(ValueError, match=r"causal attention needs q"):
        causal_attention(normal(1, 4, 3), normal(1, 5, 3), normal(1, 5, 3))


@pytest.mark.parametrize("shape", [(7, 5), (2, 3, 6)])
def test_fused_layer_norm_equals_module_10s_forward_and_backward(shape):
    x, weight, bias = normal(*shape), normal(shape[-1], seed=1), normal(shape[-1], seed=2)
    x.numpy()[...] = 5 * x.numpy() - 2
    g = np.random.default_rng(3).standard_normal(shape)
    fused = fused_layer_norm(x, weight, bias)
    copies = [Variable(v.numpy(), requires_grad=True) for v in (x, weight, bias)]
    composed = layer_norm(*copies)
    np.testing.assert_allclose(fused.numpy(), composed.numpy(), atol=1e-6)
    fused.backward(g)
    composed.backward(g)
    for name, mine, theirs in zip(("x", "weight", "bias"), (x, weight, bias), copies):
        np.testing.assert_allclose(mine.grad, theirs.grad, atol=1e-6, err_msg=name)
    assert gradcheck(fused_layer_norm, normal(*shape, seed=4), normal(shape[-1], seed=5), normal(shape[-1], seed=6))


def test_fused_layer_norm_keeps_float32_reads_a_transposed_input_and_refuses_bad_shapes():
    x = np.random.default_rng(0).standard_normal((6, 4)).astype(np.float32).T  # (4, 6), not contiguous
    weight, bias = np.ones(6, np.float32), np.zeros(6, np.float32)
    out = fused_layer_norm(Variable(x), weight, bias).numpy()
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, layer_norm(Variable(x), weight, bias).numpy(), atol=1e-5)
    with pytest.raises(ValueError, match=r"weight and bias must have shape \(6,\) for x of shape \(4, 6\)"):
        fused_layer_norm(Variable(x), np.ones(4), np.zeros(4))
    with pytest.raises(ValueError, match="normalizes a last axis of size 6"):
        FusedLayerNorm(6)(Variable(np.zeros((2, 5))))


def test_fused_multi_head_attention_is_module_10s_layer_with_one_attention_node():
    composed = MultiHeadAttention(8, 2, rng=np.random.default_rng(0), dtype=np.float64)
    fused = FusedMultiHeadAttention(8, 2, rng=np.random.default_rng(0), dtype=np.float64)
    assert [name for name, _ in fused.named_parameters()] == [name for name, _ in composed.named_parameters()]
    x = normal(2, 5, 8)
    np.testing.assert_allclose(fused(x).numpy(), composed(x).numpy(), atol=1e-9)
    assert "CausalAttention" in graph_names(fused(x)) and "Softmax" not in graph_names(fused(x))


def small_gpt(model_class, seed=0):
    return model_class(13, 8, d_model=16, num_heads=4, num_layers=2, rng=np.random.default_rng(seed), dtype=np.float64)


def test_fused_gpt_is_module_11s_gpt_with_the_fused_attention_and_loss():
    fused, composed = small_gpt(FusedGPT), small_gpt(GPT)
    assert all(type(block.attention) is FusedMultiHeadAttention for block in fused.blocks)
    assert all(type(block.attention) is MultiHeadAttention for block in composed.blocks)
    norms = lambda model: [model.norm] + [norm for block in model.blocks for norm in (block.norm1, block.norm2)]
    assert all(type(norm) is FusedLayerNorm for norm in norms(fused))
    assert all(type(norm) is LayerNorm for norm in norms(composed))
    assert isinstance(fused.loss_function(), FusedCrossEntropyLoss)
    assert type(composed.loss_function()) is CrossEntropyLoss
    ids = np.random.default_rng(1).integers(0, 13, (3, 8))
    losses = [m.loss_function()(PerPositionLogits(m)(ids[:, :-1]), ids[:, 1:]) for m in (fused, composed)]
    assert abs(losses[0].item() - losses[1].item()) < 1e-9
    assert {"CausalAttention", "SoftmaxCrossEntropy"} <= graph_names(losses[0])
    assert not {"CausalAttention", "SoftmaxCrossEntropy"} & graph_names(losses[1])
    for loss in losses:
        loss.backward()
    for (name, mine), theirs in zip(fused.named_parameters(), composed.parameters()):
        np.testing.assert_allclose(mine.grad, theirs.grad, atol=1e-9, err_msg=name)


@pytest.mark.parametrize("source, target", [(GPT, FusedGPT), (FusedGPT, GPT)])
def test_a_checkpoint_of_either_gpt_loads_into_the_other(source, target):
    trained, fresh = small_gpt(source, seed=0), small_gpt(target, seed=1)
    assert list(trained.state_dict()) == list(fresh.state_dict())
    fresh.load_state_dict(trained.state_dict())
    ids = np.random.default_rng(2).integers(0, 13, (2, 8))
    np.testing.assert_allclose(fresh(ids).numpy(), trained(ids).numpy(), atol=1e-9)


def imported_modules(path: Path) -> set[str]:
    """Every module name an import in the file names, function-local imports included ("tinytorch.core.x", ".x")."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def test_module_11_imports_nothing_of_module_13():
    """Teaching order runs one way: module 11's GPT knows nothing of FusedGPT; the caller chooses between them."""
    later = [name for name in imported_modules(Path(transformer.__file__)) if "acceleration" in name.split(".")]
    assert not later, f"tinytorch/core/transformer.py imports module 13: {later}"


def test_the_profiler_sees_the_fused_operations():
    model = small_gpt(FusedGPT)
    ids = np.random.default_rng(1).integers(0, 13, (2, 8))
    with Profiler() as prof:
        model.loss_function()(PerPositionLogits(model)(ids[:, :-1]), ids[:, 1:]).backward()
    rows = {(row.name, row.kind): row.calls for row in prof.key_averages()}
    assert rows[("CausalAttention", "forward")] == 2 and rows[("SoftmaxCrossEntropy", "forward")] == 1
