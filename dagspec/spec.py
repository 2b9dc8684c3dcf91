"""The DAG file: strictyaml schema, frozen attrs model, private cattrs converter, ``load_dag()``.

Loading checks every rule of README, The DAG file and reports every problem of a file in one pass,
each with the file and the line a user should open. The text is parsed by strictyaml's
loader, which refuses tags, anchors, aliases and duplicate keys and keeps ruamel's line
records; the structure is then checked against ``_SCHEMA`` by a small walker, and the ids
and the graph after that.

Why not strictyaml's validators: they locate lines by re-dumping the document, which is
off by one inside flow lists and made a 500-feature file take 1.2 s; the walker takes the
lines ruamel recorded while parsing (0.16 s in all), and one bad feature does not hide
the next.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Iterable, Mapping
from itertools import accumulate
from pathlib import Path, PurePosixPath
from typing import Any, NamedTuple

import attrs
import cattrs
import strictyaml as sy
import strictyaml.ruamel as ruamel
from strictyaml.parser import StrictYAMLLoader
from strictyaml.ruamel.comments import CommentedMap, CommentedSeq
from strictyaml.ruamel.error import MarkedYAMLError

from dagspec import graph
from dagspec.errors import Problem, SpecError
from dagspec.faults import argument_problem

MAX_BYTES = 1 << 20
# Deeper flow nesting or indentation than any DAG file needs; the parser recurses per level,
# and 5000 levels took 8 s to end in a RecursionError (issue 15).
MAX_NESTING = 64
MAX_INDENT = 256
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
KNOWN_SCHEMA_VERSIONS = ("1.0",)
MAX_ID_LENGTH = 100
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\Z")
_DURATION = re.compile(r"(?=\d)(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?\Z")

# The schema: for each kind of mapping, its keys, their types and whether they are required.
# "ids" is a list of ids (an empty value counts as []); "list" a list of mappings of the kind
# named by the key; "map:<kind>" a nested mapping.
_SCHEMA: dict[str, dict[str, tuple[str, bool]]] = {
    "top": {
        "schema_version": ("text", False),
        "dag": ("map:dag", False),
        "execution": ("map:execution", False),
        "layers": ("list", True),
    },
    "dag": {"name": ("text", False)},
    "execution": {
        "max_parallel": ("int", False),
        "timeout": ("text", False),
        "base_branch": ("text", False),
        "on_conflict": ("text", False),
        "setup": ("text", False),
        "copy": ("copies", False),
        "notify": ("text", False),
    },
    "copy": {"path": ("text", True), "symlink": ("bool", False)},
    "layer": {
        "id": ("text", True),
        "name": ("text", False),
        "depends_on": ("ids", False),
        "features": ("list", True),
    },
    "feature": {
        "id": ("text", True),
        "description": ("text", False),
        "depends_on": ("ids", False),
        "timeout": ("text", False),
    },
}
_TYPE_NAMES = {
    "text": "a string",
    "int": "a whole number",
    "ids": "a list of ids",
    "list": "a list",
    "bool": "true or false",
    "copies": "a list of paths",
}
_BOOLS = {"true": True, "false": False}


@attrs.frozen
class Feature:
    """One feature: becomes one spec, one worktree, one branch."""

    id: str
    layer: str
    description: str | None = None
    depends_on: tuple[str, ...] = ()
    timeout: float | None = None
    line: int = attrs.field(default=0, eq=False)


@attrs.frozen
class Layer:
    id: str
    features: tuple[Feature, ...]
    name: str | None = None
    depends_on: tuple[str, ...] = ()
    line: int = attrs.field(default=0, eq=False)


@attrs.frozen
class CopyPath:
    """A gitignored path of the main checkout put into each worktree (issue 17): copied, or
    with ``symlink`` linked (for large directories such as ``node_modules``)."""

    path: str
    symlink: bool = False


@attrs.frozen
class Execution:
    max_parallel: int | None = None
    timeout: float | None = None
    base_branch: str | None = None
    on_conflict: str = "manual"
    setup: str | None = None  # a shell command run in each new worktree before its agent
    copy: tuple[CopyPath, ...] = ()
    notify: str | None = None  # a shell command told of run end, failures, stalls, limits


@attrs.frozen
class Dag:
    """A valid DAG file. ``deps`` is computed once, on first use."""

    name: str
    layers: tuple[Layer, ...]
    execution: Execution = Execution()
    schema_version: str = "1.0"

    @functools.cached_property
    def features(self) -> dict[str, Feature]:
        """Every feature by id, in declaration order."""
        return {f.id: f for layer in self.layers for f in layer.features}

    @functools.cached_property
    def deps(self) -> dict[str, tuple[str, ...]]:
        """Effective dependencies: a feature's own plus every feature of the layers its layer
        depends on (README, The DAG file), without duplicates, in declaration order."""
        members = {layer.id: [f.id for f in layer.features] for layer in self.layers}
        result: dict[str, tuple[str, ...]] = {}
        for layer in self.layers:
            inherited = [f for dep in layer.depends_on for f in members[dep]]
            for feature in layer.features:
                result[feature.id] = tuple(dict.fromkeys([*feature.depends_on, *inherited]))
        return result


_converter = cattrs.Converter(forbid_extra_keys=True)


def parse_duration(text: str) -> float | None:
    """``90s``, ``45m``, ``2h``, ``1h30m`` in seconds; None when not a duration."""
    match = _DURATION.match(text.strip())
    if match is None:
        return None
    hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return float(hours * 3600 + minutes * 60 + seconds)


class Checked(NamedTuple):
    """What checking a DAG file found: the DAG when it is valid, every problem, and the
    features read without a description (with their lines), valid file or not."""

    dag: Dag | None
    problems: list[Problem]
    undescribed: list[tuple[str, int]]


def load_dag(path: Path, *, repo: Path | None = None) -> Dag:
    """Read and check a DAG file; raise ``SpecError`` with every problem found, including,
    when ``repo`` is given, the features with neither a description nor a written spec."""
    checked = check_file(path)
    problems = checked.problems
    if repo is not None:
        problems = sorted(problems + missing_specs(checked, repo, str(path)), key=_line)
    if checked.dag is None or problems:
        raise SpecError(problems)
    return checked.dag


def _line(problem: Problem) -> int:
    return problem.line or 0


def check_file(path: Path) -> Checked:
    """Check the DAG file at ``path`` (errors name it as given)."""
    label = str(path)
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_BYTES + 1)
    except FileNotFoundError:
        return _failed(label, "no such file")
    except IsADirectoryError:
        return _failed(label, "is a directory, not a DAG file")
    except OSError as exc:
        return _failed(label, f"cannot read: {exc.strerror}")
    return check_bytes(raw, label, path.stem)


def check_bytes(raw: bytes, label: str, default_name: str) -> Checked:
    """Check a DAG file's content; ``label`` names it in problems, ``default_name`` is the
    DAG's name when it has no ``dag.name``. Every problem is found in one pass: the graph
    checks run on whatever layers and features could be read."""
    try:
        text = _decode(raw, label)
    except SpecError as exc:
        return Checked(None, list(exc.problems), [])
    reader = _Reader(label)
    data = reader.read(text)
    problems = sorted(reader.problems, key=lambda p: p.line or 0)
    if problems or data is None:
        return Checked(None, problems, reader.undescribed)
    data.setdefault("name", default_name)
    return Checked(_converter.structure(data, Dag), [], reader.undescribed)


def missing_specs(checked: Checked, repo: Path, label: str) -> list[Problem]:
    """Each feature read needs ``specs/<id>/spec.yaml`` in the repository or a description."""
    return [
        Problem(
            label,
            line,
            f"feature '{spec_id}' has no description and there is no specs/{spec_id}/spec.yaml: "
            "add a description, or write the spec first",
        )
        for spec_id, line in checked.undescribed
        if not (repo / "specs" / spec_id / "spec.yaml").is_file()
    ]


def check_specs(dag: Dag, repo: Path, label: str) -> list[Problem]:
    """Each feature needs ``specs/<id>/spec.yaml`` in the repository or a description."""
    undescribed = [(f.id, f.line) for f in dag.features.values() if f.description is None]
    return missing_specs(Checked(dag, [], undescribed), repo, label)


def _failed(label: str, message: str) -> Checked:
    return Checked(None, [Problem(label, None, message)], [])


def _decode(raw: bytes, label: str) -> str:
    def fail(message: str, line: int | None = None) -> SpecError:
        return SpecError([Problem(label, line, message)])

    if len(raw) > MAX_BYTES:
        raise fail(f"larger than {MAX_BYTES // 1024} KiB: not a DAG file")
    if b"\0" in raw:
        raise fail("binary data (NUL bytes): not a DAG file", raw.count(b"\n", 0, raw.index(0)) + 1)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise fail("not valid UTF-8: save the file as UTF-8", line) from None
    if not text.strip() or all(
        not ln.strip() or ln.lstrip().startswith("#") for ln in text.splitlines()
    ):
        raise fail("the file is empty: a DAG file needs at least a 'layers:' list")
    too_deep = _too_deep(text)
    if too_deep:
        raise fail(too_deep)
    return text.removeprefix("\ufeff")


def _too_deep(text: str) -> str | None:
    """Refuse nesting no DAG file needs, before the parser recurses into it."""
    brackets = re.sub(r"[^\[\]{}]", "", text)
    depth = max(accumulate(1 if c in "[{" else -1 for c in brackets), default=0)
    if depth > MAX_NESTING:
        return f"nested more than {MAX_NESTING} levels deep: not a DAG file"
    indent = max((len(ln) - len(ln.lstrip(" ")) for ln in text.splitlines()), default=0)
    if indent > MAX_INDENT:
        return f"indented more than {MAX_INDENT} columns: not a DAG file"
    return None


class _Reader:
    """Walks the parsed document against ``_SCHEMA``, collecting problems and plain data."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.problems: list[Problem] = []
        # ids of layers and features that had problems of their own: a dependency on one
        # of them is not reported again as "not defined".
        self.damaged: set[str] = set()
        self.undescribed: list[tuple[str, int]] = []

    def add(self, line: int | None, message: str) -> None:
        self.problems.append(Problem(self.label, line, message))

    def read(self, text: str) -> dict[str, Any] | None:
        loader = type(
            "_Loader", (StrictYAMLLoader,), {"label": self.label, "allow_flow_style": True}
        )
        try:
            doc = ruamel.load(text, Loader=loader)
        except (sy.StrictYAMLError, MarkedYAMLError) as exc:
            self.add(_mark_line(exc), _yaml_message(exc))
            return None
        except RecursionError:  # whatever nesting _too_deep let through
            self.add(None, "nested too deeply: not a DAG file")
            return None
        if not isinstance(doc, CommentedMap):
            self.add(1, "expected a mapping at the top, with a 'layers:' list")
            return None
        top = self.mapping(doc, "top", "the file", 1)
        data: dict[str, Any] = {}
        if "schema_version" in top:
            self.check_version(top["schema_version"], _key_line(doc, "schema_version"))
            data["schema_version"] = top["schema_version"]
        if "name" in top.get("dag", {}):
            data["name"] = top["dag"]["name"]
        if "execution" in top:
            data["execution"] = self.read_execution(top["execution"], doc["execution"])
        if "layers" in top:
            data["layers"] = self.read_layers(doc["layers"], _key_line(doc, "layers"))
            self.check_graph(doc, data["layers"])
        return data

    def mapping(self, node: object, kind: str, what: str, line: int) -> dict[str, Any]:
        """Check one mapping against its schema; return the values that passed."""
        if not isinstance(node, CommentedMap):
            self.add(line, f"{what} should be a mapping of keys to values")
            return {}
        schema = _SCHEMA[kind]
        values: dict[str, Any] = {}
        if getattr(node, "merge", None):
            self.add(line, f"{what} uses a merge key ('<<:'): write its keys out instead")
        for key in node:
            if key not in node.lc.data:  # brought in by a merge key, reported above
                continue
            key_line = _key_line(node, key)
            if key not in schema:
                hint = _did_you_mean(str(key), schema)
                self.add(
                    key_line,
                    f"unknown key '{key}' in {what}{hint}; allowed keys: {', '.join(schema)}",
                )
                continue
            value = self.typed(node[key], schema[key][0], f"'{key}' of {what}", key_line)
            if value is not None:
                values[key] = value
        for key, (_, required) in schema.items():
            if required and key not in node:
                self.add(line, f"{what} has no '{key}': it is required")
        return values

    def typed(self, value: object, kind: str, what: str, line: int) -> Any:
        if kind.startswith("map:"):
            return self.mapping(value, kind[4:], kind[4:], line)
        if kind in ("ids", "list") and value == "":
            return CommentedSeq()
        if kind == "int" and isinstance(value, str) and re.fullmatch(r"[-+]?\d+", value):
            return int(value)
        if kind == "text" and isinstance(value, str):
            control = _CONTROL.search(value)
            too_long = argument_problem(value) if control is None else None
            if control is None and too_long is None:
                return value
            why = (
                f"contains the control character U+{ord(control[0]):04X}: remove it "
                "(it would reach terminals and commands as it is)"
                if control
                else str(too_long)
            )
            self.add(line, f"{what} {why}")
            return None
        if kind == "bool" and isinstance(value, str) and value.lower() in _BOOLS:
            return _BOOLS[value.lower()]
        if kind == "copies" and (value == "" or isinstance(value, CommentedSeq)):
            return CommentedSeq() if value == "" else value
        if kind == "list" and isinstance(value, CommentedSeq):
            return value
        if (
            kind == "ids"
            and isinstance(value, CommentedSeq)
            and all(isinstance(i, str) for i in value)
        ):
            return value
        found = "a mapping" if isinstance(value, CommentedMap) else "a list"
        found = f"'{value}'" if isinstance(value, str) else found
        self.add(line, f"{what} should be {_TYPE_NAMES[kind]}, found {found}")
        return None

    def check_version(self, version: str, line: int) -> None:
        if version not in KNOWN_SCHEMA_VERSIONS:
            known = ", ".join(f"'{v}'" for v in KNOWN_SCHEMA_VERSIONS)
            self.add(
                line,
                f"unknown schema_version '{version}': this dagspec reads {known} "
                "(upgrade dagspec, or remove the key)",
            )

    def read_execution(self, values: dict[str, Any], node: CommentedMap) -> dict[str, Any]:
        result = dict(values)
        if values.get("max_parallel", 1) < 1:
            self.add(
                _key_line(node, "max_parallel"),
                f"max_parallel is {values['max_parallel']}: it must be 1 or more",
            )
        if "timeout" in values:
            result["timeout"] = self.duration(node, "timeout", "execution.timeout")
        for key in ("setup", "notify"):
            if key in values and not values[key].strip():
                self.add(_key_line(node, key), f"execution.{key} is empty: give a command")
        if "copy" in values:
            result["copy"] = self.read_copies(values["copy"])
        if values.get("on_conflict", "manual") != "manual":
            self.add(
                _key_line(node, "on_conflict"),
                f"on_conflict '{values['on_conflict']}' is not supported: use 'manual' "
                "(conflicting specs are left unmerged and reported)",
            )
        return result

    def read_copies(self, nodes: CommentedSeq) -> list[dict[str, Any]]:
        """``execution.copy``: each item a path, or ``{path: P, symlink: true}``."""
        copies: list[dict[str, Any]] = []
        seen: dict[str, int] = {}
        for index, node in enumerate(nodes):
            line = _item_line(nodes, index)
            if isinstance(node, str):
                item: dict[str, Any] = {"path": node}
            else:
                item = self.mapping(node, "copy", f"the copy entry at line {line}", line)
                if "path" not in item:
                    continue
            path = item["path"].strip().rstrip("/")
            problem = _copy_path_problem(path)
            if problem:
                self.add(line, f"execution.copy path '{item['path']}' {problem}")
            elif path in seen:
                self.add(line, f"execution.copy lists '{path}' twice (first at line {seen[path]})")
            else:
                seen[path] = line
                copies.append({**item, "path": str(PurePosixPath(path))})
        return copies

    def duration(self, node: CommentedMap, key: str, what: str) -> float | None:
        text, line = node[key], _key_line(node, key)
        seconds = parse_duration(text)
        if seconds is None:
            self.add(
                line, f"{what} is '{text}', not a duration: write it like 90s, 45m, 2h or 1h30m"
            )
        elif seconds <= 0:
            self.add(line, f"{what} is '{text}', which is zero: give a positive duration")
        return seconds

    def read_layers(self, nodes: CommentedSeq, line: int) -> list[dict[str, Any]]:
        if not nodes:
            self.add(line, "'layers' is empty: add at least one layer")
        layers = []
        for index, node in enumerate(nodes):
            layer = self.item(node, "layer", _item_line(nodes, index))
            if layer is None:
                continue
            features = layer.get("features")
            layer["depends_on"] = list(layer.get("depends_on", []))
            layer["features"] = []
            if features is not None:
                layer["features"] = self.read_features(node, features, layer["id"])
            layers.append(layer)
        return layers

    def read_features(
        self, layer: CommentedMap, nodes: CommentedSeq, layer_id: str
    ) -> list[dict[str, Any]]:
        if not nodes:
            self.add(
                _key_line(layer, "features"),
                f"layer '{layer_id}' has no features: add at least one under 'features:'",
            )
        features = []
        for index, node in enumerate(nodes):
            feature = self.item(node, "feature", _item_line(nodes, index))
            if feature is None:
                continue
            feature["layer"] = layer_id
            if "description" not in feature and feature["id"] not in self.damaged:
                # (a damaged feature, with a misspelt 'descripton:', is reported once)
                self.undescribed.append((feature["id"], feature["line"]))
            feature["depends_on"] = list(feature.get("depends_on", []))
            if "timeout" in feature:
                what = f"timeout of feature '{feature['id']}'"
                feature["timeout"] = self.duration(node, "timeout", what)
            features.append(feature)
        return features

    def item(self, node: object, kind: str, line: int) -> dict[str, Any] | None:
        """A layer or feature: its checked values with ``line``, or None without an id."""
        before = len(self.problems)
        what = _describe(node, kind, line)
        values = self.mapping(node, kind, what, line)
        if "id" not in values:
            return None
        values["line"] = _key_line(node, "id")
        problem = _id_problem(values["id"])
        if problem:
            self.add(values["line"], f"{kind} id '{values['id'][:120]}' {problem}")
        if len(self.problems) > before:
            self.damaged.add(values["id"])
        return values

    def check_graph(self, doc: CommentedMap, layers: list[dict[str, Any]]) -> None:
        layer_lines = _first_lines(self, layers, "layer")
        features = [f for layer in layers for f in layer["features"]]
        feature_lines = _first_lines(self, features, "feature")
        dep_lines = _dependency_lines(doc)
        for layer in layers:
            for dep in layer["depends_on"]:
                line = dep_lines[("layer", layer["id"], dep)]
                self.check_dep("layer", layer["id"], dep, line, layer_lines, feature_lines)
        for feature in features:
            for dep in feature["depends_on"]:
                line = dep_lines[("feature", feature["id"], dep)]
                self.check_dep("feature", feature["id"], dep, line, feature_lines, layer_lines)
        self.check_cycles(layers, layer_lines, feature_lines)

    def check_dep(
        self,
        kind: str,
        owner: str,
        dep: str,
        line: int,
        same: Mapping[str, int],
        other: Mapping[str, int],
    ) -> None:
        if dep == owner:
            self.add(line, f"{kind} '{owner}' depends on itself: remove '{dep}'")
        elif dep in same or dep in self.damaged:
            return
        elif dep in other:
            other_kind = "layer" if kind == "feature" else "feature"
            where = "the layer's depends_on" if kind == "feature" else "a feature's depends_on"
            self.add(
                line,
                f"{kind} '{owner}' depends on '{dep}', which is a {other_kind}: "
                f"a {kind}'s depends_on names {kind}s (to wait for a {other_kind}, "
                f"use {where})",
            )
        else:
            hint = _did_you_mean(dep, same)
            self.add(line, f"{kind} '{owner}' depends on '{dep}', which is not defined{hint}")

    def check_cycles(
        self,
        layers: list[dict[str, Any]],
        layer_lines: Mapping[str, int],
        feature_lines: Mapping[str, int],
    ) -> None:
        # Run on whatever could be read (issue 15): edges to ids that do not exist, and
        # self-edges, were reported by check_dep already.
        layer_graph = {
            layer["id"]: [d for d in layer["depends_on"] if d in layer_lines and d != layer["id"]]
            for layer in layers
        }
        cycle = graph.find_cycle(layer_graph)
        if cycle:
            self.add(layer_lines[cycle[0]], "layer dependency cycle: " + " -> ".join(cycle))
            return
        mixed_cycle = graph.find_cycle(_mixed_graph(layers, set(feature_lines)))
        if mixed_cycle:
            first = next(n for n in mixed_cycle if n[0] == "feature")
            names = [n[1] if n[0] == "feature" else f"layer {n[1]}" for n in mixed_cycle]
            self.add(feature_lines[first[1]], "dependency cycle: " + " -> ".join(names))


