"""The ``napari-lazyproc`` command line: ``demo``, ``info``, ``ops`` and ``process``.

One module per command (``demo``, ``info``, ``catalogue``, ``process`` and its batch
run ``batch_run``); bad input exits with code 2 and a one-line reason; a batch with
failed datasets exits 3; napari is imported only by ``demo``.
"""

from __future__ import annotations

import argparse
import sys

from ..io import ImageReadError
from ..ops import Cancelled
from . import catalogue, demo, info, process
from .errors import EXIT_BAD_INPUT, EXIT_CANCELLED, EXIT_SOME_FAILED, BadInput

__all__ = ["EXIT_BAD_INPUT", "EXIT_CANCELLED", "EXIT_SOME_FAILED", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The command line's parser, with its ``demo``, ``info``, ``ops`` and ``process`` commands.

    Returns
    -------
    argparse.ArgumentParser
        A parser whose parsed arguments carry the command to run as ``func``.
    """
    parser = argparse.ArgumentParser(
        prog="napari-lazyproc",
        description="Lazy, parallel processing of large bio-images.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for command in (demo, info, catalogue, process):
        command.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``napari-lazyproc`` command line.

    Parameters
    ----------
    argv : list of str, optional
        The arguments after the program name (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit status: 0 on success, 2 (``EXIT_BAD_INPUT``) for bad input, with a
        one-line reason on stderr, 3 (``EXIT_SOME_FAILED``) for a batch in which some
        datasets failed, 130 when cancelled.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ImageReadError, BadInput) as exc:
        print(f"napari-lazyproc: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (Cancelled, KeyboardInterrupt):
        print("napari-lazyproc: cancelled", file=sys.stderr)
        return EXIT_CANCELLED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
