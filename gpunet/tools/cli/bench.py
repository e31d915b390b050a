"""`gpunet bench`: training and inference throughput across batch sizes, beside peers."""

from __future__ import annotations

import argparse
import json
import shlex
import sys

from tqdm.auto import tqdm

from ...core.io import write_atomically
from .. import bench
from ..bench import trust
from .common import Command, add_backend, add_no_progress, comma_names, int_list


def bench_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = bench.Settings()
    add_backend(parser, defaults.backend)
    parser.add_argument(
        "--shape",
        type=comma_names,
        default=list(defaults.shapes),
        help=f"comma-separated, from {', '.join(bench.SHAPES)} (default: all)",
    )
    parser.add_argument(
        "--batch-sizes",
        type=int_list,
        default=list(defaults.batch_sizes),
        help="comma-separated (default: powers of 4 from 1 to 65536; capped by memory "
        "and by --max-seconds)",
    )
    parser.add_argument("--dtype", choices=bench.BENCH_DTYPES, default=defaults.dtype)
    parser.add_argument(
        "--peers",
        type=comma_names,
        default=list(defaults.peers),
        help="comma-separated, from torch (PyTorch eager, and CUDA graphs on a GPU), loop "
        "(one example at a time), numeric (finite differences); '' for none",
    )
    modes = list(defaults.modes)
    parser.add_argument("--mode", type=comma_names, default=modes, help="train,infer")
    parser.add_argument("--repeats", type=int, default=defaults.repeats, help="timed runs per cell")
    parser.add_argument(
        "--min-seconds",
        type=float,
        default=defaults.min_seconds,
        help="length of each timed run, at least",
    )
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=defaults.max_seconds,
        help="skip a cell whose estimated time is over this",
    )
    parser.add_argument("--json", metavar="PATH", help="write the full record as JSON")
    parser.add_argument("--plot", metavar="PATH", help="write throughput curves as a PNG")
    add_no_progress(parser)


def _sweep(settings: bench.Settings, no_progress: bool) -> dict:
    """The throughput record, with a progress bar on stderr (one tick a cell)."""
    with tqdm(
        unit="cell", disable=True if no_progress else None, file=sys.stderr, leave=False
    ) as bar:

        def advance(label: str, total: int) -> None:
            bar.total = total
            bar.set_description(label)
            bar.update()

        return bench.run(settings, progress=advance)


def bench_command(args: argparse.Namespace) -> int:
    settings = bench.Settings(
        backend=args.backend,
        shapes=tuple(args.shape),
        batch_sizes=tuple(args.batch_sizes),
        dtype=args.dtype,
        peers=tuple(args.peers),
        modes=tuple(args.mode),
        repeats=args.repeats,
        min_seconds=args.min_seconds,
        max_seconds=args.max_seconds,
    )
    settings.check()  # before the clock starts: a typo should not cost a sweep
    record = _sweep(settings, args.no_progress)
    record["command"] = " ".join(["gpunet", *map(shlex.quote, args.argv)])
    print(f"backend: {record['backend_reason']}")
    print(bench.table(record))
    measured = [c for c in record["cells"] if c["status"] == "ok"]
    flagged = trust.flagged(measured)
    if flagged:
        print(
            f"warning: {len(flagged)} of {len(measured)} measured cells are not to be trusted "
            f"(marked ! in the table, reasons below each): rerun {trust.ADVICE}",
            file=sys.stderr,
        )
    if args.json:
        text = json.dumps(record, indent=1) + "\n"
        write_atomically(args.json, lambda file: file.write(text.encode()))
        print(f"wrote {args.json}")
    if args.plot:
        bench.plot(record, args.plot)
        print(f"wrote {args.plot}")
    return 0


BENCH = Command(
    "bench",
    "training and inference throughput across batch sizes, beside peers",
    bench_arguments,
    bench_command,
    outputs={"--json": None, "--plot": ".png"},
)
