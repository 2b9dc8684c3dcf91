from __future__ import annotations

import pytest

from dagspec import graph

DIAMOND = {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]}


@pytest.mark.parametrize(
    ("g", "cycle"),
    [
        (DIAMOND, None),
        ({"a": ["a"]}, ["a", "a"]),
        ({"a": ["b"], "b": ["a"]}, ["a", "b", "a"]),
        ({"x": [], "a": ["c"], "b": ["a"], "c": ["b"]}, ["a", "c", "b", "a"]),
    ],
)
def test_find_cycle(g: dict[str, list[str]], cycle: list[str] | None) -> None:
    assert graph.find_cycle(g) == cycle


def test_waves_keep_declaration_order() -> None:
    assert graph.waves({"z": [], "a": [], "m": ["z", "a"]}) == [["z", "a"], ["m"]]
    assert graph.waves(DIAMOND) == [["a"], ["b", "c"], ["d"]]
    assert graph.topological_order(DIAMOND) == ["a", "b", "c", "d"]


@pytest.mark.parametrize(
    ("pending", "completed", "expected"),
    [
        ({"a", "b", "c", "d"}, set(), ["a"]),
        ({"b", "c", "d"}, {"a"}, ["b", "c"]),
        ({"c", "d"}, {"a", "b"}, ["c"]),
        ({"d"}, {"a", "b", "c"}, ["d"]),
    ],
)
def test_ready_needs_every_dependency_completed(
    pending: set[str], completed: set[str], expected: list[str]
) -> None:
    assert graph.ready(DIAMOND, pending, completed) == expected


def test_downstream_cascades_transitively_and_excludes_roots() -> None:
    assert graph.downstream(DIAMOND, ["b"]) == ["d"]
    assert graph.downstream(DIAMOND, ["a"]) == ["b", "c", "d"]
    assert graph.downstream(DIAMOND, ["d"]) == []
