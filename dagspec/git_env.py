"""The environment of every git process dagspec starts, and of its agents.

dagspec's own git calls run with a cleaned environment (``clean_env``: the variables git
sets for hooks, ``GIT_DIR``, ``GIT_INDEX_FILE``, ``GIT_WORK_TREE``..., would point them at
the repository and index of the commit being made) and insulated (``INSULATION``: no user
hook or setting changes what they do or print). Agents get ``agent_env``: the user's hooks
and settings kept, only the repository locators removed. A git that must finish its work
even if dagspec is killed (the fast-forward of the checkout) writes its output to files
(``output_to``), never to a pipe that would break under it. Nothing git starts may wait for
a person (``git_process_env``): a signer asks for no passphrase, it fails.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from typing import Any

_KEPT = ("GIT_AUTHOR_", "GIT_COMMITTER_", "GIT_CONFIG", "GIT_SSH", "GIT_ASKPASS", "GIT_TERMINAL")

# Settings that win over the user's for every command of dagspec's own (issue 12). Hooks:
# no commit-msg, pre-commit, post-checkout, reference-transaction... can veto a write.
# The rest keep the output we parse and the commits we make the same in every repository.
# Signing is not here: each command that commits says ``-S`` or ``--no-gpg-sign`` itself.
INSULATION: dict[str, str] = {
    "core.hooksPath": os.devnull,
    "color.ui": "false",
    "log.showSignature": "false",
    "merge.conflictStyle": "merge",
    "merge.log": "false",
    "merge.verifySignatures": "false",
    "merge.autoStash": "false",
    "rerere.enabled": "false",
    "commit.template": "",
    "commit.cleanup": "strip",
    "core.editor": "true",
    "advice.detachedHead": "false",
    "core.safecrlf": "false",  # with core.autocrlf, "LF would be replaced by CRLF" refused add
    "gc.auto": "0",
    # `git commit` starts `git maintenance run --auto` after its work (git 2.29+,
    # Documentation/config/maintenance.txt): with gc.auto=0 it has nothing to do, but it is
    # one more process for every spec's commit.
    "maintenance.auto": "false",
}
INSULATION_ARGS = tuple(arg for item in INSULATION.items() for arg in ("-c", "=".join(item)))


# The variables that tie git to one repository and its index, as `git rev-parse
# --local-env-vars` lists them (git 2.39), plus GIT_NAMESPACE and GIT_QUARANTINE_PATH (set
# for pre-receive hooks). Set by a hook's git, they would point an agent's git elsewhere.
REPOSITORY_LOCATORS = frozenset(
    {
        "GIT_ALTERNATE_OBJECT_DIRECTORIES",
        "GIT_OBJECT_DIRECTORY",
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_IMPLICIT_WORK_TREE",
        "GIT_GRAFT_FILE",
        "GIT_INDEX_FILE",
        "GIT_NO_REPLACE_OBJECTS",
        "GIT_REPLACE_REF_BASE",
        "GIT_PREFIX",
        "GIT_INTERNAL_SUPER_PREFIX",
        "GIT_SHALLOW_FILE",
        "GIT_COMMON_DIR",
        "GIT_NAMESPACE",
        "GIT_QUARANTINE_PATH",
    }
)


def agent_env(extra: Mapping[str, str]) -> dict[str, str]:
    """The environment an agent's own git calls should see: the process environment
    without ``REPOSITORY_LOCATORS``, everything else kept (``GIT_SSH_COMMAND``, proxies,
    ``GIT_SSL_CAINFO``: an agent that fetches or pushes needs them), then ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in REPOSITORY_LOCATORS}
    env.update(extra)
    return env


# No prompt anywhere for dagspec's own git, which runs without a terminal (``git.run``): git
# asks for no credentials, ssh-keygen (``gpg.format=ssh``) never falls back to an askpass
# window, and gpg is not told a terminal its pinentry could take (GPG_TTY). A signing key
# that needs a passphrase then fails at once, where it stopped the run for good (SIGTTIN).
NO_PROMPTS = {"GIT_TERMINAL_PROMPT": "0", "SSH_ASKPASS_REQUIRE": "never"}
_TERMINAL_NAMES = ("GPG_TTY",)


def git_process_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a git dagspec starts: ``clean_env(extra)``, and no prompts."""
    env = clean_env(extra)
    for name in _TERMINAL_NAMES:
        env.pop(name, None)
    env.update(NO_PROMPTS)
    return env


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The process environment without inherited repository-locating ``GIT_*`` variables,
    git's messages in English (``LANGUAGE=C``): dagspec reads some of them (dubious
    ownership, why a repository cannot be found), and a German git said them in German."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("GIT_") or name.startswith(_KEPT)
    }
    env["LANGUAGE"] = "C"
    env.update(extra or {})
    return env


@contextlib.contextmanager
def output_to(*, outlive: bool) -> Iterator[tuple[Any, Any]]:
    """Where git's stdout and stderr go: pipes, or files when git must ``outlive`` dagspec
    (a pipe whose reader is gone kills git with SIGPIPE at its next write)."""
    if not outlive:
        yield subprocess.PIPE, subprocess.PIPE
        return
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        yield out, err


def read_back(done: subprocess.CompletedProcess[bytes], out: Any, err: Any) -> None:
    """Put what git wrote to the files of :func:`output_to` in ``done`` (pipes: nothing to)."""
    for name, file in (("stdout", out), ("stderr", err)):
        if not isinstance(file, int):
            file.seek(0)
            setattr(done, name, file.read())