def _mixed_graph(
    layers: list[dict[str, Any]], feature_ids: set[str]
) -> dict[tuple[str, str], list[tuple[str, str]]]:
    """Features and layers as nodes, so a cycle is printed through the edges that make it:
    a feature depends on its own dependencies and on the layers its layer depends on; a
    layer depends on its features. Edges to undefined features and self-edges are left out
    (reported already)."""
    nodes: dict[tuple[str, str], list[tuple[str, str]]] = {}
    layer_ids = {layer["id"] for layer in layers}
    for layer in layers:
        inherited = [("layer", dep) for dep in layer["depends_on"] if dep in layer_ids]
        for feature in layer["features"]:
            deps = feature["depends_on"]
            own = [("feature", d) for d in deps if d in feature_ids and d != feature["id"]]
            nodes[("feature", feature["id"])] = own + inherited
        nodes[("layer", layer["id"])] = [("feature", f["id"]) for f in layer["features"]]
    return nodes


def _first_lines(reader: _Reader, items: list[dict[str, Any]], kind: str) -> dict[str, int]:
    lines: dict[str, int] = {}
    for item in items:
        if item["id"] in lines:
            reader.add(
                item["line"],
                f"duplicate {kind} id '{item['id']}' (first defined at line "
                f"{lines[item['id']]}): ids must be unique",
            )
        else:
            lines[item["id"]] = item["line"]
    return lines


