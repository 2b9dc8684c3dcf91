"""Critical-path scheduling, as tables: priorities, start order, estimates (issue 16)."""

from __future__ import annotations

import pytest

from dagspec import priority

Graph = dict[str, list[str]]
DIAMOND: Graph = {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]}
CHAIN: Graph = {"a": [], "b": ["a"], "c": ["b"]}
# Two fillers declared before a chain: declaration order starts the fillers first.
FILLERS_FIRST: Graph = {"x1": [], "x2": [], "a": [], "b": ["a"], "c": ["b"]}


@pytest.mark.parametrize(
    ("graph", "durations", "expected"),
    [
        ({}, {}, {}),
        (CHAIN, {"a": 1, "b": 2, "c": 3}, {"a": 6, "b": 5, "c": 3}),
        (DIAMOND, {"a": 1, "b": 5, "c": 1, "d": 2}, {"a": 8, "b": 7, "c": 3, "d": 2}),
        # no durations: equal weights, so the priority counts the specs behind
        (DIAMOND, {}, {"a": 3, "b": 2, "c": 2, "d": 1}),
        ({"a": [], "b": ["a", "a"]}, {"a": 0, "b": 0}, {"a": 0, "b": 0}),
        # keys come back in declaration order, not topological order
        ({"z": ["y"], "y": []}, {"z": 1, "y": 1}, {"z": 1, "y": 2}),
    ],
)
def test_priority_is_the_longest_chain_of_work_to_the_end(
    graph: Graph, durations: dict[str, float], expected: dict[str, float]
) -> None:
    result = priority.priorities(graph, durations)
    assert result == expected
    assert list(result) == list(graph)


@pytest.mark.parametrize(
    ("ready", "ranks", "expected"),
    [
        (["c", "a", "b"], {"a": 1, "b": 1, "c": 1}, ["a", "b", "c"]),
        (["a", "b", "c"], {"a": 1, "b": 3, "c": 2}, ["b", "c", "a"]),
        (["a", "b", "c"], {"c": 2}, ["c", "a", "b"]),
        ([], {"a": 1}, []),
    ],
)
def test_order_ready_puts_the_highest_priority_first_and_ties_in_declaration_order(
    ready: list[str], ranks: dict[str, float], expected: list[str]
) -> None:
    assert priority.order_ready(ready, ranks, ["a", "b", "c"]) == expected


@pytest.mark.parametrize(
    ("graph", "durations", "expected"),
    [
        ({}, {}, []),
        (DIAMOND, {"a": 1, "b": 5, "c": 1, "d": 2}, ["a", "b", "d"]),
        (DIAMOND, {}, ["a", "b", "d"]),  # b and c tie: b is declared first
        (DIAMOND, {"b": 1, "c": 4}, ["a", "c", "d"]),
        (FILLERS_FIRST, {}, ["a", "b", "c"]),
        ({"x": [], "y": []}, {"x": 1, "y": 9}, ["y"]),
    ],
)
def test_critical_path_follows_the_longest_chain(
    graph: Graph, durations: dict[str, float], expected: list[str]
) -> None:
    assert priority.critical_path(graph, durations) == expected


@pytest.mark.parametrize(
    ("history", "finished", "expected"),
    [
        ({}, [], {"a": 1.0, "b": 1.0, "c": 1.0}),
        ({"a": [10, 30, 20], "b": [4]}, [], {"a": 20, "b": 4, "c": 12}),
        ({"a": [10], "b": []}, [], {"a": 10, "b": 10, "c": 10}),
        # what this run finished is the typical duration; a spec's own history wins
        ({"a": [10]}, [2, 3, 100], {"a": 10, "b": 3, "c": 3}),
        ({}, [5, 7], {"a": 6, "b": 6, "c": 6}),
    ],
)
def test_expected_durations_prefer_the_spec_then_the_run_then_equal_weights(
    history: dict[str, list[float]], finished: list[float], expected: dict[str, float]
) -> None:
    assert priority.expected_durations(["a", "b", "c"], history, finished) == expected


