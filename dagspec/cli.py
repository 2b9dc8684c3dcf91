"""The command line: dispatch to the commands, and the one error handler.

The options themselves are in ``dagspec.parser``. Commands are imported inside
``_dispatch`` so that ``--version``, ``--help``, ``validate``, ``visualize``, ``status``,
``report`` and ``list`` never import trio.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from dagspec import __version__, console
from dagspec.console import prepare_streams
from dagspec.errors import (
    EXIT_BUG,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    DagspecError,
    Interrupted,
    print_error,
)
from dagspec.parser import Commands, parse, suggest
from dagspec.symbols import AsciiFallback, can_encode

if TYPE_CHECKING:
    from dagspec.own_worktrees import Home


def _use_color(choice: str) -> bool:
    if choice != "auto":
        return choice == "always"
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    return sys.stdout.isatty()


def _use_live(choice: str) -> bool:
    from dagspec.terminal import use_live

    return use_live(choice, sys.stdout)


class RunFlags(NamedTuple):
    """The run options given on the command line of ``run``, ``resume`` and ``retry``; None
    means "not given", so the DAG's ``execution`` (a new run) or the options the run was
    started with (``resume``, ``retry``) decide. Field names are ``RunOptions``'."""

    parallel: bool | None = None
    max_parallel: int | None = None
    timeout: float | None = None
    stall_timeout: float | None = None
    fail_fast: bool | None = None
    merge: bool | None = None
    keep_worktrees: bool | None = None
    autospec: str | None = None
    worktree_root: str | None = None
    notify: str | None = None

    def overrides(self) -> dict[str, Any]:
        """The options given, to lay over the defaults; a limit given implies parallel."""
        given = {name: value for name, value in self._asdict().items() if value is not None}
        if "max_parallel" in given:
            given.setdefault("parallel", True)
        return given


def _run_flags(args: argparse.Namespace) -> dict[str, Any]:
    from dagspec.workspace import resolved

    root = args.worktree_root
    return RunFlags(
        parallel=args.parallel,
        max_parallel=args.max_parallel,
        timeout=args.timeout,
        stall_timeout=args.stall_timeout,
        fail_fast=args.fail_fast,
        merge=args.merge,
        keep_worktrees=args.keep_worktrees,
        autospec=args.autospec,
        worktree_root=None if root is None else str(resolved(root)),
        notify=args.notify,
    ).overrides()


def _repo(args: argparse.Namespace) -> Path:
    """The repository a command works on (``_home``)."""
    return _home(args).repo


def _home(args: argparse.Namespace) -> Home:
    """The repository a command works on: ``--repo``, else the one around the cwd; for a
    command about recorded runs typed in a run's worktree, the checkout that records the
    run, and that run (``own_worktrees.runs_home``)."""
    from dagspec import git, own_worktrees
    from dagspec.workspace import current_directory, resolved

    start = args.repo if args.repo is not None else current_directory()
    if not start.is_absolute():
        try:
            start = current_directory() / start
        except DagspecError:
            raise DagspecError(
                f"--repo {args.repo} is relative to the current directory, which no longer "
                "exists (deleted or moved): give the repository's absolute path"
            ) from None
    if args.repo is not None and not start.is_dir():
        raise DagspecError(f"--repo {args.repo}: no such directory")
    where = f"{args.repo}" if args.repo is not None else "the current directory"
    root = git.checkout_root(resolved(start), where)
    home = own_worktrees.runs_home(root, args.command)
    here = _cwd() if args.repo is not None else root
    if args.repo is not None and here is not None:  # `--repo MAIN retry` typed in a worktree
        own_worktrees.refuse_changes_from(here, args.command)
    console.remember_repo(home.repo, here, go=home.run_id is not None)
    return home


def _cwd() -> Path | None:
    try:
        return Path.cwd().resolve()
    except OSError:
        return None


# The commands that work on no repository, and why they refuse --repo (`parser`: not offered).
_NO_REPO = {
    "demo": "makes its own repository, so it takes no --repo: --dir says where",
    "visualize": "draws the DAG file alone, so it takes no --repo: give the path of the file",
}


