"""``dag validate`` judges ``execution.copy`` as preflight does: what ``dag run`` would refuse
at its start is an error with the entry's line, a path that is not there a warning."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from dagspec import checks, preflight
from dagspec.dagfile import load_dag
from dagspec.lifecycle import RunOptions
from tests.conftest import ROOT, git

RunCli = Callable[..., int]
COPY_CHECK = "execution.copy paths ignored by git, not tracked"


def _write(repo: Path, ignore: str, entry: str) -> None:
    """A repository with an ignored ``node_modules/``, an untracked ``notes.txt``, a tracked
    ``README.md``, and a DAG whose one copy entry (line 3) is ``entry``."""
    (repo / "node_modules").mkdir()
    (repo / "node_modules" / "x.js").write_text("x\n")
    (repo / "notes.txt").write_text("mine\n")
    (repo / ".gitignore").write_text(ignore)
    (repo / "dag.yaml").write_text(
        f"execution:\n  copy:\n    - {entry}\n"
        'layers:\n  - id: L0\n    features:\n      - {id: a, description: "A"}\n'
    )
    git(repo, "add", ".gitignore", "dag.yaml")
    git(repo, "commit", "-qm", "dag")


def _preflight(repo: Path) -> checks.Problem | None:
    planned = checks.Planned(repo, RunOptions(), load_dag(repo / "dag.yaml"))
    return dict(preflight.results(planned))[COPY_CHECK]


LINKED = "linked (symlink: true), and git does not ignore a link named node_modules"


@pytest.mark.parametrize(
    ("ignore", "entry", "said"),
    [
        # a linked directory: judged as the link the worktree gets
        ("node_modules/\n", "{path: node_modules/, symlink: true}", LINKED),
        ("node_modules/\n", "{path: node_modules, symlink: true}", LINKED),
        ("node_modules\n", "{path: node_modules/, symlink: true}", None),
        ("/node_modules\n", "{path: node_modules, symlink: true}", None),
        # the same directory copied: node_modules/ ignores it
        ("node_modules/\n", "node_modules/", None),
        ("node_modules/\n", "{path: node_modules, symlink: false}", None),
        # tracked: each worktree has it already, linked or copied
        ("node_modules/\n", "README.md", "README.md is tracked by git"),
        ("README.md\n", "{path: README.md, symlink: true}", "README.md is tracked by git"),
        # untracked and not ignored: a copy would be committed
        ("node_modules/\n", "notes.txt", "notes.txt is not ignored by git"),
        # not there and linked: the link would still not be ignored
        ("web_modules/\n", "{path: web_modules, symlink: true}", "web_modules is linked"),
    ],
)
def test_validate_refuses_the_copies_preflight_refuses(
    git_repo: Path,
    run_cli: RunCli,
    capsys: pytest.CaptureFixture[str],
    ignore: str,
    entry: str,
    said: str | None,
) -> None:
    _write(git_repo, ignore, entry)
    found = _preflight(git_repo)
    code = run_cli("validate", "dag.yaml")
    out, err = capsys.readouterr()
    if said is None:
        assert found is None
        assert (code, out, err) == (0, "OK: 1 feature in 1 layer\n", "")
        return
    assert found is not None and found.blocking and said in found.message
    assert code == 1
    assert err == f"dag: error: dag.yaml:3: {found.message}\n"
    assert out == ""


@pytest.mark.parametrize("name", ["config[1].env", "config?.env", "*.env", ":!README.md"])
def test_a_copy_path_is_a_file_name_not_a_pattern(
    git_repo: Path, run_cli: RunCli, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    """A ``[``, ``?``, ``*`` or ``:`` in a copy path is part of the name: the tracked
    ``config1.env`` or ``README.md`` that a pattern would match is not the path given."""
    (git_repo / "config1.env").write_text("tracked\n")
    git(git_repo, "add", "config1.env")
    git(git_repo, "commit", "-qm", "config1")
    _write(git_repo, "*.env\n:*\n", f"'{name}'")
    (git_repo / name).write_text("mine\n")  # ignored by *.env or :*
    assert _preflight(git_repo) is None
    assert run_cli("validate", "dag.yaml") == 0
    assert capsys.readouterr() == ("OK: 1 feature in 1 layer\n", "")


@pytest.mark.parametrize("tracked", [True, False])
def test_a_copy_path_under_a_symbolic_link_is_refused(
    git_repo: Path, run_cli: RunCli, capsys: pytest.CaptureFixture[str], tracked: bool
) -> None:
    """``linkdir/f.env`` with ``linkdir`` a link (committed, so each worktree has it, or
    not): a run failed every spec with a bare FileExistsError; refused before, naming it."""
    (git_repo / "real").mkdir()
    (git_repo / "real" / "f.env").write_text("SECRET=1\n")
    (git_repo / "linkdir").symlink_to("real")
    if tracked:
        git(git_repo, "add", "linkdir")
    _write(git_repo, "*.env\n" + ("" if tracked else "linkdir\n"), "linkdir/f.env")
    found = _preflight(git_repo)
    assert found is not None and found.blocking
    assert "linkdir/f.env is under linkdir, a symbolic link" in found.message
    assert run_cli("validate", "dag.yaml") == 1
    assert capsys.readouterr().err == f"dag: error: dag.yaml:3: {found.message}\n"


@pytest.mark.parametrize(
    ("where", "said"),
    [
        ("uncommitted", ".env is ignored by .gitignore:2, which is not committed"),
        ("committed, then edited", None),
        ("info/exclude", None),
    ],
)
def test_a_copy_ignored_only_by_an_uncommitted_rule_is_refused(
    git_repo: Path, run_cli: RunCli, capsys: pytest.CaptureFixture[str], where: str, said: str
) -> None:
    """Each worktree gets the committed .gitignore: a rule the user has not committed does
    not ignore the copy there, and every spec failed at its start saying to add it."""
    _write(git_repo, "node_modules/\n", ".env")
    (git_repo / ".env").write_text("SECRET=1\n")
    if where == "info/exclude":
        (git_repo / ".git" / "info").mkdir(exist_ok=True)
        (git_repo / ".git" / "info" / "exclude").write_text(".env\n")
    else:
        (git_repo / ".gitignore").write_text("node_modules/\n.env\n")
    if where == "committed, then edited":
        git(git_repo, "commit", "-qam", "ignore .env")
        (git_repo / ".gitignore").write_text("node_modules/\n.env\n*.log\n")
    found = _preflight(git_repo)
    code = run_cli("validate", "dag.yaml")
    err = capsys.readouterr().err
    if said is None:
        assert found is None and (code, err) == (0, "")
        return
    assert found is not None and found.blocking and said in found.message
    assert (code, err) == (1, f"dag: error: dag.yaml:3: {found.message}\n")


def test_a_copy_path_that_is_not_there_is_a_warning(
    git_repo: Path, run_cli: RunCli, capsys: pytest.CaptureFixture[str]
) -> None:
    """Preflight warns and the run goes on; validate says the same and OK, even --quiet."""
    _write(git_repo, "node_modules/\n.evn\n", ".evn")
    found = _preflight(git_repo)
    assert found is not None and not found.blocking
    warning = f"dag: warning: dag.yaml:3: {found.message}\n"
    assert run_cli("validate", "dag.yaml") == 0
    assert capsys.readouterr() == ("OK: 1 feature in 1 layer\n", warning)
    assert run_cli("validate", "dag.yaml", "--quiet") == 0
    assert capsys.readouterr() == ("", warning)
    assert run_cli("validate", "dag.yaml", "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["valid"] and report["errors"] == []
    assert report["warnings"] == [{"file": "dag.yaml", "line": 3, "message": found.message}]


@pytest.mark.slow  # validate, then preflight twice
def test_every_copy_entry_is_named_with_its_line(
    git_repo: Path, run_cli: RunCli, capsys: pytest.CaptureFixture[str]
) -> None:
    """Validate names each entry, errors first; preflight names every one too, with the
    same line (it stopped at the first refusal: a user fixed one path per run)."""
    _write(git_repo, "node_modules/\n", "{path: node_modules, symlink: true}")
    text = (git_repo / "dag.yaml").read_text()
    text = text.replace("true}\n", "true}\n    - .evn\n    - notes.txt\n    - README.md\n")
    (git_repo / "dag.yaml").write_text(text)
    assert run_cli("validate", "dag.yaml") == 1
    said = capsys.readouterr().err.splitlines()
    assert [line.split(": execution.copy: ")[0] for line in said] == [
        "dag: error: dag.yaml:3",
        "dag: error: dag.yaml:5",
        "dag: error: dag.yaml:6",
        "dag: warning: dag.yaml:4",
    ]
    assert run_cli("run", "dag.yaml") == 1
    refused = [line for line in capsys.readouterr().err.splitlines() if "execution.copy" in line]
    assert refused == said[3:] + said[:3]  # a refused run's warnings come before its errors
    assert not (git_repo / ".autospec" / "state").exists()
    assert run_cli("run", "dag.yaml", "--dry-run") == 1
    rows = [line.split() for line in capsys.readouterr().out.splitlines() if ": execution" in line]
    assert [row[:2] for row in rows] == [
        ["error", "dag.yaml:3:"],
        ["warning", "dag.yaml:4:"],
        ["error", "dag.yaml:5:"],
        ["error", "dag.yaml:6:"],
    ]


def test_copies_of_a_subdirectory_are_judged_from_the_top_of_the_checkout(
    git_repo: Path,
    run_cli: RunCli,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``execution.copy`` paths are relative to the top of the checkout, wherever validate
    is started, and ``--repo`` may name a directory inside it."""
    _write(git_repo, "node_modules/\n", "{path: node_modules, symlink: true}")
    (git_repo / "sub").mkdir()
    monkeypatch.chdir(git_repo / "sub")
    assert run_cli("validate", "../dag.yaml") == 1
    assert "dag.yaml:3: execution.copy: node_modules is linked" in capsys.readouterr().err
    monkeypatch.chdir(git_repo.parent)
    assert run_cli("validate", "repo/dag.yaml", "--repo", "repo/sub") == 1
    assert "dag.yaml:3: execution.copy: node_modules is linked" in capsys.readouterr().err


def test_outside_a_repository_copies_are_not_judged(
    tmp_path: Path, run_cli: RunCli, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without a checkout there is nothing to copy from; `dag run` needs one anyway."""
    (tmp_path / "dag.yaml").write_text(
        "execution:\n  copy: [{path: node_modules, symlink: true}]\n"
        'layers:\n  - id: L0\n    features:\n      - {id: a, description: "A"}\n'
    )
    assert run_cli("validate", tmp_path / "dag.yaml", "--repo", tmp_path) == 0
    assert capsys.readouterr() == ("OK: 1 feature in 1 layer\n", "")


@pytest.mark.slow
def test_validate_of_copies_imports_neither_trio_nor_the_preflight(git_repo: Path) -> None:
    """``dag validate`` stays quick to start (bench/startup): its copy checks are
    ``copy_checks``, not preflight's module of every check, which needs the run's state."""
    _write(git_repo, "node_modules/\n", "{path: node_modules, symlink: true}")
    code = (
        "import sys; from dagspec.cli import main\n"
        "assert main(['validate', 'dag.yaml']) == 1\n"
        "loaded = {'trio', 'dagspec.checks', 'dagspec.state'} & set(sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=git_repo,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert "node_modules is linked" in done.stderr.decode()
