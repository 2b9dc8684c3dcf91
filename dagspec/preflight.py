"""Preflight: everything that can be checked before a run is recorded and an agent starts.

README, How a run works. A run that cannot finish should fail in a second, not after hours of
agent time: each check (:mod:`dagspec.checks`) is a small function of the ``Planned`` run
that returns a ``Problem`` (or None). ``check_run`` runs them all;
``dag run`` refuses to start on any blocking problem, before it writes anything (no state
file, no worktree, no branch); ``run --dry-run`` and ``dag doctor`` show every result.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from dagspec import git, run_ids
from dagspec.checks import (
    Planned,
    Problem,
    check_autospec,
    check_base,
    check_branches,
    check_checkout,
    check_constitution,
    check_filters,
    check_git,
    check_identity,
    check_ledger,
    check_main_checkout,
    check_notify,
    check_paths,
    check_places,
    check_root,
    check_run_free,
    check_signer,
)
from dagspec.dagfile import Dag
from dagspec.errors import DagspecError, as_typed, print_warning
from dagspec.lifecycle import RunOptions
from dagspec.user_copies import check_copies
from dagspec.workspace import (
    RunPaths,
    check_run_id,
)

MIN_GIT_TEXT = git.MIN_GIT_TEXT
AUTOSPEC_CHECK = "the autospec executable"  # `dag doctor` names the one found on its line


class PreflightError(DagspecError):
    """The run cannot start; carries every blocking problem, one line each (the CLI's
    ``print_error`` gives each its ``dag: error:``)."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(p.message for p in self.problems))


# A check finds one problem or none; the check of execution.copy finds one per path.
Check = Callable[[Planned], Problem | list[Problem] | None]
CHECKS: tuple[tuple[str, Check], ...] = (
    (f"git {MIN_GIT_TEXT} or newer", check_git),
    ("a committer identity", check_identity),
    ("a working signer, if commit.gpgSign is on", check_signer),
    (AUTOSPEC_CHECK, check_autospec),
    ("an autospec constitution", check_constitution),
    ("the base branch, with a commit", check_base),
    ("the programs of the filters git requires", check_filters),
    ("a clean checkout of the base branch", check_checkout),
    ("not inside another run's worktree", check_main_checkout),
    ("execution.copy paths ignored by git, not tracked", check_copies),
    ("the program of --notify", check_notify),
    ("the worktree root: writable, outside the repository", check_root),
    ("state and spec directories inside the repository", check_places),
    ("the ledger of spec numbers, readable and writable", check_ledger),
    ("a new run id", check_run_free),
    ("worktree paths free", check_paths),
    ("branch names free", check_branches),
)

_OF_A_RUN = frozenset((check_run_free, check_paths, check_branches))


def results(planned: Planned) -> list[tuple[str, Problem | None]]:
    """Each check's title and its problem (None: passed), in ``CHECKS`` order; a check that
    finds several (one per ``execution.copy`` path) gives its title to each. Once git is
    missing or too old, the checks that need it are not made; without a DAG and a run id,
    neither are the checks of a run's ids, paths and branches; without ``--notify``, its
    check.

    One after another, in this thread: run at once in threads they saved a few tens of
    milliseconds, but a Ctrl-C then waited for the slowest (a signer waiting for a
    passphrase window, up to ``git_commit.signing_wait()``), since git runs in a session of
    its own and only this thread hears the signal (issue 16).
    """
    found: list[tuple[str, Problem | None]] = []
    for title, check in CHECKS:
        if not _applies(check, planned):
            continue
        said = check(planned)
        problems = said if isinstance(said, list) else [said]
        found += [(title, one) for one in problems] or [(title, None)]
        if check is check_git and said is not None:
            break
    return found


def _applies(check: Check, planned: Planned) -> bool:
    if check in _OF_A_RUN and (planned.dag is None or planned.run_id is None):
        return False  # `dag doctor` without a DAG file: nothing to say about them
    return check is not check_notify or bool(planned.options.notify)  # no line for none


def check_run(planned: Planned) -> list[Problem]:
    """Every problem, blocking or not, that the checks find."""
    return [problem for _, problem in results(planned) if problem is not None]


def render(found: Sequence[tuple[str, Problem | None]]) -> str:
    """``preflight:`` and one line per check: ``ok``, ``warning`` or ``error``."""
    lines = ["preflight:"]
    for title, problem in found:
        if problem is None:
            lines.append(f"  ok       {title}")
        else:
            lines.append(f"  {'error' if problem.blocking else 'warning':<8} {problem.message}")
    return "\n".join(lines) + "\n"


# --- the one call of `dag run` --------------------------------------------------------------


def before_run(
    repo: Path,
    dag: Dag,
    options: RunOptions,
    run_id: str | None,
    *,
    dry_run: bool,
    dag_file: str | None = None,
) -> Planned:
    """Check everything before ``dag run`` records anything; return the run checked, its
    ``run_id`` set. ``dag_file`` names the DAG file in problems found at its lines.

    A run id not given is made from the DAG's name and the time, and is claimed by creating
    the run's directory, so two runs started in the same second get two ids
    (``-2``, ``-3``...). Warnings go to stderr, a refused run's too (before its errors, so
    the last lines say why it stopped). With ``dry_run`` the results are printed and nothing
    is claimed. Raises ``PreflightError`` with every blocking problem.
    """
    generated = run_id is None
    run_id = check_run_id(run_id or run_ids.unused(repo, dag.name, options.worktree_root))
    while True:
        planned = Planned(repo, options, dag, run_id, dag_file)
        found = results(planned)
        # a run started meanwhile (here, or in another checkout) took it: its branches
        # would be this run's "taken" problem, for an id the user never gave
        if generated and not dry_run and not run_ids.free(repo, run_id, options.worktree_root):
            run_id = run_ids.unused(repo, dag.name, options.worktree_root, after=run_id)
            continue
        if dry_run:
            print(as_typed(render(found)), end="")
        problems = [p for _, p in found if p is not None]
        blocking = [p for p in problems if p.blocking]
        if blocking:
            _warn(p for p in problems if not p.blocking)
            raise PreflightError(blocking)
        if not generated and not dry_run:
            _claim_given(RunPaths(repo, run_id))
        if dry_run or not generated or run_ids.claim(RunPaths(repo, run_id)):
            break
        # another run took it meanwhile
        run_id = run_ids.unused(repo, dag.name, options.worktree_root, after=run_id)
    _warn(problems)
    return planned


def _claim_given(paths: RunPaths) -> None:
    """The id given with ``--run-id``, claimed (``run_ids.claim_given``) or refused: a run
    of another checkout of the repository, started at the same moment, passed its own
    preflight with it, and its branches would be this run's to delete."""
    elsewhere = run_ids.claim_given(paths)
    if elsewhere is not None:
        raise PreflightError([Problem(
            f"run '{paths.run_id}' is taken by another run of this repository, whose record "
            f"is {elsewhere} (another checkout's, or one starting now): choose another "
            f"--run-id, or leave it out to have one made"
        )])  # fmt: skip


def _warn(problems: Iterable[Problem]) -> None:
    for problem in problems:
        print_warning(problem.message)
