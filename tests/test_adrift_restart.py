"""``dag retry`` and ``dag resume`` never take up a spec whose commits no branch holds: a
detached ``HEAD`` with commits of its own in its worktree, or its branch deleted under the
worktree (``dagspec.adrift``). Real git, the stand-in autospec, the CLI in-process."""

from __future__ import annotations

import shutil
from collections.abc import Callable

import pytest

from tests.conftest import git
from tests.engine_support import Project, dag_text
from tests.test_adrift import backticked, commit_detached

pytest_plugins = ("tests.engine_fixtures",)
pytestmark = pytest.mark.slow

RunCli = Callable[..., int]


def failed_run(project: Project, run_cli: RunCli) -> None:
    project.fake.control([{"match": "^Build a$", "FAIL_AT": "tasks"}])
    assert run_cli("run", project.write_dag(dag_text("a")), "--run-id", "r") == 1
    project.fake.control([])


def test_retry_and_resume_refuse_a_worktree_whose_detached_head_holds_commits(
    project: Project, run_cli: RunCli, capsys: pytest.CaptureFixture[str]
) -> None:
    """The agent ran in the detached worktree, beside a commit that is not the spec's."""
    failed_run(project, run_cli)
    path = project.worktree("a")
    mine = commit_detached(path, "my fix")
    capsys.readouterr()
    started = len(project.starts())
    for command in (("retry", "r", "a"), ("resume", "r")):
        assert run_cli(*command) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1, err
        assert err.startswith(
            f"dag: error: the worktree {path} of spec a of run r is not on its branch dag/r/a: "
            f"its detached HEAD holds 1 commit on no branch ({mine[:7]} my fix): "
            f"`git branch NAME {mine[:7]}` keeps it; then `git -C {path} switch dag/r/a`"
        ), err
        assert err.endswith(f", then `dag {' '.join(command)}`\n"), err
    assert len(project.starts()) == started  # no agent ran
    assert git(path, "rev-parse", "HEAD").strip() == mine

    git(project.repo, "branch", "mine", mine)  # as told
    git(path, "switch", "-q", "dag/r/a")
    assert run_cli("retry", "r", "a") == 0
    assert git(project.repo, "rev-parse", "mine").strip() == mine


def test_retry_resume_and_cleanup_refuse_a_spec_whose_branch_was_deleted_under_it(
    project: Project, run_cli: RunCli, capsys: pytest.CaptureFixture[str]
) -> None:
    """`git update-ref -d` of the spec's branch, its worktree still on it: retry ran the
    agent on an unborn branch (a new root history), and cleanup --force removed the only
    name of the spec's commits (the worktree's reflog). The commit is named from that
    reflog, with the command that brings the branch back."""
    failed_run(project, run_cli)
    path = project.worktree("a")
    tip = git(path, "rev-parse", "HEAD").strip()
    git(project.repo, "update-ref", "-d", "refs/heads/dag/r/a")
    capsys.readouterr()
    started = len(project.starts())
    gone = (
        f"branch dag/r/a of spec a of run r was deleted while its worktree {path} was on it, "
        f"so the spec's commits are on no branch; its worktree's own reflog ("
    )
    back = f"has it last at commit {tip[:12]}: `git branch dag/r/a {tip[:12]}` brings it back"
    for command in (("retry", "r", "a"), ("resume", "r")):
        assert run_cli(*command) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith(f"dag: error: {gone}"), err
        assert f"{back}, then `dag {' '.join(command)}`\n" in err, err
    assert len(project.starts()) == started  # no agent ran
    assert run_cli("cleanup", "r", "--force") == 1
    out = capsys.readouterr().out
    assert f"kept a: {gone}" in out and back in out, out
    assert path.is_dir()

    git(project.repo, "branch", "dag/r/a", tip[:12])  # as told
    assert run_cli("retry", "r", "a") == 0
    assert git(project.repo, "merge-base", "--is-ancestor", tip, "main", "--").strip() == ""


