"""The command line: the argparse surface of every command, dispatch, and the one error handler.

Commands are imported inside ``_dispatch`` so that ``--version``, ``--help``,
``validate``, ``visualize``, ``status`` and ``list`` never import trio.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from dagspec import __version__
from dagspec.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE, DagspecError


def _duration(text: str) -> float:
    from dagspec.spec import parse_duration

    seconds = parse_duration(text)
    if not seconds:
        raise argparse.ArgumentTypeError(f"'{text}' is not a duration: write it like 90s, 45m, 2h")
    return seconds


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number of 1 or more")
    return int(text)


def _add_json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON (DESIGN §6 shapes)")


def _add_run_options(parser: argparse.ArgumentParser, *, resuming: bool) -> None:
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
        type=_positive,
        metavar="N",
        help="at most N specs at once with --parallel"
        + (default or " (default: execution.max_parallel of the DAG, else 4)"),
    )
    parser.add_argument(
        "--timeout", type=_duration, metavar="DUR", help="per-spec time limit, e.g. 45m, 2h"
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
        metavar="CMD",
        help="the autospec executable (default: $DAGSPEC_AUTOSPEC, else autospec on PATH)",
    )
    parser.add_argument(
        "--worktree-root",
        type=Path,
        metavar="DIR",
        help="where worktrees go (default: the repository's parent directory)",
    )


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dag",
        description="Run many autospec workflows at once: one git worktree per spec, "
        "in dependency order, resumable, merged back safely.",
        epilog="Exit codes: 0 success, 1 the work failed, 2 bad usage, 130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"dag {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--repo",
        type=Path,
        metavar="DIR",
        help="the git repository (default: the one containing the current directory)",
    )
    common.add_argument(
        "--color",
        choices=("auto", "always", "never"),
        default="auto",
        help="colour output (auto: on a terminal, unless NO_COLOR is set or TERM=dumb)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, summary: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, parents=[common], help=summary, description=summary)

    p = command("validate", "check a DAG file and the repository's specs/")
    p.add_argument("file", type=Path, help="the DAG file")
    _add_json_option(p)

    p = command("visualize", "draw the dependency graph")
    p.add_argument("file", type=Path, help="the DAG file")
    p.add_argument(
        "--format",
        dest="fmt",
        choices=("ascii", "mermaid", "dot"),
        default="ascii",
        help="ascii for a terminal (default), mermaid for GitHub, dot for graphviz",
    )

    p = command("run", "run every spec of a DAG, then merge the completed ones")
    p.add_argument("file", type=Path, help="the DAG file")
    p.add_argument("--dry-run", action="store_true", help="print the plan and touch nothing")
    p.add_argument("--run-id", metavar="ID", help="name the run (default: <dag-name>-<time>)")
    _add_run_options(p, resuming=False)

    p = command("status", "one view of every spec of a run")
    p.add_argument("run_id", nargs="?", metavar="RUN_ID", help="default: the newest run")
    _add_json_option(p)
    p.add_argument("--watch", action="store_true", help="redraw until the run ends")

    p = command("list", "every run of this repository, newest first")
    _add_json_option(p)

    p = command("resume", "continue an interrupted or failed run")
    p.add_argument("run_id", metavar="RUN_ID")
    p.add_argument(
        "--dag",
        type=Path,
        metavar="FILE",
        help="continue with this DAG file from now on: the run's features and dependencies, "
        "with descriptions or time limits fixed",
    )
    _add_run_options(p, resuming=True)

    p = command("retry", "re-run failed specs, then what was blocked behind them")
    p.add_argument("run_id", metavar="RUN_ID")
    p.add_argument("spec_ids", nargs="+", metavar="SPEC_ID")
    _add_run_options(p, resuming=True)

    p = command("merge", "merge a run's completed specs into the base branch")
    p.add_argument("run_id", metavar="RUN_ID")
    p.add_argument("--dry-run", action="store_true", help="predict each merge, write nothing")
    p.add_argument("--cleanup", action="store_true", help="then remove merged specs' worktrees")

    p = command("logs", "print one spec's output")
    p.add_argument("run_id", metavar="RUN_ID")
    p.add_argument("spec_id", metavar="SPEC_ID")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing while it runs")

    p = command("cleanup", "remove a run's worktrees, and its branches already merged")
    p.add_argument("run_id", metavar="RUN_ID")
    p.add_argument("--force", action="store_true", help="also remove unmerged work (says what)")

    p = command("demo", "run a bundled example in a throwaway repository, no AI agent needed")
    p.add_argument(
        "--dir", type=Path, metavar="DIR", help="where to create it (default: a new temp dir)"
    )
    return parser


def _use_color(choice: str) -> bool:
    if choice != "auto":
        return choice == "always"
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    return sys.stdout.isatty()


class RunFlags(NamedTuple):
    """The run options given on the command line of ``run``, ``resume`` and ``retry``; None
    means "not given", so the DAG's ``execution`` (a new run) or the options the run was
    started with (``resume``, ``retry``) decide. Field names are ``RunOptions``'."""

    parallel: bool | None = None
    max_parallel: int | None = None
    timeout: float | None = None
    fail_fast: bool | None = None
    merge: bool | None = None
    keep_worktrees: bool | None = None
    autospec: str | None = None
    worktree_root: str | None = None

    def overrides(self) -> dict[str, object]:
        """The options given, to lay over the defaults."""
        return {name: value for name, value in self._asdict().items() if value is not None}


