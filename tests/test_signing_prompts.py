"""No git of dagspec's waits for a person: a signing key that needs a passphrase fails its
commit at once, with one line saying how to unlock the key, even on a terminal.

git once ran in a process group of its own but on dagspec's terminal: ssh-keygen, signing
a commit, opened /dev/tty for the passphrase and was stopped (SIGTTIN), and the run with it,
printing nothing. These tests run dagspec on a real pseudo-terminal, with real keys, each
in a temporary directory of its own ($TMPDIR: git writes a signing buffer there).
"""

from __future__ import annotations

import contextlib
import os
import pty
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from dagspec import git_commit
from dagspec.errors import DagspecError, SignerTimedOut
from tests.conftest import ROOT, git, signing_leftovers
from tests.engine_support import Project, dag_text, pid_alive
from tests.fake_autospec_fixture import wait_for

pytest_plugins = ("tests.engine_fixtures",)
pytestmark = [
    pytest.mark.slow,  # keys made, a run driven, a pty read
    pytest.mark.usefixtures("own_tmpdir"),  # git writes its signing buffers in $TMPDIR
]
PASSPHRASE = "secret pw"
HUNG = 30.0  # seconds: a dagspec on a terminal still running then waits for the terminal


class Terminal:
    """``python -m dagspec ARGS`` in ``repo`` on a pty that is its controlling terminal,
    dagspec in the terminal's foreground group, as a user starts it; its output read."""

    def __init__(self, repo: Path, *args: str, gpg_tty: bool = False) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: nothing of pytest's runs here
            os.chdir(repo)
            env = {**os.environ, "PYTHONPATH": str(ROOT)}
            env.update({"GPG_TTY": os.ttyname(0)} if gpg_tty else {})  # as gpg's manual asks
            os.execve(sys.executable, [sys.executable, "-m", "dagspec", *args], env)
        self.output = bytearray()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while select.select([self.fd], [], [])[0]:
            try:
                chunk = os.read(self.fd, 4096)
            except OSError:  # EIO: the terminal has no writer left
                return
            if not chunk:
                return
            self.output += chunk

    def wait(self) -> int | None:
        """dagspec's exit code; None when it was still running after ``HUNG`` seconds
        (then it is killed, with whatever is left of its session)."""
        ended: list[int] = []

        def reaped() -> bool:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            ended.extend([os.waitstatus_to_exitcode(status)] if pid else [])
            return bool(ended)

        with contextlib.suppress(TimeoutError):
            wait_for(reaped, timeout=HUNG, what="dagspec on a terminal")
        for pid in [self.pid, *_session(self.pid)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if not ended:
            os.waitpid(self.pid, 0)
        self._reader.join(timeout=HUNG)
        os.close(self.fd)
        return ended[0] if ended else None

    def text(self) -> str:
        return " ".join(self.output.decode(errors="replace").split())


def _session(sid: int) -> list[int]:
    """The processes of session ``sid`` (a stopped git and ssh-keygen, in the old days)."""
    found = []
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError, IndexError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            found += [int(entry.name)] if int(fields[3]) == sid else []
    return found


def ssh_key(where: Path) -> Path:
    """A new ed25519 key at ``where`` that needs ``PASSPHRASE``."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", PASSPHRASE, "-f", where], check=True)
    return where


def sign_with_ssh(repo: Path, key: Path) -> None:
    for name, value in (
        ("commit.gpgsign", "true"),
        ("gpg.format", "ssh"),
        ("user.signingkey", f"{key}.pub"),
    ):
        git(repo, "config", name, value)


def askpass(tmp_path: Path) -> Path:
    """An askpass program that gives ``PASSPHRASE``, and notes in ``asked`` it was run."""
    program = tmp_path / "askpass"
    program.write_text(f"#!/bin/sh\ntouch {tmp_path / 'asked'}\necho '{PASSPHRASE}'\n")
    program.chmod(0o755)
    return program


@pytest.fixture(params=["no-display", "askpass"])
def no_ssh_agent(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No ssh-agent; either no display (ssh-keygen would ask on the terminal), or an
    askpass program ssh-keygen would run, which knows the passphrase."""
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    monkeypatch.delenv("SSH_AGENT_PID", raising=False)
    monkeypatch.delenv("DISPLAY", raising=False)
    if request.param == "askpass":
        monkeypatch.setenv("DISPLAY", ":0")
        monkeypatch.setenv("SSH_ASKPASS", str(askpass(tmp_path)))


@pytest.fixture
def ssh_agent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A real ssh-agent of this test's own (its socket, which SSH_AUTH_SOCK names)."""
    sock = tmp_path / "agent.sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", sock], stdout=subprocess.DEVNULL)
    try:
        wait_for(sock.exists, timeout=10, what="ssh-agent's socket")
        monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
        yield sock
    finally:
        agent.kill()
        agent.wait()


