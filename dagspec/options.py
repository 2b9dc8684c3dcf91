"""The options several commands share, and the types that check option values.

A value that cannot be used is a usage error (``argparse.ArgumentTypeError``), so the
command's usage and one ``dag: error:`` line are printed (see :mod:`dagspec.parser`).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

COLOR_CHOICES = ("auto", "always", "never")


# --- option values ---------------------------------------------------------------------------


def duration(text: str) -> float:
    from dagspec.durations import duration_problem, parse_duration

    problem = duration_problem(text)
    seconds = parse_duration(text)
    if problem is not None or seconds is None:
        raise argparse.ArgumentTypeError(f"'{text}' is {problem}")
    return seconds


def positive(text: str) -> int:
    if not text.isascii() or not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number of 1 or more")
    return int(text)


def run_id(text: str) -> str:
    from dagspec.errors import DagspecError
    from dagspec.workspace import check_run_id

    try:
        return check_run_id(text)
    except DagspecError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def program(text: str) -> str:
    """An executable named by an option (``--autospec``): a path (it holds a ``/``) made
    absolute against the current directory, ``~`` expanded, as the run records it, so a
    ``resume`` or ``retry`` typed in another directory starts the same program; a name is
    left as it is, for ``PATH``."""
    if os.sep not in text:
        return text
    path = Path(text).expanduser()
    try:
        return str(path.absolute())
    except FileNotFoundError:  # os.getcwd: the directory was deleted under the shell
        raise argparse.ArgumentTypeError(
            f"{text} is relative to the current directory, which no longer exists: give its "
            "absolute path"
        ) from None


def worktree_root(text: str) -> Path:
    """The path as given, made absolute; what may be there is preflight's to check
    (``checks.check_root``), for ``run``, ``run --dry-run`` and ``doctor`` alike."""
    return Path(text).expanduser().absolute()


# --- options shared by commands ---------------------------------------------------------------


def add_json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON (shapes in the README)")


def add_run_options(parser: argparse.ArgumentParser, *, resuming: bool) -> None:
    """Options shared by run, resume and retry; on resume and retry they override the
    options the run was started with."""
    default = " (default: as the run was started)" if resuming else ""
    parser.add_argument(
        "--parallel",
        action="store_true",
        default=None,
        help="run specs in parallel" + (default or " (default: one at a time)"),
    )
    parser.add_argument(
        "--max-parallel",
        type=positive,
        metavar="N",
        help="run at most N specs at once; implies --parallel (so does execution.max_parallel "
        "of the DAG; --max-parallel 1 runs one at a time)"
        + (default or " (default: execution.max_parallel, else 4)"),
    )
    parser.add_argument(
        "--timeout", type=duration, metavar="DUR", help="per-spec time limit, e.g. 45m, 2h"
    )
    parser.add_argument(
        "--stall-timeout",
        type=duration,
        metavar="DUR",
        help="a running spec with no progress (output, spec files, commits) for DUR is shown "
        "stalled; after another DUR it is restarted once at its stage, then failed "
        "(default: execution.stall_timeout, else no watchdog)",
    )
    parser.add_argument(
        "--fail-fast",
        action="store_true",
        default=None,
        help="stop the run at the first failed spec",
    )
    parser.add_argument(
        "--no-merge",
        dest="merge",
        action="store_false",
        default=None,
        help="do not merge completed specs into the base branch at the end",
    )
    parser.add_argument(
        "--keep-worktrees",
        action="store_true",
        default=None,
        help="keep the worktrees of merged specs",
    )
    parser.add_argument(
        "--autospec",
        type=program,
        metavar="CMD",
        help="the autospec executable, a name on PATH or a path (recorded absolute) "
        "(default: "
        + ("the run's own --autospec, else " if resuming else "")
        + "$DAGSPEC_AUTOSPEC, else autospec on PATH"
        + (", else the one the run last ran)" if resuming else "; never an earlier run's)"),
    )
    parser.add_argument(
        "--worktree-root",
        type=worktree_root,
        metavar="DIR",
        help="where worktrees go, as DIR/<run-id>/<spec-id>: an existing directory, or a new "
        "one in an existing directory (default: <repo>.worktrees beside the repository)",
    )
    parser.add_argument(
        "--notify",
        metavar="CMD",
        help="a shell command run when the run ends and when a spec fails, stalls or waits for "
        "a usage limit; it gets DAG_EVENT, "
        "DAG_RUN_ID, DAG_SPEC_ID, DAG_STATUS, DAG_SUMMARY and the same as JSON on stdin "
        "(default: execution.notify of the DAG)",
    )
    add_progress_option(parser)


def add_progress_option(parser: argparse.ArgumentParser) -> None:
    """``--progress``: the live board, plain lines, or the board on a capable terminal."""
    parser.add_argument(
        "--progress",
        choices=("auto", "tty", "plain"),
        default="auto",
        help="tty: the live board; plain: a line per event (auto: the board on a terminal, "
        "unless TERM=dumb)",
    )


def add_global_options(parser: argparse.ArgumentParser, *, top: bool, repo: bool = True) -> None:
    """``--repo`` and ``--color``; a command's copy has no default (see the module doc).
    Without ``repo`` (a command that makes its own repository) ``--repo`` is still parsed,
    so that the command can refuse it by name, but its help and usage leave it out."""
    parser.add_argument(
        "--repo",
        type=Path,
        metavar="DIR",
        default=None if top else argparse.SUPPRESS,
        help="the git repository (default: the one containing the current directory)"
        if repo
        else argparse.SUPPRESS,
    )
    parser.add_argument(
        "--color",
        choices=COLOR_CHOICES,
        default="auto" if top else argparse.SUPPRESS,
        help="colour output (auto: on a terminal, unless NO_COLOR is set or TERM=dumb)",
    )
