"""A run's persistent record on disk: dump, load, atomic save, the list of runs (its lock:
``dagspec.driver_lock``).

The records themselves (``RunState``, ``SpecState``, the statuses) and every change to them
are the lifecycle's (``dagspec.lifecycle``); this module only keeps them.

The state file (README, Files on disk) is YAML with ``format: 1`` as its first key. It is written
atomically (a temporary file in the same directory, fsync, rename) after every
transition, so a reader, or a ``resume`` after ``kill -9``, never sees half a file.

Each field of the run is a ``key: <JSON>`` line and each spec one JSON flow mapping on a
line of its own: still YAML, and read back line by line with ``json.loads`` (``dag list``
reads every run; ``status --watch`` re-reads once a second). Anything else, such as a file
a person edited, is read by the full YAML loader; ``_upgrade`` is where older formats
would be brought up to date.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import cattrs

from dagspec import driver_lock, lifecycle
from dagspec.driver_lock import driver_alive as driver_alive  # the lock's, kept here for callers
from dagspec.driver_lock import pid_alive as pid_alive
from dagspec.driver_lock import run_lock as run_lock
from dagspec.errors import LinkLoopError, StateError
from dagspec.lifecycle import RunState, SpecState
from dagspec.workspace import (
    RunPaths,
    branch_name,
    ignore_in_git,
    own_run_directory,
    real_path,
    runs_dir,
    runs_directory,
    worktree_root,
)

FORMAT = 1


def utcnow() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def format_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_converter = cattrs.Converter(forbid_extra_keys=True)
_converter.register_unstructure_hook(datetime, format_time)
_converter.register_structure_hook(
    datetime, lambda value, _: datetime.fromisoformat(value.replace("Z", "+00:00"))
)
_quick = _converter.copy(detailed_validation=False)  # twice as fast; no path to a fault


def to_data(state: RunState) -> dict[str, Any]:
    """The state as plain data, ``format`` first."""
    data: dict[str, Any] = _converter.unstructure(state)
    return data


def dump(state: RunState) -> str:
    """The state file's text: ``format`` first, one ``key: <JSON>`` line per field of the
    run, then each spec as one JSON flow mapping on a line of its own. JSON is YAML, so the
    file stays readable YAML, and ``load`` reads it back with ``json.loads`` line by line.

    A run saves after every change of one spec, so each spec's line is cached (specs are
    frozen): a save costs what changed, not the whole run.
    """
    header: dict[str, Any] = _converter.unstructure(attrs.evolve(state, specs=()))
    del header["specs"]
    lines = [f"{key}: {json.dumps(value, ensure_ascii=False)}" for key, value in header.items()]
    if not state.specs:
        return "\n".join([*lines, "specs: []"]) + "\n"
    return "\n".join([*lines, "specs:", *map(_spec_line, state.specs)]) + "\n"


@functools.lru_cache(maxsize=4096)
def _spec_line(spec: SpecState) -> str:
    return "  - " + json.dumps(_converter.unstructure(spec), ensure_ascii=False)


def load_text(text: str, label: str) -> RunState:
    """Parse a state file's text; ``StateError`` names the file when it cannot be used."""
    data = _fast_load(text)
    if data is None:
        data = _yaml_load(text, label)
    if not isinstance(data, dict) or "format" not in data:
        raise StateError(f"{label} is damaged: it has no 'format' key; it was left as it is")
    data = _upgrade(data, label)
    with contextlib.suppress(Exception):  # what is wrong, the detailed pass says below
        return _quick.structure(data, RunState)
    try:
        return _converter.structure(data, RunState)
    except (cattrs.BaseValidationError, ValueError, TypeError) as exc:
        reason = "; ".join(cattrs.transform_error(exc)) if isinstance(exc, Exception) else ""
        raise StateError(f"{label} is damaged ({reason}); it was left as it is") from None


def _upgrade(data: dict[str, Any], label: str) -> dict[str, Any]:
    """The place for format upgrades: data of an older known format made current. Only
    format 1 exists so far; a newer one is refused by name."""
    version = data["format"]
    if type(version) is not int or not 1 <= version <= FORMAT:
        if type(version) is int and version > FORMAT:
            raise StateError(
                f"{label} was written by a newer dagspec (format {version}; this one reads "
                f"format {FORMAT}): upgrade dagspec to use this run"
            )
        raise StateError(f"{label} is damaged (format {version!r}); it was left as it is")
    return data


def _yaml_load(text: str, label: str) -> Any:
    """The full YAML loader, for a state file a person edited."""
    from strictyaml.ruamel import YAML
    from strictyaml.ruamel.error import YAMLError

    try:
        return YAML(typ="safe", pure=True).load(text)
    except YAMLError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise StateError(f"{label} is damaged ({first}); it was left as it is") from None
    except RecursionError:
        raise StateError(f"{label} is damaged (nested too deeply); it was left as it is") from None


