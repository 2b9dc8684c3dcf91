"""git, as small named verbs over one subprocess helper, :func:`run`.

Every call runs with a cleaned environment and insulated from the user's hooks and settings
(:mod:`dagspec.git_env`): dagspec's own git writes are bookkeeping (README, How a run
works). The merge verbs are in :mod:`dagspec.git_merge`, those that make commits (and sign
them) in :mod:`dagspec.git_commit`.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from dagspec import procgroup
from dagspec.errors import DagspecError, GitError, GitOutputError
from dagspec.git_env import INSULATION_ARGS, git_process_env, output_to, read_back
from dagspec.git_output import fields, lines, nul_split, one_line, ref_names, status_entries

# The lowest git that has every command dagspec uses: ``merge-tree --write-tree`` (2.38);
# ``worktree list -z`` (2.36) and ``init --initial-branch`` (2.28) came before it.
MIN_GIT = (2, 38)
MIN_GIT_TEXT = ".".join(map(str, MIN_GIT))
_USAGE = 129  # git's exit code for an unknown option


def run(
    cwd: Path,
    *args: str,
    check: bool = True,
    env: Mapping[str, str] | None = None,
    keep_fds: Sequence[int] = (),
    timeout: float | None = None,
    started: Callable[[int], None] | None = None,
) -> str:
    """Run ``git args`` in ``cwd``, insulated, and return stdout (:func:`run_told`)."""
    told = run_told(
        cwd, *args, check=check, env=env, keep_fds=keep_fds, timeout=timeout, started=started
    )
    return told[0]


def run_told(
    cwd: Path,
    *args: str,
    check: bool = True,
    env: Mapping[str, str] | None = None,
    keep_fds: Sequence[int] = (),
    timeout: float | None = None,
    started: Callable[[int], None] | None = None,
) -> tuple[str, str]:
    """Run ``git args`` in ``cwd``, insulated, and return stdout and stderr (git says some
    faults only on stderr while exiting 0: ``git_merge.merge_tree``); raise ``GitError`` when it
    fails (the error shows ``git args``, without the insulating options). With ``keep_fds`` (a
    lock git holds: ``checkout_move``), git's output goes to files: a pipe whose reader was
    killed kills git by SIGPIPE at its next line ("Updating files", after 2 s, even to a pipe).
    A git still running after ``timeout`` seconds is ended with all it started, and fails;
    ``started`` hears its pid, the id of its group, as it starts (to end it from elsewhere).

    git runs in a session of its own, with no controlling terminal: a terminal's Ctrl-C
    reaches dagspec, never git mid-checkout; and nothing git starts (ssh-keygen or gpg
    signing a commit) can read a passphrase from the terminal, or be stopped by SIGTTIN
    trying, as it was when git only had a process group of its own."""
    cmd = ["git", *args]
    try:
        with output_to(outlive=bool(keep_fds)) as (out, err):
            done = _git(
                ["git", *INSULATION_ARGS, *args],
                timeout,
                started,
                cwd=cwd,
                env=git_process_env(env),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
                pass_fds=tuple(keep_fds),
            )
            read_back(done, out, err)
    except (FileNotFoundError, NotADirectoryError):
        # Not a GitError: callers that ask git a question (``ok``, ``repo_root``) must not
        # read "no git" as "no" ("not in a git repository", issue 15). subprocess raises
        # the same error for a missing ``cwd`` as for a missing git (issue 13).
        raise _not_started(cwd) from None
    stdout = done.stdout.decode("utf-8", "surrogateescape")
    stderr = done.stderr.decode("utf-8", "surrogateescape")
    if check and done.returncode != 0:
        if done.returncode == _USAGE and args != ("--version",):
            refuse_old_git(cwd)  # an option git does not know: say why, not git's usage text
        if untrusted := _DUBIOUS.search(stderr):
            raise _not_trusted(untrusted[1])
        raise GitError(cmd, done.returncode, stdout, stderr)
    return stdout, stderr


def _git(
    argv: list[str],
    timeout: float | None,
    started: Callable[[int], None] | None = None,
    **popen: Any,
) -> subprocess.CompletedProcess[bytes]:
    """``subprocess.run(argv, **popen)``, but a git that outlives ``timeout`` is ended with
    its whole group (``end_group``: the signer it waits on too, a pipe it holds would keep
    us waiting), and fails with :data:`TIMED_OUT` and a last line of stderr saying so; an
    interrupt ends them too. ``started`` hears git's pid (its group's) once it runs."""
    with subprocess.Popen(argv, **popen) as process:
        try:
            if started is not None:
                started(process.pid)
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            out, err = end_group(process)
            said = f"\n{STOPPED} after {timeout:g} s\n".encode()
            return subprocess.CompletedProcess(argv, TIMED_OUT, out, (err or b"") + said)
        except BaseException:  # KeyboardInterrupt included, as subprocess.run does
            end_group(process)
            raise
    return subprocess.CompletedProcess(argv, process.returncode, out, err)


def end_group(process: subprocess.Popen[bytes]) -> tuple[bytes, bytes]:
    """End a git and all it started (its own session: its group), and what it wrote.
    SIGTERM first: git removes its temporary files then (a signing git's
    ``$TMPDIR/.git_signing_buffer_tmp*``, which SIGKILL left behind in the user's /tmp);
    then SIGKILL, for a signer that outlived it."""
    procgroup.signal_group(process.pid, signal.SIGTERM)
    _exited(process, _TERM_GRACE)
    procgroup.signal_group(process.pid, signal.SIGKILL)
    try:
        out, err = process.communicate(timeout=_GRACE)
    except subprocess.TimeoutExpired:  # a daemon of another group holds the pipes
        return b"", b""
    return out or b"", err or b""


def _exited(process: subprocess.Popen[bytes], within: float) -> None:
    """Wait up to ``within`` seconds for ``process`` to exit, leaving it unreaped (a zombie
    keeps its pid, so its group's id names no stranger's group when it is signalled next).
    """
    if not hasattr(os, "waitid"):  # not on every Unix: reaped, as subprocess does
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=within)
        return
    deadline, pause = time.monotonic() + within, 0.0005
    flags = os.WEXITED | os.WNOHANG | os.WNOWAIT
    while os.waitid(os.P_PID, process.pid, flags) is None and time.monotonic() < deadline:
        time.sleep(pause)  # as Popen.wait(timeout) polls
        pause = min(pause * 2, 0.05)


TIMED_OUT = -int(signal.SIGKILL)
STOPPED = "dagspec stopped git: it was still waiting"
_GRACE = 5.0  # seconds for what git wrote before it was killed
_TERM_GRACE = 2.0  # seconds for git to remove its temporary files after SIGTERM


def _not_started(cwd: Path) -> DagspecError:
    """Why git could not be started in ``cwd``: the directory is gone, or git is."""
    if not cwd.is_dir():
        return DagspecError(
            f"{cwd} is gone (moved or deleted?), so git cannot run there: if the repository "
            "was moved, run dag from where it is now"
        )
    return DagspecError("git is not installed or not on PATH: install git 2.38 or newer")


# git 2.35.2+ refuses a repository another user owns (git-config(1), safe.directory).
_DUBIOUS = re.compile(r"detected dubious ownership in repository at '(.*)'")


def _not_trusted(path: str) -> DagspecError:
    return DagspecError(
        f"git refuses to work in {path}: another user owns it (git's safe.directory check); "
        f"if you trust it, run `git config --global --add safe.directory {path}`, then try again"
    )


def refuse_old_git(cwd: Path) -> None:
    """Raise ``DagspecError`` naming the git needed when the one on PATH is older."""
    found = version(cwd)
    if found is None or found < MIN_GIT:
        shown = ".".join(map(str, found)) if found else "of an unknown version"
        raise DagspecError(
            f"git {shown} is too old: dagspec needs git {MIN_GIT_TEXT} or newer "
            "(for `git merge-tree --write-tree`); install a newer git"
        )


def ok(cwd: Path, *args: str) -> bool:
    """Whether ``git args`` succeeds (for questions such as "does this ref exist")."""
    try:
        run(cwd, *args)
    except GitError:
        return False
    return True


def repo_root(start: Path) -> Path | None:
    """The top of the working tree containing ``start``, or None outside any repository."""
    if not start.is_dir():
        return None
    args = ("rev-parse", "--show-toplevel")
    try:
        top = one_line(args, run(start, *args))
    except GitOutputError:
        raise
    except GitError:
        return None
    return Path(top) if top else None


def checkout_root(start: Path, where: str) -> Path:
    """The top of the checkout containing ``start``, the directory ``where`` names (``the
    current directory``, ``--repo X``). Raises ``DagspecError`` with git's own reason, in
    one line, when git cannot work there for another reason than no repository at all (a
    bare repository, a broken configuration, an extension of a newer git...)."""
    args = ("rev-parse", "--show-toplevel")
    try:
        top = one_line(args, run(start, *args))
    except GitOutputError:
        raise
    except GitError as failed:
        raise _no_checkout(failed, where) from None
    return Path(top)


def _no_checkout(failed: GitError, where: str) -> DagspecError:
    """Why git found no checkout at ``where``, in one line: git's own reason (its lines
    joined) unless it is plainly that there is no repository there."""
    said = " ".join(line.strip() for line in failed.stderr.splitlines() if line.strip())
    said = said.removeprefix("fatal: ")
    if not said or said.startswith("not a git repository"):
        return DagspecError(f"{where} is not in a git repository: cd into one, or pass --repo")
    if "must be run in a work tree" in said:
        return DagspecError(
            f"{where} is in a git repository without a checkout (a bare repository, one with "
            "core.bare=true, or inside a .git directory): run dag in a checkout of it, or "
            "pass --repo naming one"
        )
    newer = " (the repository was made by a newer git: use it)" if "extension" in said else ""
    return DagspecError(
        f"git cannot work in {where}: {said}{newer}; put that right, then try again"
    )


# --- refs and commits -------------------------------------------------------------------


def rev_parse(repo: Path, rev: str) -> str | None:
    """The commit ``rev`` names, or None when it names nothing."""
    try:
        return run(repo, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}").strip()
    except GitError:
        return None


def lost_commit(repo: Path, ref: str) -> str | None:
    """The commit ``ref`` points at when the repository no longer has it (``git gc
    --prune=now`` after a reset, a corrupt clone), else None (it has it, or ``ref`` names
    nothing). git then fails on every use of the ref: ``bad object HEAD``, ``could not
    parse HEAD``, ``missing object``."""
    if rev_parse(repo, ref) is not None:
        return None
    try:  # without ``^{commit}``: the name alone, not the object, is looked up
        sha = run(repo, "rev-parse", "--verify", "--quiet", ref).strip()
    except GitError:
        return None
    return sha or None


def current_branch(worktree: Path) -> str | None:
    """The branch checked out in ``worktree``; None on a detached HEAD. From the full ref
    name: ``--short`` says ``heads/main`` when a tag ``main`` is there too."""
    args = ("symbolic-ref", "--quiet", "HEAD")
    out = run(worktree, *args, check=False)
    ref = one_line(args, out)
    if "\n" in ref:  # a ref name cannot hold one (git-check-ref-format(1))
        raise GitOutputError(["git", *args], out, ref, "one ref name")
    return ref.removeprefix("refs/heads/") if ref.startswith("refs/heads/") else None


def branch_exists(repo: Path, branch: str) -> bool:
    return ok(repo, "show-ref", "--verify", "--quiet", f"refs/heads/{branch}")


def is_ancestor(repo: Path, ancestor: str, descendant: str) -> bool:
    return ok(repo, "merge-base", "--is-ancestor", ancestor, descendant)


# --- worktrees ----------------------------------------------------------------------------


def add_worktree(repo: Path, path: Path, branch: str, start: str) -> None:
    """A new worktree at ``path`` on a new branch ``branch`` starting at ``start``."""
    run(repo, "worktree", "add", "--quiet", "-b", branch, str(path), start)


def add_worktree_existing(repo: Path, path: Path, branch: str) -> None:
    """A worktree at ``path`` on the existing ``branch`` (recreating a deleted worktree)."""
    run(repo, "worktree", "add", "--quiet", str(path), branch)


def remove_worktree(repo: Path, path: Path, *, force: bool = False) -> None:
    run(repo, "worktree", "remove", *(["--force"] if force else []), str(path))


def worktrees(repo: Path) -> dict[Path, str | None]:
    """Every checkout of the repository and its branch (None when detached), as ``git
    worktree list`` names them: the main one first; a bare repository, which has no
    checkout, is left out. A main checkout whose git directory lies elsewhere (``git init
    --separate-git-dir``) is listed as that directory (git 2.39): it is named ``repo`` when
    ``repo`` is that checkout, else left out (no git directory is a checkout)."""
    result: dict[Path, str | None] = {}
    path: Path | None = None
    for field in nul_split(run(repo, "worktree", "list", "--porcelain", "-z")):
        if field.startswith("worktree "):
            path = Path(field.removeprefix("worktree "))
            path = _checkout_of(path, repo) if not result else path
            result[path] = None
        elif field.startswith("branch ") and path is not None:
            result[path] = field.removeprefix("branch refs/heads/")
        elif field == "bare" and path is not None:
            del result[path]
    return {path: branch for path, branch in result.items() if path != _NOWHERE}


_NOWHERE = Path("/dev/null/no-checkout")


def _checkout_of(listed: Path, repo: Path) -> Path:
    """The main checkout ``git worktree list`` names ``listed``: itself, or, when it is a
    git directory (``--separate-git-dir``), ``repo`` if ``repo``'s ``.git`` file leads
    there, else ``_NOWHERE``. No git process: the files say it."""
    if (listed / ".git").exists() or not (listed / "HEAD").is_file():
        return listed
    try:
        pointer = (repo / ".git").read_text(encoding="utf-8", errors="surrogateescape")
    except OSError:
        return _NOWHERE
    # Only git's newline and the space after "gitdir:" go: the path may end in a space.
    target = Path(pointer.removesuffix("\n").removeprefix("gitdir:").removeprefix(" "))
    if not target.is_absolute():
        target = repo / target
    return repo if os.path.realpath(target) == os.path.realpath(listed) else _NOWHERE


def repair_worktrees(repo: Path, paths: Sequence[Path]) -> None:
    """Mend the links between the repository and its linked worktrees at ``paths`` after
    either moved (``git worktree repair``, git 2.29 or newer)."""
    run(repo, "worktree", "repair", *map(str, paths))


def delete_branch(repo: Path, branch: str, *, force: bool = False) -> None:
    run(repo, "branch", "-D" if force else "-d", "--quiet", branch)


# --- cleanup ------------------------------------------------------------------------------


def uncommitted(worktree: Path) -> list[str]:
    """What removing ``worktree`` would lose: ``XY path`` per changed or untracked file
    (ignored files are not listed; a rename is listed once, under its new path)."""
    args = ("status", "--porcelain", "-z", "--untracked-files=all")
    return status_entries(args, run(worktree, *args))


def commits_lacking(
    repo: Path, tip: str, others: Sequence[str], *, merges: bool = True
) -> list[str]:
    """``<short sha> <subject>`` of each commit of ``tip`` that none of ``others`` has,
    newest first; merge commits left out unless ``merges``."""
    flags = () if merges else ("--no-merges",)
    return lines(run(repo, "log", "--format=%h %s", *flags, tip, "--not", *others, "--"))


# --- worktree preparation ---
# Verbs the run engine uses to prepare a spec's worktree (its commit: ``git_commit``).


def unmerged_files(worktree: Path) -> list[str]:
    """The files of ``worktree`` with a conflict not resolved yet (a merge in progress)."""
    args = ("diff", "--name-only", "--diff-filter=U", "-z")
    return sorted(set(fields(args, run(worktree, *args))))


def checkout_branch_at(worktree: Path, branch: str, commit: str) -> None:
    """Point ``branch`` at ``commit`` and check it out in ``worktree`` (``checkout -B``)."""
    run(worktree, "checkout", "--quiet", "--no-recurse-submodules", "-B", branch, commit)


def branch_names(repo: Path) -> list[str]:
    """Every local branch name, and every remote-tracking one without its remote's name."""
    args = ("for-each-ref", "--format=%(refname)", "refs/heads", "refs/remotes")
    return [
        ref.split("/", 3)[3] if ref.startswith("refs/remotes/") else ref.split("/", 2)[2]
        for ref in ref_names(args, run(repo, *args))
        if ref.count("/") >= (3 if ref.startswith("refs/remotes/") else 2)
    ]


