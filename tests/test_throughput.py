"""The throughput benchmark: what it counts, what its peers compute, what it records."""

from __future__ import annotations

import importlib.util
import itertools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import png_size

from gpunet import Network
from gpunet.core.backends import NumpyBackend
from gpunet.tools import bench
from gpunet.tools.bench import machine, portable, sweep, trust
from gpunet.tools.bench.peers import (
    PeerUnavailableError,
    Pool,
    gemm_runner,
    gpunet_runner,
    loop_runner,
    step_gemms,
    torch_runner,
)

ROOT = Path(__file__).resolve().parents[1]
TINY = {"sizes": [6, 5, 4, 3]}
# the three output/cost pairs the bench shapes use, each with a hidden layer before it
CASES = {
    "sigmoid/cross_entropy": ["tanh", "tanh", "sigmoid"],
    "softmax/log_likelihood": ["relu", "sigmoid", "softmax"],
    "relu/quadratic": ["relu", "relu", "relu"],
}


def tiny_pool(activations: list[str], rows: int = 32, seed: int = 0) -> Pool:
    shape = bench.Shape(TINY["sizes"], activations)
    return sweep.make_pool(shape, rows, "float64", seed)


def tiny_net(activations: list[str]) -> Network:
    return Network(TINY["sizes"], activations, backend="numpy", dtype="float64", seed=3)


# --- counting ---------------------------------------------------------------------------


def test_gemm_flops_count_the_gemms_by_hand():
    # [3, 5, 2] at m = 4: forward 5x3 and 2x5, the same for BP4, and BP2 for layer 2 only
    forward = 2 * 4 * (5 * 3 + 2 * 5)
    assert sweep.gemm_flops([3, 5, 2], 4, "infer") == forward
    assert sweep.gemm_flops([3, 5, 2], 4, "train") == 2 * forward + 2 * 4 * 2 * 5


@pytest.mark.parametrize("mode", ["train", "infer"])
def test_step_gemms_are_the_gemms_gpunet_and_the_ceiling_run(monkeypatch, mode):
    recorded = []

    class Recording(NumpyBackend):
        def matmul(self, a, b, out):
            recorded.append((a.shape[0], a.shape[1], b.shape[1]))
            return super().matmul(a, b, out)

    activations = CASES["softmax/log_likelihood"]
    pool = tiny_pool(activations)
    batch = np.arange(7)
    expected = sorted(step_gemms(TINY["sizes"], 7, mode))
    for make in (
        lambda net: gpunet_runner(net, pool, net.cost_function(None), 0.1),
        gemm_runner,
    ):
        net = Network(TINY["sizes"], activations, backend=Recording(), dtype="float64", seed=0)
        runner = make(net)
        recorded.clear()
        (runner.train if mode == "train" else runner.infer)(batch)
        assert sorted(recorded) == expected


# --- the peers compute the same step ------------------------------------------------------


@pytest.mark.parametrize("case", CASES)
def test_the_per_example_loop_takes_the_same_step_as_gpunet(case):
    activations = CASES[case]
    pool = tiny_pool(activations)
    batch = np.array([3, 1, 4, 15, 9, 26, 5])
    net, reference = tiny_net(activations), tiny_net(activations)
    loop = loop_runner(reference, pool, reference.cost_function(None), 0.5)
    gpunet_runner(net, pool, net.cost_function(None), 0.5).train(batch)
    loop.train(batch)
    weights, biases = loop.params
    moved = np.abs(net.weights[0] - reference.weights[0]).max()
    assert moved > 1e-4  # the step did something to compare
    for ours, theirs in zip(net.weights + net.biases, weights + [b[:, 0] for b in biases]):
        np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("case", CASES)
def test_pytorch_takes_the_same_step_as_gpunet(case):
    pytest.importorskip("torch", reason="PyTorch is not installed: no peer to compare")
    activations = CASES[case]
    pool = tiny_pool(activations)
    batch = np.array([2, 7, 1, 8, 28, 18])
    net, reference = tiny_net(activations), tiny_net(activations)
    peer = torch_runner(reference, pool, reference.cost_function(None), 0.5)
    gpunet_runner(net, pool, net.cost_function(None), 0.5).train(batch)
    peer.train(peer.indices(batch))
    linears = [p.detach().numpy() for p in peer.params]
    ours = [a for w, b in zip(net.weights, net.biases) for a in (w, b)]
    assert np.abs(net.weights[-1] - reference.weights[-1]).max() > 1e-4
    for mine, theirs in zip(ours, linears, strict=True):
        np.testing.assert_allclose(mine, theirs, rtol=1e-9, atol=1e-11)


