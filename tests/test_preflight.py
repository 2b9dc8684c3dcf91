"""Preflight (issue 12): what would stop a run is refused before anything is written.

Each refusal is checked end to end through ``dag run`` in a real repository: exit 1, one
``dag: error:`` line per problem, and no state file, no worktree, no branch afterwards.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from dagspec import checks, preflight
from dagspec import git as dgit
from dagspec.dagfile import load_dag
from dagspec.lifecycle import RunOptions, SpecStatus
from dagspec.state import utcnow
from dagspec.workspace import check_run_id, new_run_id
from tests.conftest import git, signing_leftovers
from tests.engine_support import Project, branches, dag_text
from tests.run_states import run, save, spec

pytest_plugins = ("tests.engine_fixtures",)
pytestmark = pytest.mark.slow  # each starts git a dozen times and autospec once
RunCli = Callable[..., int]


def nothing_written(project: Project) -> bool:
    """No run recorded, no worktree root, no branch but main."""
    root = project.repo.parent / f"{project.repo.name}.worktrees"
    runs = project.repo / ".autospec" / "state" / "dag-runs"
    return not runs.exists() and not root.exists() and branches(project.repo) == ["main"]


def refused(
    project: Project, run_cli: RunCli, capsys: pytest.CaptureFixture[str], *args: str
) -> str:
    """``dag run dag.yaml --run-id r ARGS`` is refused with nothing written; its stderr."""
    assert run_cli("run", "dag.yaml", "--run-id", "r", *args) == 1
    err = capsys.readouterr().err
    assert err.startswith("dag: error: ") and "Traceback" not in err
    assert all(line.startswith("dag: error: ") for line in err.splitlines())
    assert nothing_written(project)
    return err


def old_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shown: str) -> None:
    """A ``git`` first on PATH that says it is ``shown`` and, like git 2.34, does not know
    ``merge-tree --write-tree`` or ``worktree list -z``; everything else is the real git."""
    real = dgit.run(tmp_path, "--exec-path").strip()
    wrapper = tmp_path / "old-git" / "git"
    wrapper.parent.mkdir()
    wrapper.write_text(
        "#!/bin/sh\n"
        'for a in "$@"; do case "$a" in\n'
        f"  --version) echo {shlex.quote(shown)}; exit 0;;\n"
        "  --write-tree|-z) echo \"error: unknown switch '$a'\" >&2; exit 129;;\n"
        "esac; done\n"
        f'exec {shlex.quote(real)}/git "$@"\n'
    )
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{wrapper.parent}{os.pathsep}{os.environ['PATH']}")


# --- git, identity, signer, autospec, base branch --------------------------------------------


@pytest.mark.parametrize("shown", ["git version 2.34.1", "git version 2.37.0.windows.1"])
def test_a_git_older_than_2_38_is_refused_naming_the_version_needed(
    project: Project,
    run_cli: RunCli,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    shown: str,
) -> None:
    project.write_dag(dag_text("a"))
    old_git(tmp_path, monkeypatch, shown)
    err = refused(project, run_cli, capsys)
    assert "is too old: dagspec needs git 2.38 or newer" in err
    assert err.count("\n") == 1  # the checks that need git are not made


def test_an_old_git_is_named_by_commands_that_do_not_preflight(
    git_repo: Path,
    run_cli: RunCli,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``dag cleanup`` on git 2.34 died on ``worktree list -z`` with git's usage text."""
    save(run(git_repo, "r", spec("a", SpecStatus.FAILED)))
    old_git(tmp_path, monkeypatch, "git version 2.34.1")
    assert run_cli("cleanup", "r") == 1
    err = capsys.readouterr().err
    assert err == (
        "dag: error: git 2.34.1 is too old: dagspec needs git 2.38 or newer "
        "(for `git merge-tree --write-tree`); install a newer git\n"
    )


@pytest.mark.parametrize("apple", [True, False])
def test_versions_are_read_from_what_git_prints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, apple: bool
) -> None:
    shown = "git version 2.39.3 (Apple Git-146)" if apple else "git version 2.45.0.rc1"
    old_git(tmp_path, monkeypatch, shown)
    assert dgit.version(tmp_path) == ((2, 39, 3) if apple else (2, 45, 0))