def _dispatch(commands: Commands, args: argparse.Namespace) -> int:
    color = _use_color(args.color)
    name = args.command
    if name is None or name == "help":
        return _help(commands, getattr(args, "topic", None), bare=name is None)
    if name in _NO_REPO and getattr(args, "repo", None) is not None:  # else silently ignored
        return _usage_error(commands.by_name[name], f"dag {name} {_NO_REPO[name]}")
    if name == "validate":
        from dagspec.commands.validate import validate

        return validate(
            args.file,
            repo=args.repo,
            as_json=args.json,
            quiet=args.quiet,
            stdin_name=args.stdin_filename,
        )
    if name == "visualize":
        from dagspec.commands.visualize import visualize

        return visualize(args.file, fmt=args.fmt)
    if name == "list":
        from dagspec.commands.list_runs import list_runs

        return list_runs(_repo(args), as_json=args.json, color=color)
    return _dispatch_run_commands(commands, args, color)


def _help(commands: Commands, topic: str | None, *, bare: bool) -> int:
    """``dag help [COMMAND]``; a bare ``dag`` prints the help too, as a usage error."""
    if topic is None:
        text = commands.top.format_help()
        print(text, end="", file=sys.stderr if bare else sys.stdout)
        return EXIT_USAGE if bare else EXIT_OK
    if topic not in commands.by_name:
        message = f"no command '{topic}'" + suggest(topic, commands.by_name)
        return _usage_error(commands.by_name["help"], message)
    print(commands.by_name[topic].format_help(), end="")
    return EXIT_OK


def _usage_error(parser: argparse.ArgumentParser, message: str) -> int:
    parser.print_usage(sys.stderr)
    print_error(message)
    return EXIT_USAGE


def _dispatch_run_commands(commands: Commands, args: argparse.Namespace, color: bool) -> int:
    """The commands about one recorded run; the run id is resolved here (``run_ids``)."""
    from dagspec import run_ids

    name = args.command
    if name == "report":
        from dagspec.commands.report import report

        repo, own = _home(args)
        return report(repo, run_ids.resolve(repo, args.run_id, own), fmt=args.fmt)
    if name == "status":
        from dagspec.commands.status import status

        if args.json and args.watch:
            message = "--json and --watch do not go together: choose one"
            return _usage_error(commands.by_name["status"], message)
        repo, own = _home(args)
        run_id = run_ids.resolve(repo, args.run_id, own)
        return status(repo, run_id, as_json=args.json, watch=args.watch, color=color)
    if name == "logs":
        from dagspec.commands.logs import logs

        repo, own = _home(args)
        run_id, spec_id = run_ids.resolve_logs(repo, args.ids, own)
        return logs(repo, run_id, spec_id, follow=args.follow)
    if name == "cleanup":
        from dagspec.commands.cleanup import cleanup

        repo = _repo(args)
        if args.run_id is None:  # a usage error: cleanup deletes, so it never guesses
            message = "name the run to clean up: `dag cleanup RUN_ID` (`dag list` shows the runs)"
            return _usage_error(commands.by_name["cleanup"], message)
        run_id = run_ids.resolve(repo, args.run_id)
        return cleanup(repo, run_id, force=args.force, forget_run=args.forget)
    if name == "merge":
        from dagspec.commands.merge import merge

        repo = _repo(args)
        if args.run_id is None and not args.dry_run:  # a usage error: merge never guesses
            message = (
                "name the run to merge: `dag merge RUN_ID` (`dag merge --dry-run` "
                "predicts the newest run's merge, `dag list` shows the runs)"
            )
            return _usage_error(commands.by_name["merge"], message)
        run_id = run_ids.resolve(repo, args.run_id)
        return merge(
            repo,
            run_id,
            dry_run=args.dry_run,
            cleanup=args.cleanup,
            onto_current=args.onto_current,
        )
    return _dispatch_engine(commands, args, color)