def untracked_files(worktree: Path, *paths: str, each: bool = True) -> list[str]:
    """Untracked files that are not ignored, under ``paths`` (file names, not patterns: a
    ``[`` or ``*`` in one is itself), one entry per file (``each`` False: a directory
    wholly untracked is one entry, ``dir/``, as ``git status`` shows it)."""
    shown = "--untracked-files=all" if each else "--untracked-files=normal"
    args = ("--literal-pathspecs", "status", "--porcelain", "-z", shown)
    out = run(worktree, *args, "--", *paths)
    return [entry[3:] for entry in status_entries(args, out) if entry.startswith("?? ")]


def tracked_files(worktree: Path, path: str) -> list[str]:
    """Tracked files at or under ``path`` (a file name, not a pattern)."""
    args = ("--literal-pathspecs", "ls-files", "-z", "--", path)
    return fields(args, run(worktree, *args))


def tree_dirs(repo: Path, commit: str, path: str) -> list[str]:
    """Names of the directories directly under ``path`` in ``commit``."""
    args = ("ls-tree", "-d", "-z", "--name-only", f"{commit}:{path}")
    return fields(args, run(repo, *args, check=False))


def init_repo(path: Path, branch: str) -> None:
    """A new repository at ``path`` whose first branch is ``branch`` (for ``dag demo``)."""
    run(path, "init", "--quiet", "--initial-branch", branch)


