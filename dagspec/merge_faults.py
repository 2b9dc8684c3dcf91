"""What keeps git from making a run's merge commits, said in one line with what to do: no
room to write them (a full disk, ``ulimit -f``), no identity to make them with, a signer
that fails. Each comes before anything moves: nothing was changed (README, Errors)."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

from dagspec import git_said, onto_advice
from dagspec.errors import DagspecError, GitError, LockedSigningKey, SignerTimedOut

# What git says (``LANGUAGE=C``) when it knows no name or email to make a commit with.
_NO_IDENTITY = re.compile(
    r"Please tell me who you are|unable to auto-detect email address|empty ident name"
    r"|(Author|Committer) identity unknown|invalid ident name|no (name|email) was given"
    r"|name consists only of disallowed characters"
)


@contextlib.contextmanager
def said_in_one_line(run_id: str, *, onto: bool = False) -> Iterator[None]:
    """Around building the merges of run ``run_id``: a git that could not make them for
    one of the reasons above raises ``DagspecError``, one line naming what to set, then the
    merge again (``--onto-current`` with ``onto``: ``onto_advice``)."""
    try:
        yield
    except (LockedSigningKey, SignerTimedOut):
        raise  # one line already, saying how to unlock the key or how long a signer may take
    except GitError as exc:
        found = _what_and_todo(exc, run_id, onto_advice.merge_command(run_id, onto=onto))
        if found is None:
            raise
        what, todo = found
        raise DagspecError(
            f"{what}; nothing was changed (no branch moved, no file touched): {todo}"
        ) from None


def _what_and_todo(exc: GitError, run_id: str, merge: str) -> tuple[str, str] | None:
    said = exc.stderr or exc.stdout or ""
    again = f"`{merge}`"
    if (room := git_said.no_room(exc.returncode, said)) is not None:
        return (
            f"git could not write the merges of run {run_id}: {room}",
            f"{again} once there is room",
        )
    if "commit-tree" not in exc.cmd:
        return None
    gist = git_said.gist(said) or f"exit code {exc.returncode}"
    if _NO_IDENTITY.search(said):
        return (
            f"git has no identity to make the merge commits of run {run_id} with ({gist})",
            'set one with `git config user.name "Your Name"` and `git config user.email '
            f"you@example.com` (add --global for every repository), then {again}",
        )
    if "--gpg-sign" in exc.cmd:
        return (
            f"git could not sign the merge commits of run {run_id} ({gist})",
            "fix the signing key (user.signingKey, gpg.format: `git commit --allow-empty -S -m "
            f"test` tries them) or turn commit.gpgSign off, then {again}",
        )
    return None
