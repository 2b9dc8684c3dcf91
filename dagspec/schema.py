"""The DAG file's schema, and the walker that checks a parsed document against it.

:class:`Reader` walks a document parsed by :func:`dagspec.dagfile.parse` against ``_SCHEMA``,
using the lines ruamel recorded while parsing, and collects every problem with its line and
the plain data that passed.

Why not strictyaml's validators: they locate lines by re-dumping the document, which is
off by one inside flow lists and made a 500-feature file take 1.2 s; the walker takes the
lines ruamel recorded while parsing (0.16 s in all), and one bad feature does not hide
the next.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Any

from strictyaml.ruamel.comments import CommentedMap, CommentedSeq

from dagspec.arguments import argument_problem
from dagspec.dependencies import check_graph, item_line
from dagspec.durations import duration_problem, parse_duration
from dagspec.errors import Problem, did_you_mean

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
KNOWN_SCHEMA_VERSIONS = ("1.0",)
MAX_ID_LENGTH = 100
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\Z")

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
        "stall_timeout": ("text", False),
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


class Reader:
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

    def read(self, doc: object) -> dict[str, Any] | None:
        """The plain data of a parsed document that passed the schema, or None when it
        is not even a mapping; problems go to ``self.problems``."""
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
            check_graph(self, doc, data["layers"])
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
                hint = did_you_mean(str(key), schema)
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
        for key in ("timeout", "stall_timeout"):
            if key in values:
                result[key] = self.duration(node, key, f"execution.{key}")
        for key in ("setup", "notify"):
            if key in values and not values[key].strip():
                self.add(_key_line(node, key), f"execution.{key} is empty: give a command")
            if key in values:
                result[f"{key}_line"] = _key_line(node, key)
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
            line = item_line(nodes, index)
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
                copies.append({**item, "path": str(PurePosixPath(path)), "line": line})
        return copies

    def duration(self, node: CommentedMap, key: str, what: str) -> float | None:
        text, line = node[key], _key_line(node, key)
        problem = duration_problem(text)
        if problem is not None:
            self.add(line, f"{what} is '{text}', {problem}")
        return parse_duration(text)

    def read_layers(self, nodes: CommentedSeq, line: int) -> list[dict[str, Any]]:
        if not nodes:
            self.add(line, "'layers' is empty: add at least one layer")
        layers = []
        for index, node in enumerate(nodes):
            layer = self.item(node, "layer", item_line(nodes, index))
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
            feature = self.item(node, "feature", item_line(nodes, index))
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


def _describe(node: object, kind: str, line: int) -> str:
    if isinstance(node, CommentedMap) and isinstance(node.get("id"), str):
        return f"{kind} '{node['id']}'"
    return f"the {kind} at line {line}"


def _key_line(mapping: CommentedMap, key: str) -> int:
    """The 1-based line of ``key``, from ruamel's record of where it read it."""
    return int(mapping.lc.key(key)[0]) + 1
