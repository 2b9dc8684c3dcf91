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

from dagspec import __version__, options
from dagspec.errors import EXIT_USAGE, did_you_mean, print_error

GLOBAL_OPTIONS_WITH_VALUES = ("--repo", "--color")
_COLORS = "{" + ",".join(options.COLOR_CHOICES) + "}"  # ``--color``'s values, in usage lines


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


# --- the commands ----------------------------------------------------------------------------

# The commands that commit: what signing them takes (``git_commit.signing_wait``).
SIGNING_NOTE = (
    "With commit.gpgSign on, dagspec signs its commits with your key, asking for no "
    "passphrase; a signer that has not signed after 60 s ($DAGSPEC_SIGNING_WAIT: 90s, 5m, "
    "at most 24h) is stopped, and the commit fails."
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
        options.add_global_options(self.top, top=True)
        self._sub = self.top.add_subparsers(dest="command", metavar="COMMAND")
        self.by_name: dict[str, argparse.ArgumentParser] = {}
        _add_commands(self)

    def add(
        self,
        name: str,
        summary: str,
        epilog: str | None = None,
        usage: str | None = None,
        *,
        repo: bool = True,
    ) -> argparse.ArgumentParser:
        """A command's parser; ``usage`` for positionals argparse cannot draw (an optional
        run id before other words); without ``repo``, a command that takes no ``--repo``
        (``options.add_global_options``)."""
        parser = self._sub.add_parser(
            name, help=summary, description=summary, epilog=epilog, usage=usage
        )
        options.add_global_options(parser, top=False, repo=repo)
        self.by_name[name] = parser
        return parser


def _add_commands(commands: Commands) -> None:
    p = commands.add("validate", "check a DAG file and the repository's specs/")
    p.add_argument("file", metavar="FILE", help="the DAG file; '-' reads it from standard input")
    p.add_argument("--stdin-filename", metavar="NAME", help="the name errors give to '-'")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing when it is valid")
    options.add_json_option(p)

    p = commands.add("visualize", "draw the dependency graph", repo=False)
    p.add_argument("file", type=Path, metavar="FILE", help="the DAG file")
    p.add_argument(
        "--format",
        dest="fmt",
        choices=("ascii", "mermaid", "dot"),
        default="ascii",
        help="ascii for a terminal (default), mermaid for GitHub, dot for graphviz",
    )

    p = commands.add(
        "run", "run every spec of a DAG, then merge the completed ones", epilog=SIGNING_NOTE
    )
    p.add_argument("file", type=Path, metavar="FILE", help="the DAG file")
    p.add_argument("--dry-run", action="store_true", help="print the plan and touch nothing")
    p.add_argument(
        "--run-id",
        type=options.run_id,
        metavar="ID",
        help="name the run (default: <dag-name>-<time>)",
    )
    options.add_run_options(p, resuming=False)

    newest = "default: the newest run"
    p = commands.add(
        "status",
        "one view of every spec of a run",
        epilog="Exit status: 1 when the run needs you, as `dag run` would have ended: it "
        "failed or was interrupted, or completed work was left off the base branch; else 0 "
        "(completed and merged, still running or its driver still merging, or completed "
        "under --no-merge with no "
        "`dag merge` asked since), so "
        "`dag status && deploy` works.",
    )
    p.add_argument("run_id", nargs="?", metavar="RUN_ID", help=newest)
    options.add_json_option(p)
    p.add_argument(
        "--watch", action="store_true", help="redraw until the run ends (and its driver with it)"
    )

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
    options.add_json_option(p)

    p = commands.add("resume", "continue an interrupted or failed run", epilog=SIGNING_NOTE)
    p.add_argument(
        "run_id",
        nargs="?",
        metavar="RUN_ID",
        help=f"{newest} (when it has nothing left, the older runs that can be resumed are "
        "named, never resumed)",
    )
    options.add_run_options(p, resuming=True)
    p.add_argument(
        "--dag",
        type=Path,
        metavar="FILE",
        help="continue with this DAG file instead of the recorded one: a fixed description, "
        "with the same features and dependencies",
    )

    p = commands.add(
        "retry",
        "re-run failed specs, then what was blocked behind them; end the wait of specs "
        "waiting for a usage limit, so they start once a slot is free (through the run's "
        "driver, when one is running)",
        usage="dag retry [-h] [RUN_ID] SPEC_ID... [options]",
        epilog=SIGNING_NOTE,
    )
    p.add_argument(
        "ids",
        nargs="+",
        metavar="[RUN_ID] SPEC_ID",
        help=f"the run's id (optional, {newest}), then the specs",
    )
    options.add_run_options(p, resuming=True)

    # RUN_ID is optional to argparse only (without it, cli says to name the run)
    given = "[--repo DIR] [--color " + _COLORS + "]"
    p = commands.add(
        "merge",
        "merge a run's completed specs into the base branch",
        usage=f"dag merge [-h] RUN_ID [--cleanup] [--onto-current] {given}\n"
        f"       dag merge --dry-run [RUN_ID] [--onto-current] {given}",
        epilog=SIGNING_NOTE,
    )
    p.add_argument("run_id", nargs="?", metavar="RUN_ID", help=f"the run; with --dry-run, {newest}")
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
        usage="dag logs [-h] [RUN_ID] [SPEC_ID] [-f] [--repo DIR] [--color " + _COLORS + "]",
    )
    p.add_argument(
        "ids",
        nargs="*",
        metavar="[RUN_ID] [SPEC_ID]",
        help=f"the run's id ({newest}), then the spec (default: every spec)",
    )
    p.add_argument("-f", "--follow", action="store_true", help="keep printing while it runs")

    p = commands.add(
        "cleanup",
        "remove a run's worktrees, and its branches already merged",
        usage="dag cleanup [-h] RUN_ID [--force] [--forget] [--repo DIR] [--color " + _COLORS + "]",
    )
    # RUN_ID is optional to argparse only (without it, cli says to name the run)
    p.add_argument("run_id", nargs="?", metavar="RUN_ID", help="always named: cleanup deletes")
    p.add_argument(
        "--force",
        action="store_true",
        help="also remove worktrees with uncommitted files (says what); "
        "never a branch with commits the base branch lacks",
    )
    p.add_argument(
        "--forget",
        action="store_true",
        help="then remove the run's state file and logs, so `dag list` no longer shows it; "
        "branches with work not on the base branch stay (refused while a worktree of the "
        "run would stay)",
    )

    p = commands.add(
        "demo", "run a bundled example in a throwaway repository, no AI agent needed", repo=False
    )
    p.add_argument(
        "--dir", type=Path, metavar="DIR", help="where to create it (default: a new temp dir)"
    )
    options.add_progress_option(p)

    p = commands.add("doctor", "check that this repository and machine can run a DAG")
    p.add_argument(
        "file", type=Path, nargs="?", metavar="FILE", help="also check this DAG file's run"
    )
    p.add_argument(
        "--autospec", type=options.program, metavar="CMD", help="the autospec executable to check"
    )
    p.add_argument("--worktree-root", type=Path, metavar="DIR", help="where worktrees would go")

    p = commands.add("help", "show the help of a command")
    p.add_argument("topic", nargs="?", metavar="COMMAND", help="the command to show")


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
