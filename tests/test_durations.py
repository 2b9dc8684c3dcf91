"""Every duration a user gives (``--timeout``, ``--stall-timeout``, the DAG file's,
``$DAGSPEC_SIGNING_WAIT``) is read by one parser and told what is wrong in one wording."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from dagspec import git_commit
from dagspec.errors import DagspecError
from tests.engine_support import dag_text

FORM = (
    "not a duration: write it like 90s, 45m, 2h or 1h30m: whole numbers, each with its unit "
    "h, m or s, in that order, with no spaces"
)
GIVEN = {
    "1d": f"{FORM} (did you mean 24h?)",
    "5S": f"{FORM} (did you mean 5s?)",
    ".5s": FORM,
    "10 m": f"{FORM} (did you mean 10m?)",
    "30m1h": FORM,
    "90": "a number without its unit: write it like 90s, 5m or 1h30m",
    "0s": "a duration of zero: give one above 0, like 90s, 45m, 2h or 1h30m",
}


@pytest.mark.parametrize("given", sorted(GIVEN))
def test_each_duration_a_user_gives_says_which_forms_are_accepted(
    git_repo: Path,
    run_cli: Callable[..., int],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    given: str,
) -> None:
    """``DAGSPEC_SIGNING_WAIT=1d`` (or ``5S``, ``.5s``, ``10 m``) was told "not a duration
    above 0", as if the amount were the problem: the form is, and each place says which
    forms are accepted, as ``--timeout`` does, with the likely meaning when it is plain."""
    said = GIVEN[given]
    dag = git_repo / "dag.yaml"
    dag.write_text(dag_text("a"))
    for option in ("--timeout", "--stall-timeout"):
        assert run_cli("run", dag, option, given) == 2
        last = capsys.readouterr().err.splitlines()[-1]
        assert last == f"dag: error: argument {option}: '{given}' is {said}"
    for key in ("timeout", "stall_timeout"):
        dag.write_text(dag_text("a", extra=f'execution:\n  {key}: "{given}"'))
        assert run_cli("validate", dag) == 1
        err = capsys.readouterr().err
        assert err == f"dag: error: {dag}:4: execution.{key} is '{given}', {said}\n"
    monkeypatch.setenv("DAGSPEC_SIGNING_WAIT", given)
    with pytest.raises(DagspecError) as refused:
        git_commit.signing_wait()
    assert str(refused.value) == (
        f"$DAGSPEC_SIGNING_WAIT is '{given}', {said}; or unset it (then a signer gets 60 s)"
    )


@pytest.mark.parametrize(("given", "seconds"), [("90s", 90), ("45m", 2700), ("1h30m", 5400)])
def test_the_forms_accepted_are_accepted_everywhere(
    monkeypatch: pytest.MonkeyPatch, given: str, seconds: int
) -> None:
    from dagspec import options

    assert options.duration(given) == seconds
    monkeypatch.setenv("DAGSPEC_SIGNING_WAIT", given)
    assert git_commit.signing_wait() == seconds
