"""One rank of an MPI job training with validation_split and EarlyStopping(restore_best=True)
(launched by tests/test_callbacks.py).

    mpiexec -n K python tests/mpi_callbacks_worker.py OUT

Each rank writes its final parameters to OUT/rankR.npy; rank 0 its History and the best
epoch to OUT/history.json.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from mpi_worker import network, problem

import gpunet
from gpunet.train.distributed import Distributed

# the monitored cost of each epoch, as rank 0's first callback makes it: the best is epoch 2
SCRIPT = [3.0, 1.0, 2.0, 2.5, 2.6]


def settings() -> tuple[list, dict]:
    """fit's callbacks and arguments, shared by the workers and the one-process reference."""

    def script(epoch: int, metrics: dict) -> None:
        metrics["validation_cost"] = SCRIPT[epoch - 1]

    early = gpunet.EarlyStopping(patience=2, restore_best=True)
    options = {"epochs": 9, "batch_size": 8, "lr": 0.3, "seed": 3, "progress": False}
    return [script, early], {**options, "validation_split": 0.25}


def main() -> None:
    out = Path(sys.argv[1])
    X, y, _, _ = problem()
    with Distributed.from_mpi() as ctx:
        net = network()
        callbacks, options = settings()
        history = net.fit(X, y, distributed=ctx, callbacks=callbacks, **options)
        np.save(out / f"rank{ctx.rank}.npy", net.params)
        if ctx.is_root:
            record = {"history": dict(history), "best_epoch": callbacks[1].best_epoch}
            (out / "history.json").write_text(json.dumps(record))


if __name__ == "__main__":
    main()
