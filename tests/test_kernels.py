"""The CUDA kernels, checked without a GPU.

1. Every kernels/*.cu compiles with nvcc for sm_80 and sm_90, warnings as errors, with
   every name expression CuPy will ask for instantiated (skipped without nvcc).
2. The sources build as plain C++ (g++): activations.cuh's math is compared element by
   element with gpunet's NumPy activations on hard inputs, and every kernel runs on the
   host thread by thread (the same grid-stride loops, at the device's block size).
   Through that simulator the CuPy backend's own Python (argument checks, the exact
   argument list and scalar types of every launch) runs against the NumPy backend.
3. CupyBackend and NumpyBackend expose the same public methods and signatures.

What this cannot check: CUDA's own math library (expf, erf, ... on the device differ
from glibc's by an ulp or two), NVRTC (CuPy's compiler) and real launches; tests/test_gpu.py
does that on a device.
"""

from __future__ import annotations

import ctypes
import importlib.util
import inspect
import re
import shutil
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import scipy.special
from conftest import (
    assert_gradients_match,
    assert_parity,
    net_pair,
    parity_data,
    valid_pairs,
)

import gpunet
from gpunet.core.activations import ACTIVATIONS
from gpunet.core.backends import Backend, CupyBackend, NumpyBackend, kernels
from gpunet.core.costs import COSTS
from gpunet.core.optimizers import SGD, Adam

KERNELS = kernels.kernels_dir()
NVCC = shutil.which("nvcc")
CXX = shutil.which("g++") or shutil.which("c++")
needs_nvcc = pytest.mark.skipif(
    NVCC is None, reason="nvcc is not on PATH: the CUDA compile checks need the CUDA toolkit"
)
DTYPES = (np.float32, np.float64)
C_DTYPES = {"float": np.dtype(np.float32), "double": np.dtype(np.float64)}
ELEMENTWISE = tuple(kernels.ACTIVATION_IDS)
NUMPY = NumpyBackend()


# --- the kernels' declarations, read from the sources ----------------------------------


def kernel_signatures(path: Path) -> dict[str, list[str]]:
    """{kernel: [parameter type, ...]} for every __global__ function in a .cu file."""
    text = re.sub(r"//[^\n]*", "", path.read_text(encoding="utf-8"))
    signatures = {}
    for name, params in re.findall(r"__global__\s+void\s+(\w+)\s*\(([^)]*)\)", text):
        types_ = []
        for param in params.split(","):
            declared = re.fullmatch(r"\s*(.*?)\s*\w+\s*", param).group(1)
            types_.append(re.sub(r"\s*\*", "*", " ".join(declared.split())))
        signatures[name] = types_
    return signatures


def all_signatures() -> dict[str, list[str]]:
    signatures = {}
    for path in sorted(KERNELS.glob("*.cu")):
        signatures.update(kernel_signatures(path))
    return signatures


def split_name(expression: str) -> tuple[str, list[str]]:
    """'bias_activation<float, 1>' -> ('bias_activation', ['float', '1'])."""
    base, _, rest = expression.partition("<")
    return base, [a.strip() for a in rest.rstrip(">").split(",")]


def instantiations(names: list[str]) -> str:
    """C++ that takes the address of every kernel named, forcing its instantiation."""
    rows = "\n".join(f"      reinterpret_cast<const void*>(&{name})," for name in names)
    return (
        'extern "C" const void* gpunet_kernel(int i) {\n'
        "  static const void* const table[] = {\n"
        f"{rows}\n"
        "  };\n"
        "  return table[i];\n"
        "}\n"
    )


def test_sources_are_found_and_ascii():
    assert (KERNELS / "elementwise.cu").is_file()
    for path in [*KERNELS.glob("*.cu"), *KERNELS.glob("*.cuh")]:
        path.read_bytes().decode("ascii")  # NVRTC and CuPy's cache see plain bytes


def test_name_expressions_cover_every_kernel_and_activation():
    signatures = all_signatures()
    names = kernels.name_expressions()
    assert len(set(names)) == len(names)
    assert {split_name(n)[0] for n in names} == set(signatures)
    for kernel in signatures:
        for c_type in C_DTYPES:
            assert any(
                split_name(n)[0] == kernel and split_name(n)[1][0] == c_type for n in names
            ), (kernel, c_type)
    # every activation but softmax (its own kernels) has an elementwise kernel, and back
    assert set(kernels.ACTIVATION_IDS) == set(ACTIVATIONS) - {"softmax"}
    assert sorted(kernels.ACTIVATION_IDS.values()) == list(range(len(kernels.ACTIVATION_IDS)))