def test_torch_peer_absent_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    net = tiny_net(CASES["relu/quadratic"])
    with pytest.raises(PeerUnavailableError, match="not installed"):
        torch_runner(net, tiny_pool(CASES["relu/quadratic"]), net.cost_function(None), 0.1)


def test_cuda_graphs_need_a_gpu():
    pytest.importorskip("torch", reason="PyTorch is not installed")
    net = tiny_net(CASES["relu/quadratic"])
    with pytest.raises(PeerUnavailableError, match="GPU"):
        torch_runner(
            net, tiny_pool(CASES["relu/quadratic"]), net.cost_function(None), 0.1, graphs=True
        )


# --- timing ---------------------------------------------------------------------------------


def test_time_steps_rotates_batches_and_syncs_inside_the_clock():
    seen, syncs = [], []
    seconds = sweep.time_steps(
        seen.append, ["a", "b", "c"], lambda: syncs.append(len(seen)), repeats=4, min_seconds=1e-4
    )
    assert len(seconds) == 4 and all(s > 0 for s in seconds)
    assert set(seen) == {"a", "b", "c"}
    assert seen[sweep.WARMUP_STEPS + 1 :][:3] == ["a", "b", "c"]
    assert syncs[-1] == len(seen)  # the last step was waited for before the clock stopped


def test_same_footing_matches_threads_and_restores_them():
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    torch.set_num_threads(1)
    before = torch.backends.cuda.matmul.fp32_precision
    with machine.same_footing("numpy", tf32=False):
        assert torch.get_num_threads() == bench.blas_threads()
        assert torch.backends.cuda.matmul.fp32_precision == "ieee"
    with machine.same_footing("numpy", tf32=True):
        assert torch.backends.cuda.matmul.fp32_precision == "tf32"
    assert torch.get_num_threads() == 1
    assert torch.backends.cuda.matmul.fp32_precision == before


def small_settings(**changes) -> bench.Settings:
    settings = {
        "backend": "numpy",
        "shapes": ("nielsen",),
        "batch_sizes": (1, 8),
        "peers": ("loop",),
        "repeats": 2,
        "min_seconds": 0.002,
    }
    return bench.Settings(**{**settings, **changes})


def test_run_records_every_cell_with_its_measures():
    record = bench.run(small_settings(peers=("loop", "numeric")))
    cells = record["cells"]
    impls = {"gemm-numpy", "gpunet-numpy", "loop-numpy"}
    assert {(c["impl"], c["mode"], c["batch_size"]) for c in cells} == {
        (i, m, b) for i in impls for m in ("train", "infer") for b in (1, 8)
    }
    for cell in cells:
        assert cell["status"] == "ok"
        assert len(cell["seconds_per_step"]) == 2
        assert cell["samples_per_second"] == pytest.approx(
            cell["batch_size"] / cell["median_seconds"]
        )
        flops = sweep.gemm_flops([784, 30, 10], cell["batch_size"], cell["mode"])
        assert cell["tflops"] == pytest.approx(flops / cell["median_seconds"] / 1e12)
        assert cell["fraction_of_gemm_ceiling"] > 0
        assert cell["range_over_median"] == trust.spread(cell["seconds_per_step"])
        assert "2 timed runs, fewer than 3" in cell["trust"][0]  # settings of 2 repeats
    assert record["trust_limits"] == trust.LIMITS
    assert {c["finite"] for c in cells} == {None, True}  # the ceiling keeps no parameters
    gemm = [c for c in cells if c["impl"] == "gemm-numpy"]
    assert all(c["fraction_of_gemm_ceiling"] == 1 for c in gemm)
    numeric = record["numeric_gradient"]
    assert numeric["parameters"] == 64 * 16 + 16 + 16 * 10 + 10
    assert numeric["ratio"] == pytest.approx(
        numeric["numeric_seconds"] / numeric["backprop_seconds"]
    )
    assert numeric["ratio"] > 10  # two forward passes per parameter against one backprop
    environment = record["environment"]
    assert environment["numpy"] == np.__version__ and environment["blas"]["threads"] >= 1
    assert record["settings"]["batch_sizes"] == (1, 8)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the overflow is the point
