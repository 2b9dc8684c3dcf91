"""The argparse surface of every command: options, their checks, and usage errors.

Global options (``--repo``, ``--color``) are accepted before the command as well as after
it (the README, "Commands"): the top-level parser holds their defaults, and each command's copy uses
``argparse.SUPPRESS`` so that not giving them after the command keeps what came before.
A usage error prints the usage of the command that was typed, then one ``dag: error:``
line, with a did-you-mean for a misspelt command or option (issue 15).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import NoReturn

from dagspec import __version__
from dagspec.errors import EXIT_USAGE, did_you_mean, print_error

GLOBAL_OPTIONS_WITH_VALUES = ("--repo", "--color")
COLOR_CHOICES = ("auto", "always", "never")


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one ``dag: error:`` line after its usage."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        print_error(message)
        raise SystemExit(EXIT_USAGE)


def suggest(word: str, names: Iterable[str]) -> str:
    """`` (did you mean 'status'?)``, else the list of every command."""
    return did_you_mean(word, names) or f": the commands are {', '.join(names)}"


def command_word(argv: Sequence[str]) -> str | None:
    """The command typed: the first word that is neither an option nor a global option's
    value, or None when there is none (``dag``, ``dag --color never``)."""
    words = iter(argv)
    for word in words:
        if word in GLOBAL_OPTIONS_WITH_VALUES:
            next(words, None)
        elif word == "--":
            return next(words, None)
        elif not word.startswith("-") or word == "-":
            return word
    return None


def unknown_options_message(parser: argparse.ArgumentParser, extras: Sequence[str]) -> str:
    """``unrecognized arguments: --paralel (did you mean '--parallel'?)``."""
    known = [s for action in parser._actions for s in action.option_strings]
    hints = [
        did_you_mean(word.split("=", 1)[0], known) if word.startswith("--") else ""
        for word in extras
    ]
    return "unrecognized arguments: " + ", ".join(w + h for w, h in zip(extras, hints, strict=True))


# --- option values ---------------------------------------------------------------------------


def _duration(text: str) -> float:
    from dagspec.records import parse_duration

    seconds = parse_duration(text)
    if not seconds:
        raise argparse.ArgumentTypeError(f"'{text}' is not a duration: write it like 90s, 45m, 2h")
    return seconds


def _positive(text: str) -> int:
    if not text.isascii() or not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number of 1 or more")
    return int(text)


def _run_id(text: str) -> str:
    from dagspec.errors import DagspecError
    from dagspec.workspace import check_run_id

    try:
        return check_run_id(text)
    except DagspecError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _worktree_root(text: str) -> Path:
    """The path as given, made absolute; what may be there is preflight's to check
    (``preflight.check_root``), for ``run``, ``run --dry-run`` and ``doctor`` alike."""
    return Path(text).expanduser().absolute()


# --- the commands ----------------------------------------------------------------------------


def _add_json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON (shapes in the README)")


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
        help="run at most N specs at once; implies --parallel (so does execution.max_parallel "
        "of the DAG; --max-parallel 1 runs one at a time)"
        + (default or " (default: execution.max_parallel, else 4)"),
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
        type=_worktree_root,
        metavar="DIR",
        help="where worktrees go, as DIR/<run-id>/<spec-id>: an existing directory, or a new "
        "one in an existing directory (default: <repo>.worktrees beside the repository)",
    )
    parser.add_argument(
        "--notify",
        metavar="CMD",
        help="a shell command run when the run ends and when a spec fails; it gets DAG_EVENT, "
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


def _add_global_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """``--repo`` and ``--color``; a command's copy has no default (see the module doc)."""
    parser.add_argument(
        "--repo",
        type=Path,
        metavar="DIR",
        default=None if top else argparse.SUPPRESS,
        help="the git repository (default: the one containing the current directory)",
    )
    parser.add_argument(
        "--color",
        choices=COLOR_CHOICES,
        default="auto" if top else argparse.SUPPRESS,
        help="colour output (auto: on a terminal, unless NO_COLOR is set or TERM=dumb)",
    )


class Commands:
    """The top-level parser and each command's own parser, by name."""

    def __init__(self) -> None:
        self.top = Parser(
            prog="dag",
            description="Run many autospec workflows at once: one git worktree per spec, "
            "in dependency order, resumable, merged back safely.",
            epilog="`dag help COMMAND` or `dag COMMAND --help` for a command's options. "
            "Exit codes: 0 success, 1 the work failed, 2 bad usage, 3 a bug in dagspec, "
            "130 interrupted.",
        )
        self.top.add_argument("--version", action="version", version=f"dag {__version__}")
        _add_global_options(self.top, top=True)
        self._sub = self.top.add_subparsers(dest="command", metavar="COMMAND")
        self.by_name: dict[str, argparse.ArgumentParser] = {}
        _add_commands(self)

    def add(
        self, name: str, summary: str, epilog: str | None = None, usage: str | None = None
    ) -> argparse.ArgumentParser:
        """A command's parser; ``usage`` for positionals argparse cannot draw (an optional
        run id before other words)."""
        parser = self._sub.add_parser(
            name, help=summary, description=summary, epilog=epilog, usage=usage
        )
        _add_global_options(parser, top=False)
        self.by_name[name] = parser
        return parser