@pytest.mark.parametrize("how", ["no config", "useConfigOnly", "no name"])
def test_no_committer_identity_is_refused(
    project: Project,
    run_cli: RunCli,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    how: str,
) -> None:
    """A fresh container or CI runner: every agent would run, then dagspec's commit fail."""
    home = tmp_path / "bare-home"
    home.mkdir()
    config = {
        "no config": "",
        "useConfigOnly": "[user]\n\tuseConfigOnly = true\n\tname = Someone\n",
        "no name": "[user]\n\temail = a@example.com\n\tname = \n",
    }[how]
    (home / ".gitconfig").write_text(config)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("EMAIL", "") if how == "useConfigOnly" else None
    project.write_dag(dag_text("a"))
    err = refused(project, run_cli, capsys)
    assert "git has no author or committer identity: set one with `git config --global" in err


def test_a_signer_that_cannot_sign_is_refused(
    project: Project,
    run_cli: RunCli,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    own_tmpdir: Path,
) -> None:
    git(project.repo, "config", "commit.gpgsign", "true")
    git(project.repo, "config", "gpg.format", "ssh")
    git(project.repo, "config", "user.signingkey", str(tmp_path / "no-such-key"))
    project.write_dag(dag_text("a"))
    err = refused(project, run_cli, capsys)
    assert "commit.gpgSign is on but git cannot sign a commit (" in err
    assert signing_leftovers(own_tmpdir) == []  # git's signing buffer, in $TMPDIR


@pytest.mark.parametrize("given", ["/no/such/autospec", "README.md"])
def test_an_autospec_that_is_not_there_or_not_executable_is_refused(
    project: Project, run_cli: RunCli, capsys: pytest.CaptureFixture[str], given: str
) -> None:
    project.write_dag(dag_text("a"))
    err = refused(project, run_cli, capsys, "--autospec", given)
    assert "was not found or is not executable: install autospec" in err


def test_an_autospec_that_does_not_answer_its_version_is_refused(
    project: Project, run_cli: RunCli, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    broken = tmp_path / "broken-autospec"
    broken.write_text("#!/bin/sh\nexit 3\n")
    broken.chmod(0o755)
    project.write_dag(dag_text("a"))
    err = refused(project, run_cli, capsys, "--autospec", str(broken))
    assert "--version` failed with exit code 3" in err


def _autospec_saying(tmp_path: Path, body: str) -> Path:
    script = tmp_path / "bin" / "autospec"
    script.parent.mkdir(exist_ok=True)
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)
    return script


@pytest.mark.parametrize(
    ("body", "what"),
    [
        ("exit 0", "printed no version (it exited 0 with nothing on stdout)"),
        (
            "echo 'autospec 0.10.4' >&2",
            "printed no version (it exited 0 with nothing on stdout; on stderr: 'autospec 0.10.4')",
        ),
        ("echo 'Usage: foo [options]'", "printed 'Usage: foo [options]', which names no"),
        ("echo 'Python 3.11.7'", "printed 'Python 3.11.7', which names no autospec version"),
        (  # not UTF-8, a colour and a NUL: shown escaped, never acting on the terminal
            r"printf '\377\033[31mgarb\000age\n'",
            r"printed '\xff\x1b[31mgarb\x00age', which names no",
        ),
        (
            "exec yes autospec",
            "printed more than 64 KiB without ending (it had printed 'autospec' on stdout)",
        ),
        (
            "echo 'autospec version v-1.0.0'",
            "printed 'autospec version v-1.0.0', whose version 'v-1.0.0' is not one (such as "
            "v0.10.4 or 0.10.4-rc1)",
        ),
        (
            "echo 'autospec 12345678901234567890123.0.0'",
            "printed 'autospec 12345678901234567890123.0.0', whose version "
            "'12345678901234567890123.0.0' is not one",
        ),
        (
            r"printf 'autospec version v0.10.4\000\n'",
            r"printed 'autospec version v0.10.4\x00', which holds a control character",
        ),
        (  # read as 0.10 with a replacement character: below 0.10.4, the old contract
            r"printf 'autospec version v0.10.\3774\n'",
            r"printed 'autospec version v0.10.\xff4', which is not UTF-8",
        ),
        (
            f"echo 'autospec version v0.10.4 {'x' * 200}'",
            "printed 'autospec version v0.10.4 xxx",
        ),
        ("kill -9 $$", "was killed by SIGKILL"),
        ("echo 'unknown flag: --version' >&2; exit 2", "failed with exit code 2 ('unknown flag"),
    ],
    ids=[
        *("empty", "stderr", "garbage", "another", "not-utf8", "endless", "v-1.0.0", "23-digits"),
        *("nul", "not-utf8-version", "too-long", "killed", "fails"),
    ],
)
def test_an_autospec_whose_version_answer_is_not_one_is_refused_saying_what_it_did(
    project: Project,
    run_cli: RunCli,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    body: str,
    what: str,
) -> None:
    script = _autospec_saying(tmp_path, body)
    project.write_dag(dag_text("a"))
    err = refused(project, run_cli, capsys, "--autospec", str(script))
    assert err.startswith(f"dag: error: `{script} --version` {what}"), err
    assert err.endswith(": is it autospec? Name the right one with --autospec\n")
    assert err.count("\n") == 1 and err[:-1].isprintable()  # one line, nothing acting on a tty