def test_a_diverged_cell_is_flagged(monkeypatch):
    monkeypatch.setattr(sweep, "LR", 1e38)
    settings = small_settings(shapes=("mnist-mlp",), batch_sizes=(8,), modes=("train",), peers=())
    record = bench.run(settings)
    (cell,) = [c for c in record["cells"] if c["impl"] == "gpunet-numpy"]
    assert cell["finite"] is False
    assert "gpunet-numpy (diverged" in bench.table(record)


def test_every_cell_starts_from_the_same_parameters(monkeypatch):
    made = []
    original = sweep.make_runner

    def counting(*args):
        made.append(args[0])
        return original(*args)

    monkeypatch.setattr(sweep, "make_runner", counting)
    bench.run(small_settings(batch_sizes=(1, 2, 3), peers=("loop",)))
    # one runner per cell: 3 implementations x 2 modes x 3 batch sizes
    assert sorted(made) == sorted(["gemm", "gpunet", "loop"] * 6)


def test_cells_over_the_time_budget_are_skipped_with_the_estimate():
    record = bench.run(small_settings(batch_sizes=(1, 100000), max_seconds=0.5, peers=()))
    large = [c for c in record["cells"] if c["batch_size"] == 100000]
    assert large and all(c["status"] == "skipped" for c in large)
    assert all("budget" in c["reason"] for c in large)
    assert "skipped: estimated" in bench.table(record)


def test_cells_over_the_memory_budget_are_skipped(monkeypatch):
    monkeypatch.setattr(sweep, "memory_available", lambda backend: 1 << 20)
    record = bench.run(small_settings(batch_sizes=(1,), peers=()))
    assert {c["status"] for c in record["cells"]} == {"skipped"}
    assert all("GiB" in c["reason"] for c in record["cells"])


def test_an_absent_peer_is_reported_not_dropped(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    record = bench.run(small_settings(peers=("torch",), modes=("train",)))
    absent = [c for c in record["cells"] if c["impl"] == "torch-cpu"]
    assert len(absent) == 2 and all(c["status"] == "absent" for c in absent)
    assert "absent: PyTorch is not installed" in bench.table(record)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"shapes": ("huge",)}, "unknown shape 'huge'"),
        ({"peers": ("jax",)}, "unknown peer 'jax'"),
        ({"modes": ("predict",)}, "unknown mode 'predict'"),
        ({"modes": ()}, "at least one shape and one mode"),
        ({"batch_sizes": (1, 0)}, "batch sizes must be positive integers"),
        ({"batch_sizes": ()}, "batch sizes must be positive integers"),
        ({"dtype": "float16"}, "dtype must be one of"),
        ({"repeats": 0}, "repeats must be a positive integer"),
        ({"max_seconds": float("nan")}, "max_seconds must be a positive number"),
        ({"dtype": "tf32"}, "'tf32' needs the cupy backend"),
    ],
)
def test_bad_settings_are_clear_errors(changes, message):
    with pytest.raises(ValueError, match=message):
        bench.run(small_settings(**changes))


# --- reporting ---------------------------------------------------------------------------------


def test_table_and_plot(tmp_path):
    record = bench.run(small_settings(batch_sizes=(1, 4, 16)))
    text = bench.table(record)
    rows = [line for line in text.splitlines() if line.startswith("| ") and "-numpy" in line]
    assert len(rows) == len(record["cells"]) == 3 * 2 * 3
    path = bench.plot(record, tmp_path / "curves.png")
    # one panel per mode across, one shape down, at the figure's 100 dpi
    assert png_size(path) == (1100, 380)


def test_make_pool_targets_match_the_output():
    classes = sweep.make_pool(bench.SHAPES["nielsen"], 50, "float32")
    assert classes.x.dtype == np.float32 and classes.x.shape == (50, 784)
    assert (classes.y.argmax(axis=1) == classes.labels).all() and (classes.y.sum(axis=1) == 1).all()
    real = sweep.make_pool(bench.SHAPES["wide"], 3, "float64")
    assert real.labels is None and real.y.shape == (3, 1024) and real.y.dtype == np.float64


def test_bench_command_writes_json_and_plot(tmp_path):
    out, png = tmp_path / "bench.json", tmp_path / "bench.png"
    args = ["bench", "--backend", "numpy", "--shape", "nielsen", "--batch-sizes", "1,2"]
    args += ["--repeats", "1", "--min-seconds", "0.001", "--peers", "loop", "--mode", "infer"]
    args += ["--json", str(out), "--plot", str(png), "--no-progress"]
    result = subprocess.run(
        [sys.executable, "-m", "gpunet", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT), "PATH": ""},
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "| 2 | loop-numpy ! |" in result.stdout  # one timed run each: all flagged
    assert "! 2 loop-numpy: 1 timed run, fewer than 3" in result.stdout
    (warning,) = result.stderr.splitlines()
    assert warning.startswith("warning: 6 of 6 measured cells are not to be trusted")
    record = json.loads(out.read_text())
    assert record["command"] == "gpunet " + " ".join(args)
    assert len(record["cells"]) == 3 * 2
    assert png_size(png) == (550, 380)


