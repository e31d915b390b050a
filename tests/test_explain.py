"""The notes' one-neuron chain and the backprop-against-numeric timings."""

import math

import pytest

from gpunet.tools.bench import time_gradients
from gpunet.tools.explain import OUTPUT_DELTAS, explain


@pytest.mark.parametrize("cost", list(OUTPUT_DELTAS))
@pytest.mark.parametrize(
    "values",
    [
        (1.0, 0.0, 0.6, 0.9, 2.0, 2.0),
        (-0.5, 1.0, 1.5, -0.3, -2.0, 0.4),
        (2.0, 0.3, 0.0, 0.0, 0.0, 0.0),
    ],
)
def test_hand_backprop_and_numeric_partials_agree(cost, values):
    result = explain(*values, cost=cost, backend="numpy")
    assert [p.name for p in result.partials] == ["dC/dw2", "dC/db2", "dC/dw1", "dC/db1"]
    for p in result.partials:
        assert p.backprop == pytest.approx(p.hand, rel=1e-12, abs=1e-15), p.name
        assert p.numeric == pytest.approx(p.hand, rel=1e-6, abs=1e-9), p.name
    x, _, w1, b1, w2, b2 = values
    a2 = 1 / (1 + math.exp(-(w2 / (1 + math.exp(-(w1 * x + b1))) + b2)))
    assert result.values["a2"] == pytest.approx(a2, rel=1e-12)


def test_the_cross_entropy_removes_the_output_slope():
    quadratic, cross = explain(cost="quadratic"), explain(cost="cross_entropy")
    # the defaults saturate a2 ≈ 0.97: σ'(z2) ≈ 0.025 shrinks the quadratic's gradient
    assert cross.partials[1].hand == pytest.approx(cross.values["a2"] - cross.values["y"])
    assert quadratic.partials[1].hand < cross.partials[1].hand / 20


def test_the_printed_explanation_shows_formulas_and_values():
    text = str(explain(backend="numpy"))
    assert "(a2 − y) σ'(z2) w2 σ'(z1) x" in text
    assert "largest relative difference" in text and "backprop" in text and "numeric" in text


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"x": float("nan")}, ValueError, "x must be finite"),
        ({"w2": "2"}, TypeError, "w2 must be a number"),
        ({"cost": "hinge"}, ValueError, "unknown cost"),
        ({"y": 2.0, "cost": "cross_entropy"}, ValueError, r"\[0, 1\]"),
        # the chain's output is a sigmoid: the log-likelihood is refused, and why
        ({"cost": "log_likelihood"}, ValueError, "never penalises the wrong classes"),
    ],
)
def test_bad_input_is_a_clear_error(kwargs, error, message):
    with pytest.raises(error, match=message):
        explain(**kwargs)


def test_timings_cover_each_network_and_numeric_is_slower():
    timings = time_gradients(
        [[4, 4, 3], [12, 12, 3]], ["tanh", "softmax"], samples=4, repeats=1, backend="numpy"
    )
    assert [t.sizes for t in timings] == [[4, 4, 3], [12, 12, 3]]
    assert [t.parameters for t in timings] == [4 * 4 + 4 + 4 * 3 + 3, 12 * 12 + 12 + 12 * 3 + 3]
    for t in timings:
        assert t.backprop_seconds > 0 and t.ratio == t.numeric_seconds / t.backprop_seconds
    assert timings[1].ratio > 1  # 2 × 195 forward passes against one forward and backward


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "message"),
    [
        (([],), {}, ValueError, "at least one"),
        (("4,4",), {}, TypeError, "sizes_list"),
        (([[4, 4]],), {"samples": 0}, ValueError, "samples"),
        (([[4, 4]],), {"repeats": 1.5}, TypeError, "repeats"),
        (([[4, 4], [0, 1]],), {}, ValueError, "sizes"),
    ],
)
def test_timing_arguments_are_checked_before_any_work(args, kwargs, error, message):
    with pytest.raises(error, match=message):
        time_gradients(*args, backend="numpy", **kwargs)