def set_config(repo: Path, key: str, value: str) -> None:
    """Set ``key`` in the repository's own configuration."""
    run(repo, "config", "--local", key, value)


def git_dir(worktree: Path) -> Path:
    """The worktree's own git directory (``.git/worktrees/<name>`` for a linked worktree):
    a place for private markers that is never committed and goes with the worktree."""
    args = ("rev-parse", "--absolute-git-dir")
    return Path(one_line(args, run(worktree, *args)))


def own_git_dir(checkout: Path) -> Path:
    """``git_dir``, read from the checkout's ``.git`` (the directory itself, or the file
    naming it) without a git process; git is asked only when that does not say."""
    dot = checkout / ".git"
    if dot.is_dir():
        return dot
    try:
        pointer = dot.read_text(encoding="utf-8", errors="surrogateescape").removesuffix("\n")
    except OSError:
        return git_dir(checkout)
    if not pointer.startswith("gitdir: "):
        return git_dir(checkout)
    return checkout / pointer.removeprefix("gitdir: ")


def common_dir(repo: Path) -> Path | None:
    """The repository's shared git directory (``--git-common-dir``): the main checkout's
    ``.git`` even from a linked worktree (git-worktree(1)); None when git cannot tell."""
    args = ("rev-parse", "--path-format=absolute", "--git-common-dir")
    try:
        out = one_line(args, run(repo, *args))
    except GitOutputError:
        raise
    except GitError:
        return None
    return Path(out) if out else None


