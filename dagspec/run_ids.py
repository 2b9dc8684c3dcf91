"""Which run a command means: the id typed (with a did-you-mean for a typo), else the run
of the worktree it is typed in, or the newest.

The newest run is a safe guess for commands that look at a run or continue it (``status``,
``logs``, ``resume``, ``retry``, ``merge --dry-run``) and the guess is always said; a
command that deletes (``cleanup``) never guesses (issue 15).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from dagspec import git_refs, ledgers
from dagspec.errors import DagspecError, GitError, StateError, did_you_mean, print_warning
from dagspec.lifecycle import SpecStatus
from dagspec.state import list_runs, load, utcnow
from dagspec.words import counted
from dagspec.workspace import RunPaths, check_run_id, new_run_id, runs_directory, worktree_root


def known_ids(repo: Path) -> list[str]:
    """The ids of every recorded run of ``repo`` (readable or not), sorted."""
    return sorted(file.stem for file in runs_directory(repo).glob("*.yaml"))


def exists(repo: Path, run_id: str) -> bool:
    """Whether ``repo`` records a run ``run_id``, readable or not (``state.load`` says why
    not); raises ``StateError`` when the runs cannot be read (``runs_directory``)."""
    return os.path.lexists(runs_directory(repo) / f"{run_id}.yaml")


def newest(repo: Path) -> str:
    """The id of the newest readable run, said on stderr; a damaged file is named and skipped.

    Raises:
        StateError: the repository has no readable run.
    """
    states, problems = list_runs(repo)
    for problem in problems:
        print_warning(str(problem))
    if not states:
        raise no_run_read(repo, problems)
    run_id = states[0].run_id
    print(f"note: run {run_id} (the newest; name a run to choose another)", file=sys.stderr)
    return run_id


def no_run_read(repo: Path, problems: Sequence[StateError]) -> StateError:
    """The error when no run of ``repo`` could be read, the ``problems`` of each state file
    that could not said before it: none recorded yet, or every one unreadable."""
    if not problems:
        return StateError(f"no runs yet in {repo}: `dag run FILE` starts one")
    one = len(problems) == 1
    files = f"{counted(len(problems), 'state file')}, {'' if one else 'each '}said above"
    return StateError(
        f"no run of {repo} can be read ({files}): put {'it' if one else 'them'} right, "
        "or `dag run FILE` starts a new run"
    )


def own(run_id: str) -> str:
    """``run_id``, the run of the worktree the command is typed in, said on stderr."""
    print(
        f"note: run {run_id} (the run of this worktree; name a run to choose another)",
        file=sys.stderr,
    )
    return run_id


def resolve(repo: Path, given: str | None, default: str | None = None) -> str:
    """``given`` when it names a run of ``repo``; when ``given`` is None, ``default`` (the
    run whose worktree the command is typed in: ``own_worktrees.Home``), else the newest.

    Raises:
        DagspecError: ``given`` is not a valid id; StateError: there is no such run (with
            the closest recorded id), or no run at all.
    """
    if given is None:
        return own(default) if default is not None else newest(repo)
    check_run_id(given)
    if not exists(repo, given):
        hint = _closest(given, known_ids(repo))
        raise StateError(f"no run '{given}' in {repo}{hint}: `dag list` shows the runs")
    return given


def resolve_logs(
    repo: Path, words: Sequence[str], default: str | None = None
) -> tuple[str, str | None]:
    """``dag logs [RUN_ID] [SPEC_ID]``: the run and the spec (None: every spec).

    One word is a run when a run has that id, else a spec of the run meant by default
    (``default``, else the newest: ``resolve``).
    """
    if len(words) > 2:
        raise DagspecError(f"too many arguments: {' '.join(words)}: give at most RUN_ID SPEC_ID")
    if len(words) == 2:
        return resolve(repo, words[0]), words[1]
    if not words:
        return resolve(repo, None, default), None
    word = words[0]
    if _is_run(repo, word):
        return word, None
    return _spec_of_newest(repo, word, default), word


def resolve_retry(repo: Path, words: Sequence[str]) -> tuple[str, list[str]]:
    """``dag retry [RUN_ID] SPEC_ID...``: the run and the specs to retry.

    The first word is the run when a run has that id and specs follow it; otherwise every
    word is a spec of the newest run.
    """
    first, rest = words[0], list(words[1:])
    if _is_run(repo, first):
        if not rest:
            raise DagspecError(_name_the_specs(repo, first))
        return first, rest
    if rest:  # a misspelt run id is named as such, not as a spec of the newest run
        try:
            run_id = _spec_of_newest(repo, first)
        except DagspecError:
            return resolve(repo, first), rest
        return run_id, list(words)
    return _spec_of_newest(repo, first), [first]


def _name_the_specs(repo: Path, run_id: str) -> str:
    """What ``dag retry RUN_ID`` with no spec says: the command with the run's failed and
    waiting specs, or that it has none."""
    retryable = (SpecStatus.FAILED, SpecStatus.WAITING)
    ids = [s.id for s in load(RunPaths(repo, run_id)).specs if s.status in retryable]
    if not ids:
        return (
            f"run {run_id} has no failed or waiting spec to retry: "
            f"`dag status {run_id}` shows where it stands"
        )
    return f"name the specs of run {run_id} to retry: `dag retry {run_id} {' '.join(ids)}`"


def _closest(word: str, run_ids: Sequence[str], spec_ids: Sequence[str] = ()) -> str:
    """The did-you-mean for ``word``: the runs whose id it starts (``v6`` for
    ``v6-20261201-042722``; a prefix is named, never taken), else the closest run or spec id."""
    starts = [run_id for run_id in run_ids if word and run_id.startswith(word)]
    if not starts:
        return did_you_mean(word, [*run_ids, *spec_ids])
    shown = " or ".join(f"'{run_id}'" for run_id in starts[:3])
    more = f" or {counted(len(starts) - 3, 'other')}" if len(starts) > 3 else ""
    return f" (did you mean {shown}{more}?)"


def _is_run(repo: Path, word: str) -> bool:
    try:
        check_run_id(word)
    except DagspecError:
        return False
    return exists(repo, word)


def _spec_of_newest(repo: Path, spec_id: str, default: str | None = None) -> str:
    """The run meant by default (``default``, else the newest), when it has the spec
    ``spec_id``; else say what ``spec_id`` is not."""
    run_id = resolve(repo, None, default)
    spec_ids = [spec.id for spec in load(RunPaths(repo, run_id)).specs]
    if spec_id in spec_ids:
        return run_id
    hint = _closest(spec_id, known_ids(repo), spec_ids)
    which = f"run {run_id}" if default is not None else f"the newest run {run_id}"
    raise DagspecError(
        f"'{spec_id}' is neither a run nor a spec of {which}{hint}: "
        "`dag list` shows the runs, `dag status` the specs"
    )


# --- a new run's id ---


def unused(repo: Path, dag_name: str, given_root: str | None, after: str | None = None) -> str:
    """``<dag-name-slug>-<YYYYMMDD-HHMMSS>``, with ``-2``, ``-3``... when a run has it: a
    run of this checkout, or of another checkout of the repository (the main one, a linked
    worktree), whose branches are there or which took the id (``claim``). With ``after``,
    an id made so that another run took meanwhile: the next free one of its sequence."""
    base = _SUFFIX.sub(r"\1", after) if after else new_run_id(dag_name, utcnow())
    root = worktree_root(repo, given_root)
    taken = {*_ids(ledgers.read(repo, ledgers.RUN_IDS)), *_with_branches(repo)}
    for candidate in (base, *(f"{base}-{n}" for n in range(2, 1000))):
        if candidate not in taken and not _here(repo, candidate, root):
            return candidate
    raise DagspecError(f"every run id {base}-N is taken: name the run with --run-id")


_SUFFIX = re.compile(r"(-\d{8}-\d{6})-\d+$")  # a made id's -N


def free(repo: Path, run_id: str, given_root: str | None) -> bool:
    """Whether ``run_id``, made by ``unused``, is still free: no run, of this checkout or
    another of the repository, took it or made its branches since."""
    if run_id in _ids(ledgers.read(repo, ledgers.RUN_IDS)) or run_id in _with_branches(repo):
        return False
    return not _here(repo, run_id, worktree_root(repo, given_root))


def _here(repo: Path, run_id: str, root: Path) -> bool:
    paths = RunPaths(repo, run_id)
    return any(os.path.lexists(p) for p in (paths.state_file, paths.run_dir, root / run_id))


def _with_branches(repo: Path) -> set[str]:
    """The run ids of the branches ``dag/<run-id>/...`` there are."""
    prefix = "refs/heads/dag/"
    try:
        found = git_refs.refs(repo, prefix)
    except GitError:  # no repository, say: preflight names what is wrong
        return set()
    return {ref.removeprefix(prefix).split("/")[0] for ref in found}


def claim(paths: RunPaths) -> bool:
    """Create the run's directory and write its id down where every checkout of the
    repository sees it (``ledgers.RUN_IDS``); False when another process (a run of this
    checkout, or of another checkout of the repository) took the id first."""
    try:
        paths.runs_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:  # a file there since preflight looked: never "taken"
        raise DagspecError(
            f"cannot make {paths.runs_dir} ({error.strerror or error}), where dagspec keeps "
            "the state of the runs of this repository: make it a directory dagspec can write"
        ) from None
    try:
        paths.run_dir.mkdir()
    except FileExistsError:
        return False
    try:
        with ledgers.held(paths.repo, ledgers.RUN_IDS) as taken:
            if paths.run_id in _ids(taken.lines):
                paths.run_dir.rmdir()
                return False
            taken.add(paths.run_id)
    except BaseException:  # the ledger cannot be written, or a Ctrl-C while another run
        paths.run_dir.rmdir()  # holds it: nothing of the run stays
        raise
    return True


def _ids(lines: list[str]) -> set[str]:
    """The run ids the ledger's lines name: ``<run-id>``, made by ``unused``, or
    ``<run-id><TAB><its run directory>``, given with ``--run-id`` (``claim_given``)."""
    return {line.split("\t", 1)[0] for line in lines}


def claim_given(paths: RunPaths) -> Path | None:
    """Claim the run id given with ``--run-id`` as ``claim`` claims a made one: written
    down with the run's directory, which is made, unless a run of another checkout of the
    repository (or of this one, starting at the same moment) claimed it and its directory
    is still there (a run forgotten since, ``dag cleanup --forget``, left none): then that
    directory, and nothing is made or written."""
    with ledgers.held(paths.repo, ledgers.RUN_IDS) as taken:
        for line in taken.lines:
            run_id, tab, where = line.partition("\t")
            if run_id == paths.run_id and tab and where and Path(where).is_dir():
                return Path(where)
        try:
            paths.runs_dir.mkdir(parents=True, exist_ok=True)
            paths.run_dir.mkdir(exist_ok=True)
        except OSError as error:  # a file there since preflight looked
            raise DagspecError(
                f"cannot make {paths.run_dir} ({error.strerror or error}), where dagspec keeps "
                "the state of the run: make its parent a directory dagspec can write"
            ) from None
        taken.add(f"{paths.run_id}\t{paths.run_dir.absolute()}")
    return None
