"""`tokes-bench` entry point: subcommands are the modules of `tokes_bench.commands`.

Each command module defines `COMMAND` (a tuple such as ("eval", "linear")), `HELP`,
`add_arguments(parser)` and `run(args) -> int`, and imports its heavy dependencies inside `run`,
so `tokes-bench --help` stays fast and a new command needs no edit here.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from types import ModuleType

from tokes_bench import commands as _commands_pkg


def _command_modules() -> list[ModuleType]:
    mods = [
        importlib.import_module(f"{_commands_pkg.__name__}.{m.name}")
        for m in pkgutil.iter_modules(_commands_pkg.__path__)
        if not m.name.startswith("_")
    ]
    return sorted((m for m in mods if hasattr(m, "COMMAND")), key=lambda m: m.COMMAND)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, subcommands nested as their COMMAND tuples say."""
    parser = argparse.ArgumentParser(prog="tokes-bench", description=__import__("tokes_bench").__doc__)
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    root = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    groups: dict[tuple[str, ...], argparse._SubParsersAction] = {(): root}
    for mod in _command_modules():
        path = tuple(mod.COMMAND)
        for depth in range(1, len(path)):
            prefix = path[:depth]
            if prefix not in groups:
                sub = groups[prefix[:-1]].add_parser(prefix[-1], help=f"{prefix[-1]} subcommands")
                groups[prefix] = sub.add_subparsers(dest="_".join(prefix), metavar="PROTOCOL", required=True)
        p = groups[path[:-1]].add_parser(path[-1], help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and run the chosen subcommand; errors a user can fix exit 2 with one clear line."""
    args = build_parser().parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except (ValueError, FileNotFoundError, KeyError) as e:
        if args.debug:
            raise
        print(f"tokes-bench: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
