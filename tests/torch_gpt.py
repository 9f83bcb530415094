"""The GPT of module 11 written in PyTorch, holding copies of a tinytorch model's weights: the oracle of
tests/test_transformer_torch.py (and of modules 12, 13 and 16's) and the other side of benchmarks/gpt_bench.py.

Written from PyTorch's own functions (F.embedding, F.layer_norm, F.scaled_dot_product_attention, F.gelu with
the tanh approximation, F.cross_entropy), not from the lesson's code, so that the two agree only if both
are right. Weights keep tinytorch's names and layouts (a Linear's weight is (in, out): y = x @ W + b).
"""
from __future__ import annotations

import numpy as np


def parameter_key(name: str) -> str:
    """A tinytorch parameter name as a torch ParameterDict key (which may not contain dots)."""
    return name.replace(".", "__")


def build_torch_gpt(torch, model, dtype=None):
    """A torch.nn.Module computing the same logits (B, T, V) as `model` (a tinytorch GPT), from copies of its weights."""
    functional = torch.nn.functional

    class TorchGPT(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.weights = torch.nn.ParameterDict({
                parameter_key(name): torch.nn.Parameter(torch.tensor(np.array(parameter.numpy()), dtype=dtype))
                for name, parameter in model.named_parameters()})
            self.heads, self.width, self.tied = model.num_heads, model.d_model, model.tied
            self.layers = model.num_layers

        def w(self, name: str):
            return self.weights[parameter_key(name)]

        def affine(self, x, prefix: str, bias: bool = True):
            out = x @ self.w(prefix + ".weight")
            return out + self.w(prefix + ".bias") if bias else out

        def normalize(self, x, prefix: str):
            return functional.layer_norm(x, (self.width,), self.w(prefix + ".weight"), self.w(prefix + ".bias"), 1e-5)

        def self_attention(self, x, prefix: str):
            batch, length, width = x.shape
            size = width // self.heads

            def by_head(part):
                return self.affine(x, f"{prefix}.{part}").view(batch, length, self.heads, size).transpose(1, 2)

            mixed = functional.scaled_dot_product_attention(by_head("query"), by_head("key"), by_head("value"), is_causal=True)
            return self.affine(mixed.transpose(1, 2).reshape(batch, length, width), f"{prefix}.out")

        def forward(self, ids):
            length = ids.shape[1]
            stream = functional.embedding(ids, self.w("token.weight")) + self.w("position.weight")[:length]
            for index in range(self.layers):
                prefix = f"blocks.{index}"
                stream = stream + self.self_attention(self.normalize(stream, prefix + ".norm1"), prefix + ".attention")
                hidden = functional.gelu(self.affine(self.normalize(stream, prefix + ".norm2"), prefix + ".mlp.up"),
                                         approximate="tanh")
                stream = stream + self.affine(hidden, prefix + ".mlp.down")
            final = self.normalize(stream, "norm")
            return final @ self.w("token.weight").T if self.tied else self.affine(final, "head", bias=False)

    return TorchGPT()


def logits_from(torch, net, names, weights, ids):
    """`net`'s logits for `ids` computed from `weights` (torch tensors in the order of the tinytorch parameter `names`)
    in place of its own copies, so that they receive the gradients: what torch_oracle.compare differentiates."""
    replaced = {f"weights.{parameter_key(name)}": weight for name, weight in zip(names, weights)}
    return torch.func.functional_call(net, replaced, (torch.tensor(ids),))
