"""The command line: the argparse surface of every command, dispatch, and the one error handler.

Commands are imported lazily inside ``_dispatch`` so that ``--version``, ``--help``,
``validate``, ``visualize``, ``status`` and ``list`` never import trio.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import traceback
from collections.abc import Sequence
from pathlib import Path

from dagspec import __version__
from dagspec.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE, DagspecError


def _add_json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dag",
        description="Run many autospec workflows at once: one git worktree per spec, "
        "in dependency order, resumable, merged back safely.",
    )
    parser.add_argument("--version", action="version", version=f"dag {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--repo",
        type=Path,
        help="the git repository (default: the one containing the current directory)",
    )
    common.add_argument(
        "--color",
        choices=("auto", "always", "never"),
        default="auto",
        help="colour output (auto honours NO_COLOR and TERM=dumb)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    validate = sub.add_parser("validate", parents=[common], help="check a DAG file")
    validate.add_argument("file", type=Path, help="the DAG file")
    _add_json_option(validate)

    visualize = sub.add_parser("visualize", parents=[common], help="draw the dependency graph")
    visualize.add_argument("file", type=Path, help="the DAG file")
    visualize.add_argument(
        "--format",
        dest="fmt",
        choices=("ascii", "mermaid", "dot"),
        default="ascii",
        help="ascii for a terminal (default), mermaid for GitHub, dot for graphviz",
    )

    return parser


def _use_color(choice: str) -> bool:
    if choice != "auto":
        return choice == "always"
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    return sys.stdout.isatty()


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "validate":
        from dagspec.commands.validate import validate

        return validate(args.file, repo=args.repo, as_json=args.json)
    if args.command == "visualize":
        from dagspec.commands.visualize import visualize

        return visualize(args.file, fmt=args.fmt)
    raise AssertionError(f"unhandled command {args.command!r}")


def _report_bug(exc: BaseException) -> int:
    """An unexpected exception is a bug: keep the traceback in a file, point to it."""
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
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
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