def ssh_add(key: Path, tmp_path: Path) -> None:
    """Load ``key`` into the agent, its passphrase given by an askpass program."""
    env = {**os.environ, "SSH_ASKPASS": str(askpass(tmp_path)), "SSH_ASKPASS_REQUIRE": "force"}
    subprocess.run(
        ["ssh-add", "-q", key], env=env, stdin=subprocess.DEVNULL, check=True, capture_output=True
    )
    (tmp_path / "asked").unlink()


def test_a_locked_ssh_key_is_refused_by_preflight_on_a_terminal(
    project: Project, tmp_path: Path, no_ssh_agent: None
) -> None:
    key = ssh_key(tmp_path / "key")
    sign_with_ssh(project.repo, key)
    project.write_dag(dag_text("a"))
    dag = Terminal(project.repo, "run", "dag.yaml", "--dry-run")
    assert dag.wait() == 1, dag.text()
    assert (
        f"dag: error: the signing key {key}.pub needs a passphrase, and dagspec never asks "
        f"for one: load it into ssh-agent (`ssh-add {key}`), then try again"
    ) in dag.text()
    assert not (tmp_path / "asked").exists()  # no window popped up either


def test_a_key_gone_from_ssh_agent_mid_run_fails_the_spec_with_what_to_do(
    project: Project, tmp_path: Path, ssh_agent: Path
) -> None:
    key = ssh_key(tmp_path / "key")
    ssh_add(key, tmp_path)
    sign_with_ssh(project.repo, key)
    project.write_dag(dag_text("a"))
    project.fake.setenv("GATES", "exit")
    dag = Terminal(project.repo, "run", "dag.yaml", "--run-id", "r", "--progress", "plain")
    name = project.fake.gate_dir.wait_any("exit", timeout=HUNG)  # preflight signed
    subprocess.run(["ssh-add", "-q", "-D"], check=True, capture_output=True)  # it expired
    project.fake.gate_dir.release(name, "exit")
    assert dag.wait() == 1, dag.text()
    error = project.state().spec("a").error or ""
    assert error.startswith(f"the signing key {key}.pub needs a passphrase"), error
    assert f"(`ssh-add {key}`)" in dag.text()


def waiting_signer(
    tmp_path: Path, *, unless: str = "", deaf: bool = False, gate: Path | None = None
) -> Path:
    """A signer (``gpg.ssh.program``) that waits for ever, as a hardware key waits for a
    touch: it notes its pid in ``signer.pid`` and its arguments in ``signer.args``. With
    ``unless``, only while ``tmp_path/hang`` exists and the data to sign (git's buffer file,
    its last argument) does not hold ``unless``: else it is ssh-keygen. ``deaf``: it
    ignores SIGTERM, SIGINT and SIGHUP while it waits (as some pinentry helpers do).
    ``gate``: a FIFO; it waits until a line is written there, then signs (ssh-keygen)."""
    program = tmp_path / "signer"
    ssh_keygen = shutil.which("ssh-keygen")
    passes = f'grep -q "{unless}" "$last" || [ ! -e {tmp_path / "hang"} ]' if unless else "false"
    program.write_text(
        "#!/bin/sh\n"
        "for last; do :; done\n"
        f'if {passes}; then exec {ssh_keygen} "$@"; fi\n'
        f'echo "$@" > {tmp_path / "signer.args"}\n'
        + ("trap '' TERM INT HUP\n" if deaf else "")
        + f"echo $$ > {tmp_path / 'signer.pid'}\n"
        + (f'read line < {gate}; exec {ssh_keygen} "$@"\n' if gate else "exec sleep 600\n")
    )
    program.chmod(0o755)
    return program