def test_a_deleted_worktree_whose_registration_holds_commits_is_not_pruned(
    project: Project, run_cli: RunCli, capsys: pytest.CaptureFixture[str]
) -> None:
    """A commit on a detached HEAD, then the worktree's directory deleted (`rm -rf`): git's
    registration holds its HEAD still, the only name of that commit. `dag retry` removed
    the registration to make the worktree again; `dag cleanup --force` removed it too."""
    failed_run(project, run_cli)
    path = project.worktree("a")
    mine = commit_detached(path, "my fix")
    shutil.rmtree(path)
    capsys.readouterr()
    for command in (("retry", "r", "a"), ("resume", "r")):
        assert run_cli(*command) == 1
        err = capsys.readouterr().err
        assert err == (
            f"dag: error: the worktree {path} of spec a of run r was deleted, but git's record "
            f"of it has a detached HEAD with 1 commit on no branch ({mine[:7]} my fix): "
            f"`git branch NAME {mine[:7]}` keeps it, then `dag {' '.join(command)}` (it makes "
            f"the worktree again from its branch dag/r/a)\n"
        ), err
    assert run_cli("cleanup", "r", "--force") == 1
    out = capsys.readouterr().out
    assert f"1 commit on no branch ({mine[:7]} my fix)" in out, out
    assert f"HEAD {mine}\ndetached\n" in git(project.repo, "worktree", "list", "--porcelain")

    git(project.repo, "branch", "mine", mine[:7])  # as told, then cleanup goes on
    assert run_cli("cleanup", "r") == 0, capsys.readouterr()
    assert str(path) not in git(project.repo, "worktree", "list", "--porcelain")
    assert run_cli("retry", "r", "a") == 0  # afresh: its branch held nothing of its own
    assert git(project.repo, "rev-parse", "mine").strip() == mine


@pytest.mark.parametrize("deleted", [False, True], ids=["present", "directory-deleted"])
def test_cleanup_keeps_the_branch_of_a_worktree_it_keeps_and_retry_s_advice_works(
    project: Project, run_cli: RunCli, capsys: pytest.CaptureFixture[str], deleted: bool
) -> None:
    """A commit on a detached HEAD in a failed spec's worktree (its directory deleted too,
    or not): `dag cleanup` kept the worktree but deleted the spec's branch, which held
    nothing of its own, so retry's advice `git -C PATH switch dag/r/a` failed (invalid
    reference), and a retry then failed on git's registration. The branch stays with the
    worktree; retry's advice, followed as printed, takes the spec up again."""
    failed_run(project, run_cli)
    path = project.worktree("a")
    mine = commit_detached(path, "my fix")
    if deleted:
        shutil.rmtree(path)
    capsys.readouterr()
    assert run_cli("cleanup", "r") == 1
    out = capsys.readouterr().out
    assert f"kept dag/r/a: the branch of the worktree {path}, which stays\n" in out, out
    assert "deleted branch dag/r/a" not in out
    assert git(project.repo, "rev-parse", "--verify", "-q", "dag/r/a").strip()

    assert run_cli("retry", "r", "a") == 1
    err = capsys.readouterr().err
    for command in backticked(err)[:-1]:  # as told, NAME chosen; the last is the retry
        assert command[0] == "git", command
        git(project.repo, *[{"NAME": "mine"}.get(word, word) for word in command[1:]])
    assert backticked(err)[-1] == ["dag", "retry", "r", "a"], err
    assert run_cli("retry", "r", "a") == 0, capsys.readouterr()
    assert git(project.repo, "rev-parse", "mine").strip() == mine


def test_a_spec_whose_branch_and_worktree_directory_were_deleted_starts_afresh(
    project: Project, run_cli: RunCli, capsys: pytest.CaptureFixture[str]
) -> None:
    """Its commits kept on a branch of the user's, then the worktree's directory and the
    spec's branch deleted: a retry starting afresh failed on every try with git's raw
    "is a missing but already registered worktree". Git's registration, which names
    nothing else now, is forgotten first."""
    failed_run(project, run_cli)
    path = project.worktree("a")
    mine = commit_detached(path, "my fix")
    git(project.repo, "branch", "mine", mine)
    shutil.rmtree(path)
    git(project.repo, "branch", "-q", "-D", "dag/r/a")
    capsys.readouterr()
    assert run_cli("retry", "r", "a") == 0
    assert "a: completed" in capsys.readouterr().out  # merged, its worktree removed
    assert git(project.repo, "rev-parse", "mine").strip() == mine