@pytest.mark.parametrize(
    ("start", "answer", "said"),
    [
        ("sleep 1000 & echo $! >> {child}", "wait", "nothing on stdout"),
        (  # in a session of its own: the kill of the version command's group missed it
            "setsid sh -c 'echo $$ >> {child}; exec sleep 1000' &",
            "echo 'autospec vers'; wait",
            "'autospec vers' on stdout",
        ),
        ("setsid sh -c 'echo $$ >> {child}; exec sleep 1000' &", "echo 'autospec 0.10.4'", ""),
    ],
    ids=["child", "setsid-child", "setsid-child-of-an-answer"],
)
def test_an_autospec_version_ends_all_it_started_and_a_hang_says_what_it_printed(
    project: Project,
    run_cli: RunCli,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    start: str,
    answer: str,
    said: str,
) -> None:
    """It and the child it waits for, which holds its output, are ended after the time
    allowed (shortened here), and so is a child that left its session; nothing of it is
    left running, whether it answered or not."""
    from dagspec import executable
    from tests.engine_support import pid_alive
    from tests.fake_autospec_fixture import wait_for

    monkeypatch.setattr(executable, "_VERSION_TIMEOUT", 0.5)
    child = tmp_path / "child"
    script = _autospec_saying(tmp_path, f"{start.format(child=child)}\n{answer}")
    project.write_dag(dag_text("a"))
    try:
        if said:
            err = refused(project, run_cli, capsys, "--autospec", str(script))
            assert err == (
                f"dag: error: `{script} --version` did not answer in 0.5 s (it had printed "
                f"{said}): is it autospec? Name the right one with --autospec\n"
            )
        else:
            assert run_cli("run", "dag.yaml", "--dry-run", "--autospec", str(script)) == 0
        wait_for(child.exists, timeout=10, what="its child started")
        children = [int(pid) for pid in child.read_text().split()]
        wait_for(lambda: not any(map(pid_alive, children)), timeout=5, what="its children ended")
    finally:  # never left running, even when the test fails
        for pid in map(int, child.read_text().split() if child.exists() else []):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize(
    ("body", "recorded"),
    [
        ("echo 'note: shim updated'; echo 'autospec version v0.7.3'", "autospec version v0.7.3"),
        ("echo 'autospec version dev'", "autospec version dev"),
        ("echo v0.10.4", "v0.10.4"),
        ("sleep 1000 & echo 'autospec 0.10.4'", "autospec 0.10.4"),  # its child holds stdout
    ],
    ids=["after-a-notice", "dev-build", "bare", "child-left"],
)
def test_the_line_naming_autospec_is_its_version(
    project: Project,
    run_cli: RunCli,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    body: str,
    recorded: str,
) -> None:
    script = _autospec_saying(tmp_path, body)
    project.write_dag(dag_text("a"))
    assert run_cli("run", "dag.yaml", "--dry-run", "--autospec", str(script)) == 0
    assert f"\nautospec: {recorded}" in capsys.readouterr().out


def test_a_branch_without_a_commit_is_refused(
    tmp_path: Path,
    fake_autospec: object,
    run_cli: RunCli,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    repo = tmp_path / "fresh"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    monkeypatch.chdir(repo)
    (repo / "dag.yaml").write_text(dag_text("a"))
    assert run_cli("run", "dag.yaml") == 1
    assert "the branch 'main' has no commit yet: commit something first" in capsys.readouterr().err
    assert not (repo / ".autospec").exists() and not (tmp_path / "fresh.worktrees").exists()


# --- paths ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "plant",
    [
        pytest.param(lambda p: p.write_text("mine\n"), id="file"),
        pytest.param(lambda p: p.mkdir(), id="empty-dir"),
        pytest.param(lambda p: p.symlink_to(p.parent / "nowhere"), id="dangling-link"),
        pytest.param(lambda p: p.symlink_to(p.parent.parent), id="link-to-dir"),
    ],
)
def test_anything_at_a_planned_worktree_path_is_refused_and_left_alone(
    project: Project,
    run_cli: RunCli,
    capsys: pytest.CaptureFixture[str],
    plant: Callable[[Path], None],
) -> None:
    project.write_dag(dag_text("a", "b"))
    path = project.worktree("b")
    path.parent.mkdir(parents=True)
    plant(path)
    before = sorted(path.parent.iterdir())
    assert run_cli("run", "dag.yaml", "--run-id", "r") == 1
    err = capsys.readouterr().err
    assert err == (
        f"dag: error: {path} already there, where this run's worktrees go: dagspec never "
        "writes into or removes what it did not make; move it away, or use another "
        "--worktree-root or --run-id\n"
    )
    assert sorted(path.parent.iterdir()) == before and os.path.lexists(path)
    assert not (project.repo / ".autospec" / "state").exists()
    assert branches(project.repo) == ["main"]


