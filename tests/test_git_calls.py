"""How many git processes a run starts per spec (issue 16 item 2), counted for real.

A ``git`` wrapper script first on PATH writes each call's argv to a file of its own (calls
run concurrently), then execs the real
git (its variables are not named ``GIT_*``: dagspec removes those from git's environment).
dagspec's own calls are told from the stand-in autospec's by the options every one of them
starts with (``git_env.INSULATION_ARGS``).

The rule: a run of N plain specs (independent, new, the stand-in autospec leaving its work
uncommitted) costs ``fixed + N * per_spec`` git processes, where ``fixed`` is the per-run
work (preflight, reading what the drive needs to know, the merge's reads and the base
branch's fast-forward, the batched branch deletion). So ``per_spec = (total(2N) -
total(N)) / N``, including the spec's merge and the removal of its worktree, and ``fixed =
total(N) - N * per_spec``. Both are counted through the built ``dag.pyz``, one spec at a
time and four at once.
"""

from __future__ import annotations

import collections
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dagspec.git_env import INSULATION_ARGS
from tests.engine_support import Project

pytest_plugins = ("tests.engine_fixtures",)

# One file per call: records appended to one file by concurrent gits would interleave.
WRAPPER = """#!/bin/sh
record="$(mktemp "$CALLS_LOG_OF_GIT/call.XXXXXXXX")"
for arg in "$@"; do printf '%s\\037' "$arg"; done > "$record"
exec "$REAL_GIT_FOR_TESTS" "$@"
"""

# The floor of a plain spec: its worktree, its work committed, its join (which the merge
# reuses: the base branch moves once, to the integration branch's tip), its removal.
PER_SPEC = collections.Counter(
    {
        "worktree add": 1,
        "add -A": 1,
        "commit": 1,
        "merge-tree": 1,
        "commit-tree": 1,
        "update-ref": 1,
        "worktree remove": 1,
    }
)


def _verb(argv: list[str]) -> str:
    """``worktree add`` / ``add -A`` / ``commit``...: the command, and its first word when
    it has subcommands."""
    if argv[0] in ("worktree", "add"):
        return " ".join(argv[:2])
    return argv[0]


def dagspec_calls(
    pyz: Path, project: Project, tmp_path: Path, count: int, *flags: str
) -> list[str]:
    """The verbs of the git processes dagspec starts for a run of ``count`` plain specs, in
    a copy of ``project``'s repository of its own (so each run starts from the same one)."""
    repo = tmp_path / f"run-{count}" / "repo"
    shutil.copytree(project.repo, repo, symlinks=True)
    real = shutil.which("git")
    assert real is not None
    wrapper_dir = tmp_path / f"git-wrapper-{count}"
    wrapper_dir.mkdir()
    (wrapper_dir / "git").write_text(WRAPPER)
    (wrapper_dir / "git").chmod(0o755)
    log = tmp_path / f"git-calls-{count}"
    log.mkdir()
    lines = ["layers:", "  - id: L0", "    features:"]
    lines += [f'      - {{id: s{i}, description: "Build s{i}"}}' for i in range(count)]
    dag = repo / "dag.yaml"
    dag.write_text("\n".join(lines) + "\n")
    env = {
        **os.environ,
        "PATH": f"{wrapper_dir}{os.pathsep}{os.environ['PATH']}",
        "CALLS_LOG_OF_GIT": str(log),
        "REAL_GIT_FOR_TESTS": real,
    }
    argv = [sys.executable, str(pyz), "run", str(dag), *flags]
    done = subprocess.run(argv, cwd=repo, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    records = [call.read_text().split("\x1f")[:-1] for call in log.iterdir()]
    prefix = list(INSULATION_ARGS)
    return [_verb(r[len(prefix) :]) for r in records if r[: len(prefix)] == prefix]


@pytest.mark.slow
@pytest.mark.parametrize("flags", [(), ("--parallel", "--max-parallel", "4")])
def test_a_plain_spec_costs_seven_git_processes_including_its_merge(
    project: Project, pyz: Path, tmp_path: Path, flags: tuple[str, ...]
) -> None:
    project.fake.setenv("STEP_SECONDS", 0)
    small, large = 3, 6
    few = dagspec_calls(pyz, project, tmp_path, small, *flags)
    many = dagspec_calls(pyz, project, tmp_path, large, *flags)
    per_spec = (len(many) - len(few)) / (large - small)
    fixed = len(few) - small * per_spec
    difference = collections.Counter(many)
    difference.subtract(collections.Counter(few))
    expected = collections.Counter({v: n * (large - small) for v, n in PER_SPEC.items()})
    assert +difference == expected, (collections.Counter(few), collections.Counter(many))
    assert per_spec == 7
    print(f"git processes: {per_spec:.0f} per spec, {fixed:.0f} per run ({flags or 'sequential'})")
    # The run's own git work: preflight (its version, identity, signer, base, filters,
    # checkout, branch names, the run ids other checkouts took), what the drive reads once,
    # the merge (9) and the batched clean-up. 37 before the merge read the run's branches
    # once; 31 with the checks of runs from other checkouts and of a signer at a Ctrl-C.
    assert fixed <= 32, collections.Counter(few)


@pytest.mark.slow
def test_a_specs_commit_starts_no_automatic_maintenance(
    project: Project, pyz: Path, tmp_path: Path
) -> None:
    """git's own children count too: ``git commit`` starts ``git maintenance run --auto``
    unless ``maintenance.auto`` is false. Every git process, children included, is seen
    through trace2 (``trace2.eventTarget`` is read from the global configuration only; a
    directory gets one file per process, git-config(1))."""
    project.fake.setenv("STEP_SECONDS", 0)
    traces = tmp_path / "trace2"
    traces.mkdir()
    gitconfig = Path(os.environ["HOME"]) / ".gitconfig"
    gitconfig.write_text(gitconfig.read_text() + f"[trace2]\n\teventTarget = {traces}\n")
    lines = ["layers:", "  - id: L0", "    features:", '      - {id: s0, description: "S0"}']
    (project.repo / "dag.yaml").write_text("\n".join(lines) + "\n")
    done = subprocess.run(
        [sys.executable, str(pyz), "run", "dag.yaml"], cwd=project.repo, capture_output=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    commands = [
        _without_config(event["argv"][1:])
        for trace in traces.iterdir()
        for event in map(json.loads, trace.read_text().splitlines())
        if event["event"] == "start"
    ]
    assert any(c[:1] == ["commit"] for c in commands), commands
    assert not [c for c in commands if c[:1] == ["maintenance"]], commands


def _without_config(argv: list[str]) -> list[str]:
    """A git argv without its leading ``-c NAME=VALUE`` pairs."""
    while argv[:1] == ["-c"]:
        argv = argv[2:]
    return argv
