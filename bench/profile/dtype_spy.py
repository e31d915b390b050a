"""The dtypes of every NumPy call made on gpunet's arrays during fit (the float32 path).

Every array the network makes (parameters, gradients, workspaces, the checked inputs) is a
Spy: a view that counts each ufunc and array function called on it by (call, input dtypes,
result dtype, into `out=` or new), then calls it on plain arrays. A float64 among them is a
silent upcast. Run from the checkout (the output kept in bench/results/profile):

    PYTHONPATH=. python bench/profile/dtype_spy.py > bench/results/profile/dtype_spy.txt
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from bench.epoch_vs_torch import make_data, make_gpunet
from bench.profile.common import parser
from gpunet.core.backends import NumpyBackend

SEEN: Counter[tuple[str, tuple[str, ...], str, str]] = Counter()


def dtype_name(x: Any) -> str:
    if isinstance(x, np.ndarray):
        return x.dtype.name
    return f"np.{x.dtype.name}" if isinstance(x, np.generic) else type(x).__name__


def plain(x: Any) -> Any:
    return x.view(np.ndarray) if isinstance(x, Spy) else x


def spied(result: Any) -> Any:
    return result.view(Spy) if isinstance(result, np.ndarray) else result


def record(name: str, inputs: list[Any], result: Any, into: bool) -> None:
    signature = tuple(dtype_name(x) for x in inputs)
    SEEN[name, signature, dtype_name(result), "out=" if into else "new"] += 1


class Spy(np.ndarray):
    """An array that records the calls made on it (see the module's docstring)."""

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        out = kwargs.get("out")
        if out is not None:
            kwargs["out"] = tuple(plain(o) for o in out)
        arguments = [plain(x) for x in inputs]
        result = getattr(ufunc, method)(*arguments, **kwargs)
        name = ufunc.__name__ + ("" if method == "__call__" else f".{method}")
        record(name, arguments, result[0] if isinstance(result, tuple) else result, out is not None)
        if out is not None:
            return out[0] if len(out) == 1 else out
        return spied(result)

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        arguments = [plain(a) for a in args]
        result = func(*arguments, **{key: plain(value) for key, value in kwargs.items()})
        shown = [a for a in arguments if isinstance(a, (np.ndarray, np.generic, float, int))]
        record(func.__name__, shown, result, kwargs.get("out") is not None)
        if kwargs.get("out") is not None:
            return kwargs["out"]
        return spied(result)


class SpyBackend(NumpyBackend):
    """NumPy's backend, every array it makes a Spy."""

    def empty(self, shape: Any, dtype: Any, order: str = "C") -> Spy:
        return super().empty(shape, dtype, order).view(Spy)

    def asarray(self, x: Any, dtype: Any = None) -> Spy:
        return super().asarray(x, dtype).view(Spy)


def main() -> None:
    args = parser(__doc__, batch_sizes=(1024, 64), examples=2048).parse_args()
    X, y = make_data(args.examples)
    for batch_size in args.batch_sizes:
        net = make_gpunet(SpyBackend())
        SEEN.clear()  # the calls of fit alone
        net.fit(
            X.view(Spy),
            y,
            epochs=1,
            batch_size=batch_size,
            lr=0.1,
            cost="log_likelihood",
            progress=False,
            seed=0,
        )
        print(
            f"\n=== B={batch_size}: {len(SEEN)} distinct (call, input dtypes, result dtype) "
            "signatures; float64 ones marked"
        )
        for (name, inputs, result, into), count in SEEN.most_common():
            upcast = {"float64", "np.float64"} & {*inputs, result}
            flag = "  <-- float64" if upcast else ""
            print(f"  {count:5d}x {name:18s} {inputs!s:52s} -> {result:10s} {into}{flag}")


if __name__ == "__main__":
    main()
