"""``dag visualize`` in its three formats, compared with the drawings in ``tests/golden/``.

A golden file is the exact expected output, reviewed by eye. After changing a drawing on
purpose, write it again and read the diff:
``python -m dagspec visualize tests/golden/quirks.yaml --format dot > tests/golden/quirks.dot``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import FIXTURES

RunCli = Callable[..., int]
GOLDEN = Path(__file__).resolve().parent / "golden"
DAGS = {"example": FIXTURES / "dags" / "example.yaml", "quirks": GOLDEN / "quirks.yaml"}


@pytest.mark.parametrize("fmt", ["ascii", "mermaid", "dot"])
@pytest.mark.parametrize("name", sorted(DAGS))
def test_the_drawing_is_the_golden_one(
    name: str,
    fmt: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    run_cli: RunCli,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)  # no repository needed to draw a file
    assert run_cli("visualize", DAGS[name], "--format", fmt) == 0
    out, err = capsys.readouterr()
    assert (out, err) == ((GOLDEN / f"{name}.{fmt}").read_text(encoding="utf-8"), "")


def test_ascii_is_the_default(run_cli: RunCli, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("visualize", DAGS["example"]) == 0
    assert capsys.readouterr().out == (GOLDEN / "example.ascii").read_text(encoding="utf-8")


def test_an_invalid_file_is_reported_not_drawn(
    tmp_path: Path, run_cli: RunCli, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "cycle.yaml"
    path.write_text(
        "layers:\n  - id: L0\n    features:\n"
        "      - {id: a, description: x, depends_on: [b]}\n"
        "      - {id: b, description: x, depends_on: [a]}\n"
    )
    assert run_cli("visualize", path, "--format", "dot") == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"dag: error: {path}")
    assert "a -> b -> a" in err


def test_an_unknown_format_is_bad_usage(
    run_cli: RunCli, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli("visualize", DAGS["example"], "--format", "svg") == 2
    assert "invalid choice: 'svg'" in capsys.readouterr().err
