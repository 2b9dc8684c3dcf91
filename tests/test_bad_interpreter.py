"""A script whose ``#!`` interpreter is missing (issue 11): the kernel says ENOENT, as for a
missing file, and Python says "No such file or directory: 'autospec'" for a file that
exists. dagspec says what is really wrong, in preflight when it can, else as the spec's
one-line reason. Real scripts, real ``exec``."""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from dagspec.executable import shebang_interpreter, start_failure
from tests.engine_support import Project, dag_text
from tests.fake_autospec_fixture import FAKE_DIR

pytest_plugins = ("tests.engine_fixtures",)


def _script(path: Path, first_line: bytes) -> Path:
    path.write_bytes(first_line + b"\necho hello\n")
    path.chmod(0o755)
    return path


def _exec_error(path: Path) -> OSError:
    try:
        subprocess.run([str(path)], check=False)
    except OSError as exc:
        return exc
    raise AssertionError(f"{path} ran")


def test_a_missing_interpreter_is_named(tmp_path: Path) -> None:
    script = _script(tmp_path / "autospec", b"#!  /nonexistent/python3 -u")
    exc = _exec_error(script)
    assert exc.errno == errno.ENOENT  # what the kernel says: as for a missing file
    assert start_failure(str(script), exc) == (
        f"{script}: bad interpreter /nonexistent/python3 (from its #! line)"
    )


def test_a_windows_line_end_is_shown(tmp_path: Path) -> None:
    """``#!/bin/sh\\r``: the kernel looks for a program named ``sh\\r``."""
    script = _script(tmp_path / "autospec", b"#!/bin/sh\r")
    assert shebang_interpreter(script) == "/bin/sh\r"
    assert start_failure(str(script), _exec_error(script)) == (
        f"{script}: bad interpreter '/bin/sh\\r' (from its #! line)"
    )


def test_a_name_on_path_is_found_and_a_missing_file_is_said_as_such(tmp_path: Path) -> None:
    _script(tmp_path / "autospec", b"#!/nonexistent/sh")
    missing = FileNotFoundError(errno.ENOENT, "No such file or directory")
    assert start_failure("autospec", missing, path=str(tmp_path)) == (
        f"{tmp_path / 'autospec'}: bad interpreter /nonexistent/sh (from its #! line)"
    )
    assert start_failure(str(tmp_path / "nope"), missing) == (
        f"{tmp_path / 'nope'} could not be started: No such file or directory"
    )


def test_a_file_the_kernel_cannot_run(tmp_path: Path) -> None:
    script = tmp_path / "autospec"
    script.write_bytes(b"\x7fELF\x02garbage")
    script.chmod(0o755)
    assert start_failure(str(script), _exec_error(script)) == (
        f"{script}: not a program this machine can run (no #! line, or built for another)"
    )


@pytest.mark.slow
def test_preflight_names_the_bad_interpreter(
    project: Project, run_cli: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    wrapper = _script(project.repo.parent / "autospec", b"#!/nonexistent/interpreter")
    project.write_dag(dag_text("a"))
    assert run_cli("run", "dag.yaml", "--run-id", "r", "--autospec", wrapper) == 1
    err = capsys.readouterr().err
    assert f"{wrapper}: bad interpreter /nonexistent/interpreter (from its #! line)" in err
    assert "No such file" not in err


@pytest.mark.slow
def test_a_wrapper_broken_after_preflight_fails_its_spec_with_the_reason(
    project: Project, run_cli: Callable[..., int]
) -> None:
    """The wrapper answers preflight, then ``execution.setup`` breaks its #! line before
    the agent starts (as an upgrade removing an interpreter would)."""
    wrapper = project.repo.parent / "autospec"
    wrapper.write_text(f'#!/bin/sh\nexec "{FAKE_DIR / "autospec"}" "$@"\n')
    wrapper.chmod(0o755)
    breaking = f"printf '#!/nonexistent/bash\\\\n' > {wrapper}"
    project.write_dag(dag_text("a", extra=f'execution:\n  setup: "{breaking}"\n'))
    code = run_cli("run", "dag.yaml", "--run-id", "r", "--no-merge", "--autospec", wrapper)
    assert code == 1
    (spec,) = project.state().specs
    assert spec.status.value == "failed"
    assert spec.error == f"{wrapper}: bad interpreter /nonexistent/bash (from its #! line)"
    assert os.access(wrapper, os.X_OK)
