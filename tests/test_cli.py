"""The command line forgives (issue 15): global options anywhere, help, did-you-mean, the
usage of the command typed, run ids left out, one ``dag: error:`` per line."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import attrs
import pytest

from dagspec import git_commit
from dagspec.console import dag_command
from dagspec.lifecycle import RunStatus, SpecStatus
from dagspec.parser import Commands
from tests.conftest import FIXTURES, ROOT, git
from tests.run_states import at, run, save, spec

Cli = Callable[..., int]
DIAMOND = FIXTURES / "dags" / "diamond.yaml"


def test_global_options_go_before_or_after_the_command(
    git_repo: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    run_cli: Cli,
    capsys: pytest.CaptureFixture[str],
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    save(run(git_repo, "r", spec("a", SpecStatus.COMPLETED, merged=True)))
    assert run_cli("--color", "never", "validate", DIAMOND) == 0
    assert run_cli("--repo", git_repo, "status", "r") == 0
    assert run_cli("status", "r", "--repo", git_repo) == 0
    assert run_cli("--repo", git_repo, "--color", "never", "list") == 0
    out = capsys.readouterr().out
    assert out.count("run r completed: 1 completed") == 2
    assert "\x1b[" not in out


def test_a_global_option_after_the_command_wins(
    git_repo: Path, tmp_path: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    save(run(git_repo, "r", spec("a", SpecStatus.COMPLETED, merged=True)))
    assert run_cli("--repo", tmp_path, "status", "r", "--repo", git_repo) == 0
    assert "run r completed" in capsys.readouterr().out


@pytest.mark.parametrize("command", ["run", "resume", "retry", "merge"])
def test_the_help_of_a_command_that_commits_says_how_long_a_signer_may_take(
    run_cli: Cli, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    assert run_cli("help", command) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert f"a signer that has not signed after {git_commit.SIGNING_WAIT:g} s" in out
    assert "($DAGSPEC_SIGNING_WAIT: 90s, 5m, at most 24h) is stopped" in out


def test_dag_alone_prints_the_help(run_cli: Cli, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli() == 2
    assert run_cli("--color", "never") == 2
    err = capsys.readouterr().err
    assert err.count("usage: dag [-h]") == 2
    assert "dag help COMMAND" in err


def test_help_of_a_command(run_cli: Cli, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("help", "run") == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: dag run ")
    assert "implies --parallel" in out
    assert run_cli("help") == 0
    assert capsys.readouterr().out.startswith("usage: dag [-h]")
    assert run_cli("help", "stats") == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: dag help ")
    assert err.endswith("dag: error: no command 'stats' (did you mean 'status'?)\n")


def test_a_misspelt_command_gets_a_suggestion(
    run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli("--color", "never", "stauts") == 2
    err = capsys.readouterr().err
    assert err.endswith("dag: error: unknown command 'stauts' (did you mean 'status'?)\n")
    assert run_cli("zzz") == 2
    assert "the commands are validate, visualize, run" in capsys.readouterr().err


def test_a_misspelt_option_shows_the_command_s_usage_and_a_suggestion(
    run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli("run", "dag.yaml", "--paralel") == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: dag run ")
    assert err.endswith(
        "dag: error: unrecognized arguments: --paralel (did you mean '--parallel'?)\n"
    )
    assert run_cli("validate") == 2
    assert capsys.readouterr().err.startswith("usage: dag validate ")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--run-id", ""), "argument --run-id: run id '' is not valid"),
        (("--max-parallel", "0"), "'0' is not a whole number of 1 or more"),
        (("--max-parallel", "٣"), "'٣' is not a whole number"),
        (("--timeout", "soon"), "'soon' is not a duration"),
    ],
)
def test_bad_option_values_are_usage_errors(
    git_repo: Path,
    run_cli: Cli,
    capsys: pytest.CaptureFixture[str],
    args: tuple[str, ...],
    message: str,
) -> None:
    assert run_cli("run", DIAMOND, *args) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: dag run ")
    assert message in err.splitlines()[-1]
    assert not Path("/nonexistent").exists()


def test_a_worktree_root_deep_in_nothing_is_refused_and_nothing_made(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli("run", DIAMOND, "--worktree-root", "/nonexistent/deep/x") == 1
    assert "nor its parent directory exists" in capsys.readouterr().err
    assert not Path("/nonexistent").exists()


def test_a_run_id_typo_gets_a_suggestion(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    save(run(git_repo, "first", spec("a")))
    for command in ("status", "cleanup", "merge", "resume"):
        assert run_cli(command, "firts") == 1
        assert capsys.readouterr().err == (
            f"dag: error: no run 'firts' in {git_repo} (did you mean 'first'?): "
            "`dag list` shows the runs\n"
        )


def test_a_prefix_of_run_ids_is_named_as_a_suggestion_never_taken(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    save(run(git_repo, "v6-20261201-042722", spec("a", SpecStatus.COMPLETED, merged=True)))
    save(run(git_repo, "v2-20261201-040000", spec("a", SpecStatus.COMPLETED, merged=True)))
    save(run(git_repo, "v2-20261201-041000", spec("a", SpecStatus.COMPLETED, merged=True)))
    assert run_cli("status", "v6") == 1
    out, err = capsys.readouterr()
    assert (out, err) == (
        "",
        f"dag: error: no run 'v6' in {git_repo} (did you mean 'v6-20261201-042722'?): "
        "`dag list` shows the runs\n",
    )
    assert run_cli("logs", "v2", "-f") == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.endswith(
        "(did you mean 'v2-20261201-040000' or 'v2-20261201-041000'?): "
        "`dag list` shows the runs, `dag status` the specs\n"
    )
    assert err.count("dag: error:") == 1


def test_the_newest_run_is_taken_and_said_where_one_run_is_meant(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    main = git(git_repo, "rev-parse", "main").strip()  # where the runs started
    save(run(git_repo, "old", spec("a", SpecStatus.COMPLETED), started_at=at(0)))
    new = save(
        attrs.evolve(
            run(git_repo, "new", spec("b", SpecStatus.COMPLETED), started_at=at(60)),
            base_commit=main,
        )
    )
    new.dag_copy.parent.mkdir(parents=True, exist_ok=True)
    new.dag_copy.write_text("layers:\n  - id: L0\n    features:\n      - {id: b, description: x}\n")
    note = "note: run new (the newest; name a run to choose another)\n"
    assert run_cli("status") == 1  # b is not merged yet
    assert capsys.readouterr().err == note
    assert run_cli("logs", "b") == 0
    out, err = capsys.readouterr()
    assert (out, err) == ("spec 'b' has no output yet (it is completed)\n", note)
    assert run_cli("merge", "--dry-run") == 1  # b's branch is not there
    out, err = capsys.readouterr()
    assert (out.splitlines()[0], err) == (
        "Run new, merging into main (dry run: nothing is written):",
        note,
    )


def test_commands_that_delete_or_merge_never_guess(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    save(run(git_repo, "r", spec("a", SpecStatus.COMPLETED)))
    assert run_cli("cleanup") == 2  # a usage error, as a missing argument is: usage, then why
    err = capsys.readouterr().err
    assert err.startswith("usage: dag cleanup")
    assert err.endswith(
        "dag: error: name the run to clean up: `dag cleanup RUN_ID` (`dag list` shows the runs)\n"
    )
    assert run_cli("merge") == 2
    err = capsys.readouterr().err
    assert (
        err.startswith("usage: dag merge")
        and "dag: error: name the run to merge: `dag merge" in err
    )


def test_retry_takes_the_newest_run_when_only_specs_are_named(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    save(run(git_repo, "r", spec("a", SpecStatus.COMPLETED), spec("b", SpecStatus.BLOCKED)))
    assert run_cli("retry", "b") == 1  # the run is found; b is not failed
    assert "spec 'b' is blocked, not failed" in capsys.readouterr().err
    assert run_cli("retry", "r") == 1
    assert capsys.readouterr().err == (
        "dag: error: run r has no failed or waiting spec to retry: `dag status r` shows where "
        "it stands\n"
    )
    assert run_cli("retry", "zz") == 1
    assert "'zz' is neither a run nor a spec of the newest run r" in capsys.readouterr().err
    assert run_cli("retry", "rr", "a") == 1
    assert "no run 'rr' in" in capsys.readouterr().err
    save(run(git_repo, "r2", spec("x", SpecStatus.FAILED), spec("y", SpecStatus.COMPLETED)))
    assert run_cli("retry", "r2") == 1
    assert capsys.readouterr().err == (
        "dag: error: name the specs of run r2 to retry: `dag retry r2 x`\n"
    )


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (RunStatus.COMPLETED, 0),
        (RunStatus.RUNNING, 0),
        (RunStatus.FAILED, 1),
        (RunStatus.INTERRUPTED, 1),
    ],
)
def test_status_exit_code_says_whether_the_run_passed(
    git_repo: Path, run_cli: Cli, status: RunStatus, code: int
) -> None:
    save(run(git_repo, "r", spec("a"), status=status))
    assert run_cli("status", "r") == code
    assert run_cli("status", "r", "--json") == code


def test_every_line_of_a_multi_problem_error_is_prefixed(
    write_dag: Callable[..., Path], run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    write_dag(
        "layers:\n  - id: L0\n    features:\n"
        "      - id: a\n        depends_on: [b]\n        descripton: x\n"
        "      - id: b\n        depends_on: [a]\n"
    )
    assert run_cli("run", "dag.yaml") == 1
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        "dag: error: dag.yaml:4: dependency cycle: a -> b -> a",
        "dag: error: dag.yaml:6: unknown key 'descripton' in feature 'a' (did you mean "
        "'description'?); allowed keys: id, description, depends_on, timeout",
        "dag: error: dag.yaml:7: feature 'b' has no description and there is no "
        "specs/b/spec.yaml: add a description, or write the spec first",
    ]


def test_max_parallel_implies_parallel(
    runnable: Path,
    write_dag: Callable[..., Path],
    run_cli: Cli,
    capsys: pytest.CaptureFixture[str],
) -> None:
    body = "layers:\n  - id: L0\n    features:\n      - {id: a, description: x}\n"
    write_dag(body)
    assert run_cli("run", "dag.yaml", "--dry-run") == 0
    assert "1 spec, one at a time" in capsys.readouterr().out
    assert run_cli("run", "dag.yaml", "--dry-run", "--max-parallel", "3") == 0
    assert "in parallel, at most 3 at once" in capsys.readouterr().out
    write_dag("execution: {max_parallel: 2}\n" + body)
    assert run_cli("run", "dag.yaml", "--dry-run") == 0
    assert "in parallel, at most 2 at once" in capsys.readouterr().out
    assert run_cli("run", "dag.yaml", "--dry-run", "--max-parallel", "1") == 0
    assert "in parallel, at most 1 at once" in capsys.readouterr().out


def test_a_control_character_in_a_description_is_refused(
    write_dag: Callable[..., Path], run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    write_dag('layers:\n  - id: L0\n    features:\n      - {id: a, description: "x\\a\\e"}\n')
    assert run_cli("run", "dag.yaml", "--dry-run") == 1
    out, err = capsys.readouterr()
    assert "\x07" not in out + err
    assert err == (
        "dag: error: dag.yaml:4: 'description' of feature 'a' contains the control character "
        "U+0007: remove it (it would reach terminals and commands as it is)\n"
    )


def test_demo_refuses_a_file_as_its_directory(
    tmp_path: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "README.md"
    file.write_text("mine\n")
    assert run_cli("demo", "--dir", file) == 1
    assert run_cli("demo", "--dir", tmp_path / "no" / "such") == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"dag: error: {file} is not a directory: give `dag demo --dir` a new directory"
    assert err[1].startswith(f"dag: error: {tmp_path / 'no'} does not exist")
    assert file.read_text() == "mine\n"


def test_a_state_file_with_format_true_is_refused(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = save(run(git_repo, "r", spec("a")))
    text = paths.state_file.read_text()
    paths.state_file.write_text(text.replace("format: 1", "format: true", 1))
    assert run_cli("status", "r") == 1
    assert "is damaged (format True); it was left as it is" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv0", "expected"),
    [
        ("/somewhere/dagspec/__main__.py", "-m dagspec"),
        (str(ROOT / "README.md"), "dag"),  # not an archive, not on PATH: the documented name
    ],
)
def test_hints_name_the_form_of_dag_that_works(argv0: str, expected: str) -> None:
    assert dag_command(argv0).endswith(expected)


def test_an_archive_on_path_is_called_by_its_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import zipfile

    archive = tmp_path / "bin" / "dag"
    archive.parent.mkdir()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("__main__.py", "")
    archive.chmod(0o755)
    assert dag_command(str(archive)).endswith(f" {archive}")
    monkeypatch.setenv("PATH", f"{archive.parent}{os.pathsep}{os.environ['PATH']}")
    assert dag_command(str(archive)) == "dag"


def test_an_installed_dag_not_on_path_is_named_by_its_path(
    git_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ``dag`` command pip or pipx installs, run by its path (not on PATH, or another
    ``dag`` first there): hints said bare `dag`, which runs nothing or another dagspec. They
    name its path, as for the archive; on PATH, its name."""
    script = tmp_path / "venv bin" / "dag"  # a space: the path is quoted for the shell
    script.parent.mkdir()
    script.write_text(  # what pip writes for [project.scripts] dag = "dagspec.cli:main"
        f"#!{sys.executable}\n# -*- coding: utf-8 -*-\nimport re\nimport sys\n"
        "from dagspec.cli import main\nif __name__ == '__main__':\n"
        "    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])\n"
        "    sys.exit(main())\n"
    )
    script.chmod(0o755)
    monkeypatch.setenv("PYTHONPATH", str(ROOT))

    def hint() -> str:
        done = subprocess.run(
            [str(script), "status"], cwd=git_repo, capture_output=True, text=True, check=False
        )
        assert done.returncode == 1, done.stderr
        return done.stderr

    quoted = shlex.quote(str(script))
    assert hint() == (f"dag: error: no runs yet in {git_repo}: `{quoted} run FILE` starts one\n")
    monkeypatch.setenv("PATH", f"{script.parent}{os.pathsep}{os.environ['PATH']}")
    assert hint() == (f"dag: error: no runs yet in {git_repo}: `dag run FILE` starts one\n")


