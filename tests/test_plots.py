"""Training plots: valid PNGs of the expected pixel size, and clear errors."""

import numpy as np
import pytest
from conftest import png_size

import gpunet
from gpunet.train.plots import DPI, PANEL_INCHES, plot_histories

PANEL = (int(PANEL_INCHES[0] * DPI), int(PANEL_INCHES[1] * DPI))


def history(diagnostics=True, classes=True, validation=True):
    X, y = gpunet.datasets.digits()
    X, y = X[:150], y[:150]
    if classes:
        net, Y = gpunet.Network([64, 8, 8, 10], "sigmoid", backend="numpy", seed=0), y
    else:  # regression: no accuracy
        net = gpunet.Network([64, 8, 1], ["tanh", "identity"], backend="numpy", seed=0)
        Y = y[:, None] / 9.0
    return net.fit(
        X,
        Y,
        epochs=3,
        batch_size=30,
        lr=0.1,
        progress=False,
        diagnostics=diagnostics,
        validation=(X[:50], Y[:50]) if validation else None,
    )


@pytest.mark.parametrize(
    ("kwargs", "columns"),
    [
        ({}, 3),
        ({"diagnostics": False}, 2),
        ({"diagnostics": False, "classes": False}, 1),
        ({"classes": False, "validation": False}, 2),
    ],
)
def test_history_plot_is_a_png_with_one_panel_per_column(tmp_path, kwargs, columns):
    path = history(**kwargs).plot(tmp_path / "h.png")
    assert path == tmp_path / "h.png"
    assert png_size(path) == (columns * PANEL[0], PANEL[1])


def test_several_histories_make_one_row_each_and_the_png_decodes(tmp_path):
    import matplotlib.image

    histories = [history(), history(diagnostics=False)]
    path = plot_histories(histories, tmp_path / "rows.png", labels=["a", "b"])
    assert png_size(path) == (3 * PANEL[0], 2 * PANEL[1])
    pixels = matplotlib.image.imread(path)
    assert pixels.shape[:2] == (2 * PANEL[1], 3 * PANEL[0])
    assert np.ptp(pixels[..., :3]) > 0.5  # something was drawn


def test_a_loaded_history_plots_like_the_original(tmp_path):
    original = history()
    original.save(tmp_path / "h.json")
    loaded = gpunet.History.load(tmp_path / "h.json")
    assert png_size(loaded.plot(tmp_path / "l.png")) == png_size(original.plot(tmp_path / "o.png"))


def test_bad_arguments_are_clear_errors(tmp_path):
    good = history(diagnostics=False)
    with pytest.raises(TypeError, match="histories must be a list"):
        plot_histories(good, tmp_path / "x.png")
    with pytest.raises(ValueError, match="at least one"):
        plot_histories([], tmp_path / "x.png")
    with pytest.raises(TypeError, match=r"histories\[0\] must be a History"):
        plot_histories([{"cost": [1.0]}], tmp_path / "x.png")
    with pytest.raises(ValueError, match="no epochs"):
        plot_histories([gpunet.History()], tmp_path / "x.png")
    with pytest.raises(ValueError, match="labels"):
        plot_histories([good], tmp_path / "x.png", labels=["a", "b"])
    short = history()
    short["gradient_norm"].pop()  # statistics for two epochs of three
    with pytest.raises(
        ValueError, match=r"histories\[0\]: history metric 'gradient_norm' has 2 entries for 3"
    ):
        plot_histories([short], tmp_path / "x.png")
    with pytest.raises(ValueError, match=r"\.png"):
        good.plot(tmp_path / "x.jpg")
    with pytest.raises(FileNotFoundError, match="no directory"):
        good.plot(tmp_path / "missing" / "x.png")
    with pytest.raises(TypeError, match="path"):
        good.plot(3)
    assert list(tmp_path.iterdir()) == []