def _add_commands(commands: Commands) -> None:
    p = commands.add("validate", "check a DAG file and the repository's specs/")
    p.add_argument("file", help="the DAG file; '-' reads it from standard input")
    p.add_argument("--stdin-filename", metavar="NAME", help="the name errors give to '-'")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing when it is valid")
    _add_json_option(p)

    p = commands.add("visualize", "draw the dependency graph")
    p.add_argument("file", type=Path, help="the DAG file")
    p.add_argument(
        "--format",
        dest="fmt",
        choices=("ascii", "mermaid", "dot"),
        default="ascii",
        help="ascii for a terminal (default), mermaid for GitHub, dot for graphviz",
    )

    p = commands.add("run", "run every spec of a DAG, then merge the completed ones")
    p.add_argument("file", type=Path, help="the DAG file")
    p.add_argument("--dry-run", action="store_true", help="print the plan and touch nothing")
    p.add_argument(
        "--run-id", type=_run_id, metavar="ID", help="name the run (default: <dag-name>-<time>)"
    )
    _add_run_options(p, resuming=False)

    newest = "default: the newest run"
    p = commands.add(
        "status",
        "one view of every spec of a run",
        epilog="Exit status: 0 when the run completed or is still running, 1 when it failed "
        "or was interrupted, so `dag status && deploy` works.",
    )
    p.add_argument("run_id", nargs="?", metavar="RUN_ID", help=newest)
    _add_json_option(p)
    p.add_argument("--watch", action="store_true", help="redraw until the run ends")

    p = commands.add("report", "the report card of a run: per spec and in total")
    p.add_argument("run_id", nargs="?", metavar="RUN_ID", help="default: the newest run")
    formats = p.add_mutually_exclusive_group()
    formats.add_argument(
        "--json", dest="fmt", action="store_const", const="json", help="print JSON"
    )
    formats.add_argument(
        "--markdown", dest="fmt", action="store_const", const="markdown", help="print Markdown"
    )
    p.set_defaults(fmt="text")

    p = commands.add("list", "every run of this repository, newest first")
    _add_json_option(p)

    p = commands.add("resume", "continue an interrupted or failed run")
    p.add_argument("run_id", nargs="?", metavar="RUN_ID", help=newest)
    _add_run_options(p, resuming=True)
    p.add_argument(
        "--dag",
        type=Path,
        metavar="FILE",
        help="continue with this DAG file instead of the recorded one: a fixed description, "
        "with the same features and dependencies",
    )

    p = commands.add(
        "retry",
        "re-run failed specs, then what was blocked behind them",
        usage="dag retry [-h] [RUN_ID] SPEC_ID... [options]",
    )
    p.add_argument(
        "ids", nargs="+", metavar="ID", help=f"the run's id (optional, {newest}), then specs"
    )
    _add_run_options(p, resuming=True)

    p = commands.add("merge", "merge a run's completed specs into the base branch")
    p.add_argument("run_id", nargs="?", metavar="RUN_ID", help=f"with --dry-run, {newest}")
    p.add_argument("--dry-run", action="store_true", help="predict each merge, write nothing")
    p.add_argument("--cleanup", action="store_true", help="then remove merged specs' worktrees")
    p.add_argument(
        "--onto-current",
        action="store_true",
        help="when the base branch was rewritten, replay each spec's changes onto it as it is",
    )

    p = commands.add(
        "logs",
        "print one spec's output, or every spec's with a 'spec | ' prefix",
        usage="dag logs [-h] [RUN_ID] [SPEC_ID] [-f] [--repo DIR] [--color WHEN]",
    )
    p.add_argument(
        "ids",
        nargs="*",
        metavar="ID",
        help=f"RUN_ID ({newest}), then SPEC_ID (default: every spec)",
    )
    p.add_argument("-f", "--follow", action="store_true", help="keep printing while it runs")

    p = commands.add("cleanup", "remove a run's worktrees, and its branches already merged")
    p.add_argument("run_id", metavar="RUN_ID", help="always named: cleanup deletes")
    p.add_argument("--force", action="store_true", help="also remove unmerged work (says what)")

    p = commands.add("demo", "run a bundled example in a throwaway repository, no AI agent needed")
    p.add_argument(
        "--dir", type=Path, metavar="DIR", help="where to create it (default: a new temp dir)"
    )
    add_progress_option(p)

    p = commands.add("doctor", "check that this repository and machine can run a DAG")
    p.add_argument("file", type=Path, nargs="?", help="also check this DAG file's run")
    p.add_argument("--autospec", metavar="CMD", help="the autospec executable to check")
    p.add_argument("--worktree-root", type=Path, metavar="DIR", help="where worktrees would go")

    p = commands.add("help", "show the help of a command")
    p.add_argument("topic", nargs="?", metavar="COMMAND")


def parse(argv: Sequence[str]) -> tuple[Commands, argparse.Namespace]:
    """Parse ``argv``; a usage error prints the typed command's usage and raises
    ``SystemExit(2)``."""
    commands = Commands()
    word = command_word(argv)
    if word is not None and word not in commands.by_name:
        commands.top.error(f"unknown command '{word}'" + suggest(word, commands.by_name))
    args, extras = commands.top.parse_known_args(argv)
    if extras:
        parser = commands.by_name.get(args.command, commands.top)
        parser.error(unknown_options_message(parser, extras))
    return commands, args
