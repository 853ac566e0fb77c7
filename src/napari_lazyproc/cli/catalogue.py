"""``ops``: the operations and their parameters, as the registry lists them."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    """Add the ``ops`` command to the subparsers ``sub``."""
    ops = sub.add_parser("ops", help="list the operations and their parameters")
    ops.set_defaults(func=cmd_ops)


def cmd_ops(args: argparse.Namespace) -> int:
    """The ``ops`` command: list the operations and their parameters.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed command line (``ops`` takes no options).

    Returns
    -------
    int
        The exit status, 0.
    """
    from ..ops import list_ops

    for op in list_ops():
        print(f"{op['name']:<28} {op['category']:<11} {op['description']}")
        for p in op["params"]:
            extra = ", ".join(
                f"{k}={v}" for k, v in p.items() if k not in ("name", "type", "default", "help")
            )
            print(f"    {p['name']}: {p['type']} = {p['default']!r}"
                  + (f"  ({extra})" if extra else "")
                  + (f"  {p['help']}" if p.get("help") else ""))
    return 0
