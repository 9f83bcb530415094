"""Module 17: the benchmarking harness (nearest-rank percentiles, warm-up and repeats, size and peak memory,
one benchmark of a real model), the Pareto frontier and the events' leaderboards."""
from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinytorch.core.activations import ReLU
from tinytorch.core.autograd import no_grad
from tinytorch.core.capstone import (EVENTS, Event, LanguageResult, Result, benchmark, dominates, environment,
                                     language_benchmark, leaderboard, measure_latency, model_size, pareto_frontier,
                                     peak_memory, percentile, plot_frontier)
from tinytorch.core.layers import Linear, Sequential
from tinytorch.core.tensor import Tensor
from tinytorch.core.transformer import GPT, PerPositionLogits, next_character_windows

pytestmark = pytest.mark.module("capstone")

samples = st.lists(st.floats(0, 1e3, allow_nan=False), min_size=1, max_size=60)


@settings(max_examples=200, deadline=None)
@given(samples, st.integers(1, 100))
def test_percentile_is_numpys_inverted_cdf(values, q):
    """The nearest-rank rule is NumPy's `inverted_cdf` method: the oracle."""
    assert percentile(values, q) == float(np.percentile(values, q, method="inverted_cdf"))


@settings(max_examples=100, deadline=None)
@given(samples)
def test_percentiles_are_samples_in_order(values):
    p50, p99 = percentile(values, 50), percentile(values, 99)
    assert p50 in values and p99 in values
    assert min(values) <= p50 <= p99 <= max(values) == percentile(values, 100)


@pytest.mark.parametrize("q", [0, -1, 100.5, math.nan])
def test_percentile_refuses_a_bad_q(q):
    with pytest.raises(ValueError, match="0 < q <= 100"):
        percentile([1.0], q)


def test_percentile_of_nothing_is_an_error():
    with pytest.raises(ValueError, match="no samples"):
        percentile([], 50)


def test_latency_counts_only_the_repeats_after_the_warm_up():
    now = [0.0]
    durations = iter([9.0, 9.0, 9.0, 1.0, 2.0, 3.0, 4.0])

    def run():
        now[0] += next(durations)

    assert measure_latency(run, warmup=3, repeats=4, clock=lambda: now[0]) == [1.0, 2.0, 3.0, 4.0]


def test_latency_with_the_real_clock_sees_real_work():
    small = percentile(measure_latency(lambda: np.ones(10).sum(), 1, 9), 50)
    large = percentile(measure_latency(lambda: np.ones(3_000_000).sum(), 1, 9), 50)
    assert 0 < small < large


def test_size_counts_each_dtype():
    model = Sequential(Linear(4, 3, dtype=np.float64), ReLU(), Linear(3, 2))
    assert model_size(model) == (15 + 8, 15 * 8 + 8 * 4)


def test_peak_memory_sees_temporaries_and_stops_tracing():
    assert peak_memory(lambda: np.ones(2_000_000).sum()) >= 16_000_000
    assert not tracemalloc.is_tracing()


@pytest.fixture(scope="module")
def trained_classifier():
    """A small classifier of three well-separated blobs, fitted in closed form (least squares on one-hot labels)."""
    rng = np.random.default_rng(0)
    centres = np.array([[3, 0], [0, 3], [-3, -3]], dtype=np.float32)
    labels = np.repeat(np.arange(3), 40)
    inputs = (centres[labels] + rng.standard_normal((120, 2))).astype(np.float32)
    model = Sequential(Linear(2, 3))
    features = np.hstack([inputs, np.ones((120, 1), dtype=np.float32)])
    solution = np.linalg.lstsq(features, np.eye(3, dtype=np.float32)[labels], rcond=None)[0]
    model.layers[0].weight.numpy()[...] = solution[:2]
    model.layers[0].bias.numpy()[...] = solution[2]
    return model, inputs, labels


def test_benchmark_of_a_real_model_agrees_with_direct_measurements(trained_classifier):
    model, inputs, labels = trained_classifier
    model.train()
    result = benchmark("blobs", model, inputs, labels, warmup=2, repeats=20)
    with no_grad():
        expected = float(np.mean(model(Tensor(inputs)).numpy().argmax(axis=1) == labels))
    assert result.accuracy == pytest.approx(expected) and result.accuracy > 0.9
    assert not model.training, "benchmark leaves the model in eval mode"
    assert (result.parameters, result.size_bytes) == (9, 36)
    assert 0 < result.p50_ms <= result.p99_ms
    assert result.throughput > 0 and result.peak_memory_bytes >= 120 * 3 * 4  # the float32 logits of the split at least
    assert not tracemalloc.is_tracing()