def test_bench_command_rejects_an_unknown_shape_before_measuring():
    result = subprocess.run(
        [sys.executable, "-m", "gpunet", "bench", "--shape", "nielsen,tiny"],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT), "PATH": ""},
        timeout=60,
    )
    assert result.returncode == 2
    assert "unknown shape 'tiny'" in result.stderr


# --- records without machine paths ------------------------------------------------------------


def test_portable_writes_paths_relative_to_the_checkout(tmp_path):
    record = {
        "path": str(tmp_path / "gpunet"),
        "command": f"PYTHONPATH={tmp_path} python {tmp_path}/bench/x.py --json {tmp_path}/r.json",
        "build": [str(tmp_path.parent / "site-packages/scipy_openblas64/include")],
        "cwd": str(tmp_path),
        "formula": "2(K−1)/K · bytes/bandwidth, samples/s",
        "count": 3,
    }
    assert portable(record, tmp_path) == {
        "path": "gpunet",
        "command": "PYTHONPATH=. python bench/x.py --json r.json",
        "build": ["include"],  # outside the checkout: the last part only
        "cwd": ".",
        "formula": "2(K−1)/K · bytes/bandwidth, samples/s",
        "count": 3,
    }


def test_the_environment_record_holds_no_absolute_path(monkeypatch):
    monkeypatch.chdir(ROOT)
    record = bench.environment("numpy")
    text = json.dumps(record)
    assert machine.ABSOLUTE_PATH.search(text) is None, text
    assert record["gpunet_source"]["path"] == "gpunet"  # the whole package, not bench/ alone


def test_the_epoch_benchmark_record_holds_no_absolute_path(tmp_path, monkeypatch, capsys):
    pytest.importorskip("torch", reason="PyTorch is not installed: no epoch to compare")
    spec = importlib.util.spec_from_file_location(
        "epoch_vs_torch", ROOT / "bench/epoch_vs_torch.py"
    )
    epoch_vs_torch = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(epoch_vs_torch)
    out = tmp_path / "epoch.json"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    args = ["--batch-sizes", "64", "--repeats", "1", "--examples", "512", "--json", str(out)]
    monkeypatch.setattr(sys, "argv", [str(ROOT / "bench/epoch_vs_torch.py"), *args])
    assert epoch_vs_torch.main(args) == 0
    text = out.read_text()
    assert machine.ABSOLUTE_PATH.search(text) is None, text
    record = json.loads(text)
    assert record["cwd"] == "." and record["argv"][-1] == "epoch.json"
    assert record["results"][0]["batch_size"] == 64


def test_the_blas_benchmark_sets_each_step_beside_the_square_gemm_peak(tmp_path, monkeypatch):
    pytest.importorskip("threadpoolctl", reason="bench/blas_choice.py limits BLAS threads")
    spec = importlib.util.spec_from_file_location("blas_choice", ROOT / "bench/blas_choice.py")
    blas_choice = importlib.util.module_from_spec(spec)
    monkeypatch.syspath_prepend(str(ROOT))
    spec.loader.exec_module(blas_choice)
    out = tmp_path / "blas.json"
    args = ["--batch-sizes", "3", "--threads", "1", "--rounds", "1", "--square", "64"]
    assert blas_choice.main([*args, "--json", str(out)]) == 0
    record = json.loads(out.read_text())
    (result,) = record["results"]
    # 8 GEMMs of [784, 256, 256, 10] at m = 3: forward 3, BP4 3, BP2 2 (none into the input)
    sizes = [784, 256, 256, 10]
    forward = sum(2 * 3 * n * k for k, n in itertools.pairwise(sizes))
    assert result["flops_per_step"] == 3 * forward - 2 * 3 * 256 * 784
    for lib, us in result["us_per_step"].items():
        assert result["gflops_per_s"][lib] == pytest.approx(result["flops_per_step"] / us / 1e3)
    assert record["square_size"] == 64 and record["square_gflops_per_s"]["1"]["numpy"] > 0