def _run_flags(args: argparse.Namespace) -> dict[str, object]:
    root = args.worktree_root
    return RunFlags(
        parallel=args.parallel,
        max_parallel=args.max_parallel,
        timeout=args.timeout,
        fail_fast=args.fail_fast,
        merge=args.merge,
        keep_worktrees=args.keep_worktrees,
        autospec=args.autospec,
        worktree_root=None if root is None else str(root.resolve()),
    ).overrides()


def _repo(args: argparse.Namespace) -> Path:
    """The repository a command works on: ``--repo``, else the one around the cwd."""
    from dagspec import git

    start = args.repo if args.repo is not None else Path.cwd()
    root = git.repo_root(start.resolve())
    if root is None:
        where = f"{args.repo}" if args.repo is not None else "the current directory"
        raise DagspecError(f"{where} is not in a git repository: cd into one, or pass --repo")
    return root


def _dispatch(args: argparse.Namespace) -> int:
    color = _use_color(args.color)
    name = args.command
    if name == "validate":
        from dagspec.commands.validate import validate

        return validate(args.file, repo=args.repo, as_json=args.json)
    if name == "visualize":
        from dagspec.commands.visualize import visualize

        return visualize(args.file, fmt=args.fmt)
    if name == "status":
        from dagspec.commands.status import status

        return status(_repo(args), args.run_id, as_json=args.json, watch=args.watch, color=color)
    if name == "list":
        from dagspec.commands.list_runs import list_runs

        return list_runs(_repo(args), as_json=args.json, color=color)
    if name == "logs":
        from dagspec.commands.logs import logs

        return logs(_repo(args), args.run_id, args.spec_id, follow=args.follow)
    if name == "cleanup":
        from dagspec.commands.cleanup import cleanup

        return cleanup(_repo(args), args.run_id, force=args.force)
    if name == "merge":
        from dagspec.commands.merge import merge

        return merge(_repo(args), args.run_id, dry_run=args.dry_run, cleanup=args.cleanup)
    return _dispatch_engine(args, color)


def _dispatch_engine(args: argparse.Namespace, color: bool) -> int:
    """The commands that drive agents (and so import trio)."""
    name = args.command
    if name == "run":
        from dagspec.commands.run import run

        return run(
            args.file,
            repo=_repo(args),
            overrides=_run_flags(args),
            run_id=args.run_id,
            dry_run=args.dry_run,
            color=color,
        )
    if name == "resume":
        from dagspec.commands.resume import resume

        overrides = _run_flags(args)
        return resume(_repo(args), args.run_id, overrides=overrides, color=color, dag_file=args.dag)
    if name == "retry":
        from dagspec.commands.retry import retry

        overrides = _run_flags(args)
        return retry(_repo(args), args.run_id, args.spec_ids, overrides=overrides, color=color)
    if name == "demo":
        from dagspec.commands.demo import demo

        return demo(directory=args.dir, color=color)
    raise AssertionError(f"unhandled command {name!r}")


def _report_bug(exc: BaseException) -> int:
    """An unexpected exception is a bug: keep the traceback in a file, point to it."""
    import tempfile
    import traceback

    fd, name = tempfile.mkstemp(prefix="dag-crash-", suffix=".log")
    with os.fdopen(fd, "w") as log:
        log.write(f"dag {__version__}, argv {sys.argv!r}\n")
        log.write("".join(traceback.format_exception(exc)))
    print(
        f"dag: error: unexpected {type(exc).__name__}: {exc}\n"
        f"This is a bug in dagspec; the traceback is in {name}. Please report it.",
        file=sys.stderr,
    )
    return EXIT_FAILED


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``dag`` command and return its exit code (never raises for user errors)."""
    args_given = sys.argv[1:] if argv is None else list(argv)
    if args_given == ["--version"]:
        # Answered before building the parser of every command: scripts and hooks call
        # this to probe for dag, and it should cost little more than starting Python.
        print(f"dag {__version__}")
        return 0
    parser = _build_parser()
    try:
        args = parser.parse_args(args_given)
    except SystemExit as exit_:
        return EXIT_USAGE if exit_.code not in (0, None) else 0
    try:
        return _dispatch(args)
    except DagspecError as exc:
        print(f"dag: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("dag: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # `dag status | head`: the reader left; nothing more to say.
        sys.stderr.close()
        return EXIT_FAILED
    except Exception as exc:  # the one place that catches everything: a bug
        return _report_bug(exc)