def _fast_load(text: str) -> dict[str, Any] | None:
    """Read exactly what ``dump`` writes; None for anything else."""
    data: dict[str, Any] = {}
    lines = iter(text.splitlines())
    try:
        for line in lines:
            key, _, value = line.partition(": ")
            if line == "specs:":
                data["specs"] = [json.loads(item.removeprefix("  - ")) for item in lines]
            elif value and key.isidentifier():
                data[key] = json.loads(value)
            else:
                return None
    except ValueError:  # json.JSONDecodeError
        return None
    return data


def save(state: RunState, path: Path) -> None:
    """Write atomically: temporary file in the same directory, fsync, rename.

    Raises ``OSError`` (``ESTALE``) instead when this process holds the run's lock
    (``run_lock``) and the run's directory it locked was moved or deleted meanwhile: a
    second driver could then lock a new one, so this one must stop (issue 11)."""
    run_dir = path.parent / path.name.removesuffix(".yaml")
    if driver_lock.lost(run_dir):
        raise OSError(
            errno.ESTALE,
            f"{run_dir} was moved or deleted while the run was driven, so its lock is lost",
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    ignore_in_git(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(dump(state))
            file.flush()
            os.fsync(file.fileno())
        Path(tmp).replace(path)
    except OSError as exc:  # a full disk: name the file (a write names none)
        if exc.filename is None:
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise
    finally:
        with contextlib.suppress(FileNotFoundError):
            Path(tmp).unlink()


def load(paths: RunPaths) -> RunState:
    """The state of one run; a missing run is an error that says how to list runs."""
    try:
        text = paths.state_file.read_text(encoding="utf-8")
    except FileNotFoundError:
        if os.path.islink(paths.state_file):  # noqa: PTH114 (never raises)
            raise _unreadable(paths, None) from None
        raise StateError(
            f"no run '{paths.run_id}' in {paths.repo}: `dag list` shows the runs"
        ) from None
    except OSError as exc:  # a loop of links, no permission, a directory
        raise _unreadable(paths, exc) from None
    except UnicodeDecodeError:
        raise StateError(
            f"{paths.state_file} is damaged (not UTF-8); it was left as it is"
        ) from None
    known = _KNOWN.get(label := str(paths.state_file))  # parsed once while unchanged
    run = known[1] if known and known[0] == text else load_text(text, label)
    _KNOWN[label] = (text, run)
    if run.run_id != paths.run_id:  # a copy under another name is not that run (issue 11)
        raise StateError(
            f"{paths.state_file} records run '{run.run_id}', not '{paths.run_id}': a state file "
            "copied or renamed is not a run; give it back its own name or remove it"
        )
    foreign = _foreign_places(run)
    if foreign:  # a copy whose run id was edited to its new name (issue 11)
        raise StateError(
            f"{paths.state_file} records {foreign}: a state file copied from another run "
            f"is not run '{run.run_id}'; remove it"
        )
    return run


def _unreadable(paths: RunPaths, exc: OSError | None) -> StateError:
    """Why the state file of ``paths`` cannot be read (``exc``; None: a link to nothing).
    Raises ``StateError`` itself for a loop of links on the way to the runs' directory."""
    if exc is not None and exc.errno == errno.ELOOP:
        runs_directory(paths.repo)  # the loop is the directory's: none of its runs is read
    said = f"{paths.state_file}, the state of run '{paths.run_id}',"
    if exc is None or exc.errno == errno.ELOOP:
        what = "leads back to itself (a loop of links)" if exc else "leads nowhere"
        fix = "point it at the run's state file, or remove it"
        return StateError(f"{said} is a symbolic link that {what}: {fix}")
    return StateError(f"{said} cannot be read ({exc.strerror}): put that right, then try again")


def _foreign_places(run: RunState) -> str | None:
    """The first branch or worktree the state records that is another run's: a branch not
    ``dag/<run>/<spec>``; the run's worktrees directory a link to another run's (not its
    own: ``workspace.own_run_directory``); a worktree that is, or through a link
    leads to, one of a run this repository has (``dagspec.workspace``), or that a link leads
    out of this run's worktrees; else None. Raises ``StateError`` when the run's worktrees
    are a link to a directory of another name, which may be the run's own, renamed, and when
    a loop of links is on the way to them (``_looped``)."""
    try:
        root = real_path(worktree_root(Path(run.repo), run.options.worktree_root)) / run.run_id
        real_root = real_path(root)  # where the run's worktrees are: moved, and linked back?
    except LinkLoopError as loop:
        raise _looped(run, loop) from None
    if not own_run_directory(root, real_root) and _is_run(run, real_root.name):
        return f"the worktrees {root} (a link to {real_root}, of run '{real_root.name}')"
    if not own_run_directory(root, real_root):
        raise StateError(
            f"the worktrees of run '{run.run_id}', {root}, are a link to {real_root}: "
            "worktrees moved elsewhere and linked back keep the run's id as their name: "
            f"rename {real_root} to {real_root.parent / run.run_id}"
        )
    for spec in run.specs:
        if spec.branch is not None and spec.branch != branch_name(run.run_id, spec.id):
            return f"the branch {spec.branch} for spec '{spec.id}'"
        place = Path(spec.worktree or root / spec.id)
        if spec.worktree is None and real_root == root and not os.path.islink(place):  # noqa: PTH114 (never raises)
            continue  # its own place under its own root: nothing to follow (1000 specs: 0.1 s)
        try:
            real = real_path(place)  # links followed
        except LinkLoopError as loop:
            raise _looped(run, loop) from None
        if real.parent == real_root:
            continue  # in the run's own worktrees, wherever they were moved to
        shown = place if real == Path(os.path.normpath(place)) else f"{place} (a link to {real})"
        if _is_run(run, real.parent.name):
            return f"the worktree {shown} (of run '{real.parent.name}') for spec '{spec.id}'"
        if shown != place:
            return f"the worktree {shown}, outside its worktrees {root}, for spec '{spec.id}'"
    return None


def _looped(run: RunState, loop: LinkLoopError) -> StateError:
    """A loop of links where the run keeps its worktrees: the link is the user's to mend;
    the state file stays (it is the run's, whatever its worktrees' links do)."""
    return StateError(
        f"{loop.link} is a symbolic link that leads back to itself (a loop of links), where "
        f"run '{run.run_id}' keeps its worktrees: point it at the directory they are in, "
        "or remove it"
    )


def _is_run(run: RunState, name: str) -> bool:
    """Whether ``name`` is another run of ``run``'s repository."""
    return name != run.run_id and (runs_dir(Path(run.repo)) / f"{name}.yaml").exists()


def list_runs(repo: Path) -> tuple[list[RunState], list[StateError]]:
    """Every readable run of the repository, newest first, and the error of each state file
    that is not (so ``dag list`` names a damaged file and still lists the others)."""
    states: list[RunState] = []
    problems: list[StateError] = []
    for file in sorted(runs_directory(repo).glob("*.yaml")):
        try:
            states.append(load(RunPaths(repo, file.stem)))
        except StateError as exc:
            problems.append(exc)
    states.sort(key=lambda s: (s.started_at, s.run_id), reverse=True)
    return states, problems


def settled(run: RunState) -> RunState:
    """The run as it stands: a run marked running whose driver is gone is interrupted
    (``lifecycle.settle_stale``), each attempt it left running ended at its log's last
    write (``ended_at_last_write``), as ``resume`` and ``retry`` will record it, and the
    run itself ended when it was last seen alive (``last_seen_alive``). Nothing is written."""
    if run.status is not lifecycle.RunStatus.RUNNING or driver_alive(run):
        return run
    stale = lifecycle.settle_stale(ended_at_last_write(run), driver_alive=False)
    return attrs.evolve(stale, finished_at=run.finished_at or last_seen_alive(run))


def last_seen_alive(run: RunState, paths: RunPaths | None = None) -> datetime:
    """When the driver of ``run`` was last seen alive: the latest modification time of its
    state file and of its specs' logs (the driver writes both), no later than now and no
    earlier than the run's start; ``paths``: where they are (default: where recorded)."""
    paths = paths or RunPaths(Path(run.repo), run.run_id)
    files = [paths.state_file]
    files += [Path(s.log or paths.log_file(s.id)) for s in run.specs if s.started_at]
    seen = run.started_at
    for file in files:
        with contextlib.suppress(OSError):
            seen = max(seen, datetime.fromtimestamp(file.stat().st_mtime, UTC))
    return min(seen.replace(microsecond=0), utcnow())


def ended_at_last_write(run: RunState, paths: RunPaths | None = None) -> RunState:
    """``run`` with the attempts a killed driver left ``running`` ended when each was last
    seen alive: its log's modification time (the driver writes every line of the agent's
    output there; no later than now, no earlier than the attempt's start). Only for a run
    whose driver is gone; ``paths``: where its logs are (default: where it was recorded)."""
    from dagspec import unattended

    now, seen = utcnow(), {}
    paths = paths or RunPaths(Path(run.repo), run.run_id)
    for spec in run.specs:
        if spec.status is not lifecycle.SpecStatus.RUNNING or spec.started_at is None:
            continue
        try:
            mtime = Path(spec.log or paths.log_file(spec.id)).stat().st_mtime
        except OSError:
            continue
        seen[spec.id] = min(max(datetime.fromtimestamp(mtime, UTC), spec.started_at), now)
    return unattended.bank_killed(run, seen)


_KNOWN: dict[str, tuple[str, RunState]] = {}  # each state file's last text, and its run