def test_benchmark_refuses_mismatched_labels(trained_classifier):
    model, inputs, labels = trained_classifier
    with pytest.raises(ValueError, match="as many labels as inputs"):
        benchmark("blobs", model, inputs, labels[:-1])


def result(name, accuracy, cost, size=100):
    return Result(name, accuracy, cost, cost, 1.0, 0, size, size)


points = st.lists(st.tuples(st.sampled_from([0.9, 0.95, 0.97, 0.99]), st.sampled_from([1.0, 2.0, 3.0, 5.0])),
                  min_size=0, max_size=12)


@settings(max_examples=200, deadline=None)
@given(points)
def test_frontier_is_exactly_the_undominated_results(pairs):
    results = [result(f"r{i}", accuracy, cost) for i, (accuracy, cost) in enumerate(pairs)]
    frontier = pareto_frontier(results, "p50_ms")
    on = {r.name for r in frontier}
    for r in results:
        beaten = any(o.accuracy >= r.accuracy and o.p50_ms <= r.p50_ms and (o.accuracy, o.p50_ms) != (r.accuracy, r.p50_ms)
                     for o in results)
        assert (r.name in on) == (not beaten), r
    costs = [r.p50_ms for r in frontier]
    assert costs == sorted(costs)
    accuracies = [r.accuracy for r in frontier]  # along the frontier, paying more buys accuracy
    assert all(a <= b for a, b in zip(accuracies, accuracies[1:]))


def test_dominates_reads_the_named_cost():
    assert dominates(result("small", 0.9, 9.0, 10), result("big", 0.9, 1.0, 90), "size_bytes")
    assert not dominates(result("small", 0.9, 9.0, 10), result("big", 0.9, 1.0, 90), "p50_ms")


def test_plot_frontier_draws_every_point_and_the_frontier():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots()
    results = [result("A", 0.95, 1.0), result("B", 0.90, 2.0), result("C", 0.98, 3.0)]
    plot_frontier(results, "p50_ms", axes)
    (line,) = axes.get_lines()
    assert list(line.get_xdata()) == [1.0, 3.0] and list(line.get_ydata()) == [95.0, 98.0]
    assert len(axes.collections) == 3
    plt.close(figure)


def test_events_rank_above_the_floor_with_shared_places():
    event = EVENTS["digits-fastest"]
    entries = [result("slow", 0.99, 3.0), result("wrong", 0.5, 0.1), result("a", 0.985, 1.0), result("b", 0.99, 1.0)]
    assert [(place, r.name) for place, r in leaderboard(event, entries)] == [(1, "a"), (1, "b"), (3, "slow")]


def test_gpt_event_budget_and_a_bad_floor():
    event = EVENTS["gpt-bpc"]
    board = leaderboard(event, [LanguageResult("over", 1.0, 200_000, 0), LanguageResult("in", 3.0, 50_000, 0)])
    assert [r.name for _, r in board] == ["in"]
    with pytest.raises(ValueError, match="floor"):
        Event("x", "", "p50_ms", ("accuracy", "==", 1.0))


def test_language_benchmark_is_module_11s_loss_in_bits():
    model = GPT(vocab_size=7, context=4, d_model=8, num_heads=2, num_layers=1, rng=np.random.default_rng(0))
    ids = np.random.default_rng(1).integers(0, 7, 41)
    measured = language_benchmark("gpt", model, ids)
    inputs, targets = next_character_windows(ids, 4)
    with no_grad():
        nats = float(model.loss_function()(PerPositionLogits(model)(inputs), targets).item())
    assert measured.bits_per_character == pytest.approx(nats / math.log(2))
    assert measured.parameters == sum(p.size for p in model.parameters())
    assert measured.bits_per_character == pytest.approx(math.log2(7), rel=0.05), "an untrained model is near uniform"


def test_environment_records_the_machine():
    recorded = environment()
    assert {"cpu", "cores", "usable cores", "numpy", "blas", "python", "system"} <= set(recorded)
    assert recorded["numpy"] == np.__version__ and recorded["cores"] >= recorded["usable cores"] >= 1