def test_a_signer_still_waiting_is_stopped_with_what_to_do(
    git_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, own_tmpdir: Path
) -> None:
    """A signer that waits without a terminal (a pinentry window, a hardware key to touch)
    is stopped after ``SIGNING_WAIT``, with everything it started, and the error says it
    did not answer in time (no passphrase was asked for), and what to do. git removes its
    signing buffer from $TMPDIR: dagspec ends it with SIGTERM, where SIGKILL left it."""
    sign_with_ssh(git_repo, tmp_path / "key")
    git(git_repo, "config", "gpg.ssh.program", str(waiting_signer(tmp_path)))
    monkeypatch.setattr(git_commit, "SIGNING_WAIT", 0.5)
    with pytest.raises(SignerTimedOut) as raised:
        git_commit.try_signing(git_repo)
    assert str(raised.value) == (
        f"the signer of the signing key {tmp_path}/key.pub did not answer within 0.5 s, so "
        "dagspec stopped it (a hardware key waiting for a touch? a passphrase window no one "
        "saw?): give it longer (`export DAGSPEC_SIGNING_WAIT=5m`) and touch the key when it "
        f"asks, or load it into ssh-agent (`ssh-add {tmp_path}/key`) so that it needs no one, "
        "then try again"
    )
    assert not pid_alive(int((tmp_path / "signer.pid").read_text()))
    buffer = Path((tmp_path / "signer.args").read_text().split()[-1])
    assert buffer.parent == own_tmpdir and buffer.name.startswith(".git_signing_buffer_tmp")
    assert signing_leftovers(own_tmpdir) == []


def test_dagspec_signing_wait_sets_how_long_a_signer_may_take(
    git_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, own_tmpdir: Path
) -> None:
    sign_with_ssh(git_repo, tmp_path / "key")
    git(git_repo, "config", "gpg.ssh.program", str(waiting_signer(tmp_path)))
    monkeypatch.setenv("DAGSPEC_SIGNING_WAIT", "1s")
    with pytest.raises(SignerTimedOut, match=r"did not answer within 1 s, so dagspec stopped"):
        git_commit.try_signing(git_repo)
    assert signing_leftovers(own_tmpdir) == []
    monkeypatch.setenv("DAGSPEC_SIGNING_WAIT", "0s")
    with pytest.raises(DagspecError) as refused:
        git_commit.try_signing(git_repo)
    assert str(refused.value) == (
        "$DAGSPEC_SIGNING_WAIT is '0s', a duration of zero: give one above 0, like 90s, 45m, "
        "2h or 1h30m; or unset it (then a signer gets 60 s)"
    )


@pytest.mark.parametrize(
    ("given", "said"),
    [
        ("90", "a number without its unit: write it like 90s, 5m or 1h30m; or unset it"),
        ("0", "a duration of zero: give one above 0, like 90s, 45m, 2h or 1h30m; or unset"),
        ("1d", "not a duration: write it like 90s, 45m, 2h or 1h30m: whole numbers, each "),
        ("5S", "not a duration: write it like 90s, 45m, 2h or 1h30m: whole numbers, each "),
        ("600h", "more than the most a signer may take (24h): set it to 24h or less, or unset"),
        ("999h", "more than the most a signer may take (24h): set it to 24h or less, or unset"),
    ],
)
def test_dagspec_signing_wait_beyond_a_day_or_without_a_unit_is_refused(
    git_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, given: str, said: str
) -> None:
    """``600h`` crashed (``OverflowError``: a wait too large for poll(2)) when git signed;
    a bare ``90`` was called "not a duration above 0"."""
    sign_with_ssh(git_repo, tmp_path / "key")
    git(git_repo, "config", "gpg.ssh.program", str(waiting_signer(tmp_path)))
    monkeypatch.setenv("DAGSPEC_SIGNING_WAIT", given)
    with pytest.raises(DagspecError) as refused:
        git_commit.try_signing(git_repo)
    assert str(refused.value).startswith(f"$DAGSPEC_SIGNING_WAIT is '{given}', {said}")
    assert not (tmp_path / "signer.pid").exists()  # refused before any signer started
    monkeypatch.setenv("DAGSPEC_SIGNING_WAIT", "24h")
    assert git_commit.signing_wait() == 24 * 3600


def test_ctrl_c_in_preflight_ends_a_waiting_signer_and_its_git(
    project: Project, tmp_path: Path, own_tmpdir: Path
) -> None:
    """Preflight signs in dagspec's main thread: a Ctrl-C there ended git alone (SIGKILL),
    leaving its signer waiting for ever and its signing buffer in $TMPDIR."""
    sign_with_ssh(project.repo, tmp_path / "key")
    git(project.repo, "config", "gpg.ssh.program", str(waiting_signer(tmp_path)))
    project.write_dag(dag_text("a"))
    dag = Terminal(project.repo, "run", "dag.yaml", "--dry-run")
    wait_for((tmp_path / "signer.pid").exists, timeout=HUNG, what="the signer")
    signer = int(wait_for_text(tmp_path / "signer.pid"))
    os.kill(dag.pid, signal.SIGINT)
    assert dag.wait() == 130, dag.text()
    assert not pid_alive(signer)
    assert signing_leftovers(own_tmpdir) == []


