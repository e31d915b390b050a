"""gpunet's kernel module compiled by CuPy's NVRTC for a chosen GPU, with or without one.

At run time `cupy.RawModule(...).get_function` reaches `cupy._core.core.compile_with_cache`
with our source, options and name expressions; CuPy adds its include folders and
`-ftz=true`, NVRTC compiles for the device's architecture, and the binary goes to the
kernel cache with the lowered name of each expression. `compile_module(arch)` makes that
same call for architecture `arch` (80, 90, 100, ...), with two seams opened only for its
duration: the architecture is given instead of asked of the device, and the kernel cache
records what CuPy stores. Loading the binary needs a driver: without one that last step
fails after the compile, and is not needed.

For CI (tests/test_nvrtc.py) and `gpunet doctor` on machines without a GPU; it relies on
CuPy 14.2's private compiler hooks and says so when they are gone.
"""

from __future__ import annotations

import contextlib
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from . import kernels


@dataclass
class Compiled:
    """What CuPy's NVRTC made of the kernel module for one architecture."""

    arch: str
    seconds: float
    from_cache: bool
    options: tuple[str, ...]  # as NVRTC received them
    lowered: dict[str, str]  # name expression -> mangled name in the binary
    cubin: bytes = field(repr=False)

    def registers(self) -> dict[str, int]:
        """Registers per thread of each name expression's kernel, read from the cubin."""
        counts = register_counts(self.cubin)
        return {name: counts[mangled] for name, mangled in self.lowered.items()}


class _Recorder:
    """A kernel-cache backend that passes through to `inner` (or to nothing) and keeps
    what CuPy loads or saves."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.payload: bytes | None = None
        self.hit = False

    def load(self, name: str) -> bytes | None:
        payload = self.inner.load(name) if self.inner is not None else None
        if payload is not None:
            self.payload, self.hit = payload, True
        return payload

    def save(self, name: str, cubin: bytes, source: str) -> None:
        self.payload = cubin
        if self.inner is not None:
            self.inner.save(name, cubin, source)


def _private(module: Any, name: str) -> Any:
    if not hasattr(module, name):
        raise RuntimeError(
            f"this CuPy ({module.__name__}) has no {name}: the offline compile follows "
            f"CuPy 14.2's compiler; check offline.py against the installed CuPy"
        )
    return getattr(module, name)


@contextlib.contextmanager
def _seams(arch: str, recorder: _Recorder, options: list) -> Iterator[None]:
    """CuPy's compiler told the architecture, its cache recorded, NVRTC's options kept."""
    from cupy.cuda import compiler

    arch_for = _private(compiler, "_get_arch_for_options_for_nvrtc")
    program = _private(compiler, "_NVRTCProgram")
    cache = _private(compiler, "_kernel_cache_backend")

    class Program(program):
        def compile(self, options_=(), log_stream=None):
            options.append((self.src, tuple(options_)))
            return super().compile(options_, log_stream)

    compiler._get_arch_for_options_for_nvrtc = lambda arch_=None: (f"-arch=sm_{arch}", "cubin")
    compiler._NVRTCProgram = Program
    _private(compiler, "_set_kernel_cache_backend")(recorder)
    try:
        yield
    finally:
        compiler._get_arch_for_options_for_nvrtc = arch_for
        compiler._NVRTCProgram = program
        compiler._set_kernel_cache_backend(cache)


def compile_module(arch: str | int, cache_dir: str | None = None) -> Compiled:
    """The kernel module as RawModule compiles it on a device of compute capability `arch`.

    With `cache_dir`, CuPy's disk cache there is used as at run time (a second call loads
    from it); without, nothing is read or written.
    """
    from cupy._core import core
    from cupy.cuda import compiler
    from cupy.cuda._compiler_cache import DiskKernelCacheBackend

    arch = str(arch)
    names = kernels.name_expressions()
    source = kernels.source()
    recorder = _Recorder(DiskKernelCacheBackend(cache_dir) if cache_dir else None)
    nvrtc_options: list = []
    start = time.perf_counter()
    with _seams(arch, recorder, nvrtc_options):
        try:  # the arguments of cupy._core.raw._get_raw_module, RawModule's compile
            core.compile_with_cache(
                source,
                kernels.options(),
                arch=arch,
                prepend_cupy_headers=False,
                backend="nvrtc",
                translate_cucomplex=False,
                enable_cooperative_groups=False,
                name_expressions=tuple(names),
                log_stream=None,
                jitify=False,
            )
        except compiler.CompileException:
            raise
        except Exception:  # loading the binary: no driver, or another architecture
            if recorder.payload is None:
                raise
    seconds = time.perf_counter() - start
    decoded = _private(compiler, "_decode_cache_payload")(recorder.payload, len(names))
    if decoded is None:
        raise RuntimeError("CuPy stored the module without its lowered names (CuPy < 14.2?)")
    mangled, cubin = decoded
    # the module's own compile, not the empty-file one CuPy runs for its cache key
    module_options = next((o for src, o in nvrtc_options if src == source), ())
    return Compiled(
        arch=arch,
        seconds=seconds,
        from_cache=recorder.hit,
        options=module_options,
        lowered=dict(zip(sorted(names), mangled)),
        cubin=cubin,
    )


def register_counts(cubin: bytes) -> dict[str, int]:
    """{mangled kernel name: registers per thread}, as cuobjdump --dump-resource-usage reads
    them: the EIATTR_REGCOUNT attributes of the cubin's .nv.info section."""
    if cubin[:4] != b"\x7fELF" or cubin[4] != 2:
        raise ValueError("not a 64-bit ELF cubin")
    shoff = struct.unpack_from("<Q", cubin, 0x28)[0]
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", cubin, 0x3A)
    # (name, type, flags, addr, offset, size, link, info, align, entsize)
    sections = [
        struct.unpack_from("<IIQQQQIIQQ", cubin, shoff + i * shentsize) for i in range(shnum)
    ]

    def string(table: int, offset: int) -> str:
        start = sections[table][4] + offset
        return cubin[start : cubin.index(b"\0", start)].decode()

    symtab = next(s for s in sections if s[1] == _SHT_SYMTAB)
    info = next(s for s in sections if string(shstrndx, s[0]) == ".nv.info")
    counts = {}
    position, end = info[4], info[4] + info[5]
    while position + 4 <= end:
        form, attribute, size = struct.unpack_from("<BBH", cubin, position)
        if form == _EIFMT_SVAL and attribute == _EIATTR_REGCOUNT:
            symbol, registers = struct.unpack_from("<II", cubin, position + 4)
            st_name = struct.unpack_from("<I", cubin, symtab[4] + symbol * symtab[9])[0]
            counts[string(symtab[6], st_name)] = registers
        position += 4 + (size if form == _EIFMT_SVAL else 0)
    return counts


_SHT_SYMTAB = 2
_EIFMT_SVAL = 4  # an attribute with a payload; the other forms hold 2 bytes in place of size
_EIATTR_REGCOUNT = 0x2F
