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


@pytest.mark.parametrize(
    ("g", "group", "runs"),
    [
        # a group declared first that waits for a later one: the later one goes first
        ({"a1": ["b1"], "b1": []}, {"a1": "a", "b1": "b"}, [("b", ["b1"]), ("a", ["a1"])]),
        # inside a group, a node declared before the one it waits for
        ({"x": ["y"], "y": []}, {"x": "g", "y": "g"}, [("g", ["y", "x"])]),
        # a group finished before the next whenever it can be: not a1, b1, a2
        (
            {"a1": [], "a2": ["b1"], "b1": []},
            {"a1": "a", "a2": "a", "b1": "b"},
            [("b", ["b1"]), ("a", ["a1", "a2"])],
        ),
        # declaration order between groups free at once, and after the one they wait for
        (
            {"x1": ["y1"], "y1": [], "z1": []},
            {"x1": "x", "y1": "y", "z1": "z"},
            [("y", ["y1"]), ("x", ["x1"]), ("z", ["z1"])],
        ),
        # interleaved: a group split only where it must be
        (
            {"a1": [], "a2": ["b1"], "b1": ["a1"], "a3": []},
            {"a1": "a", "a2": "a", "b1": "b", "a3": "a"},
            [("a", ["a1", "a3"]), ("b", ["b1"]), ("a", ["a2"])],
        ),
    ],
)
def test_grouped_order_keeps_groups_whole_where_it_can(
    g: dict[str, list[str]], group: dict[str, str], runs: list[tuple[str, list[str]]]
) -> None:
    assert graph.grouped_order(g, group) == runs
    placed = [node for _, nodes in runs for node in nodes]
    assert all(placed.index(d) < placed.index(n) for n, deps in g.items() for d in deps)


def test_grouped_order_of_a_long_chain_declared_in_reverse() -> None:
    """``dag visualize`` of 2000 features, each waiting for the one before, declared in
    reverse in 20 layers: each layer one run, in the order of the chain."""
    g = {f"n{i}": [f"n{i - 1}"] if i else [] for i in range(2000)}
    group = {f"n{i}": f"L{19 - i // 100}" for i in range(2000)}
    runs = graph.grouped_order(dict(reversed(g.items())), group)
    assert [layer for layer, _ in runs] == [f"L{19 - k}" for k in range(20)]
    assert [node for _, nodes in runs for node in nodes] == list(g)
