"""Pure critical-path scheduling: which ready spec starts first, and how long a run should take.

A graph is ``Mapping[node, Sequence[node]]`` as in ``graph``: each node maps to what it
depends on, and the mapping's order is the declaration order. Durations are expected
seconds per node (any non-negative number; only their ratios matter for the order).

The policy (README, How a run works, issue 16): a spec's *priority* is the longest chain of
expected work from it to the end of the graph, its own duration included. When a slot is
free the ready spec with the highest priority starts; equal priorities start in
declaration order. With equal durations this is "most work behind it first". It is
ninja's critical-path scheduling (``EdgePriorityQueue`` ordered by
``critical_path_weight``), weighted by each spec's expected duration instead of 1.

    >>> g = {"a": [], "b": [], "c": ["b"]}
    >>> priorities(g, {"a": 5.0, "b": 1.0, "c": 1.0})
    {'a': 5.0, 'b': 2.0, 'c': 1.0}
    >>> order_ready(["a", "b"], priorities(g, {"a": 1.0, "b": 1.0, "c": 1.0}), list(g))
    ['b', 'a']
"""

from __future__ import annotations

import heapq
import statistics
from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import TypeVar

from dagspec import graph as graphs

N = TypeVar("N", bound=Hashable)

# What a spec is expected to take when nothing is known about any spec: every spec weighs
# the same, so the priority counts the work behind it.
EQUAL_WEIGHT = 1.0


def expected_durations(
    ids: Iterable[N],
    history: Mapping[N, Sequence[float]],
    finished_this_run: Sequence[float] = (),
) -> dict[N, float]:
    """Each spec's expected duration in seconds.

    Args:
        ids: every spec of the run, in declaration order.
        history: seconds each spec id took in its completed attempts of earlier runs
            (ids without any may be missing or map to an empty sequence).
        finished_this_run: seconds each spec the current run has completed so far took.

    Returns:
        ``{id: seconds}`` in the order of ``ids``: the median of the spec's own history;
        for a spec without history, the run's typical duration: the median of what this
        run has finished so far, else the median of the other specs' expectations, else
        ``EQUAL_WEIGHT`` (so with no history at all every spec weighs the same).

    >>> expected_durations(["a", "b"], {"a": [10.0, 30.0, 20.0]})
    {'a': 20.0, 'b': 20.0}
    """
    ids = list(ids)
    own = {i: statistics.median(history[i]) for i in ids if history.get(i)}
    if finished_this_run:
        typical = statistics.median(finished_this_run)
    elif own:
        typical = statistics.median(own.values())
    else:
        typical = EQUAL_WEIGHT
    return {i: own.get(i, typical) for i in ids}


def priorities(graph: Mapping[N, Sequence[N]], durations: Mapping[N, float]) -> dict[N, float]:
    """Each node's longest chain of expected work to the end of the graph, in seconds.

    A node's priority is its own duration plus the highest priority among the nodes that
    depend on it (0 when none does). The graph must be acyclic; a node missing from
    ``durations`` weighs ``EQUAL_WEIGHT``. Returns ``{node: seconds}`` in declaration order.
    """
    dependents = _dependents(graph)
    result: dict[N, float] = {}
    for node in reversed(graphs.topological_order(graph)):
        behind = max((result[d] for d in dependents[node]), default=0.0)
        result[node] = durations.get(node, EQUAL_WEIGHT) + behind
    return {node: result[node] for node in graph}


def order_ready(
    ready_ids: Iterable[N], priorities: Mapping[N, float], declaration_order: Sequence[N]
) -> list[N]:
    """``ready_ids`` in the order they should start: highest priority first, ties in
    declaration order. An id without a priority counts as 0; every id must be in
    ``declaration_order`` (``KeyError`` otherwise)."""
    position = {node: i for i, node in enumerate(declaration_order)}
    return sorted(ready_ids, key=lambda n: (-priorities.get(n, 0.0), position[n]))


def start_order(
    graph: Mapping[N, Sequence[N]],
    ready_ids: Iterable[N],
    history: Mapping[N, Sequence[float]],
    finished_this_run: Sequence[float] = (),
) -> list[N]:
    """The ready specs in the order the scheduler starts them (README, How a run works).

    ``history`` and ``finished_this_run`` are ``expected_durations``'s; the result is
    ``order_ready`` under ``priorities``. Costs O(specs + edges): compute it when a slot
    is free, not before, since a spec that just completed may have readied a longer chain.
    """
    durations = expected_durations(graph, history, finished_this_run)
    return order_ready(ready_ids, priorities(graph, durations), list(graph))


