"""The DAG file: its frozen attrs model, ``load_dag()`` and the one-pass checks.

Loading checks every rule of README, The DAG file and reports every problem of a file in one
pass, each with the file and the line a user should open. The bytes are checked here (size,
encoding, nesting); the text is then parsed and walked against the schema by
:mod:`dagspec.schema`, and the ids and the graph by :mod:`dagspec.dependencies`; a clean
result is structured into :class:`Dag` by a private cattrs converter.
"""

from __future__ import annotations

import functools
import re
from itertools import accumulate
from pathlib import Path
from typing import NamedTuple

import attrs
import cattrs
import strictyaml as sy
from strictyaml.ruamel.error import MarkedYAMLError
from strictyaml.ruamel.reader import ReaderError

from dagspec import spec_dirs, yaml_load
from dagspec.errors import Problem, SpecError
from dagspec.schema import Reader

MAX_BYTES = 1 << 20
# Deeper flow nesting or indentation than any DAG file needs; the parser recurses per level,
# and 5000 levels took 8 s to end in a RecursionError (issue 15).
MAX_NESTING = 64
MAX_INDENT = 256


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
    line: int = attrs.field(default=0, eq=False)  # its line in the DAG file, for its problems


@attrs.frozen
class Execution:
    max_parallel: int | None = None
    timeout: float | None = None
    stall_timeout: float | None = None  # seconds without progress before a spec is stalled
    base_branch: str | None = None
    on_conflict: str = "manual"
    setup: str | None = None  # a shell command run in each new worktree before its agent
    copy: tuple[CopyPath, ...] = ()
    notify: str | None = None  # a shell command told of run end, failures, stalls, limits
    # the lines of the two commands in the DAG file (0: not given), for their problems
    setup_line: int = attrs.field(default=0, eq=False)
    notify_line: int = attrs.field(default=0, eq=False)


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
        found = missing_specs(checked, repo, str(path)) + missing_programs(checked, repo, str(path))
        problems = sorted(problems + found, key=_line)
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
    reader = Reader(label)
    try:
        data = reader.read(parse(text, label))
    except SpecError as exc:
        return Checked(None, list(exc.problems), [])
    problems = sorted(reader.problems, key=lambda p: p.line or 0)
    if problems or data is None:
        return Checked(None, problems, reader.undescribed)
    data.setdefault("name", default_name)
    return Checked(_converter.structure(data, Dag), [], reader.undescribed)


def missing_specs(checked: Checked, repo: Path, label: str) -> list[Problem]:
    """Each feature read needs ``specs/<id>/spec.yaml`` in the repository or a description;
    one that goes on from ``specs/<id>/`` needs a name autospec can read (``spec_dirs``)."""
    read = [(f.id, f.line) for f in checked.dag.features.values()] if checked.dag else []
    return spec_dirs.unreadable(read or checked.undescribed, repo, label) + [
        Problem(
            label,
            line,
            f"feature '{spec_id}' has no description and there is no specs/{spec_id}/spec.yaml: "
            "add a description, or write the spec first",
        )
        for spec_id, line in checked.undescribed
        if not (repo / "specs" / spec_id / "spec.yaml").is_file()
    ]


def missing_programs(checked: Checked, repo: Path, label: str) -> list[Problem]:
    """``execution.setup`` and ``execution.notify`` each start a program that exists
    (``programs.program_problem``: the rule for shell expressions)."""
    from dagspec.programs import program_problem

    execution = checked.dag.execution if checked.dag else Execution()
    problems = []
    for key, command, line in (
        ("setup", execution.setup, execution.setup_line),
        ("notify", execution.notify, execution.notify_line),
    ):
        copied = [c.path for c in execution.copy]
        problem = command and program_problem(
            command, repo=repo, worktree=key == "setup", copied=copied
        )
        if problem:
            problems.append(Problem(label, line or None, f"execution.{key} {problem}"))
    return problems


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


def parse(text: str, label: str) -> object:
    """Parse as strictyaml does (``yaml_load``): tags, anchors, aliases and duplicate keys
    refused, ruamel's line records kept. Raises ``SpecError`` with the line of the fault."""
    try:
        return yaml_load.load(text)
    except (sy.StrictYAMLError, MarkedYAMLError) as exc:
        raise SpecError([Problem(label, _mark_line(exc), _yaml_message(exc))]) from None
    except ReaderError as exc:  # a character YAML does not allow in a file
        line = text.count("\n", 0, exc.position) + 1
        code = ord(exc.character) if isinstance(exc.character, str) else exc.character
        said = f"U+{code:04X}" if isinstance(code, int) else "a character"
        message = f"a control character ({said}) YAML does not allow: remove it"
        raise SpecError([Problem(label, line, message)]) from None
    except KeyError as exc:  # ruamel's table of %YAML versions: 1.1 and 1.2
        message = (
            f"%YAML {'.'.join(map(str, exc.args[0]))} is not a YAML version dagspec reads: use 1.2"
        )
        raise SpecError([Problem(label, 1, message)]) from None
    except RecursionError:  # whatever nesting _too_deep let through
        raise SpecError([Problem(label, None, "nested too deeply: not a DAG file")]) from None


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


def _mark_line(exc: Exception) -> int | None:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if "could not find expected ':'" in str(getattr(exc, "problem", "")):
        mark = getattr(exc, "context_mark", None) or mark  # the key, not the next token
    return None if mark is None else int(mark.line) + 1


def _yaml_message(exc: Exception) -> str:
    problem = str(getattr(exc, "problem", "") or "")
    context = str(getattr(exc, "context", "") or "")
    if isinstance(exc, sy.DuplicateKeysDisallowed):
        return f"{problem.lower()}: each key may appear once"
    if isinstance(exc, sy.AnchorTokenDisallowed):
        return (
            "anchors and aliases (& and *) are not allowed: a value that starts with & or * "
            "(*bold* in Markdown) must be in quotes"
        )
    if isinstance(exc, sy.TagTokenDisallowed):
        return "tags (!!str, !foo) are not allowed: remove them, types come from the schema"
    if "'\\t'" in problem:
        return "a tab character where YAML needs spaces: indent with spaces"
    text = "; ".join(part for part in (problem, context) if part) or str(exc).splitlines()[0]
    return f"not valid YAML: {text}"
