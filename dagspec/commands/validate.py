"""``dag validate``: check a DAG file and the repository it will run in."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from dagspec import git
from dagspec.errors import EXIT_FAILED, EXIT_OK, Problem, SpecError
from dagspec.spec import Dag, check_specs, load_dag


def validate(path: Path, *, repo: Path | None, as_json: bool) -> int:
    """Print ``OK: N features in M layers``, or every problem (one line each); exit 0 or 1."""
    problems: list[Problem] = []
    dag: Dag | None = None
    try:
        dag = load_dag(path)
    except SpecError as exc:
        problems = list(exc.problems)
    root = repo if repo is not None else git.repo_root(Path.cwd())
    if dag is not None and root is not None:
        problems += check_specs(dag, root, str(path))
    if as_json:
        print(json.dumps(_as_json(dag, problems), indent=2))
    elif problems:
        for problem in problems:
            print(f"dag: error: {problem}", file=sys.stderr)
    else:
        assert dag is not None
        if root is None:
            print(f"note: {path} is not in a git repository: specs/ was not checked")
        print(f"OK: {len(dag.features)} features in {len(dag.layers)} layers")
    return EXIT_FAILED if problems else EXIT_OK


def _as_json(dag: Dag | None, problems: list[Problem]) -> dict[str, object]:
    return {
        "valid": not problems,
        "errors": [{"file": p.file, "line": p.line, "message": p.message} for p in problems],
        "features": len(dag.features) if dag else 0,
        "layers": len(dag.layers) if dag else 0,
    }
