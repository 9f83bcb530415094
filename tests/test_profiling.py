"""Module 12: the profiler leaves the engine as it was, measures without changing results, and its table, trace
and FLOP counts describe real models (PyTorch's counts: tests/test_profiling_torch.py)."""
from __future__ import annotations

import gc
import json
import weakref

import numpy as np
import pytest


from tinytorch.core import acceleration, attention, autograd, convolutions, operations, quantization, transformer
from tinytorch.core.activations import ReLU
from tinytorch.core.autograd import Variable, no_grad
from tinytorch.core.convolutions import Conv2d, MaxPool2d
from tinytorch.core.layers import Flatten, Linear, Module, Sequential
from tinytorch.core.losses import CrossEntropyLoss
from tinytorch.core.profiling import (Event, Profiler, chrome_trace, conv2d_flops, count_parameters,
                                      export_chrome_trace, key_averages, matmul_flops, roofline)
from tinytorch.core.tensor import Tensor
from tinytorch.core.transformer import GPT, PerPositionLogits

pytestmark = pytest.mark.module("profiling")


def engine_functions() -> dict:
    """Every function the profiler swaps while it is on, as found now."""
    return {f"{module.__name__}.record": module.record for module in (autograd, operations, convolutions, attention,
                                                                       transformer, acceleration, quantization)} | {
            "Module.__call__": Module.__call__,
            "Variable.backward": Variable.backward}


def small_gpt(seed: int = 0) -> GPT:
    return GPT(12, 8, d_model=16, num_heads=2, num_layers=2, rng=np.random.default_rng(seed))


def gpt_step(model, rng) -> float:
    ids = rng.integers(0, 12, (3, 9))
    loss = CrossEntropyLoss()(PerPositionLogits(model)(Tensor(ids[:, :-1].astype(np.float32))), ids[:, 1:])
    loss.backward()
    return loss.item()


def test_the_engine_is_itself_again_after_the_profiler_even_after_an_error():
    before = engine_functions()
    with Profiler():
        during = engine_functions()
    assert engine_functions() == before
    assert all(during[name] is not before[name] for name in before), "every recording function is swapped while on"
    with pytest.raises(ZeroDivisionError):
        with Profiler():
            1 / 0
    assert engine_functions() == before


def test_the_cycle_collector_is_off_while_on_and_as_it_was_after():
    assert gc.isenabled()
    with Profiler():
        assert not gc.isenabled(), "the log would make the collector scan it again and again, charged to operations"
    assert gc.isenabled()
    with pytest.raises(ZeroDivisionError):
        with Profiler():
            1 / 0
    assert gc.isenabled()
    gc.disable()
    try:
        with Profiler():
            pass
        assert not gc.isenabled(), "a program that had switched the collector off finds it off"
    finally:
        gc.enable()


def test_the_log_holds_shapes_and_sizes_not_the_arrays_of_results():
    x = Variable(np.ones(1000), requires_grad=True)
    with Profiler() as prof:
        y = x + 1.0  # Add's rules hold nothing: only the name y keeps its array
        result = weakref.ref(y.data.data)
        del y
        assert result() is None, "the profiler kept an intermediate result alive"
    [add] = prof.events
    assert add.bytes_moved == 2 * 8000 and add.flops == 1000


def test_profilers_do_not_nest():
    with Profiler():
        with pytest.raises(RuntimeError, match="a Profiler is already on"):
            with Profiler():
                pass
    with Profiler():  # and the refusal left nothing swapped behind
        pass
    assert Module.__call__ is engine_functions()["Module.__call__"]


def test_a_profiled_training_step_gives_the_same_loss_and_gradients():
    plain, profiled = small_gpt(), small_gpt()
    loss = gpt_step(plain, np.random.default_rng(1))
    with Profiler() as prof:
        profiled_loss = gpt_step(profiled, np.random.default_rng(1))
    assert profiled_loss == loss
    for (name, a), (_, b) in zip(plain.named_parameters(), profiled.named_parameters()):
        assert np.array_equal(a.grad, b.grad), name
    names = {event.name for event in prof.events}
    assert {"Embedding", "LayerNorm", "GELU", "Softmax", "MatMul", "GPT()", "Block()", "backward()",
            "LayerNormBackward", "GELUBackward", "EmbeddingBackward"} <= names


