"""The README's commands are the ones CI runs, and every Python example in the docs runs."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)


def test_readme_opens_with_the_train_and_test_commands():
    train, test = blocks(README, "bash")[:2]
    assert "pip install ." in train and train.strip().endswith("gpunet train")
    assert "pip install '.[test]'" in test and "pytest" in test


def test_ci_runs_the_readme_test_command_verbatim():
    test_command = blocks(README, "bash")[1].strip()
    assert test_command in (ROOT / ".ci" / "run").read_text().splitlines()


EXAMPLES = [
    (path.name, i, code)
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    for i, code in enumerate(blocks(path.read_text(), "python"))
]


@pytest.mark.parametrize(
    ("name", "index", "code"), EXAMPLES, ids=[f"{n}-{i}" for n, i, _ in EXAMPLES]
)
def test_python_examples_run(name, index, code, tmp_path, monkeypatch):
    for module in re.findall(r"^import (torch|onnxruntime|sklearn)\b", code, flags=re.M):
        # optional packages: .ci/run installs PyTorch for a second pass over these
        pytest.importorskip(module, reason=f"the example needs {module}")
    monkeypatch.chdir(tmp_path)  # examples may write files
    exec(compile(code, f"{name}[{index}]", "exec"), {})
