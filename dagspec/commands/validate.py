"""``dag validate``: check a DAG file and the repository it will run in."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from dagspec import git
from dagspec.copy_checks import dag_file_problems
from dagspec.dagfile import (
    MAX_BYTES,
    Checked,
    check_bytes,
    check_file,
    missing_programs,
    missing_specs,
)
from dagspec.errors import EXIT_FAILED, EXIT_OK, Problem, print_error, print_warning
from dagspec.words import counted
from dagspec.workspace import current_directory

STDIN = "-"


def validate(
    file: str, *, repo: Path | None, as_json: bool, quiet: bool, stdin_name: str | None
) -> int:
    """Print ``OK: N features in M layers``, or every problem (one line each); exit 0 or 1.

    ``file`` is a path, or ``-`` for standard input (``git show :dag.yaml | dag validate -``),
    named ``stdin_name`` in messages. Every problem of the file is reported in one pass:
    the schema, the graph of whatever could be read, and the specs in the repository.
    ``quiet`` prints nothing for a valid file but its warnings (on stderr): what preflight
    would only warn of, such as an ``execution.copy`` path that is not there.
    """
    label = (stdin_name or "<stdin>") if file == STDIN else file
    if file == STDIN:
        raw = sys.stdin.buffer.read(MAX_BYTES + 1) if sys.stdin is not None else b""
        checked = check_bytes(raw, label, Path(label).stem)
    else:
        checked = check_file(Path(file))
    root = repo if repo is not None else git.repo_root(current_directory())
    problems = list(checked.problems)
    warnings: list[Problem] = []  # each printed as a `dag: warning:` line; the file is OK
    if root is not None:
        found = missing_specs(checked, root, label) + missing_programs(checked, root, label)
        copies, warnings = dag_file_problems(checked, root, label)
        problems = sorted(problems + found + copies, key=lambda p: p.line or 0)
    if as_json:
        print(json.dumps(_as_json(checked, problems, warnings), indent=2))
        return EXIT_FAILED if problems else EXIT_OK
    if problems:
        print_error("\n".join(str(problem) for problem in problems))
    for warning in warnings:
        print_warning(str(warning))
    if not problems and not quiet:
        assert checked.dag is not None
        if root is None:
            print(f"note: {label} is not in a git repository: specs/ was not checked")
        features, layers = len(checked.dag.features), len(checked.dag.layers)
        print(f"OK: {counted(features, 'feature')} in {counted(layers, 'layer')}")
    return EXIT_FAILED if problems else EXIT_OK


def _as_json(
    checked: Checked, problems: list[Problem], warnings: list[Problem]
) -> dict[str, object]:
    dag = None if problems else checked.dag
    return {
        "valid": not problems,
        "errors": [{"file": p.file, "line": p.line, "message": p.message} for p in problems],
        "warnings": [{"file": p.file, "line": p.line, "message": p.message} for p in warnings],
        # null for an invalid file: nothing was counted (0 read as "an empty DAG")
        "features": len(dag.features) if dag else None,
        "layers": len(dag.layers) if dag else None,
    }
