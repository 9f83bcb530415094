"""Module 08, as exported to tinytorch.core.training: data, IDX files, DataLoader, training, checkpoints (an epoch
against PyTorch's: test_training_torch.py)."""
from __future__ import annotations

import gzip
import os
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinytorch.core.activations import ReLU
from tinytorch.core.autograd import Variable
from tinytorch.core.layers import Dropout, Linear, Module, Sequential
from tinytorch.core.losses import CrossEntropyLoss
from tinytorch.core.optimizers import SGD, Adam
from tinytorch.core.tensor import Tensor
from tinytorch.core import training
from tinytorch.core.training import (CheckpointError, DataLoader, IDXError, Standardizer, Trainer, accuracy, evaluate,
                                     load_checkpoint, load_digits_dataset, load_idx_dataset, read_idx, save_checkpoint,
                                     train_test_split, values, write_idx)

ROOT = Path(__file__).resolve().parent.parent


def mlp(hidden=16, inputs=6, classes=3, seed=1):
    rng = np.random.default_rng(seed)
    return Sequential(Linear(inputs, hidden, rng=rng), ReLU(), Linear(hidden, classes, rng=rng))


def parameters_of(model) -> dict:
    return {name: values(parameter).copy() for name, parameter in model.named_parameters()}


# --- data ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def digits():
    data = load_digits_dataset()
    standardize = Standardizer(data.x_train)
    return data, standardize(data.x_train), standardize(data.x_test)


def test_digits_are_split_80_20_stratified_and_reproducibly(digits):
    data, _, _ = digits
    assert data.x_train.shape == (1438, 64) and data.x_test.shape == (359, 64)
    assert data.y_train.dtype == np.int64 and data.image_shape == (8, 8) and data.num_classes == 10
    assert np.bincount(data.y_test).min() >= 35  # every digit has its ~36 test images
    assert np.array_equal(load_digits_dataset().y_test, data.y_test)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 4), min_size=5, max_size=200), st.floats(0.05, 0.5), st.integers(0, 10))
def test_split_puts_each_example_in_one_part_and_keeps_each_labels_share(labels, fraction, seed):
    y = np.array(labels)
    x = np.arange(len(y))
    x_train, y_train, x_test, y_test = train_test_split(x, y, fraction, seed)
    assert sorted(np.concatenate([x_train, x_test]).tolist()) == x.tolist()
    assert np.array_equal(y[x_train], y_train) and np.array_equal(y[x_test], y_test)
    for label in np.unique(y):  # each class keeps its share in the test split
        assert np.sum(y_test == label) == round(fraction * np.sum(y == label))


def test_standardizer_uses_training_statistics_only():
    train = np.array([[0.0, 1.0], [2.0, 1.0]], dtype=np.float32)
    standardize = Standardizer(train, eps=0.1)
    assert np.allclose(standardize(train), [[-1 / 1.1, 0], [1 / 1.1, 0]])
    assert np.allclose(standardize(np.array([[4.0, 3.0]])), [[3 / 1.1, 2 / 0.1]])


# --- IDX -------------------------------------------------------------------------------------------------
def idx_bytes(type_code: int, shape: tuple, payload: bytes) -> bytes:
    """An IDX file written by hand from the format's description."""
    return bytes([0, 0, type_code, len(shape)]) + struct.pack(f">{len(shape)}I", *shape) + payload


