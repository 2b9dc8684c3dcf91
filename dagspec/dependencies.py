"""Checking the ids and dependencies of a DAG file: every ``depends_on`` names an id of the
right kind, ids are unique, and there is no cycle, reported at the lines a user should open.

Run on whatever layers and features could be read (issue 15): one bad feature does not hide
a cycle elsewhere. Problems go to a :class:`Problems` collector, the schema walker.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from strictyaml.ruamel.comments import CommentedMap, CommentedSeq

from dagspec import graph
from dagspec.errors import did_you_mean


class Problems(Protocol):
    """Where problems go: ``add(line, message)``, and the ids already reported as damaged
    (a dependency on one of them is not reported again as "not defined")."""

    damaged: set[str]

    def add(self, line: int | None, message: str) -> None: ...


def item_line(sequence: CommentedSeq, index: int) -> int:
    """The 1-based line of item ``index``, from ruamel's record of where it read it."""
    return int(sequence.lc.item(index)[0]) + 1


def check_graph(problems: Problems, doc: CommentedMap, layers: list[dict[str, Any]]) -> None:
    """Check every layer's and feature's ``depends_on``, duplicate ids and cycles."""
    layer_lines = _first_lines(problems, layers, "layer")
    features = [f for layer in layers for f in layer["features"]]
    feature_lines = _first_lines(problems, features, "feature")
    dep_lines = _dependency_lines(doc)
    for layer in layers:
        for dep in layer["depends_on"]:
            line = dep_lines[("layer", layer["id"], dep)]
            _check_dep(problems, "layer", layer["id"], dep, line, layer_lines, feature_lines)
    for feature in features:
        for dep in feature["depends_on"]:
            line = dep_lines[("feature", feature["id"], dep)]
            _check_dep(problems, "feature", feature["id"], dep, line, feature_lines, layer_lines)
    _check_cycles(problems, layers, layer_lines, feature_lines)


def _check_dep(
    problems: Problems,
    kind: str,
    owner: str,
    dep: str,
    line: int,
    same: Mapping[str, int],
    other: Mapping[str, int],
) -> None:
    if dep == owner:
        problems.add(line, f"{kind} '{owner}' depends on itself: remove '{dep}'")
    elif dep in same or dep in problems.damaged:
        return
    elif dep in other:
        other_kind = "layer" if kind == "feature" else "feature"
        where = "the layer's depends_on" if kind == "feature" else "a feature's depends_on"
        problems.add(
            line,
            f"{kind} '{owner}' depends on '{dep}', which is a {other_kind}: "
            f"a {kind}'s depends_on names {kind}s (to wait for a {other_kind}, "
            f"use {where})",
        )
    else:
        hint = did_you_mean(dep, same)
        problems.add(line, f"{kind} '{owner}' depends on '{dep}', which is not defined{hint}")


def _check_cycles(
    problems: Problems,
    layers: list[dict[str, Any]],
    layer_lines: Mapping[str, int],
    feature_lines: Mapping[str, int],
) -> None:
    # Run on whatever could be read (issue 15): edges to ids that do not exist, and
    # self-edges, were reported by _check_dep already.
    # an id defined twice (reported) keeps its first definition's edges, as its line: the
    # second must not hide a cycle through the first
    layer_graph: dict[str, list[str]] = {}
    for layer in layers:
        deps = [d for d in layer["depends_on"] if d in layer_lines and d != layer["id"]]
        layer_graph.setdefault(layer["id"], deps)
    cycle = graph.find_cycle(layer_graph)
    if cycle:
        problems.add(layer_lines[cycle[0]], "layer dependency cycle: " + " -> ".join(cycle))
        return
    mixed_cycle = graph.find_cycle(_mixed_graph(layers, set(feature_lines)))
    if mixed_cycle:
        first = next(n for n in mixed_cycle if n[0] == "feature")
        names = [n[1] if n[0] == "feature" else f"layer {n[1]}" for n in mixed_cycle]
        problems.add(feature_lines[first[1]], "dependency cycle: " + " -> ".join(names))


def _mixed_graph(
    layers: list[dict[str, Any]], feature_ids: set[str]
) -> dict[tuple[str, str], list[tuple[str, str]]]:
    """Features and layers as nodes, so a cycle is printed through the edges that make it:
    a feature depends on its own dependencies and on the layers its layer depends on; a
    layer depends on its features. Edges to undefined features and self-edges are left out
    (reported already); an id defined twice keeps the edges of its first definition."""
    nodes: dict[tuple[str, str], list[tuple[str, str]]] = {}
    layer_ids = {layer["id"] for layer in layers}
    for layer in layers:
        inherited = [("layer", dep) for dep in layer["depends_on"] if dep in layer_ids]
        for feature in layer["features"]:
            deps = feature["depends_on"]
            own = [("feature", d) for d in deps if d in feature_ids and d != feature["id"]]
            nodes.setdefault(("feature", feature["id"]), own + inherited)  # the first
        members = nodes.setdefault(("layer", layer["id"]), [])
        members.extend(("feature", f["id"]) for f in layer["features"])
    return nodes


def _first_lines(problems: Problems, items: list[dict[str, Any]], kind: str) -> dict[str, int]:
    lines: dict[str, int] = {}
    # feature ids by casefold: ids equal but for case share a directory and a branch on a
    # file system that ignores case (macOS, Windows), so no file with them can run anywhere
    folded: dict[str, str] = {}
    for item in items:
        other = folded.get(item["id"].casefold()) if kind == "feature" else None
        if item["id"] in lines:
            problems.add(
                item["line"],
                f"duplicate {kind} id '{item['id']}' (first defined at line "
                f"{lines[item['id']]}): ids must be unique",
            )
        elif other is not None:
            problems.add(
                item["line"],
                f"feature id '{item['id']}' differs from '{other}' (line {lines[other]}) only "
                "by case, so they would share a directory and a branch on many file systems: "
                "rename one",
            )
        else:
            lines[item["id"]] = item["line"]
            folded[item["id"].casefold()] = item["id"]
    return lines


def _dependency_lines(doc: CommentedMap) -> dict[tuple[str, str, str], int]:
    """The line of each ``depends_on`` entry, keyed by (kind, owner id, dependency)."""
    lines: dict[tuple[str, str, str], int] = {}

    def record(kind: str, node: CommentedMap) -> None:
        deps = node.get("depends_on")
        if isinstance(deps, CommentedSeq):
            for index, dep in enumerate(deps):
                if isinstance(dep, str):  # anything else was reported (not an id, wrong type)
                    lines.setdefault((kind, node["id"], dep), item_line(deps, index))

    for layer in _mappings(doc.get("layers")):
        record("layer", layer)
        for feature in _mappings(layer.get("features")):
            record("feature", feature)
    return lines


def _mappings(node: object) -> list[CommentedMap]:
    if not isinstance(node, CommentedSeq):
        return []
    return [m for m in node if isinstance(m, CommentedMap) and isinstance(m.get("id"), str)]