def test_a_graph_recorded_under_the_profiler_runs_backward_after_it():
    x = Variable(np.arange(4.0), requires_grad=True)
    with Profiler() as prof:
        y = (x * x).sum()
    recorded = len(prof.events)
    y.backward()
    assert np.allclose(x.grad, 2 * np.arange(4.0)) and len(prof.events) == recorded


def test_events_nest_inside_their_layers_and_self_times_add_up():
    rng = np.random.default_rng(0)
    with Profiler() as prof:
        gpt_step(small_gpt(), rng)
    ranges = [e for e in prof.events if e.kind == "range"]
    for event in prof.events:
        assert event.self_time <= event.duration + 1e-12 and event.self_time >= -1e-6
        if event.depth > 0:  # inside some range one level up
            parents = [r for r in ranges if r.depth == event.depth - 1 and r is not event
                       and r.start <= event.start and event.start + event.duration <= r.start + r.duration + 1e-9]
            assert parents, f"{event.name} at depth {event.depth} lies in no range"
    whole = [e for e in ranges if e.depth == 0]
    outer = sum(e.duration for e in whole)
    inside = sum(e.self_time for e in prof.events if e.depth > 0 or e.kind == "range")
    assert abs(outer - inside) <= 1e-6 + 1e-9 * len(prof.events), "the self times of everything inside the top ranges sum to their durations"


def test_flops_of_a_cnn_follow_its_shapes():
    rng = np.random.default_rng(0)
    model = Sequential(Conv2d(1, 4, 3, padding=1, rng=rng), ReLU(), MaxPool2d(2), Flatten(), Linear(4 * 4 * 4, 10, rng=rng))
    x = Tensor(rng.standard_normal((5, 1, 8, 8)).astype(np.float32))
    with Profiler() as prof:
        CrossEntropyLoss()(model(x), rng.integers(0, 10, 5)).backward()
    rows = {row.name: row for row in prof.key_averages()}
    assert rows["Conv2d"].flops == conv2d_flops((4, 1, 3, 3), (5, 4, 8, 8)) == 2 * 9 * 5 * 4 * 64
    assert rows["MatMul"].flops == matmul_flops((5, 64), (64, 10), (5, 10))
    conv_rules = [e for e in prof.events if e.name == "Conv2dBackward"]
    assert sorted(e.input for e in conv_rules) == [1, 2], "the images need no gradient: only the weight's and the bias's rules run"
    assert rows["MaxPool2d"].flops == 5 * 4 * 8 * 8, "a pool reads every input element once"
    assert count_parameters(model) == 4 * 9 + 4 + 64 * 10 + 10


def test_nothing_is_saved_for_backward_under_no_grad():
    model = small_gpt()
    with no_grad(), Profiler() as prof:
        model(Tensor(np.zeros((2, 8), dtype=np.float32)))
    assert prof.events and all(e.saved_bytes == 0 for e in prof.events)
    with Profiler() as prof:
        model(Tensor(np.zeros((2, 8), dtype=np.float32)))
    assert sum(e.saved_bytes for e in prof.events) > 0


def test_the_table_rejects_an_unknown_sort_key():
    with pytest.raises(ValueError, match="sort_by must be one of"):
        key_averages([], "self_cpu_time_total")


def test_the_trace_is_valid_json_with_one_complete_event_per_event(tmp_path):
    with Profiler() as prof:
        gpt_step(small_gpt(), np.random.default_rng(0))
    path = export_chrome_trace(prof.events, tmp_path / "trace.json")
    trace = json.loads(path.read_text())
    events = trace["traceEvents"]
    assert len(events) == len(prof.events) and {e["ph"] for e in events} == {"X"}
    assert min(e["ts"] for e in events) == 0 and all(e["dur"] >= 0 for e in events)
    assert chrome_trace([]) == {"traceEvents": [], "displayTimeUnit": "ms"}


def test_roofline_points_come_from_forward_operations_with_arithmetic():
    rows = key_averages([Event("MatMul", "forward", 0, 1e-3, 1e-3, flops=2_000_000, bytes_moved=100_000),
                         Event("Reshape", "forward", 0, 1e-6, 1e-6, flops=0, bytes_moved=800),
                         Event("MatMulBackward", "backward", 0, 1e-3, 1e-3, flops=10, bytes_moved=10),
                         Event("Linear()", "range", 0, 2e-3, 1e-3)])
    points = roofline(rows, peak=1e10, bandwidth=1e9)
    assert [p.name for p in points] == ["MatMul"]
    assert points[0].intensity == 20 and points[0].attainable == 1e10 and points[0].fraction == pytest.approx(0.2)

