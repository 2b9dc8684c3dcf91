"""Pure graph logic over plain mappings: cycles, order, waves, what lies downstream.

A graph here is ``Mapping[node, Sequence[node]]``: each node maps to what it depends on.
The rules built on it (a spec is *ready* when every dependency completed; what is
downstream of a failed one is *blocked*) are in ``dagspec.lifecycle``.
"""

from __future__ import annotations

import graphlib
import heapq
from collections.abc import Collection, Hashable, Iterable, Mapping, Sequence
from typing import TypeVar

N = TypeVar("N", bound=Hashable)
G = TypeVar("G", bound=Hashable)


def find_cycle(graph: Mapping[N, Sequence[N]]) -> list[N] | None:
    """Return a cycle as ``[a, b, ..., a]`` where each node depends on the next, or None.

    >>> find_cycle({"a": ["b"], "b": ["c"], "c": ["a"]})
    ['a', 'b', 'c', 'a']
    """
    sorter = graphlib.TopologicalSorter(graph)
    try:
        sorter.prepare()
    except graphlib.CycleError as exc:
        # graphlib lists each node as a dependency of the one after it; we read
        # arrows as "depends on", so reverse it.
        cycle: list[N] = list(reversed(exc.args[1]))
        return _rotate_to_first(cycle, list(graph))
    return None


def _rotate_to_first(cycle: list[N], order: list[N]) -> list[N]:
    """Start the cycle at the node declared first, so messages are stable."""
    ring = cycle[:-1]
    start = min(range(len(ring)), key=lambda i: order.index(ring[i]))
    ring = ring[start:] + ring[:start]
    return [*ring, ring[0]]


def waves(graph: Mapping[N, Sequence[N]]) -> list[list[N]]:
    """Group nodes into waves: each wave depends only on earlier ones (graph must be acyclic).

    Nodes keep their declaration order inside a wave.
    """
    order = {node: i for i, node in enumerate(graph)}
    sorter = graphlib.TopologicalSorter(graph)
    sorter.prepare()
    result: list[list[N]] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready(), key=order.__getitem__)
        result.append(ready)
        sorter.done(*ready)
    return result


def topological_order(graph: Mapping[N, Sequence[N]]) -> list[N]:
    """Every node after all it depends on, declaration order breaking ties."""
    return [node for wave in waves(graph) for node in wave]


def grouped_order(graph: Mapping[N, Sequence[N]], group: Mapping[N, G]) -> list[tuple[G, list[N]]]:
    """Every node after all it depends on, in runs of nodes of one group (graph must be
    acyclic): a group, once begun, goes on while it has a node whose dependencies are all
    placed; the next to begin is the first declared group that can be finished without
    another (every dependency of its nodes on other groups placed), else the first declared
    with a node ready. So each group is one run wherever the graph allows it, and is split
    only where its nodes are interleaved with another's (one of ``a`` depends on one of
    ``b``, which depends on another of ``a``). Declaration order breaks ties throughout.

    >>> grouped_order({"b1": ["a2"], "a1": [], "a2": []}, {"b1": "b", "a1": "a", "a2": "a"})
    [('a', ['a1', 'a2']), ('b', ['b1'])]
    >>> grouped_order({"a1": [], "b1": ["a1"], "a2": ["b1"]}, {"a1": "a", "b1": "b", "a2": "a"})
    [('a', ['a1']), ('b', ['b1']), ('a', ['a2'])]
    """
    nodes = list(graph)
    place = {node: index for index, node in enumerate(nodes)}
    groups = list(dict.fromkeys(group[node] for node in nodes))
    waiting = {node: len(set(graph[node])) for node in nodes}
    dependents: dict[N, list[N]] = {node: [] for node in nodes}
    outside = dict.fromkeys(groups, 0)  # dependencies on other groups' nodes not yet placed
    left = dict.fromkeys(groups, 0)
    for node in nodes:
        left[group[node]] += 1
        for dep in set(graph[node]):
            dependents[dep].append(node)
            outside[group[node]] += group[dep] != group[node]
    ready: dict[G, list[int]] = {g: [] for g in groups}  # heaps of declaration indexes
    for node in nodes:
        if not waiting[node]:
            ready[group[node]].append(place[node])  # in increasing order: already a heap
    runs: list[tuple[G, list[N]]] = []
    for _ in nodes:
        if not runs or not ready[runs[-1][0]]:
            free = [g for g in groups if left[g] and not outside[g]]
            runs.append((free[0] if free else next(g for g in groups if ready[g]), []))
        node = nodes[heapq.heappop(ready[runs[-1][0]])]
        runs[-1][1].append(node)
        left[group[node]] -= 1
        for child in dependents[node]:
            waiting[child] -= 1
            outside[group[child]] -= group[child] != group[node]
            if not waiting[child]:
                heapq.heappush(ready[group[child]], place[child])
    return runs


def ready(
    graph: Mapping[N, Sequence[N]], pending: Collection[N], completed: Collection[N]
) -> list[N]:
    """The pending nodes whose dependencies have all completed, in declaration order."""
    return [n for n in graph if n in pending and all(d in completed for d in graph[n])]


def downstream(graph: Mapping[N, Sequence[N]], roots: Iterable[N]) -> list[N]:
    """Every node that depends, directly or not, on one of ``roots`` (roots excluded)."""
    dependents: dict[N, list[N]] = {n: [] for n in graph}
    for node, deps in graph.items():
        for dep in deps:
            dependents.setdefault(dep, []).append(node)
    seen: set[N] = set()
    stack = list(roots)
    while stack:
        for child in dependents.get(stack.pop(), []):
            if child not in seen:
                seen.add(child)
                stack.append(child)
    return [n for n in graph if n in seen]