def test_reads_mnist_style_uint8_images(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(idx_bytes(0x08, (5, 28, 28), images.tobytes()))
    read = read_idx(path)
    assert read.dtype == np.uint8 and read.shape == (5, 28, 28) and np.array_equal(read, images)


@pytest.mark.parametrize("code, dtype", [(0x09, ">i1"), (0x0B, ">i2"), (0x0C, ">i4"), (0x0D, ">f4"), (0x0E, ">f8")])
def test_reads_every_idx_type_big_endian_into_native_order(tmp_path, code, dtype):
    array = np.array([[-3, 0, 7], [100, -100, 1]]).astype(dtype)
    path = tmp_path / "values.idx"
    path.write_bytes(idx_bytes(code, (2, 3), array.tobytes()))
    read = read_idx(path)
    assert read.tolist() == array.tolist() and read.dtype.isnative and read.dtype.kind == np.dtype(dtype).kind
    write_idx(tmp_path / "again.idx", read)
    assert (tmp_path / "again.idx").read_bytes() == path.read_bytes(), "write_idx should write the same bytes"


def test_reads_gzipped_idx(tmp_path):
    labels = np.arange(10, dtype=np.uint8)
    (tmp_path / "labels.gz").write_bytes(gzip.compress(idx_bytes(0x08, (10,), labels.tobytes())))
    assert read_idx(tmp_path / "labels.gz").tolist() == list(range(10))


@pytest.mark.parametrize("content, words", [
    (b"", "too short"),
    (b"\x00\x00\x08", "too short"),
    (b"\x1f\x8b\x08\x00" + bytes(12), "two zero bytes"),
    (idx_bytes(0x07, (1,), b"\x00"), "unknown IDX type code 0x07"),
    (bytes([0, 0, 8, 0]), "0 dimensions"),
    (bytes([0, 0, 8, 3]) + struct.pack(">2I", 2, 2), "ends after 12 bytes"),
    (idx_bytes(0x08, (2, 3, 4), bytes(20)), "24 bytes, but 20 bytes follow"),
    (idx_bytes(0x08, (2,), bytes(3)), "2 bytes, but 3 bytes follow"),
    (idx_bytes(0x0C, (3,), bytes(11)), "12 bytes, but 11"),
])
def test_malformed_idx_files_raise_idx_error_naming_file_and_problem(tmp_path, content, words):
    path = tmp_path / "broken-idx"
    path.write_bytes(content)
    with pytest.raises(IDXError) as error:
        read_idx(path)
    assert str(path) in str(error.value) and words in str(error.value)


def test_corrupt_gzip_and_missing_files(tmp_path):
    (tmp_path / "bad.gz").write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(IDXError, match="cannot decompress"):
        read_idx(tmp_path / "bad.gz")
    with pytest.raises(FileNotFoundError, match="no IDX file at .*absent"):
        read_idx(tmp_path / "absent")
    with pytest.raises(FileNotFoundError, match="it is a folder"):
        read_idx(tmp_path)


def write_pair(folder: Path, prefix: str, images: np.ndarray, labels: np.ndarray):
    write_idx(folder / f"{prefix}-images-idx3-ubyte", images)
    write_idx(folder / f"{prefix}-labels-idx1-ubyte", labels)


def test_idx_folder_with_train_and_test_pairs(tmp_path):
    rng = np.random.default_rng(0)
    train_images, test_images = rng.integers(0, 256, (30, 4, 5), dtype=np.uint8), rng.integers(0, 256, (8, 4, 5), dtype=np.uint8)
    write_pair(tmp_path, "train", train_images, rng.integers(0, 10, 30).astype(np.uint8))
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", test_images)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", rng.integers(0, 10, 8).astype(np.uint8))  # one gzipped, one not
    data = load_idx_dataset(tmp_path)
    assert data.x_train.shape == (30, 20) and data.x_test.shape == (8, 20) and data.image_shape == (4, 5)
    assert data.x_train.dtype == np.float32 and np.allclose(data.x_train * 255, train_images.reshape(30, 20))
    assert data.y_train.dtype == np.int64


def test_idx_images_file_alone_is_split_and_finds_its_labels(tmp_path):
    images = np.zeros((50, 3, 3), dtype=np.uint8)
    write_pair(tmp_path, "train", images, np.repeat(np.arange(5), 10).astype(np.uint8))
    data = load_idx_dataset(tmp_path / "train-images-idx3-ubyte")
    assert (len(data.x_train), len(data.x_test)) == (40, 10) and np.bincount(data.y_test).tolist() == [2] * 5