def _dependency_lines(doc: CommentedMap) -> dict[tuple[str, str, str], int]:
    """The line of each ``depends_on`` entry, keyed by (kind, owner id, dependency)."""
    lines: dict[tuple[str, str, str], int] = {}

    def record(kind: str, node: CommentedMap) -> None:
        deps = node.get("depends_on")
        if isinstance(deps, CommentedSeq):
            for index, dep in enumerate(deps):
                if isinstance(dep, str):  # anything else was reported (not an id, wrong type)
                    lines.setdefault((kind, node["id"], dep), _item_line(deps, index))

    for layer in _mappings(doc.get("layers")):
        record("layer", layer)
        for feature in _mappings(layer.get("features")):
            record("feature", feature)
    return lines


def _mappings(node: object) -> list[CommentedMap]:
    if not isinstance(node, CommentedSeq):
        return []
    return [m for m in node if isinstance(m, CommentedMap) and isinstance(m.get("id"), str)]


def _id_problem(value: str) -> str | None:
    if len(value) > MAX_ID_LENGTH:
        return f"is {len(value)} characters long: at most {MAX_ID_LENGTH}"
    if not _ID.match(value):
        return (
            "is not valid: use letters, digits, '.', '_' and '-', starting with a letter "
            "or digit (ids become directory and branch names)"
        )
    if ".." in value:
        return "contains '..': ids become directory and branch names"
    if value.endswith((".", ".lock")):
        return "ends with '.' or '.lock', which git refuses in branch names"
    return None