def _dispatch_engine(commands: Commands, args: argparse.Namespace, color: bool) -> int:
    """The commands that drive agents (and so import trio)."""
    from dagspec import run_ids

    name = args.command
    if name == "run":
        from dagspec.commands.run import run

        return run(
            Path(args.file),
            repo=_repo(args),
            overrides=_run_flags(args),
            run_id=args.run_id,
            dry_run=args.dry_run,
            color=color,
            live=_use_live(args.progress),
        )
    if name == "resume":
        from dagspec.commands.resume import resume

        overrides, live, repo = _run_flags(args), _use_live(args.progress), _repo(args)
        run_id = run_ids.resolve(repo, args.run_id)
        guessed = args.run_id is None
        return resume(
            repo,
            run_id,
            overrides=overrides,
            color=color,
            live=live,
            dag_file=args.dag,
            guessed=guessed,
        )
    if name == "retry":
        from dagspec.commands.retry import retry

        overrides, live, repo = _run_flags(args), _use_live(args.progress), _repo(args)
        run_id, spec_ids = run_ids.resolve_retry(repo, args.ids)
        return retry(repo, run_id, spec_ids, overrides=overrides, color=color, live=live)
    if name == "doctor":
        from dagspec.commands.doctor import doctor
        from dagspec.workspace import resolved

        root = None if args.worktree_root is None else str(resolved(args.worktree_root))
        overrides = RunFlags(autospec=args.autospec, worktree_root=root).overrides()
        return doctor(args.file, repo=_repo(args), overrides=overrides)
    if name == "demo":
        from dagspec.commands.demo import demo

        return demo(directory=args.dir, color=color, live=_use_live(args.progress))
    raise AssertionError(f"unhandled command {name!r}")


# Writing the output failed for a reason of the place it goes to (`dag list > /dev/full`).
_OUTPUT_ERRORS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EFBIG})


def _report_bug(exc: BaseException, argv: Sequence[str]) -> int:
    """An unexpected exception is a bug: keep the details in a crash log, point to it (exit 3)."""
    from dagspec import crash

    try:
        evidence = f"its crash log, {crash.write_log(exc, argv)}"
    except OSError as log_error:  # no log: the traceback is the only evidence left
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
        evidence = f"the traceback above (no crash log: {log_error})"
    what = f"{type(exc).__name__}: {exc}".splitlines()[0]
    print_error(f"a bug in dagspec ({what}): please report it with {evidence}")
    return EXIT_BUG


@contextlib.contextmanager
def _ascii_fallback() -> Iterator[None]:
    """Where stdout or stderr cannot encode the symbols (``PYTHONIOENCODING=ascii``), they
    print as ASCII and any other character as ``?``: output never fails."""
    saved = sys.stdout, sys.stderr
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is not None and not can_encode(stream):
            setattr(sys, name, AsciiFallback(stream))
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``dag`` command and return its exit code (never raises for user errors)."""
    args_given = sys.argv[1:] if argv is None else list(argv)
    if args_given == ["--version"]:
        # Answered before building the parser of every command: scripts and hooks call
        # this to probe for dag, and it should cost little more than starting Python.
        print(f"dag {__version__}")
        return 0
    prepare_streams()
    try:
        commands, args = parse(args_given)
    except SystemExit as exit_:
        return EXIT_USAGE if exit_.code not in (0, None) else 0
    except KeyboardInterrupt:  # Ctrl-C before the command began: nothing was done
        print("dag: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    with _ascii_fallback():
        return _handle_errors(commands, args, args_given)


def _handle_errors(commands: Commands, args: argparse.Namespace, argv: Sequence[str]) -> int:
    """The one error handler: a user's error is one line, a bug is a pointer to its log."""
    try:
        return _dispatch(commands, args)
    except DagspecError as exc:
        print_error(str(exc))
        return EXIT_FAILED
    except Interrupted as exc:  # says what it left, in one line
        exc.say()
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        print("dag: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # `dag status | head`: the reader left; nothing more to say.
        sys.stderr.close()
        return EXIT_FAILED
    except OSError as exc:
        if exc.errno not in _OUTPUT_ERRORS:
            return _report_bug(exc, argv)
        if exc.filename is not None:  # dagspec's own file (the run's state): not the output
            limit = ", or raise the file size limit (ulimit -f)" if exc.errno == errno.EFBIG else ""
            print_error(
                f"cannot write {exc.filename}: {exc.strerror}: free some space{limit}, then "
                "run the command again"
            )
            return EXIT_FAILED
        print_error(f"cannot write the output: {exc.strerror}: free some space, or write elsewhere")
        return EXIT_FAILED
    except Exception as exc:  # the one place that catches everything: a bug
        return _report_bug(exc, argv)
