"""The computational graph drawer: every activation and cost, PNGs of the declared size."""

import pytest
from conftest import png_size, valid_pairs

import gpunet
from gpunet.core.activations import ACTIVATIONS
from gpunet.tools.diagram import DERIVATIVES, DPI, draw_graph, figure_inches


def expected_size(layers):
    width, height = figure_inches(layers)
    return int(width * DPI), int(height * DPI)


def test_every_activation_has_its_derivative_label():
    assert set(DERIVATIVES) == set(ACTIVATIONS)


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