def test_idx_dataset_errors(tmp_path):
    images = np.zeros((4, 2, 2), dtype=np.uint8)
    write_idx(tmp_path / "train-images-idx3-ubyte", images)
    with pytest.raises(FileNotFoundError, match="no labels file .* expected .*train-labels-idx1-ubyte"):
        load_idx_dataset(tmp_path / "train-images-idx3-ubyte")
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(3, dtype=np.uint8))
    with pytest.raises(IDXError, match="expected 4 integer labels"):
        load_idx_dataset(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no IDX images file"):
        load_idx_dataset(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="no IDX file or folder"):
        load_idx_dataset(tmp_path / "nothing-here")
    write_idx(tmp_path / "flat-images-idx3-ubyte", np.zeros(4, dtype=np.uint8))
    write_idx(tmp_path / "flat-labels-idx1-ubyte", np.zeros(4, dtype=np.uint8))
    with pytest.raises(IDXError, match="3 dimensions"):
        load_idx_dataset(tmp_path / "flat-images-idx3-ubyte")
    write_idx(tmp_path / "none-images-idx3-ubyte", np.zeros((0, 2, 2), dtype=np.uint8))
    with pytest.raises(IDXError, match="at least one image"):
        load_idx_dataset(tmp_path / "none-images-idx3-ubyte")


# --- DataLoader ------------------------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(st.integers(1, 60), st.integers(1, 20), st.booleans(), st.booleans(), st.integers(0, 5))
def test_dataloader_batches_cover_the_data(count, batch_size, shuffle, drop_last, seed):
    x = np.arange(count, dtype=np.float32)[:, None] * np.ones((1, 3), dtype=np.float32)
    y = np.arange(count)
    loader = DataLoader(x, y, batch_size=batch_size, shuffle=shuffle, seed=seed, drop_last=drop_last)
    batches = list(loader)
    sizes = [len(targets) for _, targets in batches]
    assert len(batches) == len(loader)
    expected_full, rest = divmod(count, batch_size)
    assert sizes == [batch_size] * expected_full + ([] if drop_last or rest == 0 else [rest])
    seen = np.concatenate([targets for _, targets in batches]) if batches else np.array([], dtype=int)
    assert len(set(seen.tolist())) == len(seen)  # no example twice in an epoch
    if not drop_last:
        assert sorted(seen.tolist()) == list(range(count))
    if not shuffle:
        assert seen.tolist() == list(range(len(seen)))
    for inputs, targets in batches:
        assert isinstance(inputs, Tensor) and inputs.dtype == np.float32
        assert np.array_equal(inputs.data[:, 0], targets)


def test_dataloader_seeded_shuffle_is_reproducible_and_differs_between_epochs():
    x, y = np.zeros((100, 2)), np.arange(100)
    first = DataLoader(x, y, batch_size=10, shuffle=True, seed=42)
    second = DataLoader(x, y, batch_size=10, shuffle=True, seed=42)
    epochs_first = [np.concatenate([t for _, t in first]) for _ in range(3)]
    epochs_second = [np.concatenate([t for _, t in second]) for _ in range(3)]
    assert all(np.array_equal(a, b) for a, b in zip(epochs_first, epochs_second))
    assert not np.array_equal(epochs_first[0], epochs_first[1])
    other = np.concatenate([t for _, t in DataLoader(x, y, batch_size=10, shuffle=True, seed=43)])
    assert not np.array_equal(other, epochs_first[0])


def test_dataloader_accepts_tensors_and_rejects_bad_arguments():
    loader = DataLoader(Tensor(np.ones((5, 2))), Tensor(np.arange(5), dtype=np.int64), batch_size=2)
    assert [t.tolist() for _, t in loader] == [[0, 1], [2, 3], [4]]
    with pytest.raises(ValueError, match="5 examples but targets has 4"):
        DataLoader(np.ones((5, 2)), np.arange(4))
    for bad in [0, -1, 2.5]:
        with pytest.raises(ValueError, match="batch_size"):
            DataLoader(np.ones((5, 2)), np.arange(5), batch_size=bad)


# --- evaluation and training -----------------------------------------------------------------------------
def test_accuracy_and_values():
    assert accuracy(np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([0, 0])) == 0.5
    assert accuracy(Variable(np.eye(3, dtype=np.float32)), Tensor([0, 1, 2], dtype=np.int64)) == 1.0
    assert values(Variable([1.0, 2.0])).tolist() == [1.0, 2.0] and values(3).tolist() == 3


def test_evaluate_weights_partial_batches_builds_no_graph_and_restores_the_mode():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((37, 6)).astype(np.float32), rng.integers(0, 3, 37)
    model = Sequential(Linear(6, 8, rng=rng), ReLU(), Dropout(0.5, rng=rng), Linear(8, 3, rng=rng))
    loss_fn = CrossEntropyLoss()
    loss, acc = evaluate(model, DataLoader(x, y, batch_size=10), loss_fn)
    model.eval()
    full = model(Tensor(x))
    assert loss == pytest.approx(float(loss_fn(full, y).item()), abs=1e-5)  # dropout off: deterministic
    assert acc == accuracy(full, y)
    model.train()
    evaluate(model, DataLoader(x, y, batch_size=10), loss_fn)
    assert model.training and model[2].training
    model.eval()
    evaluate(model, DataLoader(x, y, batch_size=10), loss_fn)
    assert not model.training, "evaluate puts back the mode the model was in"
    with pytest.raises(ValueError, match="empty"):
        evaluate(model, [], loss_fn)


def test_evaluate_records_no_graph():
    outputs = []

    class Recorder(Module):
        def __init__(self):
            self.inner = Linear(4, 2, rng=np.random.default_rng(0))

        def forward(self, x):
            outputs.append(self.inner(x))
            return outputs[-1]

    evaluate(Recorder(), DataLoader(np.ones((3, 4)), np.zeros(3, dtype=int)), CrossEntropyLoss())
    assert outputs and all(not out.requires_grad and out.grad_fn is None for out in outputs)


def test_a_short_training_run_beats_90_percent(digits):
    data, x_train, x_test = digits
    rng = np.random.default_rng(0)
    model = Sequential(Linear(64, 64, rng=rng), ReLU(), Linear(64, 10, rng=rng))
    trainer = Trainer(model, Adam(model.parameters(), lr=0.003), CrossEntropyLoss())
    history = trainer.fit(DataLoader(x_train, data.y_train, batch_size=32, shuffle=True, seed=0),
                          DataLoader(x_test, data.y_test, batch_size=512), epochs=3)
    assert history.epochs == 3 and history.train_loss == sorted(history.train_loss, reverse=True)
    assert history.val_accuracy[-1] > 0.90
    assert evaluate(model, DataLoader(x_test, data.y_test), trainer.loss_fn)[1] == pytest.approx(history.val_accuracy[-1])


def test_training_is_reproducible_with_a_seed(digits):
    data, x_train, _ = digits

    def run():
        model = mlp(hidden=32, inputs=64, classes=10, seed=3)
        trainer = Trainer(model, SGD(model.parameters(), lr=0.05, momentum=0.9), CrossEntropyLoss())
        history = trainer.fit(DataLoader(x_train, data.y_train, batch_size=64, shuffle=True, seed=7), epochs=2)
        return history.train_loss, parameters_of(model)

    (loss_a, params_a), (loss_b, params_b) = run(), run()
    assert loss_a == loss_b and all(np.array_equal(params_a[k], params_b[k]) for k in params_a)


def test_early_stopping_restores_the_best_epoch():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((64, 6)).astype(np.float32), rng.integers(0, 3, 64)
    val_x, val_y = rng.standard_normal((64, 6)).astype(np.float32), rng.integers(0, 3, 64)  # labels are noise
    model = mlp(hidden=64)
    snapshots = {}
    trainer = Trainer(model, Adam(model.parameters(), lr=0.05), CrossEntropyLoss())
    history = trainer.fit(DataLoader(x, y, batch_size=16, shuffle=True, seed=0), DataLoader(val_x, val_y), epochs=200,
                          patience=3, on_epoch_end=lambda epoch, h: snapshots.update({epoch: parameters_of(model)}))
    assert history.stopped_early and history.epochs < 200
    assert history.epochs == history.best_epoch + 3
    assert min(history.val_loss) == history.val_loss[history.best_epoch - 1]
    assert all(np.array_equal(v, snapshots[history.best_epoch][k]) for k, v in parameters_of(model).items())


def test_without_patience_training_runs_every_epoch_and_keeps_the_last_weights():
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((32, 6)).astype(np.float32), rng.integers(0, 3, 32)
    model = mlp()
    history = Trainer(model, SGD(model.parameters(), lr=0.1), CrossEntropyLoss()).fit(DataLoader(x, y, batch_size=8), epochs=4)
    assert history.epochs == 4 and not history.stopped_early and history.val_loss == []
    assert history.best_epoch == int(np.argmin(history.train_loss)) + 1


# --- checkpoints -----------------------------------------------------------------------------------------
def train_steps(model, optimizer, x, y, epochs):
    Trainer(model, optimizer, CrossEntropyLoss()).fit(DataLoader(x, y, batch_size=16, shuffle=True, seed=epochs), epochs=epochs)


@pytest.mark.parametrize("make_optimizer", [lambda p: SGD(p, lr=0.1, momentum=0.9, nesterov=True),
                                            lambda p: Adam(p, lr=0.01, amsgrad=True)], ids=["sgd-nesterov", "adam"])
def test_checkpoint_round_trip_resumes_exactly(tmp_path, make_optimizer):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((48, 6)).astype(np.float32), rng.integers(0, 3, 48)
    model = mlp()
    optimizer = make_optimizer(model.parameters())
    train_steps(model, optimizer, x, y, 2)
    path = save_checkpoint(tmp_path / "deep" / "folder" / "run.npz", model, optimizer)
    saved = parameters_of(model)
    train_steps(model, optimizer, x, y, 3)

    resumed = mlp(seed=99)
    resumed_optimizer = make_optimizer(resumed.parameters())
    assert load_checkpoint(path, resumed, resumed_optimizer) == {}
    assert all(np.array_equal(saved[k], v) for k, v in parameters_of(resumed).items())
    train_steps(resumed, resumed_optimizer, x, y, 3)
    for name, value in parameters_of(model).items():
        assert np.array_equal(value, parameters_of(resumed)[name]), f"resumed training diverged at {name}"


def test_checkpoint_extra_keeps_types(tmp_path):
    extra = {"epoch": 7, "lr": 1e-3, "name": "digits", "flags": [True, None], "shape": (8, 8), "mean": np.arange(3.0),
             "nested": {"counts": np.array([1, 2], dtype=np.int32), 3: "int key"}, "scalar": np.float32(0.5)}
    path = save_checkpoint(tmp_path / "extra.npz", mlp(), extra=extra)
    back = load_checkpoint(path, mlp())
    assert back["epoch"] == 7 and back["lr"] == 1e-3 and back["name"] == "digits" and back["flags"] == [True, None]
    assert back["shape"] == (8, 8) and back["nested"][3] == "int key"
    assert back["mean"].tolist() == [0, 1, 2] and back["nested"]["counts"].dtype == np.int32
    assert isinstance(back["scalar"], np.float32) and back["scalar"] == 0.5
    with pytest.raises(TypeError, match="cannot store a object"):
        save_checkpoint(tmp_path / "bad.npz", mlp(), extra={"thing": object()})
    assert not (tmp_path / "bad.npz").exists()


def test_checkpoint_is_plain_npz_that_loads_without_pickle(tmp_path):
    model, optimizer = mlp(), Adam(mlp().parameters())
    path = save_checkpoint(tmp_path / "plain.npz", model, optimizer)
    with np.load(path, allow_pickle=False) as archive:
        assert {"model/0.weight", "model/0.bias", "model/2.weight", "model/2.bias", "__meta__"} <= set(archive.files)
        assert np.array_equal(archive["model/0.weight"], values(model.parameters()[0]))


def test_crash_during_save_leaves_the_old_checkpoint(tmp_path, monkeypatch):
    model = mlp()
    path = save_checkpoint(tmp_path / "run.npz", model)
    before = path.read_bytes()

    def crash(file, **arrays):
        file.write(b"PK\x03\x04 a partial archive")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(training.np, "savez", crash)
    with pytest.raises(OSError, match="No space left"):
        save_checkpoint(path, mlp(seed=5))
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["run.npz"], "the temporary file must be removed"
    load_checkpoint(path, mlp())


@pytest.mark.parametrize("where", ["while writing", "before the rename"])
def test_process_killed_during_save_leaves_the_old_checkpoint(tmp_path, where):
    """A real crash: the saving process dies (os._exit, no cleanup) in the middle of save_checkpoint."""
    path = tmp_path / "run.npz"
    save_checkpoint(path, mlp(seed=1))
    script = textwrap.dedent(f"""
        import os, sys
        import numpy as np
        sys.path.insert(0, {str(ROOT)!r})
        from tinytorch.core import training
        from tinytorch.core.activations import ReLU
        from tinytorch.core.layers import Linear, Sequential

        real_savez = np.savez
        def dying_savez(file, **arrays):
            real_savez(file, **arrays)
            file.flush()  # what was written reaches the disk before the crash
            file.truncate(file.tell() // 2)
            os._exit(9)
        if {where!r} == "while writing":
            training.np.savez = dying_savez
        else:
            training.os.replace = lambda *args: os._exit(9)
        model = Sequential(Linear(6, 16), ReLU(), Linear(16, 3))
        training.save_checkpoint({str(path)!r}, model)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 9, result.stderr
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "run.npz"]
    assert leftovers and all(name.startswith(".run.npz.") and name.endswith(".tmp") for name in leftovers)
    restored = mlp(seed=2)
    load_checkpoint(path, restored)
    assert all(np.array_equal(v, parameters_of(mlp(seed=1))[k]) for k, v in parameters_of(restored).items())


@pytest.mark.parametrize("other, words", [
    (lambda: mlp(hidden=32), "parameter '0.weight' has shape (6, 16) in the checkpoint but (6, 32) in the model"),
    (lambda: mlp(inputs=7), "parameter '0.weight' has shape (6, 16) in the checkpoint but (7, 16) in the model"),
    (lambda: Sequential(Linear(6, 16), ReLU(), Linear(16, 3), ReLU(), Linear(3, 3)), "the model has parameter '4.weight'"),
    (lambda: Sequential(Linear(6, 16)), "the checkpoint has parameter '2.weight' (16, 3), the model does not"),
    (lambda: Sequential(Linear(6, 16, bias=False), ReLU(), Linear(16, 3)), "the checkpoint has parameter '0.bias'"),
])
def test_loading_into_another_architecture_names_the_parameter_and_changes_nothing(tmp_path, other, words):
    path = save_checkpoint(tmp_path / "run.npz", mlp(), Adam(mlp().parameters()))
    model = other()
    before = parameters_of(model)
    with pytest.raises(CheckpointError) as error:
        load_checkpoint(path, model, Adam(model.parameters()))
    assert words in str(error.value) and str(path) in str(error.value)
    assert all(np.array_equal(before[k], v) for k, v in parameters_of(model).items())


def test_optimizer_mismatches(tmp_path):
    model = mlp()
    with_adam = save_checkpoint(tmp_path / "adam.npz", model, Adam(model.parameters()))
    without = save_checkpoint(tmp_path / "none.npz", model)
    with pytest.raises(CheckpointError, match="holds Adam state, not SGD state"):
        load_checkpoint(with_adam, mlp(), SGD(model.parameters(), lr=0.1))
    with pytest.raises(CheckpointError, match="holds no optimizer state"):
        load_checkpoint(without, mlp(), SGD(model.parameters(), lr=0.1))
    load_checkpoint(with_adam, mlp())  # the optimizer state may be ignored


def test_unreadable_checkpoints(tmp_path):
    (tmp_path / "junk.npz").write_bytes(b"this is not a zip file")
    np.savez(tmp_path / "pickled.npz", __meta__=np.array([{"format": 1}], dtype=object))
    np.savez(tmp_path / "foreign.npz", weights=np.zeros(3))
    np.savez(tmp_path / "future.npz", __meta__=np.array('{"format": 99}'))
    for name, words in [("junk.npz", "not a readable tinytorch checkpoint"), ("pickled.npz", "not a readable"),
                        ("foreign.npz", "not a readable"), ("future.npz", "format 99")]:
        with pytest.raises(CheckpointError, match=words):
            load_checkpoint(tmp_path / name, mlp())
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "absent.npz", mlp())


def test_save_leaves_no_temporary_files_and_overwrites(tmp_path):
    for seed in range(3):
        save_checkpoint(tmp_path / "run.npz", mlp(seed=seed))
    assert os.listdir(tmp_path) == ["run.npz"]
    restored = mlp(seed=0)
    load_checkpoint(tmp_path / "run.npz", restored)
    assert np.array_equal(values(restored.parameters()[0]), values(mlp(seed=2).parameters()[0]))