@pytest.mark.parametrize(
    ("graph", "durations", "slots", "expected"),
    [
        ({}, {}, 4, 0),
        (CHAIN, {"a": 1, "b": 2, "c": 3}, 4, 6),  # the critical path
        ({"a": [], "b": [], "c": []}, {"a": 3, "b": 3, "c": 3}, 2, 4.5),  # work / slots
        (FILLERS_FIRST, {}, 2, 3),
    ],
)
def test_lower_bound(
    graph: Graph, durations: dict[str, float], slots: int, expected: float
) -> None:
    assert priority.lower_bound(graph, durations, slots) == expected


# Two slots: p and q end together at 1; q readies two long chains, p a short one.
TOGETHER: Graph = {"p": [], "q": [], "s": ["p"], "t1": ["q"], "t2": ["q"], "u": ["t2"]}
TOGETHER_TIMES = {"p": 1, "q": 1, "s": 1, "t1": 5, "t2": 5, "u": 3}


@pytest.mark.parametrize(
    ("graph", "durations", "slots", "ranks", "expected"),
    [
        ({}, {}, 2, None, 0),
        (CHAIN, {"a": 1, "b": 2, "c": 3}, 1, None, 6),
        ({"a": [], "b": [], "c": []}, {"a": 1, "b": 2, "c": 3}, 1, None, 6),
        (FILLERS_FIRST, {}, 2, None, 3),  # the chain first: the lower bound
        (FILLERS_FIRST, {}, 2, {}, 4),  # declaration order: the fillers first
        (FILLERS_FIRST, {}, 9, {}, 3),  # enough slots: order does not matter
        # specs ending at the same instant free their slots before the next choice
        (TOGETHER, TOGETHER_TIMES, 2, None, 9),
    ],
)
def test_estimated_makespan_simulates_the_scheduling_policy(
    graph: Graph,
    durations: dict[str, float],
    slots: int,
    ranks: dict[str, float] | None,
    expected: float,
) -> None:
    assert priority.estimated_makespan(graph, durations, slots, ranks) == expected


def test_simulate_gives_each_end_time_in_declaration_order() -> None:
    ends = priority.simulate(FILLERS_FIRST, {}, 2)
    assert ends == {"x1": 1, "x2": 2, "a": 1, "b": 2, "c": 3}
    assert list(ends) == list(FILLERS_FIRST)


def test_simulate_needs_a_slot() -> None:
    with pytest.raises(ValueError, match="slots must be at least 1, not 0"):
        priority.simulate(CHAIN, {}, 0)


@pytest.mark.parametrize(
    ("history", "finished", "expected"),
    [
        ({}, [], ["a", "x1", "x2"]),  # equal weights: the most work behind it first
        ({"x2": [100], "a": [1], "b": [1], "c": [1]}, [], ["x2", "a", "x1"]),
        ({"a": [1], "b": [1], "c": [1]}, [50], ["x1", "x2", "a"]),
    ],
)
def test_start_order_is_what_the_scheduler_calls(
    history: dict[str, list[float]], finished: list[float], expected: list[str]
) -> None:
    assert priority.start_order(FILLERS_FIRST, ["x1", "x2", "a"], history, finished) == expected


@pytest.mark.parametrize(
    ("ready", "soon", "expected"),
    [
        (["x1", "x2"], [], "x1"),  # nothing being committed: the best ready spec
        (["x1", "x2"], ["b"], None),  # b (behind a's commit) has the longest chain: wait
        (["x1", "a"], ["b"], "a"),  # a ready spec outranks what is about to be ready
        ([], ["b"], None),
        ([], [], None),
    ],
)
def test_a_free_slot_waits_only_for_a_better_spec_about_to_be_ready(
    ready: list[str], soon: list[str], expected: str | None
) -> None:
    assert priority.next_to_start(FILLERS_FIRST, ready, soon, {}) == expected