# --- preflight ------------------------------------------------------------------------------


def version(cwd: Path) -> tuple[int, ...] | None:
    """git's version (``(2, 39, 5)``), or None when it cannot be told from ``git --version``
    ("git version 2.39.3 (Apple Git-146)" gives ``(2, 39, 3)``)."""
    words = run(cwd, "--version").split()
    numbers = words[2].split(".") if len(words) > 2 else []
    digits = [int(n) for n in itertools.takewhile(str.isdigit, numbers)]
    return tuple(digits) if len(digits) >= 2 else None


def identity(repo: Path, who: str) -> str | None:
    """``Name <email>`` git would record as ``who`` (``AUTHOR`` or ``COMMITTER``), or None
    when it has none configured and cannot guess one."""
    try:
        ident = run(repo, "var", f"GIT_{who}_IDENT").strip()
    except GitError:
        return None
    return ident.rsplit(">", 1)[0] + ">"


_IDENTITY_KEYS = r"^(user|author|committer)\.(name|email)$"


def identity_env(repo: Path) -> dict[str, str]:
    """Who commits in ``repo``'s checkout, as ``GIT_AUTHOR_*`` and ``GIT_COMMITTER_*``
    variables for commits made elsewhere: configuration read in the checkout (an
    ``includeIf "onbranch:main"`` applies there, not on a ``dag/...`` branch), by git's
    precedence (``author.name`` over ``user.name``...); a variable the user set is kept."""
    out = run(repo, "config", "-z", "--get-regexp", _IDENTITY_KEYS, check=False)
    found: dict[str, str] = {}
    for entry in nul_split(out):
        key, _, value = entry.partition("\n")
        found[key.lower()] = value  # the last one wins, as in git
    env: dict[str, str] = {}
    for who in ("author", "committer"):
        for what in ("name", "email"):
            given = found.get(f"{who}.{what}") or found.get(f"user.{what}")
            variable = f"GIT_{who.upper()}_{what.upper()}"
            if given and variable not in os.environ:
                env[variable] = given
    return env