@pytest.mark.parametrize("deaf", [False, True], ids=["signer", "signer-deaf-to-sigterm"])
def test_a_second_ctrl_c_stops_the_signer_of_a_spec_s_commit_and_resume_commits_it(
    project: Project, tmp_path: Path, own_tmpdir: Path, deaf: bool
) -> None:
    """After its agent exits, a spec's work is committed, signed, even after a Ctrl-C. The
    first Ctrl-C said "no agent is running" while dagspec waited for the signer, and a second
    one waited as long (up to 60 s a signature): it now says what it waits for, and a second
    Ctrl-C stops the signer; the spec is interrupted, its work kept for `dag resume`. A
    signer deaf to SIGTERM is killed after a short grace: it held git's pipes, and dagspec
    waited for it as long as it waited."""
    key = tmp_path / "key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key], check=True)
    sign_with_ssh(project.repo, key)
    signer = waiting_signer(tmp_path, unless="can git sign here", deaf=deaf)  # preflight's
    git(project.repo, "config", "gpg.ssh.program", str(signer))
    (tmp_path / "hang").touch()
    project.write_dag(dag_text("a"))
    dag = Terminal(project.repo, "run", "dag.yaml", "--run-id", "r", "--progress", "plain")
    wait_for((tmp_path / "signer.pid").exists, timeout=HUNG, what="the signer")
    waiting = int(wait_for_text(tmp_path / "signer.pid"))
    os.kill(dag.pid, signal.SIGINT)
    said = "stopping: committing and signing the work of 1 spec (Ctrl-C again to stop signing now)"
    wait_for(lambda: said in dag.text(), timeout=HUNG, what="the stopping line")
    os.kill(dag.pid, signal.SIGINT)
    assert dag.wait() == 130, dag.text()  # not after SIGNING_WAIT (HUNG is shorter)
    assert not pid_alive(waiting)
    assert signing_leftovers(own_tmpdir) == []
    spec = project.state().spec("a")
    assert spec.status.value == "interrupted", spec
    assert spec.error == (
        "interrupted while its work was being committed: a second Ctrl-C stopped the signer; "
        "the work is in its worktree, uncommitted: `dag resume r` commits it"
    )
    assert git(project.worktree("a"), "status", "--porcelain").strip()  # the work is there
    (tmp_path / "hang").unlink()
    resumed = Terminal(project.repo, "resume", "r", "--progress", "plain")
    assert resumed.wait() == 0, resumed.text()
    assert project.state().spec("a").merged
    assert "\ngpgsig -----BEGIN SSH SIGNATURE-----" in git(project.repo, "cat-file", "-p", "main")


@pytest.mark.parametrize("deaf", [False, True], ids=["signer", "signer-deaf-to-sigterm"])
def test_a_second_ctrl_c_stops_the_signer_of_a_merge_which_merges_nothing(
    project: Project, tmp_path: Path, own_tmpdir: Path, deaf: bool
) -> None:
    """The merge holds signals until it is done, so that none cuts it in half: a signer
    that kept it waiting kept a second Ctrl-C waiting too (up to 60 s a merge commit). A
    second one now stops the signer, before the base branch moved; `dag merge` merges.
    A signer deaf to SIGTERM too (killed after a short grace)."""
    key = tmp_path / "key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key], check=True)
    sign_with_ssh(project.repo, key)
    signer = waiting_signer(tmp_path, unless="can git sign here", deaf=deaf)  # preflight's
    git(project.repo, "config", "gpg.ssh.program", str(signer))
    project.write_dag(dag_text("a"))
    run = Terminal(project.repo, "run", "dag.yaml", "--run-id", "r", "--no-merge")
    assert run.wait() == 0, run.text()
    git(project.repo, "commit", "-q", "--allow-empty", "-m", "meanwhile")  # new merges to sign
    main = git(project.repo, "rev-parse", "main")
    (tmp_path / "hang").touch()
    dag = Terminal(project.repo, "merge", "r")
    wait_for((tmp_path / "signer.pid").exists, timeout=HUNG, what="the signer")
    waiting = int(wait_for_text(tmp_path / "signer.pid"))
    os.kill(dag.pid, signal.SIGINT)
    said = "dag: stopping once the merge is done, as it is never cut in half (Ctrl-C again to "
    wait_for(lambda: said in dag.text(), timeout=HUNG, what="the first Ctrl-C told")
    os.kill(dag.pid, signal.SIGINT)  # not at once: two would be one pending SIGINT
    assert dag.wait() == 130, dag.text()  # not after SIGNING_WAIT (HUNG is shorter)
    assert (
        "dag: error: the merge of run r stopped at a second Ctrl-C while a signer kept it "
        "waiting: nothing was merged; `"  # `dag`, as this dag was typed: python -m dagspec
    ) in dag.text()
    assert "dag: interrupted" not in dag.text()  # one line said it
    assert not pid_alive(waiting)
    assert signing_leftovers(own_tmpdir) == []
    assert git(project.repo, "rev-parse", "main") == main
    assert not project.state().spec("a").merged
    (tmp_path / "hang").unlink()
    again = Terminal(project.repo, "merge", "r")
    assert again.wait() == 0, again.text()
    assert project.state().spec("a").merged


