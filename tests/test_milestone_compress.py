"""`tito milestone compress`: the trained digits CNN as float, INT8, pruned and pruned + INT8, through the real
command; the .onnx files it writes give ONNX Runtime the predictions tinytorch measured; clear errors."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import ROOT, run_tito
from tito.errors import TitoError
from tito.milestones.cnn import CNN_CHECKPOINT_NAME, CnnOptions, run_cnn
from tito.milestones.common import tinytorch_modules
from tito.milestones.compress import (COMPRESS_LESSONS, SPARSITIES, SPARSITY_PLOT_NAME, CompressOptions, load_cnn,
                                      run_compress)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
NAMES = ["float", "INT8", "pruned", "pruned + INT8"]


@pytest.mark.slow
def test_the_command_trains_a_missing_cnn_then_prints_the_table_and_writes_the_plot_and_onnx_files(tmp_path):
    done = run_tito("milestone", "compress", "--cnn", str(tmp_path / "cnn"), "--out", str(tmp_path / "out"),
                    "--finetune-epochs", "1", cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert "no checkpoint was there: trained the CNN first" in done.stdout
    assert (tmp_path / "cnn" / CNN_CHECKPOINT_NAME).is_file()
    for name in NAMES:
        assert f"│ {name} " in done.stdout
    assert (tmp_path / "out" / SPARSITY_PLOT_NAME).read_bytes().startswith(PNG_SIGNATURE)
    written = sorted(path.name for path in (tmp_path / "out").glob("*.onnx"))
    assert written == ["digits_cnn_float.onnx", "digits_cnn_int8.onnx", "digits_cnn_pruned.onnx", "digits_cnn_pruned_int8.onnx"]
    for sparsity in SPARSITIES:
        assert f"{sparsity:>4.0%} of the weights pruned" in done.stdout
    again = run_tito("milestone", "compress", "--cnn", str(tmp_path / "cnn"), "--out", str(tmp_path / "out"),
                     "--finetune-epochs", "0", cwd=ROOT)
    assert again.returncode == 0 and "trained the CNN first" not in again.stdout, again.stderr


@pytest.mark.slow
def test_the_versions_keep_their_accuracy_shrink_and_run_the_same_in_onnx_runtime(tmp_path):
    onnx = pytest.importorskip("onnx")
    onnxruntime = pytest.importorskip("onnxruntime")
    run_cnn(CnnOptions(epochs=10, channels=8, out=tmp_path / "cnn"))
    result = run_compress(CompressOptions(cnn=tmp_path / "cnn", out=tmp_path / "out", finetune_epochs=2))
    assert not result.trained and [version.name for version in result.versions] == NAMES
    float_, int8, pruned, both = result.versions
    assert float_.accuracy > 0.95 and abs(int8.accuracy - float_.accuracy) <= 0.01
    assert pruned.accuracy > 0.85 and abs(both.accuracy - pruned.accuracy) <= 0.01
    assert float_.parameter_bytes / int8.parameter_bytes > 3 and pruned.parameter_bytes < float_.parameter_bytes / 2
    assert both.parameter_bytes < min(int8.parameter_bytes, pruned.parameter_bytes)
    assert [sparsity for sparsity, _, _ in result.curve] == list(SPARSITIES)
    assert result.curve[0][2] == pytest.approx(float_.accuracy, abs=0.01)  # nothing pruned: the float accuracy

    modules = tinytorch_modules(ROOT, COMPRESS_LESSONS)
    dataset = modules["training"].load_digits_dataset()
    _, extra = load_cnn(modules, result.checkpoint, dataset)
    images = ((dataset.x_test - extra["mean"]) / extra["scale"]).astype(np.float32).reshape(-1, 1, 8, 8)
    for version in result.versions:
        onnx.checker.check_model(str(version.onnx), full_check=True)
        session = onnxruntime.InferenceSession(str(version.onnx), providers=["CPUExecutionProvider"])
        predicted = session.run(["logits"], {"input": images})[0].argmax(axis=1)
        # float: the same classes; int8: at most one image in 200 may round differently (ONNX adds the zero point
        # after rounding, module 14 before)
        assert abs(float(np.mean(predicted == dataset.y_test)) - version.accuracy) <= 0.005, version.name


@pytest.mark.parametrize("options, words", [
    (dict(prune_channels=1.0), "--prune-channels must be a fraction between 0 and 1, got 1.0"),
    (dict(finetune_epochs=-1), "--finetune-epochs must be 0 or more"),
    (dict(seed=-2), "--seed must be 0 or more"),
])
def test_option_mistakes_are_tito_errors(options, words, tmp_path):
    with pytest.raises(TitoError, match=words):
        run_compress(CompressOptions(cnn=tmp_path, out=tmp_path, **options))


def test_a_file_that_is_not_a_cnn_checkpoint_is_one_line(tmp_path):
    (tmp_path / CNN_CHECKPOINT_NAME).write_bytes(b"not a zip archive")
    done = run_tito("milestone", "compress", "--cnn", str(tmp_path), "--out", str(tmp_path / "out"), cwd=ROOT)
    assert done.returncode == 1 and "is not a checkpoint of `tito milestone cnn`" in done.stderr + done.stdout
    assert "Traceback" not in done.stderr and len((done.stderr + done.stdout).strip().splitlines()) == 1
    assert not (tmp_path / "out" / SPARSITY_PLOT_NAME).exists()


def test_the_command_line_rejects_bad_options_with_exit_2():
    done = run_tito("milestone", "compress", "--prune-channels", "0", cwd=ROOT)
    assert done.returncode == 2 and "--prune-channels must be a fraction" in done.stderr + done.stdout