_FILTER_KEYS = r"^filter\..+\.(required|process|smudge|clean)$"
_TRUE = ("", "true", "yes", "on", "1")


def required_filters(repo: Path) -> dict[str, list[str]]:
    """``{name: commands}`` of each filter the configuration marks ``required``: its
    ``process`` command, else its ``smudge`` and ``clean`` ones (one ``git config``)."""
    out = run(repo, "config", "-z", "--get-regexp", _FILTER_KEYS, check=False)
    found: dict[str, dict[str, str]] = {}
    for entry in nul_split(out):
        key, _, value = entry.partition("\n")
        name, _, what = key.removeprefix("filter.").rpartition(".")
        found.setdefault(name, {})[what.lower()] = value
    return {
        name: [said["process"]]
        if said.get("process")
        else [said[what] for what in ("smudge", "clean") if said.get(what)]
        for name, said in found.items()
        if said.get("required", "false").strip().lower() in _TRUE
    }


def filters_used(repo: Path, commit: str, names: Sequence[str]) -> set[str]:
    """Which of the filters ``names`` a ``.gitattributes`` file of ``commit`` uses
    (``filter=NAME``), in one ``git grep``."""
    patterns = [arg for name in names for arg in ("-e", f"filter={name}")]
    args = ("grep", "-h", "-o", "-w", "-F", *patterns, commit, "--", ":(glob)**/.gitattributes")
    return {line.removeprefix("filter=") for line in lines(run(repo, *args, check=False))}


def refs(repo: Path, *patterns: str) -> list[str]:
    """The full names of the refs that match ``patterns`` (``refs/heads/dag/``)."""
    args = ("for-each-ref", "--format=%(refname)", *patterns)
    return ref_names(args, run(repo, *args))