def test_a_merge_done_before_a_ctrl_c_was_acted_on_says_so(
    project: Project, tmp_path: Path
) -> None:
    """A Ctrl-C during the merge is held until the merge is done: it then ended in a bare
    `dag: interrupted` just after "fast-forwarded", as if the merge had been cut short."""
    key = tmp_path / "key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key], check=True)
    sign_with_ssh(project.repo, key)
    gate = tmp_path / "gate"
    os.mkfifo(gate)
    signer = waiting_signer(tmp_path, unless="can git sign here", gate=gate)
    git(project.repo, "config", "gpg.ssh.program", str(signer))
    project.write_dag(dag_text("a"))
    run = Terminal(project.repo, "run", "dag.yaml", "--run-id", "r", "--no-merge")
    assert run.wait() == 0, run.text()
    git(project.repo, "commit", "-q", "--allow-empty", "-m", "meanwhile")  # a merge to sign
    (tmp_path / "hang").touch()
    dag = Terminal(project.repo, "merge", "r")
    wait_for((tmp_path / "signer.pid").exists, timeout=HUNG, what="the signer")
    os.kill(dag.pid, signal.SIGINT)
    said = "dag: stopping once the merge is done, as it is never cut in half (Ctrl-C again to "
    wait_for(lambda: said in dag.text(), timeout=HUNG, what="the first Ctrl-C told")
    with gate.open("w") as opened:  # the signer signs now
        opened.write("go\n")
    assert dag.wait() == 130, dag.text()
    assert dag.text().endswith(
        "fast-forwarded. dag: interrupted: stopped at the Ctrl-C once the merge of run r was "
        "done, as it said above"
    ), dag.text()
    assert project.state().spec("a").merged


def wait_for_text(path: Path) -> str:
    """The text of ``path`` once its writer has written a line (a pid file)."""
    wait_for(lambda: path.read_text().endswith("\n"), timeout=HUNG, what=str(path))
    return path.read_text()


@pytest.fixture
def gnupg_home(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A GNUPGHOME of this test's own, short enough for gpg-agent's socket; its agent is
    stopped at the end."""
    if shutil.which("gpg") is None or shutil.which("gpgconf") is None:
        pytest.skip("gpg is not installed")
    home = Path(tempfile.mkdtemp(prefix="dag-gpg-"))  # in the test's own $TMPDIR
    monkeypatch.setenv("GNUPGHOME", str(home))
    try:
        yield home
    finally:
        subprocess.run(["gpgconf", "--kill", "gpg-agent"], check=False, capture_output=True)
        shutil.rmtree(home, ignore_errors=True)


def test_a_locked_gpg_key_is_refused_by_preflight_on_a_terminal(
    project: Project, gnupg_home: Path
) -> None:
    unattended = ("--batch", "--pinentry-mode", "loopback", "--passphrase", PASSPHRASE)
    subprocess.run(
        ["gpg", *unattended, "--quick-gen-key", "Test <test@example.com>", "ed25519", "sign"],
        check=True,
        capture_output=True,
    )
    subprocess.run(["gpgconf", "--kill", "gpg-agent"], check=True)  # the passphrase forgotten
    git(project.repo, "config", "commit.gpgsign", "true")
    git(project.repo, "config", "user.signingkey", "test@example.com")
    project.write_dag(dag_text("a"))
    dag = Terminal(project.repo, "run", "dag.yaml", "--dry-run", gpg_tty=True)
    assert dag.wait() == 1, dag.text()
    assert (
        "dag: error: git could not sign with the signing key test@example.com (gpg failed, "
        "and git does not say why): if the key needs a passphrase (dagspec never asks for "
        "one), unlock it in gpg-agent (`echo | gpg --sign --local-user test@example.com "
        ">/dev/null` asks once), then try again"
    ) in dag.text()
