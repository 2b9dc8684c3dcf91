"""What one argument of a process can hold on Linux: a DAG's descriptions reach autospec
as one argument, and its merge messages reach git as one."""

from __future__ import annotations

MAX_ARGUMENT = 128 * 1024
"""Bytes the Linux kernel passes in one argument, its NUL terminator included
(``MAX_ARG_STRLEN``); a longer description can never reach autospec (E2BIG)."""
# A DAG value may be a merge commit's message with a line of dagspec's around it (the
# spec and run ids: under 1 KiB), passed to git as one argument.
MAX_TEXT = MAX_ARGUMENT - 1024


def argument_problem(text: str) -> str | None:
    """Why ``text`` cannot be one argument of a process on Linux, with room for what dagspec
    adds around it in a commit message (``MAX_TEXT``), or None when it can."""
    if "\0" in text:
        return "contains a NUL character, which no program can be given: remove it"
    size = len(text.encode("utf-8", errors="surrogatepass"))  # MAX_TEXT has room for NUL
    if size > MAX_TEXT:
        return (
            f"is {size} bytes, over the {MAX_TEXT // 1024} KiB ({MAX_TEXT} bytes) it can be "
            f"(a program is given {MAX_ARGUMENT // 1024} KiB at most, and dagspec's commit "
            "messages add to it): shorten it"
        )
    return None