def _dag(
    cwd: Path, *args: str, env: dict[str, str] | None = None, shell_redirect: str = ""
) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    argv = [sys.executable, "-m", "dagspec", *args]
    if shell_redirect:
        argv = ["/bin/sh", "-c", f'exec "$@" {shell_redirect}', "sh", *argv]
    return subprocess.run(argv, cwd=cwd, env=environ, capture_output=True, text=True, check=False)


@pytest.mark.slow
def test_streams_closed_or_narrow_never_crash(git_repo: Path) -> None:
    save(
        run(
            git_repo,
            "r",
            spec("a", SpecStatus.COMPLETED, merged=True),
            spec("b", SpecStatus.FAILED),
        )
    )
    closed = _dag(git_repo, "status", "r", shell_redirect=">&-")
    assert (closed.returncode, closed.stderr) == (0, "")
    latin = _dag(git_repo, "status", "r", env={"PYTHONIOENCODING": "latin-1"})
    assert latin.returncode == 0, latin.stderr
    assert "+ completed" in latin.stdout  # the ASCII symbol where the encoding has no ✓
    assert "next: " in latin.stdout


@pytest.mark.slow
def test_no_git_on_path_says_so(git_repo: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    done = _dag(git_repo, "status", env={"PATH": str(empty)})
    assert (done.returncode, done.stderr) == (
        1,
        "dag: error: git is not installed or not on PATH: install git 2.38 or newer\n",
    )


def test_control_characters_quoted_from_a_file_are_escaped_in_errors(
    write_dag: Callable[..., Path], run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    write_dag('layers: "\\x85 \\e[31m red"\n')
    assert run_cli("validate", "dag.yaml") == 1
    assert capsys.readouterr().err == (
        "dag: error: dag.yaml:1: 'layers' of the file should be a list, found "
        "'\\x85 \\x1b[31m red'\n"
    )


def test_every_error_line_names_dag_as_it_was_called(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not only a ``DagspecError``'s: the lines commands print themselves (``cleanup``'s
    "kept" line) go through ``print_error`` too."""
    from dagspec.errors import print_error

    monkeypatch.setattr(sys, "argv", ["/somewhere/dagspec/__main__.py", "cleanup", "r"])
    print_error("2 things kept: `dag cleanup r --force` removes them too")
    err = capsys.readouterr().err
    assert (
        err == f"dag: error: 2 things kept: `{dag_command()} cleanup r --force` removes them too\n"
    )
    assert "-m dagspec cleanup r --force" in err


def test_the_next_command_names_dag_as_it_was_called() -> None:
    from dagspec import render

    state = run(Path("/r"), "r", spec("a", SpecStatus.INTERRUPTED), status=RunStatus.INTERRUPTED)
    assert render.next_command(state) == "dag resume r"
    assert render.next_command(state, dag="python3 /x/dag.pyz") == "python3 /x/dag.pyz resume r"
    assert render.summary(state, color=False, dag="python3 -m dagspec").endswith(
        "next: python3 -m dagspec resume r\n"
    )


def test_a_repo_that_is_not_a_directory(
    tmp_path: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli("--repo", tmp_path / "nope", "list") == 1
    assert capsys.readouterr().err == f"dag: error: --repo {tmp_path / 'nope'}: no such directory\n"
    assert run_cli("list", "--repo", tmp_path) == 1
    assert capsys.readouterr().err == (
        f"dag: error: {tmp_path} is not in a git repository: cd into one, or pass --repo\n"
    )


def _broken(repo: Path, how: str) -> Path:
    """``repo`` made into one where git cannot work (``how``); where dag is typed."""
    if how == "core.bare":
        git(repo, "config", "core.bare", "true")
    elif how == "config typo":
        with (repo / ".git" / "config").open("a") as config:
            config.write("[core\n")
    elif how == "newer git":
        git(repo, "config", "core.repositoryformatversion", "1")
        git(repo, "config", "extensions.refStorage", "reftable")
    return repo / ".git" if how == "inside .git" else repo


@pytest.mark.parametrize(
    ("how", "said"),
    [
        ("core.bare", "is in a git repository without a checkout (a bare repository, one"),
        ("inside .git", "is in a git repository without a checkout (a bare repository, one"),
        ("config typo", "git cannot work in the current directory: bad config line 6 in file"),
        ("newer git", "unknown repository extension found: refstorage (the repository was made"),
    ],
)
def test_a_repository_git_cannot_work_in_says_git_s_reason(
    git_repo: Path,
    run_cli: Cli,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    how: str,
    said: str,
) -> None:
    """Not "not in a git repository: cd into one", which the user already had done."""
    monkeypatch.chdir(_broken(git_repo, how))
    assert run_cli("list") == 1
    err = capsys.readouterr().err
    assert err.startswith("dag: error: ") and err.count("\n") == 1
    assert said in err


def test_repo_naming_a_bare_repository_says_it_has_no_checkout(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    git(tmp_path, "clone", "-q", "--bare", str(git_repo), "bare.git")
    assert run_cli("--repo", tmp_path / "bare.git", "status") == 1
    assert capsys.readouterr().err == (
        f"dag: error: {tmp_path / 'bare.git'} is in a git repository without a checkout (a "
        "bare repository, one with core.bare=true, or inside a .git directory): run dag in a "
        "checkout of it, or pass --repo naming one\n"
    )


def test_output_to_a_full_disk_is_an_error_line_not_a_bug(git_repo: Path) -> None:
    save(run(git_repo, "r", spec("a", SpecStatus.COMPLETED)))
    with Path("/dev/full").open("w") as full:
        done = subprocess.run(
            [sys.executable, "-m", "dagspec", "list"],
            cwd=git_repo,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith("dag: error: cannot write the output: No space left")


def test_resuming_a_completed_run_changes_nothing(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = save(run(git_repo, "r", spec("a", SpecStatus.COMPLETED, merged=True)))
    before = paths.state_file.read_bytes()
    assert run_cli("resume", "r") == 0
    assert "nothing to resume" in capsys.readouterr().out
    assert paths.state_file.read_bytes() == before


def _german(tmp_path: Path) -> dict[str, str]:
    """The variables of a German locale, compiled here (skips the test where it cannot be)."""
    where = tmp_path / "locale"
    where.mkdir()
    made = subprocess.run(
        ["localedef", "-i", "de_DE", "-f", "UTF-8", str(where / "de_DE.UTF-8")],
        capture_output=True,
        check=False,
    )
    if not (where / "de_DE.UTF-8").is_dir():
        pytest.skip(f"no German locale: {made.stderr!r}")
    return {"LOCPATH": str(where), "LC_ALL": "de_DE.UTF-8"}


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a repository to another user needs root")
@pytest.mark.parametrize(
    ("command", "locale"),
    [(("list",), False), (("doctor",), False), (("run", "dag.yaml"), False), (("list",), True)],
)
def test_a_repository_another_user_owns_says_what_git_wants(
    git_repo: Path, command: tuple[str, ...], locale: bool, tmp_path: Path
) -> None:
    """git refuses it (safe.directory): not "not in a git repository", and nothing written;
    also where git speaks German (dagspec reads git's message in English)."""
    (git_repo / "dag.yaml").write_text(
        'layers:\n  - id: L0\n    features:\n      - id: a\n        description: "A"\n'
    )
    for path in (git_repo, *git_repo.rglob("*")):
        os.lchown(path, 65534, 65534)
    language = _german(tmp_path) if locale else {}
    done = subprocess.run(
        [sys.executable, "-m", "dagspec", *command],
        cwd=git_repo,
        env={**os.environ, "PYTHONPATH": str(ROOT), **language},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    assert done.stderr == (
        f"dag: error: git refuses to work in {git_repo}: another user owns it (git's "
        "safe.directory check); if you trust it, run `git config --global --add "
        f"safe.directory {git_repo}`, then try again\n"
    )
    assert sorted(p.name for p in git_repo.iterdir()) == [".git", "README.md", "dag.yaml"]


def test_hints_name_the_repository_given_by_repo_when_elsewhere(
    git_repo: Path,
    run_cli: Cli,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """From outside the repository, `next:` must work where it is typed."""
    save(run(git_repo, "r", spec("a", SpecStatus.FAILED), status=RunStatus.FAILED))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert run_cli("--repo", str(git_repo), "status", "r") == 1
    assert capsys.readouterr().out.endswith(f"next: dag --repo {git_repo} retry r a\n")
    monkeypatch.chdir(git_repo)
    assert run_cli("status", "r") == 1
    assert capsys.readouterr().out.endswith("next: dag retry r a\n")


JOIN_CONFLICT = (
    "its work on dag/r/a conflicts with the work of the run's specs that completed before "
    "it, in x.py: merge dag/r/_integration into dag/r/a by hand and commit, then "
    "`dag retry r a`"
)


def test_a_reason_that_says_what_to_type_says_it_as_the_hints_beside_it(
    git_repo: Path,
    run_cli: Cli,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A join conflict's reason, recorded as `` `dag retry r a` ``, was shown so by ``dag
    status`` and ``dag report`` while the ``next:`` line under it said the form that works
    where it is typed (here ``dag --repo REPO``); ``--json`` keeps the reason as recorded."""
    save(run(git_repo, "r", spec("a", SpecStatus.FAILED, error=JOIN_CONFLICT),
             status=RunStatus.FAILED))  # fmt: skip
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv("COLUMNS", "1000")  # a reason cut to the width would hide its end
    typed = f"`dag --repo {git_repo} retry r a`"
    run_cli("--repo", git_repo, "status", "r")
    out = capsys.readouterr().out
    assert f"then {typed}" in out and "`dag retry" not in out
    assert out.endswith(f"next: {typed[1:-1]}\n")  # the hint beside it
    run_cli("--repo", git_repo, "report", "r", "--markdown")
    assert f"then {typed}" in capsys.readouterr().out.replace("\\", "")  # its escapes gone
    run_cli("--repo", git_repo, "status", "r", "--json")
    assert json.loads(capsys.readouterr().out)["specs"][0]["error"] == JOIN_CONFLICT


_INTERRUPT_AT_PARSE = """\
import argparse, os, signal

real = argparse.ArgumentParser.parse_known_args


def interrupted(self, *args, **kwargs):  # a real SIGINT, delivered as parsing begins
    os.kill(os.getpid(), signal.SIGINT)
    return real(self, *args, **kwargs)


argparse.ArgumentParser.parse_known_args = interrupted
"""


def test_ctrl_c_while_the_arguments_are_parsed_is_one_line_and_130(tmp_path: Path) -> None:
    (tmp_path / "sitecustomize.py").write_text(_INTERRUPT_AT_PARSE)
    done = subprocess.run(
        [sys.executable, "-m", "dagspec", "list"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{tmp_path}"},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 130, done.stderr
    assert done.stderr == "dag: interrupted\n"
    assert done.stdout == ""


def test_retry_of_a_spec_whose_driver_was_killed_says_interrupted_not_running(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    gone = subprocess.Popen(["true"])  # a pid that has exited: the killed driver's
    gone.wait()
    running = spec("b", SpecStatus.RUNNING, attempts=1)
    save(run(git_repo, "r", running, status=RunStatus.RUNNING, driver_pid=gone.pid))
    assert run_cli("retry", "r", "b") == 1
    err = capsys.readouterr().err
    assert "spec 'b' is interrupted, not failed" in err
    assert "`dag resume r` continues it" in err


def test_demo_refuses_a_repo_it_would_ignore(
    tmp_path: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli("--repo", str(tmp_path), "demo") == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: dag demo")
    assert err.endswith("dag: error: dag demo makes its own repository, so it takes no --repo: "
                        "--dir says where\n")  # fmt: skip
    assert list(tmp_path.iterdir()) == []


def test_visualize_refuses_a_repo_it_would_ignore(
    tmp_path: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    """It draws the file alone: ``--repo`` was accepted and meant nothing."""
    dag = FIXTURES / "dags" / "diamond.yaml"
    for args in (["--repo", str(tmp_path), "visualize", dag], ["visualize", dag, "--repo", "."]):
        assert run_cli(*args) == 2
        out, err = capsys.readouterr()
        assert out == "" and err.startswith("usage: dag visualize")
        assert err.endswith("dag: error: dag visualize draws the DAG file alone, so it takes no "
                            "--repo: give the path of the file\n")  # fmt: skip
    assert run_cli("visualize", dag) == 0


@pytest.mark.parametrize(
    ("command", "own"), [("demo", "--dir DIR"), ("visualize", "--format {ascii")]
)
@pytest.mark.parametrize("how", ["--help", "help", "--repo"])
def test_commands_without_a_repository_do_not_offer_the_repo_they_refuse(
    run_cli: Cli, capsys: pytest.CaptureFixture[str], command: str, own: str, how: str
) -> None:
    """Their help and usage listed ``--repo`` (every command's), which they refuse."""
    extra = [str(FIXTURES / "dags" / "diamond.yaml")] if command == "visualize" else []
    ask = {"--help": [command, "--help"], "help": ["help", command]}.get(how)
    code = run_cli(*(ask or [command, *extra, "--repo", "."]))
    out, err = capsys.readouterr()
    assert code == (2 if ask is None else 0)
    assert (out + err).startswith(f"usage: dag {command} [-h] [--color")
    assert "--repo DIR" not in out + err
    assert own in out + err


def test_every_other_command_offers_repo(run_cli: Cli, capsys: pytest.CaptureFixture[str]) -> None:
    from dagspec.parser import Commands

    for name in sorted(set(Commands().by_name) - {"demo", "visualize"}):
        assert run_cli("help", name) == 0
        assert "--repo DIR" in capsys.readouterr().out, name


def _usage_of(parser: argparse.ArgumentParser) -> str:
    return " ".join(parser.format_usage().split())  # argparse wraps long usage lines


def _listed(action: argparse.Action) -> str:
    """How the help's list of arguments names ``action``: ``--color {auto,always,never}``."""
    shown = action.metavar or (
        "{" + ",".join(action.choices) + "}" if action.choices else action.dest.upper()
    )
    if not action.option_strings:
        return str(shown)
    return action.option_strings[0] + (f" {shown}" if action.nargs != 0 else "")


@pytest.mark.parametrize("name", sorted(Commands().by_name))
def test_each_usage_line_names_what_the_help_lists(name: str) -> None:
    """A newcomer read ``[--color WHEN]`` in the usage of ``logs`` and ``{auto,always,never}``
    below it, and ``ID`` listed under ``[RUN_ID] SPEC_ID...``: the usage line and the list
    of arguments name each argument alike."""
    parser = Commands().by_name[name]
    usage = _usage_of(parser)
    for action in parser._actions:
        if action.help is argparse.SUPPRESS or isinstance(action, argparse._HelpAction):
            continue
        if action.option_strings and "[options]" in usage:  # retry's: every option at once
            continue
        assert _listed(action) in usage, (name, _listed(action), usage)


@pytest.mark.parametrize("name", ["cleanup", "merge"])
def test_a_run_id_that_must_be_named_is_not_shown_optional(name: str) -> None:
    """``dag cleanup`` (and ``dag merge`` but for ``--dry-run``) exits 2 without a run id:
    its usage showed ``[RUN_ID]``."""
    usage = _usage_of(Commands().by_name[name])
    assert usage.startswith(f"usage: dag {name} [-h] RUN_ID "), usage


def test_a_dry_run_says_a_run_id_made_now_is_not_the_run_s(
    runnable: Path,
    write_dag: Callable[..., Path],
    run_cli: Cli,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A newcomer's dry run said `dry run of try-...-001102` and the run became
    `try-...-001108`: an id made from the time is only an example."""
    write_dag("layers:\n  - id: L0\n    features:\n      - {id: a, description: x}\n")
    assert run_cli("run", "dag.yaml", "--dry-run") == 0
    out = capsys.readouterr().out.splitlines()
    said = next(line for line in out if line.startswith("dry run of "))
    assert "(an id made now: a run gets its own as it starts): 1 spec" in said
    assert run_cli("run", "dag.yaml", "--dry-run", "--run-id", "mine") == 0
    assert "dry run of mine: 1 spec, one at a time" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("given", "taken"),
    [
        ("./tools/autospec", "{cwd}/tools/autospec"),
        ("tools/autospec", "{cwd}/tools/autospec"),
        ("../autospec", "{cwd}/../autospec"),
        ("~/bin/autospec", "{home}/bin/autospec"),
        ("/opt/autospec", "/opt/autospec"),
        ("autospec-dev", "autospec-dev"),  # a name: PATH's to find, now and at each resume
    ],
)
@pytest.mark.parametrize("command", ["run", "resume", "retry", "doctor"])
def test_an_autospec_path_is_taken_absolute_against_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str, given: str, taken: str
) -> None:
    """As a run records it: ``resume`` and ``retry`` typed in another directory start the
    same program (a relative one was recorded as typed)."""
    from dagspec.parser import parse

    monkeypatch.chdir(tmp_path)
    words = {"run": ["run", "dag.yaml"], "resume": ["resume"], "retry": ["retry", "r", "a"]}
    _, args = parse([*words.get(command, [command]), "--autospec", given])
    assert args.autospec == taken.format(cwd=tmp_path, home=os.environ["HOME"])


def test_a_relative_autospec_where_the_directory_is_gone_is_a_usage_error(
    tmp_path: Path,
    run_cli: Cli,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()
    assert run_cli("--repo", tmp_path, "resume", "--autospec", "./autospec") == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "dag: error: argument --autospec: ./autospec is relative to the current directory, "
        "which no longer exists: give its absolute path"
    )


def test_resume_of_a_newest_run_with_nothing_left_names_the_older_runs_it_could_resume(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    done = spec("a", SpecStatus.COMPLETED, merged=True)
    older = {
        "stopped": save(run(git_repo, "stopped", spec("a"), status=RunStatus.INTERRUPTED)),
        "broke": save(
            run(git_repo, "broke", spec("a", SpecStatus.FAILED), status=RunStatus.FAILED)
        ),
        "fine": save(run(git_repo, "fine", done)),
    }
    newest = save(run(git_repo, "newest", done, started_at=at(60)))
    before = {p: p.state_file.read_bytes() for p in [newest, *older.values()]}
    assert run_cli("resume") == 0
    out = capsys.readouterr().out
    assert "run newest has completed every spec: nothing to resume" in out
    assert f"{dag_command()} resume stopped    # interrupted" in out
    assert f"{dag_command()} resume broke    # failed" in out
    assert "resume fine" not in out
    assert {p: p.state_file.read_bytes() for p in before} == before  # none resumed
    assert run_cli("resume", "newest") == 0  # a run named: only its own answer
    assert "older runs" not in capsys.readouterr().out
