"""Module 08, tinytorch.core.training, against PyTorch: one epoch of Trainer (shuffled mini-batches, SGD with
momentum, cross-entropy) gives torch's loss, accuracy and weights."""
import numpy as np

from tinytorch.core.losses import CrossEntropyLoss
from tinytorch.core.optimizers import SGD
from tinytorch.core.training import DataLoader, Trainer, values

from test_training import mlp
from torch_oracle import assert_close, torch


def test_one_epoch_matches_pytorch():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((50, 6)).astype(np.float32), rng.integers(0, 3, 50)
    model = mlp(hidden=8)
    reference = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    with torch.no_grad():
        for ours, theirs in zip(model.parameters(), reference.parameters()):
            theirs.copy_(torch.from_numpy(values(ours).T.copy() if ours.ndim == 2 else values(ours)))
    loss, acc = Trainer(model, SGD(model.parameters(), lr=0.1, momentum=0.9), CrossEntropyLoss()).train_epoch(
        DataLoader(x, y, batch_size=16, shuffle=True, seed=5))
    optimizer = torch.optim.SGD(reference.parameters(), lr=0.1, momentum=0.9)
    total, correct = 0.0, 0
    for begin in range(0, 50, 16):
        batch = np.random.default_rng(5).permutation(50)[begin:begin + 16]
        optimizer.zero_grad()
        logits = reference(torch.from_numpy(x[batch]))
        batch_loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(y[batch]))
        batch_loss.backward()
        optimizer.step()
        total += batch_loss.item() * len(batch)
        correct += int((logits.argmax(1).numpy() == y[batch]).sum())
    assert_close(loss, total / 50, "the epoch's mean loss", dict(rtol=1e-5, atol=0))
    assert acc == correct / 50, f"accuracy {acc}, PyTorch {correct / 50}"
    for (name, ours), theirs in zip(model.named_parameters(), reference.parameters()):
        expected = theirs.detach().numpy()
        assert_close(values(ours), expected.T if ours.ndim == 2 else expected, name, dict(rtol=1e-5, atol=1e-5))
