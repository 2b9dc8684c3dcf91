"""``dag visualize`` in its three formats, compared with the drawings in ``tests/golden/``.

A golden file is the exact expected output, reviewed by eye. After changing a drawing on
purpose, write it again and read the diff:
``python -m dagspec visualize tests/golden/quirks.yaml --format dot > tests/golden/quirks.dot``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from dagspec import draw
from dagspec.dagfile import load_dag
from tests.conftest import FIXTURES

RunCli = Callable[..., int]
GOLDEN = Path(__file__).resolve().parent / "golden"
DAGS = {
    "example": FIXTURES / "dags" / "example.yaml",
    "quirks": GOLDEN / "quirks.yaml",
    "backwards": GOLDEN / "backwards.yaml",
}


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


# Where each format writes a feature: a branch of the tree, a Mermaid node, a DOT node.
_FEATURE = {
    "ascii": re.compile(r"^  [|`]- (\S+)"),
    "mermaid": re.compile(r'^    f\d+\["(.+)"\]$'),
    "dot": re.compile(r'^    "(.+)";$'),
}


@pytest.mark.parametrize("fmt", ["ascii", "mermaid", "dot"])
@pytest.mark.parametrize("path", [*sorted((FIXTURES / "dags").glob("*.yaml")), *DAGS.values()])
def test_nothing_is_drawn_above_what_it_depends_on(path: Path, fmt: str) -> None:
    """A layer was drawn above a layer it waits for through its features' depends_on (and
    a feature above one of its own layer that it waits for): every feature now comes after
    everything it depends on, its layer's dependencies included. Mermaid and DOT keep one
    subgraph per layer, so where two layers are interleaved (``backwards``) a feature may
    be written before one of another layer that it waits for (their layout engines place
    nodes by the edges, not by the order they are written in)."""
    dag = load_dag(path)
    drawing = {"ascii": draw.ascii_dag, "mermaid": draw.mermaid, "dot": draw.dot}[fmt](dag)
    found = [_FEATURE[fmt].match(line) for line in drawing.splitlines()]
    order = [match[1] for match in found if match]
    assert sorted(order) == sorted(dag.features)
    layer_of = {feature.id: layer.id for layer in dag.layers for feature in layer.features}
    whole_layers = fmt != "ascii" and path.stem == "backwards"
    for feature, deps in dag.deps.items():
        for dep in deps:
            if whole_layers and layer_of[dep] != layer_of[feature]:
                continue
            assert order.index(dep) < order.index(feature), (feature, dep)


# Where each format titles a layer.
_LAYER = {
    "ascii": re.compile(r"^(\[.*)$"),
    "mermaid": re.compile(r'^  subgraph L\d+\["(.+)"\]$'),
    "dot": re.compile(r'^    label="(.+)";$'),
}


@pytest.mark.parametrize(
    ("layers", "ascii", "others"),
    [
        # a layer waits, through a feature, for a layer declared after it
        ([("api", [("e", "m")]), ("core", [("m", "")])], ["[core]", "[api]"], ["core", "api"]),
        # interleaved: L0's c waits for L1's x, which waits for L0's a
        (
            [("L0", [("a", ""), ("c", "x")]), ("L1", [("x", "a")])],
            ["[L0]", "[L1]", "[L0] (continued)"],
            ["L0", "L1"],
        ),
    ],
)
def test_layers_are_drawn_in_the_order_of_the_whole_dag(
    tmp_path: Path,
    layers: list[tuple[str, list[tuple[str, str]]]],
    ascii: list[str],
    others: list[str],
) -> None:
    text = "layers:\n"
    for layer, features in layers:
        text += f"  - id: {layer}\n    features:\n"
        for feature, dep in features:
            text += f"      - {{id: {feature}, description: x, depends_on: [{dep}]}}\n"
    path = tmp_path / "dag.yaml"
    path.write_text(text)
    dag = load_dag(path)
    for fmt, drawing in (("ascii", draw.ascii_dag), ("mermaid", draw.mermaid), ("dot", draw.dot)):
        found = [_LAYER[fmt].match(line) for line in drawing(dag).splitlines()]
        assert [match[1] for match in found if match] == (ascii if fmt == "ascii" else others)
