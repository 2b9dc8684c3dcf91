"""The git verbs that make commits: a worktree's work committed, a commit object built;
each signed when the user's configuration asks (``commit.gpgSign``), within
:data:`SIGNING_WAIT`, and never waiting for a passphrase (``LockedSigningKey`` says what to
do). Every call goes through :func:`dagspec.git.run`, cleaned and insulated.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from dagspec.errors import GitError, LockedSigningKey
from dagspec.git import STOPPED, ok, run


def signs_commits(repo: Path) -> bool:
    """Whether the user's configuration asks for signed commits (``commit.gpgSign``)."""
    out = run(repo, "config", "--type=bool", "--get", "commit.gpgsign", check=False)
    return out.strip() == "true"


def _sign_flag(sign: bool) -> str:
    return "--gpg-sign" if sign else "--no-gpg-sign"


# How long a signing git may take. A signer never asks anyone here (``git_env.NO_PROMPTS``),
# but one whose key is locked can still wait: a pinentry window that gpg-agent opens on its
# own display, a hardware key waiting to be touched.
SIGNING_WAIT = 60.0

# What a signer says when its key needs a passphrase nobody can type: ssh-keygen, with no
# terminal and no askpass, reads an empty one; gpg has no pinentry it may use; or dagspec
# stopped the wait.
_NEEDS_PASSPHRASE = re.compile(
    "incorrect passphrase|No pinentry|Inappropriate ioctl for device|No passphrase given"
    f"|Bad passphrase|Operation cancelled|{STOPPED}"
)


_GPG_FAILED = "gpg failed to sign the data"


def _signed(cwd: Path, *args: str, env: Mapping[str, str] | None = None) -> str:
    """``run(cwd, *args)`` of a command that signs: bounded by :data:`SIGNING_WAIT`, and
    ``LockedSigningKey`` (what to do, in one line) when the key needs a passphrase, or may
    (git says only "gpg failed to sign the data", whatever gpg said)."""
    try:
        return run(cwd, *args, env=env, timeout=SIGNING_WAIT)
    except GitError as exc:
        form = run(cwd, "config", "--get", "gpg.format", check=False).strip() or "openpgp"
        sure = bool(_NEEDS_PASSPHRASE.search(exc.stderr))
        if not sure and (form == "ssh" or _GPG_FAILED not in exc.stderr):
            raise
        key = run(cwd, "config", "--get", "user.signingkey", check=False).strip()
        raise LockedSigningKey(exc, key, form, sure=sure) from None


def commit_tree(
    repo: Path,
    tree: str,
    parents: Sequence[str],
    message: str,
    *,
    sign: bool = False,
    env: Mapping[str, str] | None = None,
) -> str:
    """A new commit object of ``tree`` with ``parents`` (no ref moves); signed with the
    user's key and format (``user.signingKey``, ``gpg.format``) when ``sign``."""
    flags = [arg for parent in parents for arg in ("-p", parent)]
    args = ("commit-tree", _sign_flag(sign), tree, *flags, "-m", message)
    return (_signed(repo, *args, env=env) if sign else run(repo, *args, env=env)).strip()


def commit_all(
    worktree: Path, message: str, *, sign: bool = False, identity: Mapping[str, str] | None = None
) -> bool:
    """Commit every change and untracked, not ignored file; False when there was nothing.

    No hook runs: the user's commit hooks are for the user's own commits; the agent's work
    is reviewed when it is merged. ``sign``: sign it (``-S``), as ``signs_commits`` says;
    ``identity``: who commits (``identity_env``). ``--sparse``: in a sparse checkout (a
    worktree inherits the main checkout's cone) the agent's files outside the cone are
    added too, where plain ``add -A`` refused them all.
    """
    run(worktree, "add", "-A", "--sparse")
    try:
        args = ("commit", "--quiet", "--no-verify", _sign_flag(sign), "-m", message)
        if sign:
            _signed(worktree, *args, env=identity)
        else:
            run(worktree, *args, env=identity)
    except GitError:
        if ok(worktree, "diff", "--cached", "--quiet"):
            return False  # nothing was staged: asked only when the commit failed
        raise
    return True


def try_signing(repo: Path) -> str | None:
    """Sign a commit object of the empty tree, as dagspec signs its merges; None when it
    worked, else what git said; ``LockedSigningKey`` when the key needs a passphrase. Writes
    only unreachable objects (pruned by ``git gc``)."""
    tree = run(repo, "mktree").strip()
    try:
        commit_tree(repo, tree, (), "dagspec: can git sign here?", sign=True)
    except LockedSigningKey:
        raise
    except GitError as exc:
        return (exc.stderr or str(exc)).strip()
    return None