def test_source_heads_with_a_digest_of_the_headers():
    source = kernels.source()
    assert re.match(r"// headers sha256 [0-9a-f]{64}\n", source)
    assert "__global__ void bias_activation" in source


def test_kernels_dir_inside_an_installed_package(tmp_path):
    # the wheel layout: gpunet/core/backends/kernels.py, the sources in gpunet/kernels/
    backends = tmp_path / "gpunet" / "core" / "backends"
    backends.mkdir(parents=True)
    shutil.copy(kernels.__file__, backends / "kernels.py")
    shutil.copytree(KERNELS, tmp_path / "gpunet" / "kernels")
    spec = importlib.util.spec_from_file_location("wheel_kernels", backends / "kernels.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.kernels_dir() == (tmp_path / "gpunet" / "kernels").resolve()
    shutil.rmtree(tmp_path / "gpunet" / "kernels")
    with pytest.raises(FileNotFoundError, match="CUDA sources are missing"):
        module.kernels_dir()


# --- 1. nvcc ---------------------------------------------------------------------------

NVCC_FLAGS = (
    "-std=c++17",
    "-Werror",
    "all-warnings",
    "-Xcompiler",
    "-Wall,-Wextra,-Werror",
    "-Xptxas",
    "-Werror",
)


def nvcc(tmp_path: Path, name: str, code: str, *flags: str) -> None:
    source = tmp_path / f"{name}.cu"
    source.write_text(code)
    command = [NVCC, *NVCC_FLAGS, *flags, f"-I{KERNELS}", "-c", str(source)]
    command += ["-o", str(tmp_path / f"{name}.o")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{' '.join(command)}\n{output}"
    assert "warning" not in output.lower(), output


@needs_nvcc
@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
@pytest.mark.parametrize("cu", sorted(p.name for p in KERNELS.glob("*.cu")))
def test_nvcc_compiles_every_instantiation_without_warnings(tmp_path, cu, arch):
    defined = set(kernel_signatures(KERNELS / cu))
    names = [n for n in kernels.name_expressions() if split_name(n)[0] in defined]
    assert names
    nvcc(tmp_path, "all", f'#include "{cu}"\n{instantiations(names)}', f"-arch={arch}")


@needs_nvcc
def test_float_kernels_never_compute_in_double(tmp_path):
    # ptxas flags any double-precision instruction: a float kernel must stay in float
    names = [n for n in kernels.name_expressions() if split_name(n)[1][0] == "float"]
    code = '#include "elementwise.cu"\n' + instantiations(names)
    nvcc(tmp_path, "float_only", code, "-arch=sm_90", "-Xptxas", "-warn-double-usage")


# --- 2. the host build -------------------------------------------------------------------

HOST_PRELUDE = """\
// gpunet's kernels built for the host: each __global__ kernel becomes a function that
// runs one thread's share of its grid-stride loop.
#define __global__
static long long gpunet_sim_index = 0;
static long long gpunet_sim_count = 1;
#define GPUNET_THREAD_INDEX gpunet_sim_index
#define GPUNET_THREAD_COUNT gpunet_sim_count
#include "elementwise.cu"

extern "C" void gpunet_sim_thread(long long index, long long count) {
  gpunet_sim_index = index;
  gpunet_sim_count = count;
}

// activations.cuh alone: forward (what = 0) or derivative (what = 1) over an array
template <typename T, int ID>
static void apply(int what, const T* x, T* out, long long n) {
  for (long long k = 0; k < n; ++k) {
    out[k] = what == 0 ? gpunet::Activation<T, ID>::forward(x[k])
                       : gpunet::Activation<T, ID>::derivative(x[k]);
  }
}

template <typename T>
static int apply_any(int id, int what, const T* x, T* out, long long n) {
  switch (id) {
%(cases)s
    default: return -1;
  }
}

extern "C" int gpunet_apply_f32(int id, int what, const float* x, float* out, long long n) {
  return apply_any<float>(id, what, x, out, n);
}
extern "C" int gpunet_apply_f64(int id, int what, const double* x, double* out, long long n) {
  return apply_any<double>(id, what, x, out, n);
}
extern "C" int gpunet_from_output(int id) {
  switch (id) {
%(from_output)s
    default: return -1;
  }
}
extern "C" double gpunet_constant(int i) {
  const double constants[] = {gpunet::kLeakySlope, gpunet::kSqrtHalf, gpunet::kInvSqrt2Pi};
  return constants[i];
}
"""


class HostKernels:
    """The kernels compiled for the host, launched like CuPy launches them.

    `launch(name, blocks, args)` has kernels.launch's signature. It checks every
    argument against the kernel's declared parameter type exactly as the device would
    read it (CuPy checks nothing: a Python float or an int32 where the kernel wants a
    float or a long long is silently wrong there), then runs blocks x BLOCK threads one
    after another (or `threads`, when set).
    """

    def __init__(self, library: Path) -> None:
        self.lib = ctypes.CDLL(str(library))
        self.lib.gpunet_kernel.restype = ctypes.c_void_p
        self.lib.gpunet_kernel.argtypes = [ctypes.c_int]
        self.lib.gpunet_sim_thread.argtypes = [ctypes.c_longlong, ctypes.c_longlong]
        for suffix, c_type in (("f32", ctypes.c_float), ("f64", ctypes.c_double)):
            function = getattr(self.lib, f"gpunet_apply_{suffix}")
            pointer = ctypes.POINTER(c_type)
            function.argtypes = [ctypes.c_int, ctypes.c_int, pointer, pointer, ctypes.c_longlong]
            function.restype = ctypes.c_int
        self.lib.gpunet_constant.restype = ctypes.c_double
        self.lib.gpunet_constant.argtypes = [ctypes.c_int]
        self.names = kernels.name_expressions()
        self.signatures = all_signatures()
        self.threads: int | None = None
        self.launched: list[str] = []
        self._functions: dict[str, tuple] = {}

    def _function(self, name: str):
        if name not in self._functions:
            base, template_args = split_name(name)
            dtype = C_DTYPES[template_args[0]]
            params = self.signatures[base]
            c_types = []
            for param in params:
                if param.endswith("*"):
                    c_types.append(ctypes.c_void_p)
                else:
                    c_types.append(
                        {
                            "T": np.ctypeslib.as_ctypes_type(dtype),
                            "long long": ctypes.c_longlong,
                            "int": ctypes.c_int,
                        }[param]
                    )
            address = self.lib.gpunet_kernel(self.names.index(name))
            self._functions[name] = (
                ctypes.CFUNCTYPE(None, *c_types)(address),
                params,
                dtype,
            )
        return self._functions[name]

    def launch(self, name: str, blocks: int, args: tuple) -> None:
        assert name in self.names, f"{name} is not a name expression"
        assert isinstance(blocks, int) and blocks >= 1, blocks
        function, params, dtype = self._function(name)
        assert len(args) == len(params), f"{name}: {len(args)} arguments for {params}"
        c_args = []
        for i, (param, arg) in enumerate(zip(params, args)):
            where = f"{name} argument {i} ({param})"
            if param.endswith("*"):
                assert isinstance(arg, np.ndarray), f"{where}: got {type(arg).__name__}"
                assert arg.dtype == dtype, f"{where}: got an array of {arg.dtype}"
                if not param.startswith("const"):
                    assert arg.flags.writeable, where
                c_args.append(ctypes.c_void_p(arg.ctypes.data))
            else:
                expected = {"T": dtype.type, "long long": np.int64, "int": np.int32}[param]
                assert type(arg) is expected, f"{where}: got {type(arg).__name__}"
                c_args.append(arg.item())
        threads = self.threads or blocks * kernels.BLOCK
        for index in range(threads):
            self.lib.gpunet_sim_thread(index, threads)
            function(*c_args)
        self.launched.append(name)

    def apply(self, activation: str, what: str, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x)
        out = np.full_like(x, np.nan)
        suffix = "f32" if x.dtype == np.float32 else "f64"
        c_type = ctypes.POINTER(np.ctypeslib.as_ctypes_type(x.dtype))
        status = getattr(self.lib, f"gpunet_apply_{suffix}")(
            kernels.ACTIVATION_IDS[activation],
            {"forward": 0, "derivative": 1}[what],
            x.ctypes.data_as(c_type),
            out.ctypes.data_as(c_type),
            x.size,
        )
        assert status == 0
        return out


@pytest.fixture(scope="session")
def host(tmp_path_factory) -> HostKernels:
    if CXX is None:
        pytest.skip("no C++ compiler (g++ or c++) on PATH for the host build of the kernels")
    folder = tmp_path_factory.mktemp("host_kernels")
    cases = "\n".join(
        f"    case {i}: apply<T, {i}>(what, x, out, n); return 0;"
        for i in kernels.ACTIVATION_IDS.values()
    )
    from_output = "\n".join(
        f"    case {i}: return gpunet::Activation<float, {i}>::kFromOutput ? 1 : 0;"
        for i in kernels.ACTIVATION_IDS.values()
    )
    code = HOST_PRELUDE % {"cases": cases, "from_output": from_output}
    code += instantiations(kernels.name_expressions())
    source = folder / "host_kernels.cpp"
    source.write_text(code)
    library = folder / "host_kernels.so"
    command = [CXX, "-std=c++17", "-O2", "-Wall", "-Wextra", "-Werror", "-fPIC", "-shared"]
    command += [f"-I{KERNELS}", str(source), "-o", str(library)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{' '.join(command)}\n{result.stdout}{result.stderr}"
    return HostKernels(library)


# --- 2a. activations.cuh against activations.py ----------------------------------------


def hard_inputs(dtype) -> np.ndarray:
    info = np.finfo(dtype)
    special = [
        0.0, -0.0, 1e-8, -1e-8, info.tiny / 4, -info.tiny / 4, info.tiny, 1.0, -1.0,
        5.0, -5.0, 20.0, -20.0, 88.0, -88.0, 89.0, -89.0, 710.0, -710.0, 1000.0, -1000.0,
        np.inf, -np.inf, np.nan,
    ]  # fmt: skip
    rng = np.random.default_rng(0)
    normals = np.concatenate([rng.standard_normal(400), 4 * rng.standard_normal(400)])
    return np.concatenate([special, normals]).astype(dtype)


# rtol: about 8 ulp in float32, 4500 in float64 (glibc, NumPy's SIMD loops, SciPy's erf
# and CUDA's libdevice differ by an ulp or two each, and a step or two compound them).
# atol, in units of the dtype's epsilon times `scale`: where a value is a difference of
# O(1) terms (1 - a², Φ + zφ, gelu's 1 + erf for z << 0) its error is absolute, a few
# ulp of the terms; elsewhere the scale is 0 and atol is the smallest normal number, so
# that only a denormal result (e^-710) may differ beyond rtol.
TOLERANCE = {np.float32: 1e-6, np.float64: 1e-12}


def assert_close(actual, expected, dtype, scale=0.0, what=""):
    """|actual − expected| <= rtol·|expected| + max(8·eps·scale, tiny), NaN matching NaN."""
    info = np.finfo(dtype)
    atol = np.maximum(8 * info.eps * np.asarray(scale, dtype=np.float64), info.tiny)
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        same = (actual == expected) | (np.isnan(actual) & np.isnan(expected))
        close = np.abs(actual - expected) <= TOLERANCE[dtype] * np.abs(expected) + atol
    bad = ~(same | close)
    if np.any(bad):
        k = np.flatnonzero(bad)[:5]
        raise AssertionError(
            f"{what}: {bad.sum()} of {bad.size} entries differ beyond rtol "
            f"{TOLERANCE[dtype]}: at {k}, got {actual.ravel()[k]}, "
            f"expected {expected.ravel()[k]}"
        )


def test_constants_are_those_of_activations_py(host):
    from gpunet.core import activations

    assert host.lib.gpunet_constant(0) == activations.LEAKY_SLOPE
    assert host.lib.gpunet_constant(1) == activations._SQRT_HALF
    assert host.lib.gpunet_constant(2) == activations._INV_SQRT_2PI


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_derivative_source_matches_activations_py(host, name):
    from_output = host.lib.gpunet_from_output(kernels.ACTIVATION_IDS[name])
    assert from_output == int(ACTIVATIONS[name].derivative_from_output)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ELEMENTWISE)
def test_activation_math_matches_numpy(host, name, dtype):
    g = ACTIVATIONS[name]
    z = hard_inputs(dtype)
    with np.errstate(all="ignore"):
        a_ref = g.forward(NUMPY, z.copy(), np.empty_like(z))
        derivative_ref = g.backward(NUMPY, np.ones_like(z), z, a_ref, np.empty_like(z))  # 1 ⊙ g'
    a = host.apply(name, "forward", z)
    assert a.dtype == dtype
    # gelu's z(1 + erf(z/√2))/2 cancels for z << 0: an absolute error of a few ulp of |z|
    finite_z = np.abs(np.nan_to_num(z, posinf=0.0, neginf=0.0))
    assert_close(a, a_ref, dtype, finite_z if name == "gelu" else 0.0, f"{name}(z)")
    # every g' here is O(1) and some are differences of O(1) terms: a few ulp of 1
    x = a_ref if g.derivative_from_output else z
    derivative = host.apply(name, "derivative", x)
    assert_close(derivative, derivative_ref, dtype, 1.0, f"{name}'(z)")


@pytest.mark.parametrize("dtype", DTYPES)
def test_kinks_are_exact(host, dtype):
    z = np.array([0.0, -0.0], dtype)
    for name, slope in (("relu", 0.0), ("leaky_relu", 0.01)):
        a = host.apply(name, "forward", z)
        np.testing.assert_array_equal(a, [0.0, 0.0])
        np.testing.assert_array_equal(host.apply(name, "derivative", a), dtype(slope))
        reference = ACTIVATIONS[name].backward(NUMPY, np.ones_like(z), z, a, np.empty_like(z))
        np.testing.assert_array_equal(host.apply(name, "derivative", a), reference)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_saturates_without_overflow(host, dtype):
    z = np.array([-1000, -710, -88, 88, 710, 1000], dtype)
    a = host.apply("sigmoid", "forward", z)
    assert np.all(np.isfinite(a)) and np.all((a >= 0) & (a <= 1))
    assert a[0] == 0 and a[-1] == 1
    softplus = host.apply("softplus", "forward", z)
    np.testing.assert_array_equal(softplus[-3:], z[-3:])  # log1p(e^-z) vanishes beside z
    assert softplus[0] == 0


# --- 2b. the kernels, run on the host --------------------------------------------------


class NumpyAsDevice(types.ModuleType):
    """NumPy posing as CuPy for the CuPy backend: the same functions, plus asnumpy."""

    def __init__(self) -> None:
        super().__init__("numpy_as_device")

    def __getattr__(self, name):
        return getattr(np, name)

    @staticmethod
    def asnumpy(x):
        return np.asarray(x)


def simulated_backend(host: HostKernels, max_blocks: int = 1) -> CupyBackend:
    """The CuPy backend's own code, on NumPy arrays, its kernels run by the host build."""
    backend = CupyBackend.__new__(CupyBackend)
    backend._setup(NumpyAsDevice(), scipy.special, max_blocks=max_blocks, launch=host.launch)
    return backend


def random(shape, dtype, seed=0, scale=1.0):
    return (scale * np.random.default_rng(seed).standard_normal(shape)).astype(dtype)


def poisoned(shape, dtype):
    return np.full(shape, np.nan, dtype)


# shapes bigger than the simulated grid (1 block of 256 threads) in elements and columns,
# and small ones where threads outnumber the work
SHAPES = [(3, 5), (13, 50), (4, 300), (1, 1)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", [*ELEMENTWISE, "softmax"])
def test_bias_activation_kernel(host, name, dtype, shape):
    ops = simulated_backend(host)
    g = ACTIVATIONS[name]
    z = random(shape, dtype, 1, 3.0)
    b = random(shape[0], dtype, 2)
    expected_z = z.copy()
    expected_a = NUMPY.bias_activation(g, expected_z, b, np.empty_like(z))
    # separate output, poisoned
    z1, a1 = z.copy(), poisoned(shape, dtype)
    assert ops.bias_activation(g, z1, b, a1) is a1
    np.testing.assert_array_equal(z1, expected_z)  # the same one addition
    scale = np.maximum(1.0, np.abs(expected_z))  # gelu's cancellation for z << 0
    assert_close(a1, expected_a, dtype, scale, "a")
    # in place (a hidden layer's shared buffer)
    z2 = z.copy()
    ops.bias_activation(g, z2, b, z2)
    assert_close(z2, expected_a, dtype, scale, "a in place")


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", [*ELEMENTWISE, "softmax"])
def test_activation_delta_kernel(host, name, dtype, shape):
    ops = simulated_backend(host)
    g = ACTIVATIONS[name]
    z = random(shape, dtype, 1, 3.0)
    a = g.forward(NUMPY, z, np.empty_like(z))
    grad = random(shape, dtype, 3)
    expected = NUMPY.activation_delta(g, grad, z, a, np.empty_like(z))
    out = poisoned(shape, dtype)
    assert ops.activation_delta(g, grad, z, a, out) is out
    scale = np.abs(grad) if name != "softmax" else np.abs(grad).max()
    assert_close(out, expected, dtype, scale)
    in_place = grad.copy()
    ops.activation_delta(g, in_place, z, a, in_place)
    assert_close(in_place, expected, dtype, scale, "in place")
    if g.derivative_from_output:  # a hidden layer hands the shared Z/A buffer as both
        shared = grad.copy()
        ops.activation_delta(g, shared, a, a, shared)
        assert_close(shared, expected, dtype, scale, "shared Z/A")


def targets_for(shape, dtype, seed=4):
    """One-hot targets: valid for every cost (in [0, 1], rows summing to 1)."""
    n, m = shape
    labels = np.random.default_rng(seed).integers(0, n, size=m)
    return np.eye(n, dtype=dtype)[labels]  # (m, n), the workspace's layout


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("output, cost", valid_pairs())
def test_output_delta_kernel(host, output, cost, dtype, shape):
    ops = simulated_backend(host)
    g, c = ACTIVATIONS[output], COSTS[cost]
    z = random(shape, dtype, 1, 3.0)
    a = g.forward(NUMPY, z, np.empty_like(z))
    y = targets_for(shape, dtype)
    expected = c.delta(NUMPY, g, z, a, y.T, np.empty_like(z))
    out = poisoned(shape, dtype)
    assert c.delta(ops, g, z, a, y.T, out) is out
    assert_close(out, expected, dtype, 3.0 * np.abs(expected).max())
    # any target layout: a C-contiguous (n, m) target too
    out = poisoned(shape, dtype)
    c.delta(ops, g, z, a, np.ascontiguousarray(y.T), out)
    assert_close(out, expected, dtype, 3.0 * np.abs(expected).max(), "C-contiguous target")


@pytest.mark.parametrize("dtype", DTYPES)
def test_fused_output_deltas_launch_one_kernel(host, dtype):
    ops = simulated_backend(host)
    z = random((4, 9), dtype, 1)
    y = targets_for((4, 9), dtype)
    for output, cost, kernel in (
        ("softmax", "log_likelihood", "output_minus_target"),
        ("sigmoid", "cross_entropy", "output_minus_target"),
    ):
        host.launched.clear()
        g = ACTIVATIONS[output]
        a = g.forward(NUMPY, z, np.empty_like(z))
        COSTS[cost].delta(ops, g, z, a, y.T, np.empty_like(z))
        assert [split_name(n)[0] for n in host.launched] == [kernel]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_bias_gradient(host, dtype, shape):
    ops = simulated_backend(host)
    delta = random(shape, dtype, 5)
    out = poisoned(shape[0], dtype)
    expected = NUMPY.bias_gradient(delta, np.empty(shape[0], dtype))
    assert_close(ops.bias_gradient(delta, out), expected, dtype, 4.0 * shape[1])


SGD_CASES = [
    dict(lr=0.1, momentum=0.0, nesterov=False, weight_decay=0.0),
    dict(lr=0.1, momentum=0.9, nesterov=False, weight_decay=0.0),
    dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
    dict(lr=0.3, momentum=0.0, nesterov=False, weight_decay=0.01),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", SGD_CASES)
@pytest.mark.parametrize("size, n_decayed", [(700, 500), (10, 0), (1, 1)])
def test_sgd_update_kernel(host, case, dtype, size, n_decayed):
    ops = simulated_backend(host)
    params = {"numpy": random(size, dtype, 6), "kernel": None}
    params["kernel"] = params["numpy"].copy()
    velocity = {k: (np.zeros(size, dtype) if case["momentum"] else None) for k in params}
    for step in range(3):
        grads = random(size, dtype, 10 + step)
        kept = grads.copy()
        for key, backend in (("numpy", NUMPY), ("kernel", ops)):
            backend.sgd_update(
                params[key],
                grads.copy() if key == "numpy" else grads,
                velocity[key],
                n_decayed=n_decayed,
                **case,
            )
        np.testing.assert_array_equal(grads, kept)  # the kernel leaves grads alone
        assert_close(params["kernel"], params["numpy"], dtype, 1.0, f"params, step {step}")
        if case["momentum"]:
            assert_close(velocity["kernel"], velocity["numpy"], dtype, 4.0, "velocity")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
@pytest.mark.parametrize("size, n_decayed", [(700, 500), (3, 3)])
def test_adam_update_kernel(host, dtype, weight_decay, size, n_decayed):
    ops = simulated_backend(host)
    params = {"numpy": random(size, dtype, 6)}
    params["kernel"] = params["numpy"].copy()
    moments = {k: (np.zeros(size, dtype), np.zeros(size, dtype)) for k in params}
    for step in range(1, 4):
        grads = random(size, dtype, 10 + step)
        for key, backend in (("numpy", NUMPY), ("kernel", ops)):
            backend.adam_update(
                params[key],
                grads.copy(),
                *moments[key],
                1e-2,
                0.9,
                0.999,
                1e-8,
                step,
                weight_decay,
                n_decayed,
            )
        assert_close(params["kernel"], params["numpy"], dtype, 1.0, f"params, step {step}")
        for mine, theirs in zip(moments["kernel"], moments["numpy"]):
            assert_close(mine, theirs, dtype, 4.0, "moments")


@pytest.mark.parametrize("threads", [1, 2, 3, 7, 10, 11, 64, 255, 256, 257, 1000])
def test_grid_stride_loops_cover_each_element_once(host, threads):
    # the row cursor of bias_activation and the fused deltas, for every stride vs m:
    # identity with bias 0 on index-valued Z returns each index exactly once
    ops = simulated_backend(host)
    host.threads = threads
    try:
        for n, m in ((1, 1), (3, 1), (1, 5), (7, 10), (10, 7), (5, 256), (2, 300)):
            z = np.arange(n * m, dtype=np.float64).reshape(n, m)
            a = poisoned((n, m), np.float64)
            b = np.arange(n, dtype=np.float64) * 1000.0
            ops.bias_activation(ACTIVATIONS["identity"], z, b, a)
            expected = np.arange(n * m).reshape(n, m) + 1000.0 * np.arange(n)[:, None]
            np.testing.assert_array_equal(a, expected)
            y = np.arange(n * m, dtype=np.float64).reshape(m, n)  # (m, n) target rows
            out = poisoned((n, m), np.float64)
            COSTS["log_likelihood"].delta(ops, ACTIVATIONS["softmax"], a, a, y.T, out)
            np.testing.assert_array_equal(out, (a - y.T) * (1.0 / m))
    finally:
        host.threads = None


def test_kernel_checks_raise(host):
    ops = simulated_backend(host)
    launched = list(host.launched)
    g = ACTIVATIONS["sigmoid"]
    z = random((4, 6), np.float32)
    b = random(4, np.float32)
    with pytest.raises(ValueError, match="C-contiguous"):
        ops.bias_activation(g, np.asfortranarray(z), b, np.empty_like(z))
    with pytest.raises(ValueError, match="C-contiguous"):
        ops.activation_delta(g, z[:, ::2], z[:, ::2], z[:, ::2], np.empty((4, 3), np.float32))
    with pytest.raises(ValueError, match="C-contiguous"):
        ops.activation_delta(ACTIVATIONS["softmax"], z.T, z.T, z.T, np.empty((6, 4), np.float32))
    with pytest.raises(TypeError, match="one dtype"):
        ops.bias_activation(g, z, b.astype(np.float64), np.empty_like(z))
    with pytest.raises(TypeError, match="float32 or float64"):
        ops.bias_activation(g, z.astype(np.float16), b.astype(np.float16), z.astype(np.float16))
    with pytest.raises(ValueError, match="shape"):
        ops.bias_activation(g, z, random(5, np.float32), np.empty_like(z))
    with pytest.raises(ValueError, match="shape"):
        ops.activation_delta(g, z, z, z, np.empty((6, 4), np.float32))
    with pytest.raises(ValueError, match="shape"):
        y = targets_for((4, 5), np.float32)
        COSTS["cross_entropy"].delta(ops, g, z, z, y.T, np.empty_like(z))
    params = random(10, np.float32)
    with pytest.raises(ValueError, match="C-contiguous"):
        ops.sgd_update(params, random(20, np.float32)[::2], None, 0.1, 0.0, False, 0.0, 0)
    with pytest.raises(TypeError, match="one dtype"):
        ops.adam_update(
            params, params.copy(), np.zeros(10), np.zeros(10), 0.1, 0.9, 0.99, 1e-8, 1, 0.0, 0
        )
    with pytest.raises(ValueError, match="n_decayed"):
        ops.sgd_update(params, params.copy(), None, 0.1, 0.0, False, 0.1, 11)
    assert host.launched == launched  # every check runs before any launch


# --- 2c. whole networks on the simulated backend ----------------------------------------


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("output, cost", valid_pairs())
def test_network_parity_on_simulated_kernels(host, output, cost, dtype):
    sizes = [5, 6, 7, 4]
    activations = ["tanh", "gelu", output]
    X, labels = parity_data(sizes, 37)
    reference, simulated = net_pair(simulated_backend(host), sizes, activations, dtype)
    assert_parity(simulated.forward(X), reference.forward(X), dtype, "forward")
    assert_parity(simulated.cost(X, labels, cost), reference.cost(X, labels, cost), dtype, "cost")
    assert_gradients_match(simulated, reference, X, labels, cost, dtype)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("hidden", [*ELEMENTWISE, "softmax"])
def test_hidden_layer_parity_on_simulated_kernels(host, hidden, dtype):
    sizes = [4, 9, 3]
    X, labels = parity_data(sizes, 300)  # more columns than the simulated grid's threads
    reference, simulated = net_pair(simulated_backend(host), sizes, [hidden, "softmax"], dtype)
    assert_parity(simulated.forward(X), reference.forward(X), dtype, "forward")
    assert_gradients_match(simulated, reference, X, labels, None, dtype)


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_training_parity_on_simulated_kernels(host, optimizer):
    sizes = [6, 8, 3]
    X, labels = parity_data(sizes, 60)
    reference, simulated = net_pair(simulated_backend(host), sizes, ["relu", "softmax"], "float64")
    make = {
        "sgd": lambda: SGD(0.3, weight_decay=1e-3),
        "momentum": lambda: SGD(0.1, momentum=0.9, nesterov=True, weight_decay=1e-3),
        "adam": lambda: Adam(1e-2, weight_decay=1e-3),
    }[optimizer]
    histories = [
        net.fit(X, labels, epochs=3, batch_size=16, optimizer=make(), seed=1, progress=False)
        for net in (reference, simulated)
    ]
    np.testing.assert_allclose(histories[1]["cost"], histories[0]["cost"], rtol=1e-9)
    for mine, theirs in zip(simulated.get_params(), reference.get_params()):
        for p_mine, p_theirs in zip(mine, theirs):
            assert_parity(p_mine, p_theirs, "float64", "parameters after training")


def test_gradcheck_on_simulated_kernels(host):
    sizes = [3, 4, 2]
    X, labels = parity_data(sizes, 5)
    net = gpunet.Network(sizes, ["gelu", "sigmoid"], backend=simulated_backend(host), seed=3)
    assert gpunet.gradcheck(net, X, labels) < 1e-6


# --- 3. the backends' interface ------------------------------------------------------------


def public_methods(cls) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_")
    }


def test_cupy_and_numpy_backends_have_the_same_public_methods():
    cupy_methods = public_methods(CupyBackend)
    numpy_methods = public_methods(NumpyBackend)
    assert set(cupy_methods) == set(numpy_methods)
    assert set(public_methods(Backend)) <= set(cupy_methods)
    for name, signature in numpy_methods.items():
        assert cupy_methods[name] == signature, name


def test_cupy_backend_module_imports_without_cupy():
    # CuPy hidden (even where it is installed): gpunet imports and falls back to NumPy
    code = (
        "import sys; sys.modules['cupy'] = None; sys.modules['cupyx'] = None\n"
        "import gpunet\n"
        "from gpunet.core.backends.cupy_backend import CupyBackend, cupy_unavailable\n"
        "assert 'not installed' in cupy_unavailable(), cupy_unavailable()\n"
        "net = gpunet.Network([2, 2], backend='auto')\n"
        "assert net.backend.name == 'numpy', net.backend_reason\n"
    )
    root = Path(gpunet.__file__).resolve().parent.parent
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=root, timeout=120
    )
    assert result.returncode == 0, result.stderr
