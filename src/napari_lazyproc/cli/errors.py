"""The command line's exit statuses, and the error that means "bad input: exit 2"."""

from __future__ import annotations

#: bad input: a one-line reason on stderr, nothing computed
EXIT_BAD_INPUT = 2
#: a batch in which some datasets failed (the others are done)
EXIT_SOME_FAILED = 3
#: cancelled (Ctrl-C)
EXIT_CANCELLED = 130


class BadInput(Exception):
    """Bad input on the command line: exit 2 with this one-line reason."""
