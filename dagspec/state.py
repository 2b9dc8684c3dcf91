"""A run's persistent record: statuses, frozen state values, atomic versioned load/save, the lock.

The state file (DESIGN §4) is YAML with ``format: 1`` as its first key. It is written
atomically (a temporary file in the same directory, fsync, rename) after every
transition, so a reader, or a ``resume`` after ``kill -9``, never sees half a file.

Every value is written as a JSON scalar inside block YAML, which keeps the file readable
and lets ``load`` take a fast path for exactly what ``dump`` writes (``dag list`` reads
every run; ``status --watch`` re-reads once a second). Anything else, such as a file a
person edited, is read by the full YAML loader.
"""

from __future__ import annotations

import contextlib
import enum
import fcntl
import functools
import json
import os
import re
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import cattrs

from dagspec.errors import StateError
from dagspec.workspace import RunPaths, runs_dir

FORMAT = 1


class SpecStatus(enum.Enum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    BLOCKED = "blocked"
    INTERRUPTED = "interrupted"


class RunStatus(enum.Enum):
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


@attrs.frozen
class SpecState:
    """One spec of a run. The fields up to ``merge_commit`` are DESIGN §6's JSON, in order."""

    id: str
    layer: str
    status: SpecStatus = SpecStatus.PENDING
    stage: str | None = None
    tasks_done: int | None = None
    tasks_total: int | None = None
    depends_on: tuple[str, ...] = ()
    blocked_by: tuple[str, ...] = ()
    worktree: str | None = None
    branch: str | None = None
    spec_dir: str | None = None
    attempts: int = 0
    exit_code: int | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None
    log: str | None = None
    merged: bool = False
    merge_commit: str | None = None
    # Not in the JSON: the agent's process group, so that a resume after the driver was
    # killed can stop an agent that outlived it before starting the spec again.
    agent_pid: int | None = None


@attrs.frozen
class RunOptions:
    """The options a run was started with; ``resume`` reuses them unless overridden."""

    parallel: bool = False
    max_parallel: int = 4
    timeout: float | None = None
    fail_fast: bool = False
    merge: bool = True
    keep_worktrees: bool = False
    autospec: str | None = None
    worktree_root: str | None = None


@attrs.frozen
class RunState:
    format: int
    run_id: str
    dag_file: str
    dag_name: str
    repo: str
    status: RunStatus
    base_branch: str
    base_commit: str
    started_at: datetime
    finished_at: datetime | None = None
    driver_pid: int | None = None
    options: RunOptions = RunOptions()
    specs: tuple[SpecState, ...] = ()
    autospec_version: str | None = None  # what `autospec --version` said (issue 12)

    def spec(self, spec_id: str) -> SpecState:
        for spec in self.specs:
            if spec.id == spec_id:
                return spec
        raise KeyError(spec_id)

    def with_spec(self, spec: SpecState) -> RunState:
        """A new state with ``spec`` replacing the spec of the same id."""
        specs = tuple(spec if s.id == spec.id else s for s in self.specs)
        return attrs.evolve(self, specs=specs)

    def counts(self) -> dict[str, int]:
        """How many specs are in each status (statuses with none are left out)."""
        result: dict[str, int] = {}
        for spec in self.specs:
            result[spec.status.value] = result.get(spec.status.value, 0) + 1
        return result


def utcnow() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def format_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_converter = cattrs.Converter(forbid_extra_keys=True)
_converter.register_unstructure_hook(datetime, format_time)
_converter.register_structure_hook(
    datetime, lambda value, _: datetime.fromisoformat(value.replace("Z", "+00:00"))
)


def to_data(state: RunState) -> dict[str, Any]:
    """The state as plain data, ``format`` first."""
    data: dict[str, Any] = _converter.unstructure(state)
    return data


def dump(state: RunState) -> str:
    """The state file's text. A run saves after every change of one spec, so each spec's
    block is cached (specs are frozen): a save costs what changed, not the whole run."""
    header: dict[str, Any] = _converter.unstructure(attrs.evolve(state, specs=()))
    del header["specs"]
    lines = _emit(header, 0)
    if not state.specs:
        return "\n".join([*lines, "specs: []"]) + "\n"
    return "\n".join([*lines, "specs:", *map(_spec_block, state.specs)]) + "\n"


@functools.lru_cache(maxsize=4096)
def _spec_block(spec: SpecState) -> str:
    lines = _emit(_converter.unstructure(spec), 4)
    lines[0] = f"  - {lines[0].lstrip()}"
    return "\n".join(lines)


def _emit(data: dict[str, Any], indent: int) -> list[str]:
    pad = " " * indent
    out: list[str] = []
    for key, value in data.items():
        if isinstance(value, dict):
            out.append(f"{pad}{key}:")
            out += _emit(value, indent + 2)
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            out.append(f"{pad}{key}:")
            for item in value:
                lines = _emit(item, indent + 4)
                lines[0] = f"{pad}  - {lines[0].lstrip()}"
                out += lines
        else:
            out.append(f"{pad}{key}: {json.dumps(value, ensure_ascii=False)}")
    return out


def load_text(text: str, label: str) -> RunState:
    """Parse a state file's text; ``StateError`` names the file when it cannot be used."""
    data = _fast_load(text)
    if data is None:
        data = _yaml_load(text, label)
    if not isinstance(data, dict) or "format" not in data:
        raise StateError(f"{label} is damaged: it has no 'format' key; it was left as it is")
    if not isinstance(data["format"], int) or data["format"] > FORMAT:
        raise StateError(
            f"{label} was written by a newer dagspec (format {data['format']}; this one reads "
            f"format {FORMAT}): upgrade dagspec to use this run"
        )
    try:
        return _converter.structure(data, RunState)
    except (cattrs.BaseValidationError, ValueError, TypeError) as exc:
        reason = "; ".join(cattrs.transform_error(exc)) if isinstance(exc, Exception) else ""
        raise StateError(f"{label} is damaged ({reason}); it was left as it is") from None


def _yaml_load(text: str, label: str) -> Any:
    from strictyaml.ruamel import YAML
    from strictyaml.ruamel.error import YAMLError

    try:
        return YAML(typ="safe", pure=True).load(text)
    except YAMLError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise StateError(f"{label} is damaged ({first}); it was left as it is") from None


_LINE = re.compile(r"( *)(- )?([A-Za-z_]\w*):(?: (.+))?\Z")


def _fast_load(text: str) -> dict[str, Any] | None:
    """Read exactly what ``_emit`` writes; None for anything else."""
    rows = []
    for raw in text.splitlines():
        match = _LINE.match(raw)
        if match is None:
            return None
        indent = len(match[1]) + (2 if match[2] else 0)
        rows.append((indent, bool(match[2]), match[3], match[4]))
    try:
        data, end = _fast_mapping(rows, 0, 0)
    except (ValueError, IndexError):
        return None
    return data if end == len(rows) else None


def _fast_mapping(rows: list[tuple[int, bool, str, str | None]], i: int, indent: int) -> Any:
    result: dict[str, Any] = {}
    first = True
    while i < len(rows) and rows[i][0] == indent and (first or not rows[i][1]):
        _, _, key, value = rows[i]
        first = False
        i += 1
        if value is not None:
            result[key] = json.loads(value)
        elif i < len(rows) and rows[i][1]:
            result[key], i = _fast_list(rows, i, rows[i][0])
        else:
            result[key], i = _fast_mapping(rows, i, rows[i][0])
    return result, i


def _fast_list(rows: list[tuple[int, bool, str, str | None]], i: int, indent: int) -> Any:
    items = []
    while i < len(rows) and rows[i][0] == indent and rows[i][1]:
        item, i = _fast_mapping(rows, i, indent)
        items.append(item)
    return items, i


def save(state: RunState, path: Path) -> None:
    """Write atomically: temporary file in the same directory, fsync, rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _ignore_in_git(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(dump(state))
            file.flush()
            os.fsync(file.fileno())
        Path(tmp).replace(path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            Path(tmp).unlink()


def _ignore_in_git(directory: Path) -> None:
    """Runs' files are never part of the user's commits, even after ``git add -A``."""
    ignore = directory / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# written by dagspec: run state and logs stay out of git\n*\n")


def load(paths: RunPaths) -> RunState:
    """The state of one run; a missing run is an error that says how to list runs."""
    try:
        text = paths.state_file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise StateError(
            f"no run '{paths.run_id}' in {paths.repo}: `dag list` shows the runs"
        ) from None
    except UnicodeDecodeError:
        raise StateError(
            f"{paths.state_file} is damaged (not UTF-8); it was left as it is"
        ) from None
    return load_text(text, str(paths.state_file))


def list_runs(repo: Path) -> tuple[list[RunState], list[StateError]]:
    """Every readable run of the repository, newest first, and the error of each state file
    that is not (so ``dag list`` names a damaged file and still lists the others)."""
    states: list[RunState] = []
    problems: list[StateError] = []
    for file in sorted(runs_dir(repo).glob("*.yaml")):
        try:
            states.append(load(RunPaths(repo, file.stem)))
        except StateError as exc:
            problems.append(exc)
    states.sort(key=lambda s: (s.started_at, s.run_id), reverse=True)
    return states, problems


def pid_alive(pid: int | None) -> bool:
    if pid is None or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def settle_stale(state: RunState) -> RunState:
    """A run marked running whose driver is gone was interrupted (killed, machine slept off):
    show it, and its running specs, as ``interrupted``."""
    if state.status is not RunStatus.RUNNING or pid_alive(state.driver_pid):
        return state
    specs = tuple(
        attrs.evolve(s, status=SpecStatus.INTERRUPTED, error=s.error or "the driver died")
        if s.status is SpecStatus.RUNNING
        else s
        for s in state.specs
    )
    return attrs.evolve(state, status=RunStatus.INTERRUPTED, specs=specs)


@contextlib.contextmanager
def run_lock(paths: RunPaths) -> Iterator[None]:
    """Hold the run's lock while driving it (``run``, ``resume``, ``retry``, ``merge``).

    The lock is an ``flock`` on ``<run>/lock``, so the kernel releases it when its holder
    dies, even by SIGKILL, and the next driver takes it over; the file holds the pid only
    to name the holder in the refusal.
    """
    paths.run_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(paths.lock_file, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
            raise StateError(
                f"run '{paths.run_id}' is being driven by process {holder}: wait for it to "
                f"finish, or stop it (kill {holder}) and try again"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)


@attrs.frozen
class RunFlags:
    """Run options as given on the command line; None means "not given"."""

    parallel: bool | None = None
    max_parallel: int | None = None
    timeout: float | None = None
    fail_fast: bool | None = None
    merge: bool | None = None
    keep_worktrees: bool | None = None
    autospec: str | None = None
    worktree_root: str | None = None

    def resolve(self, base: RunOptions, dag_max_parallel: int | None = None) -> RunOptions:
        """Flags win over ``base`` (a new run's defaults, or the options a resumed run was
        started with); for a new run, ``execution.max_parallel`` of the DAG comes between."""
        given = {k: v for k, v in attrs.asdict(self).items() if v is not None}
        if "max_parallel" not in given and dag_max_parallel is not None:
            given["max_parallel"] = dag_max_parallel
        return attrs.evolve(base, **given)