def _copy_path_problem(path: str) -> str | None:
    """Why a path cannot be copied from the main checkout into worktrees, if it cannot."""
    parts = PurePosixPath(path).parts
    if not path or path == ".":
        return "is empty: name a file or directory of the repository"
    if path.startswith(("/", "~")) or "\\" in path:
        return "is not relative: name it relative to the repository's top directory"
    if ".." in parts:
        return "contains '..': it must stay inside the repository"
    if parts[0] == ".git":
        return "is inside .git: git's own files are never copied"
    return None


def _did_you_mean(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _describe(node: object, kind: str, line: int) -> str:
    if isinstance(node, CommentedMap) and isinstance(node.get("id"), str):
        return f"{kind} '{node['id']}'"
    return f"the {kind} at line {line}"


def _key_line(mapping: CommentedMap, key: str) -> int:
    """The 1-based line of ``key``, from ruamel's record of where it read it."""
    return int(mapping.lc.key(key)[0]) + 1


def _item_line(sequence: CommentedSeq, index: int) -> int:
    return int(sequence.lc.item(index)[0]) + 1


def _mark_line(exc: Exception) -> int | None:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    return None if mark is None else int(mark.line) + 1


def _yaml_message(exc: Exception) -> str:
    problem = str(getattr(exc, "problem", "") or "")
    context = str(getattr(exc, "context", "") or "")
    if isinstance(exc, sy.DuplicateKeysDisallowed):
        return f"{problem.lower()}: each key may appear once"
    if isinstance(exc, sy.AnchorTokenDisallowed):
        return "anchors and aliases (& and *) are not allowed: write the value out"
    if isinstance(exc, sy.TagTokenDisallowed):
        return "tags (!!str, !foo) are not allowed: remove them, types come from the schema"
    if "'\\t'" in problem:
        return "a tab character where YAML needs spaces: indent with spaces"
    text = "; ".join(part for part in (problem, context) if part) or str(exc).splitlines()[0]
    return f"not valid YAML: {text}"