def test_a_symlinked_run_directory_is_refused(
    project: Project, run_cli: RunCli, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """In a shared, world-writable root another user could plant ``<root>/<run-id>``."""
    project.write_dag(dag_text("a"))
    (tmp_path / "theirs").mkdir()
    root = tmp_path / "shared"
    root.mkdir()
    (root / "r").symlink_to(tmp_path / "theirs")
    err = refused(project, run_cli, capsys, "--worktree-root", str(root))
    assert f"{root / 'r'} already there" in err
    assert list((tmp_path / "theirs").iterdir()) == []


@pytest.mark.parametrize("where", ["wt", ".autospec/wt", "specs/../wt"])
def test_a_worktree_root_inside_the_repository_is_refused(
    project: Project, run_cli: RunCli, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    project.write_dag(dag_text("a"))
    err = refused(project, run_cli, capsys, "--worktree-root", str(project.repo / where))
    assert "is inside the repository" in err
    assert not (project.repo / where).exists()


def test_a_worktree_root_that_cannot_be_made_is_refused(
    project: Project, run_cli: RunCli, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "a-file").write_text("x\n")
    project.write_dag(dag_text("a"))
    err = refused(project, run_cli, capsys, "--worktree-root", str(tmp_path / "a-file" / "wt"))
    assert "cannot be written" in err


def test_a_spec_directory_that_leads_outside_the_repository_is_refused(
    project: Project, run_cli: RunCli, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (project.repo / "specs").mkdir(exist_ok=True)
    (project.repo / "specs" / "a").symlink_to(outside)
    git(project.repo, "add", "specs/a")
    git(project.repo, "commit", "-qm", "a committed symlink")
    project.write_dag(dag_text("a"))
    err = refused(project, run_cli, capsys)
    assert "specs/a leads outside the repository through a symlink" in err
    assert list(outside.iterdir()) == []


def test_a_spec_number_ledger_that_cannot_be_written_is_refused_before_any_worktree(
    project: Project, run_cli: RunCli, capsys: pytest.CaptureFixture[str]
) -> None:
    """Else every spec fails at its specify, each worktree made first."""
    ledger = project.repo / ".git" / "dagspec-spec-numbers"
    ledger.mkdir()
    project.write_dag(dag_text("a"))
    err = refused(project, run_cli, capsys)
    assert err == (
        f"dag: error: cannot read or write {ledger} (not a file), where the runs of this "
        "repository write down what they took so that runs at once never take the same: "
        "make it a file dagspec can write\n"
    )


@pytest.mark.parametrize("run_id", [None, "given"])
@pytest.mark.parametrize("where", ["state/dag-runs", "state"])
def test_a_file_where_the_runs_state_directory_goes_is_refused_in_one_line(
    project: Project,
    run_cli: RunCli,
    capsys: pytest.CaptureFixture[str],
    where: str,
    run_id: str | None,
) -> None:
    """Not a bug in dagspec (``FileExistsError`` from the claim of a made run id,
    ``NotADirectoryError`` with ``--run-id``): the file named, and nothing written."""
    blocking = project.repo / ".autospec" / where
    blocking.parent.mkdir(parents=True, exist_ok=True)
    blocking.write_text("mine\n")
    project.write_dag(dag_text("a"))
    given = ["--run-id", run_id] if run_id else []
    assert run_cli("run", "dag.yaml", *given) == 1
    err = capsys.readouterr().err
    assert err == (
        f"dag: error: {blocking} is a file, where dagspec keeps the state of the runs of this "
        "repository (in .autospec/state/dag-runs/): move the file away\n"
    )
    assert blocking.read_text() == "mine\n"
    assert branches(project.repo) == ["main"]
    assert not (project.repo.parent / f"{project.repo.name}.worktrees").exists()


@pytest.mark.parametrize(
    ("path", "said"),
    [
        ("notes.txt", "notes.txt is not ignored by git, so a copy would be committed"),
        ("tools/", "tools is not ignored by git"),
        ("README.md", "README.md is tracked by git, so each worktree has it already"),
    ],
)
def test_an_execution_copy_path_that_would_be_committed_is_refused_before_the_run(
    project: Project,
    run_cli: RunCli,
    capsys: pytest.CaptureFixture[str],
    path: str,
    said: str,
) -> None:
    """Every spec would fail at its start (``setup.copy_paths``); say so before any starts."""
    (project.repo / "notes.txt").write_text("mine\n")
    (project.repo / "tools").mkdir()
    (project.repo / "tools" / "x.sh").write_text("echo\n")
    (project.repo / "README.md").write_text("readme\n")
    git(project.repo, "add", "README.md")
    git(project.repo, "commit", "-qm", "readme")
    project.write_dag(dag_text("a", extra=f'execution:\n  copy: ["{path}"]'))
    assert said in refused(project, run_cli, capsys)


def _ignore(project: Project, rules: str) -> None:
    """Commit ``rules`` as .gitignore: each worktree has the committed rules only."""
    (project.repo / ".gitignore").write_text(rules)
    git(project.repo, "add", ".gitignore")
    git(project.repo, "commit", "-qm", "ignore")


def test_an_ignored_execution_copy_path_passes(project: Project) -> None:
    (project.repo / ".env").write_text("SECRET=1\n")
    _ignore(project, ".env\n")
    project.write_dag(dag_text("a", extra='execution:\n  copy: [".env"]'))
    planned = checks.Planned(project.repo, RunOptions(), load_dag(project.repo / "dag.yaml"))
    found = dict(preflight.results(planned))
    assert found["execution.copy paths ignored by git, not tracked"] is None


@pytest.mark.parametrize(
    ("ignore", "refused"),
    [
        ("node_modules/\n", True),  # the directory is ignored; a link named so is not
        ("node_modules\n", False),
        ("/node_modules\n", False),
        ("*_modules\n", False),
        ("web/\n", False),  # the link lies inside an ignored directory: ignored too
    ],
)
def test_a_linked_copy_is_judged_as_the_link_the_worktree_gets(
    project: Project,
    run_cli: RunCli,
    capsys: pytest.CaptureFixture[str],
    ignore: str,
    refused: bool,
) -> None:
    """``{path: node_modules, symlink: true}`` with ``node_modules/`` in .gitignore: a
    worktree's link is not a directory, so every spec would fail at its start with "not
    ignored by git in the worktree"; preflight and ``--dry-run`` say so first."""
    nested = ignore == "web/\n"
    where = "web/node_modules" if nested else "node_modules"
    (project.repo / where).mkdir(parents=True)
    (project.repo / where / "x.js").write_text("x\n")
    _ignore(project, ignore)
    copy = f'execution:\n  copy: [{{path: "{where}", symlink: true}}]'
    project.write_dag(dag_text("a", extra=copy))
    planned = checks.Planned(project.repo, RunOptions(), load_dag(project.repo / "dag.yaml"))
    problem = dict(preflight.results(planned))["execution.copy paths ignored by git, not tracked"]
    if not refused:
        assert problem is None
        return
    assert problem is not None and problem.blocking
    assert problem.message == (
        "execution.copy: node_modules is linked (symlink: true), and git does not ignore a "
        "link named node_modules, so every spec would fail at its start: 'node_modules/' "
        "(.gitignore:1) matches only a directory, not a link: drop its trailing '/', or "
        "remove symlink: true"
    )
    assert run_cli("run", "dag.yaml", "--dry-run") == 1
    assert (
        "dag: error: dag.yaml:4: execution.copy: node_modules is linked" in capsys.readouterr().err
    )


LINK_NOT_IGNORED = (
    "execution.copy: node_modules is linked (symlink: true), and git does not ignore a link "
    "named node_modules, so every spec would fail at its start: "
)


@pytest.mark.parametrize(
    ("committed", "excluded", "what_to_do"),
    [
        # no rule names it at all: nothing about a trailing '/'
        ("", "", "add 'node_modules' to .gitignore, or remove it from execution.copy"),
        ("node_modules/*\n", "", "add 'node_modules' to .gitignore, or remove it from "),
        # the rule that ignores only the directory, wherever it is
        ("# deps\n**/node_modules/\n", "", "'**/node_modules/' (.gitignore:2) matches only"),
        ("", "node_modules/\n", "'node_modules/' (.git/info/exclude:1) matches only a "),
    ],
)
def test_a_linked_copy_not_ignored_is_told_only_the_rule_that_applies(
    project: Project, committed: str, excluded: str, what_to_do: str
) -> None:
    """The message said "write it without a trailing '/' in .gitignore" also where no
    pattern with one (or no .gitignore at all) was involved."""
    (project.repo / "node_modules").mkdir()
    (project.repo / "node_modules" / "x.js").write_text("x\n")
    if committed:
        _ignore(project, committed)
    (project.repo / ".git" / "info").mkdir(exist_ok=True)
    (project.repo / ".git" / "info" / "exclude").write_text(excluded)
    project.write_dag(
        dag_text("a", extra='execution:\n  copy: [{path: "node_modules", symlink: true}]')
    )
    planned = checks.Planned(project.repo, RunOptions(), load_dag(project.repo / "dag.yaml"))
    problem = dict(preflight.results(planned))["execution.copy paths ignored by git, not tracked"]
    assert problem is not None and problem.blocking
    assert problem.message.startswith(LINK_NOT_IGNORED + what_to_do)
    assert ("trailing '/'" in problem.message) == ("matches only" in what_to_do)


def test_an_execution_copy_path_that_is_not_there_is_a_warning(project: Project) -> None:
    """A typo (``.evn``) would only show as a line in each spec's log, hours later."""
    (project.repo / ".env").write_text("SECRET=1\n")
    _ignore(project, ".env\n")
    project.write_dag(dag_text("a", extra='execution:\n  copy: [".env", ".evn"]'))
    planned = checks.Planned(project.repo, RunOptions(), load_dag(project.repo / "dag.yaml"))
    problem = dict(preflight.results(planned))["execution.copy paths ignored by git, not tracked"]
    assert problem is not None and not problem.blocking
    assert problem.message == (
        f"execution.copy: .evn not in {project.repo}: nothing of it will be copied (a typo?)"
    )


def test_the_dry_run_lists_only_the_copies_that_are_there(
    project: Project, run_cli: RunCli, capsys: pytest.CaptureFixture[str]
) -> None:
    """The warning says .evn will not be copied; the plan below it must not list it."""
    (project.repo / ".env").write_text("SECRET=1\n")
    _ignore(project, ".env\n.evn\n")
    dag = project.write_dag(dag_text("a", extra='execution:\n  copy: [".env", ".evn"]'))
    assert run_cli("run", str(dag), "--dry-run") == 0
    out = capsys.readouterr().out
    assert "copied into each worktree (gitignored, never committed): .env\n" in out


# --- names ----------------------------------------------------------------------------------


def test_ids_differing_only_by_case_are_refused(
    project: Project, run_cli: RunCli, capsys: pytest.CaptureFixture[str]
) -> None:
    project.write_dag(dag_text("auth", "Auth"))
    err = refused(project, run_cli, capsys)
    assert "feature id 'Auth' differs from 'auth' (line " in err and "only by case" in err


@pytest.mark.parametrize(
    ("taken", "said"),
    [
        ("dag", "a branch named 'dag' is in the way of dagspec's branches dag/<run>/<spec>"),
        ("dag/r", "the branch names this run needs are taken (dag/r)"),
        ("dag/r/a", "the branch names this run needs are taken (dag/r/a)"),
    ],
)
def test_a_branch_in_the_way_of_the_run_s_branches_is_refused(
    project: Project, run_cli: RunCli, capsys: pytest.CaptureFixture[str], taken: str, said: str
) -> None:
    git(project.repo, "branch", taken)
    project.write_dag(dag_text("a"))
    assert run_cli("run", "dag.yaml", "--run-id", "r") == 1
    err = capsys.readouterr().err
    assert said in err
    assert branches(project.repo) == sorted(["main", taken])
    assert not (project.repo / ".autospec" / "state").exists()


@pytest.mark.parametrize(
    ("name", "expected"),
    [("Données 2026/Q1", "donn-es-2026-q1-"), ("功能", "dag-"), ("../../etc", "etc-")],
)
def test_run_ids_from_any_dag_name_are_safe(name: str, expected: str, git_repo: Path) -> None:
    run_id = new_run_id(name, utcnow())
    assert run_id.startswith(expected) and check_run_id(run_id) == run_id


def test_every_problem_is_reported_in_one_pass(
    project: Project, run_cli: RunCli, capsys: pytest.CaptureFixture[str]
) -> None:
    git(project.repo, "branch", "dag/r/a")
    project.write_dag(dag_text("a"))
    (project.repo.parent / f"{project.repo.name}.worktrees" / "r" / "a").mkdir(parents=True)
    assert run_cli("run", "dag.yaml", "--run-id", "r", "--autospec", "/no/such/autospec") == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 3 and all(line.startswith("dag: error: ") for line in err)
    assert "autospec" in err[0] and "already there" in err[1] and "branch names" in err[2]


# --- dry run, doctor, warnings --------------------------------------------------------------


def test_dry_run_shows_every_check_and_stops_on_a_problem(
    project: Project, run_cli: RunCli, capsys: pytest.CaptureFixture[str]
) -> None:
    project.write_dag(dag_text("a"))
    git(project.repo, "branch", "dag/r")
    assert run_cli("run", "dag.yaml", "--dry-run", "--run-id", "r") == 1
    out, err = capsys.readouterr()
    assert out.splitlines()[:3] == [
        "preflight:",
        "  ok       git 2.38 or newer",
        "  ok       a committer identity",
    ]
    assert "  error    the branch names this run needs are taken (dag/r)" in out
    assert "the branch names this run needs are taken" in err
    assert "--notify" not in out  # none given: nothing of it checked, nothing said
    git(project.repo, "branch", "-D", "dag/r")
    assert nothing_written(project)


def test_dry_run_says_the_notify_program_was_checked_only_when_given(
    project: Project, run_cli: RunCli, capsys: pytest.CaptureFixture[str]
) -> None:
    project.write_dag(dag_text("a"))
    assert run_cli("run", "dag.yaml", "--dry-run", "--run-id", "r", "--notify", "true") == 0
    assert "  ok       the program of --notify\n" in capsys.readouterr().out


def test_doctor_without_a_dag_checks_the_machine_and_the_repository(
    project: Project, run_cli: RunCli, capsys: pytest.CaptureFixture[str]
) -> None:
    (project.repo / ".gitignore").write_text(".autospec/\n")
    assert run_cli("doctor") == 0
    out = capsys.readouterr().out
    # named, with its version, as `run --dry-run` does: which one a run would take
    assert f"  ok       the autospec executable: {project.fake.path} (autospec " in out
    assert "  ok       .autospec/ ignored by git\n" in out
    assert "error" not in out and "warning" not in out
    assert "worktree paths free" not in out  # a run's checks need its DAG file
    assert run_cli("doctor", "--autospec", "/no/such/autospec") == 1
    assert "  error    the autospec executable '/no/such/autospec'" in capsys.readouterr().out
    assert nothing_written(project)


def test_doctor_says_once_that_autospec_s_directory_is_not_ignored(
    project: Project, run_cli: RunCli, capsys: pytest.CaptureFixture[str]
) -> None:
    """README says to ignore .autospec/; doctor passed while `git status` showed
    `?? .autospec/` for good. A warning (exit 0) with the line that fixes it; `dag run`'s
    preflight does not ask (it would cost a git process)."""
    assert run_cli("doctor") == 0
    out = capsys.readouterr().out
    assert out.count("not ignored") == 1
    assert (
        "  warning  .autospec/ is not ignored by git, so `git status` shows it untracked (run "
        "records and all) and `git add -A` would commit it: `echo .autospec/ >> .gitignore`\n"
    ) in out
    with (project.repo / ".gitignore").open("a") as ignore:
        ignore.write(".autospec/\n")
    assert run_cli("doctor") == 0
    assert "warning" not in capsys.readouterr().out


def test_doctor_before_autospec_s_directory_exists_says_whether_git_will_ignore_it(
    project: Project, run_cli: RunCli, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without `.autospec/` yet, doctor said `ok .autospec/ ignored by git`, and warned that
    it is not as soon as the constitution was copied in."""
    shutil.rmtree(project.repo / ".autospec")
    assert run_cli("doctor") == 1  # no constitution
    out = capsys.readouterr().out
    assert "  ok       .autospec/ ignored by git" not in out
    assert "  warning  .autospec/ is not there yet, and git will not ignore it" in out
    assert "`echo .autospec/ >> .gitignore`\n" in out
    (project.repo / ".gitignore").write_text(".autospec/\n")
    assert run_cli("doctor") == 1
    out = capsys.readouterr().out
    assert "  ok       .autospec/ ignored by git\n" in out
    assert "warning" not in out


@pytest.mark.parametrize("how", ["ignored link", "committed"])
def test_doctor_asks_git_status_whether_autospec_s_directory_shows(
    project: Project, run_cli: RunCli, capsys: pytest.CaptureFixture[str], how: str
) -> None:
    """`git check-ignore .autospec/` said "not ignored" of a link ignored by its name
    (`.autospec`, which `.autospec/` does not match) and of a committed directory (README:
    that works too), though `git status` shows neither: doctor warned of both."""
    if how == "ignored link":
        (project.repo / ".autospec").rename(project.repo / ".autospec-home")
        (project.repo / ".autospec").symlink_to(".autospec-home")
        (project.repo / ".gitignore").write_text(".autospec\n.autospec-home/\n")
    else:
        git(project.repo, "add", ".autospec")
        git(project.repo, "commit", "-q", "-m", "autospec's files")
    assert run_cli("doctor") == 0
    out = capsys.readouterr().out
    assert "  ok       .autospec/ ignored by git\n" in out
    assert "warning" not in out
    if how == "ignored link":  # a link the directory's pattern misses: told the name's
        (project.repo / ".gitignore").write_text(".autospec/\n.autospec-home/\n")
        said = "shows it untracked (run records and all) and `git add -A` would commit it: "
        fix = "`echo .autospec >> .gitignore`"
    else:  # a file of it neither committed nor ignored
        (project.repo / ".autospec" / "scratch").write_text("x\n")
        said = "has files git neither tracks nor ignores, so `git status` shows .autospec/scr"
        fix = "atch untracked and `git add -A` would commit it: ignore them (or all of .autospec"
    assert run_cli("doctor") == 0
    out = capsys.readouterr().out
    assert out.count("  warning  .autospec/ ") == 1
    assert said in out and fix in out


def test_doctor_with_a_dag_checks_its_names_too(
    project: Project, run_cli: RunCli, capsys: pytest.CaptureFixture[str]
) -> None:
    project.write_dag(dag_text("x"))
    git(project.repo, "branch", "dag")
    assert run_cli("doctor", "dag.yaml") == 1
    out = capsys.readouterr().out
    assert "  error    a branch named 'dag' is in the way of dagspec's branches" in out
    assert "  ok       worktree paths free\n" in out
    project.write_dag(dag_text("x", "X"))  # what the DAG file's checks refuse: file and line
    assert run_cli("doctor", "dag.yaml") == 1
    assert "dag.yaml:8: feature id 'X' differs from 'x' (line 6) only by case" in (
        capsys.readouterr().err
    )


def test_a_dirty_checkout_is_a_warning_not_a_refusal(project: Project) -> None:
    (project.repo / "README.md").write_text("changed\n")
    planned = checks.Planned(project.repo, RunOptions(), None, "r")
    problems = preflight.check_run(planned)
    assert [(p.blocking, p.message.split(":")[0]) for p in problems] == [
        (False, f"{project.repo} has uncommitted changes on main")
    ]
    assert "wait on dag/r/_merged" in problems[0].message


@pytest.mark.parametrize("dry_run", [False, True])
def test_a_refused_run_says_its_warnings_too_before_its_errors(
    project: Project, run_cli: RunCli, capsys: pytest.CaptureFixture[str], dry_run: bool
) -> None:
    """Only a run that started, or ``--dry-run``'s table, said them: a user who fixed the
    errors met the warnings on the next try."""
    (project.repo / "README.md").write_text("changed\n")
    git(project.repo, "branch", "dag/r")
    project.write_dag(dag_text("a"))
    assert run_cli("run", "dag.yaml", "--run-id", "r", *(["--dry-run"] if dry_run else [])) == 1
    err = capsys.readouterr().err.splitlines()
    assert [line.split(":")[:2] for line in err] == [["dag", " warning"], ["dag", " error"]]
    assert err[0].startswith(f"dag: warning: {project.repo} has uncommitted changes on main")
    assert err[1].startswith("dag: error: the branch names this run needs are taken (dag/r)")


@pytest.mark.parametrize("elsewhere", [None, ".specify/memory/constitution.yml"])
def test_a_repository_without_a_constitution_is_refused(
    project: Project,
    run_cli: RunCli,
    capsys: pytest.CaptureFixture[str],
    elsewhere: str | None,
) -> None:
    (project.repo / ".autospec" / "memory" / "constitution.yaml").unlink()
    project.write_dag(dag_text("a"))
    if elsewhere is None:
        err = refused(project, run_cli, capsys)
        assert "has no autospec constitution (.autospec/memory/constitution.yaml)" in err
    else:
        (project.repo / elsewhere).parent.mkdir(parents=True)
        (project.repo / elsewhere).write_text("constitution: {}\n")
        assert run_cli("doctor", "dag.yaml") == 0
