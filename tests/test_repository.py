"""The repository itself: no tracked file holds the absolute paths of a particular machine.

Code, docs and results records are read on other machines, beside a checkout of their own:
a path into this machine's checkout, home or temporary directories means nothing there.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# a checkout's, a home's, a temporary or a build directory's, not inside a relative path or
# a URL; a shebang's interpreter is no particular machine's
MACHINE_PATH = re.compile(r"(?<![\w.~/-])/(?:work|root|tmp|opt|mnt|(?:home|Users)/[\w.-]+)/")


def tracked_files() -> list[Path]:
    git = shutil.which("git")
    if git is None:
        pytest.skip("git is not installed: no list of the tracked files")
    listed = subprocess.run([git, "ls-files", "-z"], cwd=ROOT, capture_output=True, timeout=60)
    if listed.returncode != 0:
        pytest.skip(f"{ROOT} is not a git checkout: {listed.stderr.decode().strip()}")
    return [ROOT / name for name in listed.stdout.decode().split("\0") if name]


@pytest.mark.parametrize(
    ("text", "machine"),
    [
        ('"path": "/work/main/gpunet"', True),
        ("/root/.pyenv/versions/3.11.7/bin/python", True),
        ("see /home/alice/gpunet/README.md", True),
        ("/Users/bob/src/gpunet", True),
        ("tmp_path is /tmp/pytest-of-root/pytest-7/test_x0", True),
        ("CXX_COMPILER=/opt/rh/gcc-toolset-13/root/usr/bin/c++", True),
        ("#!/usr/bin/env bash", False),
        ("bench/results/bench_cpu.json", False),
        ("samples/s, 2(K−1)/K · bytes/bandwidth", False),
        ("https://example.org/home/page/", False),
        ("PYTHONPATH=. python bench/profile/stages.py", False),
    ],
)
def test_what_counts_as_a_machine_path(text, machine):
    assert bool(MACHINE_PATH.search(text)) is machine


def test_no_tracked_file_holds_a_machine_path():
    found = []
    for path in tracked_files():
        if path == Path(__file__).resolve():
            continue  # its examples above are machine paths
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, FileNotFoundError, IsADirectoryError):
            continue  # a binary file (PNG, gzip), or one deleted in the work tree
        for number, line in enumerate(text.splitlines(), 1):
            if MACHINE_PATH.search(line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:120]}")
    assert not found, "absolute paths of a machine (write them relative to the checkout):\n" + (
        "\n".join(found)
    )


def test_tests_choose_their_backend():
    # backend="auto" is CuPy on a GPU host: a test that compares with NumPy must say numpy
    # (or take the `backend` fixture), or the suite fails there (the one test of auto aside)
    import ast

    made = ("gpunet.Network", "Network", "gpunet.load", "gpunet.from_torch")
    unchosen = []
    for path in sorted(ROOT.joinpath("tests").glob("*.py")):
        source = path.read_text(encoding="utf-8")
        lines = source.splitlines()
        for node in ast.walk(ast.parse(source)):
            if not (isinstance(node, ast.Call) and ast.unparse(node.func) in made):
                continue
            if any(k.arg in ("backend", None) for k in node.keywords):
                continue
            if "auto is the default" not in lines[node.lineno - 1]:
                unchosen.append(f"{path.name}:{node.lineno}")
    assert not unchosen, f"networks built with backend='auto' by default: {unchosen}"