def next_to_start(
    graph: Mapping[N, Sequence[N]],
    ready_ids: Sequence[N],
    soon_ids: Sequence[N],
    history: Mapping[N, Sequence[float]],
    finished_this_run: Sequence[float] = (),
) -> N | None:
    """The ready spec to start in a free slot, or None to wait for a better one.

    ``soon_ids`` are the specs that will be ready once the specs whose agents have exited
    are committed (issue 16: a slot is free as soon as its agent exits, before that). When
    the first of ``ready_ids + soon_ids`` in ``start_order`` is one of those, the slot waits
    the moment it takes (no agent runs in it meanwhile) rather than give a shorter chain the
    start; otherwise the best ready spec starts at once.
    """
    order = start_order(graph, [*ready_ids, *soon_ids], history, finished_this_run)
    return order[0] if order and order[0] in ready_ids else None


def critical_path(graph: Mapping[N, Sequence[N]], durations: Mapping[N, float]) -> list[N]:
    """The longest chain of expected work, first node to last (``[]`` for an empty graph).

    It starts at the node with the highest priority and follows, at each step, the
    dependent with the highest priority; ties go to the node declared first.
    """
    ranks = priorities(graph, durations)
    dependents = _dependents(graph)
    path: list[N] = []
    candidates = list(graph)
    while candidates:
        best = order_ready(candidates, ranks, list(graph))[0]
        path.append(best)
        candidates = dependents[best]
    return path


def lower_bound(graph: Mapping[N, Sequence[N]], durations: Mapping[N, float], slots: int) -> float:
    """No schedule on ``slots`` slots finishes sooner: max(critical path, total work / slots)."""
    longest = max(priorities(graph, durations).values(), default=0.0)
    total = sum(durations.get(node, EQUAL_WEIGHT) for node in graph)
    return max(longest, total / slots)


def estimated_makespan(
    graph: Mapping[N, Sequence[N]],
    durations: Mapping[N, float],
    slots: int,
    ranks: Mapping[N, float] | None = None,
) -> float:
    """Seconds a run takes on ``slots`` slots if each node takes exactly its duration.

    A list-scheduling simulation of the scheduler: whenever a slot is free, the ready node
    first in ``order_ready`` starts. ``ranks`` defaults to ``priorities(graph, durations)``
    (the critical-path policy); pass ``{}`` for declaration order. ``slots`` must be >= 1.
    """
    return max(simulate(graph, durations, slots, ranks).values(), default=0.0)


def simulate(
    graph: Mapping[N, Sequence[N]],
    durations: Mapping[N, float],
    slots: int,
    ranks: Mapping[N, float] | None = None,
) -> dict[N, float]:
    """When each node ends, in seconds from the start, under ``estimated_makespan``'s
    policy; the result is in declaration order."""
    if slots < 1:
        raise ValueError(f"slots must be at least 1, not {slots}")
    ranks = priorities(graph, durations) if ranks is None else ranks
    order = list(graph)
    position = {node: i for i, node in enumerate(order)}
    dependents = _dependents(graph)
    waiting = {node: len(set(graph[node])) for node in graph}
    ready = [node for node in graph if not waiting[node]]
    running: list[tuple[float, int, N]] = []  # (end time, declaration index, node)
    ends: dict[N, float] = {}
    now = 0.0
    while ready or running:
        for node in order_ready(ready, ranks, order)[: slots - len(running)]:
            ready.remove(node)
            end = now + durations.get(node, EQUAL_WEIGHT)
            heapq.heappush(running, (end, position[node], node))
        # Everything that ends at the same instant frees its slot before the next choice.
        now = running[0][0]
        while running and running[0][0] == now:
            _, _, node = heapq.heappop(running)
            ends[node] = now
            ready += [child for child in dependents[node] if _release(waiting, child)]
    return {node: ends[node] for node in graph}


def _release(waiting: dict[N, int], node: N) -> bool:
    """One dependency of ``node`` has ended; True when it was the last one."""
    waiting[node] -= 1
    return not waiting[node]


def _dependents(graph: Mapping[N, Sequence[N]]) -> dict[N, list[N]]:
    """Each node's direct dependents, in declaration order."""
    result: dict[N, list[N]] = {node: [] for node in graph}
    for node, deps in graph.items():
        for dep in dict.fromkeys(deps):
            result[dep].append(node)
    return result
