"""The CUDA kernels built for the host and run like CuPy runs them, for the CPU-side tests.

`build(folder)` compiles kernels/*.cu with a plain C++ compiler: each __global__ kernel
becomes a function that runs one thread's share of its grid-stride loop. `HostKernels`
launches them with `kernels.Launch`'s signature, so that `CupyBackend(host, xp=...,
special=...)` runs the backend's own Python (checks, argument lists, kernel choice) on
NumPy arrays:

- a thread kernel runs its threads one after another;
- a warp kernel (kernels.WARP_KERNELS) runs the 32 lanes of each warp at once, each on an
  OS thread of its own, and `gpunet::shuffle_xor` exchanges their values through a
  barrier: the same butterfly, on the same values, in the same order as __shfl_xor_sync;
- float kernels run with the CPU's flush-to-zero and denormals-are-zero modes on
  (kernels.FLUSH_DENORMALS: what CuPy's -ftz=true does on the GPU), float64 without.
"""

from __future__ import annotations

import ctypes
import subprocess
import threading
import types
from pathlib import Path

import numpy as np
import scipy.special
from kernel_sources import C_DTYPES, KERNELS, all_signatures, instantiations, split_name

from gpunet.core.backends import CupyBackend, kernels

PRELUDE = """\
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#if defined(__SSE__)
#include <xmmintrin.h>
#endif

#define __global__
static thread_local long long gpunet_sim_index = 0;
static thread_local long long gpunet_sim_count = 1;
#define GPUNET_THREAD_INDEX gpunet_sim_index
#define GPUNET_THREAD_COUNT gpunet_sim_count

// The 32 lanes of the simulated warp meet at each shuffle: every lane leaves its value in
// its slot, waits for all 32, reads its partner's, and waits again before anyone writes.
namespace gpunet_sim {
std::mutex mutex;
std::condition_variable arrivals;
int arrived = 0;
long long generation = 0;
bool broken = false;
unsigned char slots[32][8];

bool meet() {
  std::unique_lock<std::mutex> lock(mutex);
  if (broken) return false;
  const long long mine = generation;
  if (++arrived == 32) {
    arrived = 0;
    ++generation;
    arrivals.notify_all();
    return true;
  }
  const bool met = arrivals.wait_for(lock, std::chrono::seconds(30),
                                     [&] { return generation != mine || broken; });
  if (!met) {
    broken = true;  // a lane never came: every shuffle of this launch gives up
    arrivals.notify_all();
  }
  return !broken;
}
}  // namespace gpunet_sim

#define GPUNET_HOST_SHUFFLE
namespace gpunet {
template <typename T>
T shuffle_xor(T value, int mask) {
  const long long lane = gpunet_sim_index %% 32;
  std::memcpy(gpunet_sim::slots[lane], &value, sizeof(T));  // the bits, as a shuffle moves them
  if (!gpunet_sim::meet()) return value;
  T other;
  std::memcpy(&other, gpunet_sim::slots[lane ^ mask], sizeof(T));
  gpunet_sim::meet();
  return other;
}
}  // namespace gpunet

#include "elementwise.cu"

extern "C" int gpunet_sim_broken() { return gpunet_sim::broken ? 1 : 0; }
extern "C" void gpunet_sim_reset() { gpunet_sim::broken = false; gpunet_sim::arrived = 0; }

extern "C" void gpunet_sim_thread(long long index, long long count) {
  gpunet_sim_index = index;
  gpunet_sim_count = count;
}

// This thread's flush-to-zero and denormals-are-zero modes, on or off; the previous state
// is returned for restoring (-1: this CPU is not supported).
extern "C" int gpunet_sim_flush(int on) {
#if defined(__SSE__)
  const unsigned int bits = 0x8000u | 0x0040u;  // FTZ | DAZ
  const unsigned int csr = _mm_getcsr();
  _mm_setcsr(on ? (csr | bits) : (csr & ~bits));
  return (csr & bits) == bits ? 1 : 0;
#elif defined(__aarch64__)
  unsigned long fpcr;
  __asm__ volatile("mrs %%0, fpcr" : "=r"(fpcr));
  const unsigned long fz = 1ul << 24;
  const unsigned long next = on ? (fpcr | fz) : (fpcr & ~fz);
  __asm__ volatile("msr fpcr, %%0" : : "r"(next));
  return (fpcr & fz) ? 1 : 0;
#else
  (void)on;
  return -1;
#endif
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


def build(folder: Path, compiler: str) -> HostKernels:
    """Compile the host build into `folder` and load it."""
    cases = "\n".join(
        f"    case {i}: apply<T, {i}>(what, x, out, n); return 0;"
        for i in kernels.ACTIVATION_IDS.values()
    )
    from_output = "\n".join(
        f"    case {i}: return gpunet::Activation<float, {i}>::kFromOutput ? 1 : 0;"
        for i in kernels.ACTIVATION_IDS.values()
    )
    code = PRELUDE % {"cases": cases, "from_output": from_output}
    code += instantiations(kernels.name_expressions())
    source = folder / "host_kernels.cpp"
    source.write_text(code)
    library = folder / "host_kernels.so"
    command = [compiler, "-std=c++17", "-O2", "-Wall", "-Wextra", "-Werror", "-fPIC", "-shared"]
    command += ["-pthread", f"-I{KERNELS}", str(source), "-o", str(library)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{' '.join(command)}\n{result.stdout}{result.stderr}"
    return HostKernels(library)


class HostKernels:
    """The kernels compiled for the host, launched like CuPy launches them.

    `launch(name, work, args)` is a `kernels.Launch`. It checks every argument against
    the kernel's declared parameter type exactly as the device would read it (CuPy checks
    nothing: a Python float or an int32 where the kernel wants a float or a long long is
    silently wrong there), then runs the grid the device launcher would choose with
    `max_blocks` blocks at most (or `threads` threads, when set).
    """

    def __init__(self, library: Path) -> None:
        self.lib = ctypes.CDLL(str(library))
        self.lib.gpunet_kernel.restype = ctypes.c_void_p
        self.lib.gpunet_kernel.argtypes = [ctypes.c_int]
        self.lib.gpunet_sim_thread.argtypes = [ctypes.c_longlong, ctypes.c_longlong]
        self.lib.gpunet_sim_flush.argtypes = [ctypes.c_int]
        for suffix, c_type in (("f32", ctypes.c_float), ("f64", ctypes.c_double)):
            function = getattr(self.lib, f"gpunet_apply_{suffix}")
            pointer = ctypes.POINTER(c_type)
            function.argtypes = [ctypes.c_int, ctypes.c_int, pointer, pointer, ctypes.c_longlong]
            function.restype = ctypes.c_int
        self.lib.gpunet_constant.restype = ctypes.c_double
        self.lib.gpunet_constant.argtypes = [ctypes.c_int]
        self.names = kernels.name_expressions()
        self.signatures = all_signatures()
        self.max_blocks = 1
        self.threads: int | None = None
        self.launched: list[str] = []
        self._functions: dict[str, tuple] = {}

    def _function(self, name: str):
        if name not in self._functions:
            base, template_args = split_name(name)
            dtype = C_DTYPES[template_args[0]]
            params = self.signatures[base]
            scalar = {
                "T": np.ctypeslib.as_ctypes_type(dtype),
                "long long": ctypes.c_longlong,
                "int": ctypes.c_int,
            }
            c_types = [ctypes.c_void_p if p.endswith("*") else scalar[p] for p in params]
            address = self.lib.gpunet_kernel(self.names.index(name))
            self._functions[name] = (ctypes.CFUNCTYPE(None, *c_types)(address), params, dtype)
        return self._functions[name]

    def _c_args(self, name: str, params: list[str], dtype: np.dtype, args: tuple) -> list:
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
        return c_args

    def flushes(self, dtype) -> bool:
        """Whether kernels of `dtype` run with denormals flushed (the GPU's -ftz=true)."""
        return kernels.FLUSH_DENORMALS[np.dtype(dtype)]

    def _flush(self, on: bool) -> int:
        previous = self.lib.gpunet_sim_flush(int(on))
        assert previous >= 0 or not on, "no flush-to-zero mode on this CPU for the host build"
        return previous

    def __call__(self, name: str, work: int, args: tuple) -> None:
        assert name in self.names, f"{name} is not a name expression"
        assert isinstance(work, int) and work >= 0, work
        function, params, dtype = self._function(name)
        c_args = self._c_args(name, params, dtype, args)
        if work == 0:
            return
        threads = self.threads or kernels.grid(name, work, self.max_blocks) * kernels.BLOCK
        flush = self.flushes(dtype)
        if kernels.base_name(name) in kernels.WARP_KERNELS:
            assert threads % kernels.WARP == 0, threads
            self._run_warps(function, c_args, threads, flush)
        else:
            previous = self._flush(flush)
            try:
                for index in range(threads):
                    self.lib.gpunet_sim_thread(index, threads)
                    function(*c_args)
            finally:
                self.lib.gpunet_sim_flush(max(previous, 0))
        self.launched.append(name)

    def _run_warps(self, function, c_args: list, threads: int, flush: bool) -> None:
        def lane(index: int) -> None:  # on its own OS thread: ctypes releases the GIL
            self._flush(flush)
            self.lib.gpunet_sim_thread(index, threads)
            function(*c_args)

        self.lib.gpunet_sim_reset()
        for first in range(0, threads, kernels.WARP):
            lanes = [threading.Thread(target=lane, args=(first + k,)) for k in range(32)]
            for thread in lanes:
                thread.start()
            for thread in lanes:
                thread.join()
            assert not self.lib.gpunet_sim_broken(), "a simulated warp's lanes never all met"

    def apply(self, activation: str, what: str, x: np.ndarray) -> np.ndarray:
        """activations.cuh's forward or derivative over x, flushed as the kernels are."""
        x = np.ascontiguousarray(x)
        out = np.full_like(x, np.nan)
        suffix = "f32" if x.dtype == np.float32 else "f64"
        c_type = ctypes.POINTER(np.ctypeslib.as_ctypes_type(x.dtype))
        previous = self._flush(self.flushes(x.dtype))
        try:
            status = getattr(self.lib, f"gpunet_apply_{suffix}")(
                kernels.ACTIVATION_IDS[activation],
                {"forward": 0, "derivative": 1}[what],
                x.ctypes.data_as(c_type),
                out.ctypes.data_as(c_type),
                x.size,
            )
        finally:
            self.lib.gpunet_sim_flush(max(previous, 0))
        assert status == 0
        return out


# --- the CuPy backend on the host build ---------------------------------------------------


class NumpyAsDevice(types.ModuleType):
    """NumPy posing as CuPy for the CuPy backend: the same functions, plus asnumpy, and a
    record of the GEMMs asked for (`products`: the element count of each result)."""

    def __init__(self) -> None:
        super().__init__("numpy_as_device")
        self.products: list[int] = []

    def __getattr__(self, name):
        return getattr(np, name)

    def matmul(self, a, b, out=None):
        result = np.matmul(a, b, out=out)
        self.products.append(int(result.size))
        return result

    @staticmethod
    def asnumpy(x):
        return np.asarray(x)


def simulated_backend(host: HostKernels) -> CupyBackend:
    """The CuPy backend's own code, on NumPy arrays, its kernels run by the host build."""
    return CupyBackend(host, xp=NumpyAsDevice(), special=scipy.special)


# --- comparing with NumPy -------------------------------------------------------------------

# rtol: about 8 ulp in float32, 4500 in float64 (glibc, NumPy's SIMD loops, SciPy's erf
# and CUDA's libdevice differ by an ulp or two each, and a step or two compound them).
# atol, in units of the dtype's epsilon times `scale`: where a value is a difference of
# O(1) terms (1 - a², Φ + zφ, gelu's 1 + erf for z << 0) its error is absolute, a few
# ulp of the terms; elsewhere the scale is 0 and atol is the smallest normal number, so
# that only a denormal result (e^-710, or one the GPU flushes) may differ beyond rtol.
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


def flushed(x: np.ndarray) -> np.ndarray:
    """x with the denormals the kernels flush set to zero (sign kept), as the GPU sees it."""
    x = np.array(x)
    if kernels.FLUSH_DENORMALS[x.dtype]:
        with np.errstate(invalid="ignore"):
            x[np.abs(x) < np.finfo(x.dtype).tiny] *= 0
    return x
