"""``dag visualize``: draw the dependency graph."""

from __future__ import annotations

from pathlib import Path

from dagspec import draw
from dagspec.dagfile import load_dag
from dagspec.errors import EXIT_OK


def visualize(path: Path, *, fmt: str) -> int:
    """Print the graph of a valid DAG file in ``fmt``; an invalid file is an error."""
    dag = load_dag(path)
    drawing = {"ascii": draw.ascii_dag, "mermaid": draw.mermaid, "dot": draw.dot}[fmt]
    print(drawing(dag), end="")
    return EXIT_OK
