"""The computational graph drawer: every activation and cost, PNGs of the declared size."""

import pytest
from conftest import png_size, valid_pairs

import gpunet
from gpunet.core.activations import ACTIVATIONS
from gpunet.core.costs import COSTS
from gpunet.tools.diagram import DPI, cancelled_delta, draw_graph, figure_inches


def expected_size(layers):
    width, height = figure_inches(layers)
    return int(width * DPI), int(height * DPI)


def test_labels_come_from_the_activations_and_costs():
    # the diagram keeps no table of its own: a new activation or cancelling pair shows up
    assert all(g.derivative_tex for g in ACTIVATIONS.values())
    assert all(c.gradient_tex for c in COSTS.values())
    for g in ACTIVATIONS.values():
        for c in COSTS.values():
            want = f"${c.cancelled_tex}$" if g.name in c.cancels_with else None
            assert cancelled_delta(g, c) == want
    softmax_log_likelihood = cancelled_delta(ACTIVATIONS["softmax"], COSTS["log_likelihood"])
    assert softmax_log_likelihood == r"$\delta^L = (A - Y)/m$"


@pytest.mark.parametrize(("activation", "cost"), valid_pairs())
def test_every_activation_and_cost_is_drawn(tmp_path, activation, cost):
    # the detailed layer is the output one: BP1's seed, or the fused delta
    net = gpunet.Network([5, 4, 3], [activation, activation], backend="numpy")
    path = draw_graph(net, tmp_path / "g.png", cost=cost, layer=2)
    assert png_size(path) == expected_size(2)


@pytest.mark.parametrize("layers", [1, 6, 8])
def test_deep_networks_widen_the_figure(tmp_path, layers):
    net = gpunet.Network([10] * (layers + 1), "relu", backend="numpy")
    path = draw_graph(net, tmp_path / "g.png", cost="quadratic")
    assert png_size(path) == expected_size(layers)
    assert expected_size(8)[0] > expected_size(1)[0]


def test_bad_arguments_are_clear_errors(tmp_path):
    net = gpunet.Network([3, 2, 2], "sigmoid", backend="numpy")
    with pytest.raises(TypeError, match="net must be a gpunet Network"):
        draw_graph([3, 2, 2], tmp_path / "g.png")
    for layer in (0, 3, True, 1.0):
        with pytest.raises(ValueError, match="layer must be"):
            draw_graph(net, tmp_path / "g.png", layer=layer)
    with pytest.raises(ValueError, match="unknown cost"):
        draw_graph(net, tmp_path / "g.png", cost="hinge")
    with pytest.raises(ValueError, match="cross_entropy"):
        draw_graph(
            gpunet.Network([3, 2], "relu", backend="numpy"),
            tmp_path / "g.png",
            cost="cross_entropy",
        )
    with pytest.raises(ValueError, match=r"\.png"):
        draw_graph(net, tmp_path / "g.svg")
    assert list(tmp_path.iterdir()) == []
