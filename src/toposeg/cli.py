"""``toposeg`` command line: one subcommand per module in :mod:`toposeg.commands`.

The entry point is the only place that sets torch's thread count (``--threads``, else
``$TOPOSEG_THREADS``, else :func:`toposeg.commands._common.default_threads` of the machine) and
the one place that turns a user error into one line ``toposeg COMMAND: error: ...`` with exit
status 2 (no traceback): bad values, missing or unreadable files, a folder given for a file and
the reverse, a missing optional extra (with its ``pip install`` command). Command-line mistakes
caught by argparse (an unknown flag, a bad choice, a missing argument) get the same one line from
the (sub)command that received them (:class:`ArgumentParser`), the usage left to ``--help``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from toposeg import __version__
from toposeg.commands import COMMANDS

# dest -> (flag, what it must be); checked for every command that has the attribute
_FILE_ARGS = {"config": ("CONFIG", "a YAML config file")}
_FOLDER_ARGS = {"data_root": ("--data-root", "the dataset folder")}


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Adds ``(default: X)`` only where the help text does not already speak of the default and
    there is a value to show (not None, not a False switch)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text.lower() or action.default in (None, False, argparse.SUPPRESS) or not action.option_strings:
            return text
        return super()._get_help_string(action)


class ArgumentParser(argparse.ArgumentParser):
    """argparse with the CLI's error format: one line ``toposeg COMMAND: error: ...`` (exit 2),
    the usage left to ``--help``; an unknown flag is reported by the (sub)command it was given
    to, e.g. ``toposeg evaluate: error: unrecognized arguments: --bogus``."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")

    def parse_args(self, args=None, namespace=None):
        namespace, extras = self.parse_known_args(args, namespace)
        if extras:
            argv = list(sys.argv[1:] if args is None else args)
            self._owner(namespace, argv, extras[0]).error(f"unrecognized arguments: {' '.join(extras)}")
        return namespace

    def _owner(self, namespace: argparse.Namespace, argv: list, extra: str) -> "argparse.ArgumentParser":
        """The innermost (sub)command parser whose name comes before ``extra`` in ``argv``."""
        parser, start = self, 0
        position = argv.index(extra) if extra in argv else len(argv)
        while True:
            actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
            name = getattr(namespace, actions[0].dest, None) if actions else None
            if name not in (actions[0].choices if actions else {}) or name not in argv[start:position]:
                return parser
            start = argv.index(name, start) + 1
            parser = actions[0].choices[name]


def _threads_flag(parser: argparse.ArgumentParser, default) -> None:
    parser.add_argument("--threads", type=int, default=default, metavar="N",
                        help="torch CPU threads (default: $TOPOSEG_THREADS, else 1 on machines with up to 2 "
                             "cores and min(cores // 2, 8) above)")


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="toposeg", formatter_class=HelpFormatter,
        description="Topology-preserving segmentation of tubular structures (SHPM and rivals).",
    )
    parser.add_argument("--version", action="version", version=f"toposeg {__version__}")
    _threads_flag(parser, None)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, command in COMMANDS.items():
        p = sub.add_parser(name, help=command.HELP, description=command.HELP, formatter_class=HelpFormatter)
        command.configure(p)
        for q in _with_nested(p):
            _threads_flag(q, argparse.SUPPRESS)  # also accepted after the command name
        p.set_defaults(_run=command.run)
    return parser


def _with_nested(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """``parser`` and the parsers of its sub-commands (e.g. ``toposeg nnunet convert``)."""
    found = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                found += _with_nested(child)
    return found


def _command_prog(parser: argparse.ArgumentParser, args: argparse.Namespace) -> str:
    """``toposeg COMMAND`` (``toposeg nnunet evaluate`` for a nested command): the prog of the
    innermost parser that parsed ``args``."""
    while True:
        actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        name = getattr(args, actions[0].dest, None) if actions else None
        if name not in (actions[0].choices if actions else {}):
            return parser.prog
        parser = actions[0].choices[name]


def _check_paths(args: argparse.Namespace) -> None:
    """A folder given where a file is expected, and the reverse, before any work."""
    from pathlib import Path

    for dest, (flag, what) in _FILE_ARGS.items():
        value = getattr(args, dest, None)
        if isinstance(value, str) and Path(value).is_dir():
            raise ValueError(f"{flag} {value} is a folder; expected {what}")
    for dest, (flag, what) in _FOLDER_ARGS.items():
        value = getattr(args, dest, None)
        if isinstance(value, str) and Path(value).exists() and not Path(value).is_dir():
            raise ValueError(f"{flag} {value} is a file; expected {what}")


def _check_data_root(args: argparse.Namespace) -> None:
    """train/cv on a real dataset kind without ``--data-root``: say so, naming the flag."""
    import glob

    if not hasattr(args, "data_root") or args.data_root is not None or getattr(args, "print_config", False):
        return
    if getattr(args, "config", None):
        paths = [args.config]
    elif getattr(args, "configs", None):
        paths = sorted(glob.glob(args.configs))
    else:
        return
    from toposeg.config import load_config
    from toposeg.data.synthetic import SYNTHETIC

    for path in paths:
        try:
            kind = load_config(path, getattr(args, "set", ())).data.kind
        except Exception:  # the command itself reports a broken config
            return
        if kind not in SYNTHETIC:
            raise ValueError(f"--data-root is required: {path} reads data kind {kind!r} from disk "
                             f"(only the synthetic kinds {sorted(SYNTHETIC)} need no data root)")


def error_message(exc: BaseException) -> Optional[str]:
    """The one-line message for a user error, or None for an exception that is a bug."""
    from toposeg.io import EXTRAS, MissingExtraError, missing_extra_message

    if isinstance(exc, MissingExtraError) or (isinstance(exc, ImportError) and "pip install 'toposeg[" in str(exc)):
        return str(exc)  # our own message naming the extra
    if isinstance(exc, ImportError):
        name = (exc.name or "").split(".")[0]
        return missing_extra_message(name) if name in EXTRAS else None
    if isinstance(exc, KeyError):  # str(KeyError) wraps the message in quotes: print the message itself
        if len(exc.args) == 1 and isinstance(exc.args[0], str) and " " in exc.args[0].strip():
            return exc.args[0]
        return None  # a bare key (KeyError('labels')): a failed lookup in toposeg, a bug: traceback
    if isinstance(exc, OSError) and exc.strerror and exc.filename is not None:
        # raised by open()/os calls: "[Errno 21] Is a directory: 'x'" -> "x: is a folder, expected a file"
        if isinstance(exc, IsADirectoryError):
            return f"{exc.filename}: is a folder, expected a file"
        if isinstance(exc, NotADirectoryError):
            return f"{exc.filename}: is a file (or under one), expected a folder"
        return f"{exc.filename}: {exc.strerror.lower()}"
    if isinstance(exc, (ValueError, TypeError, OSError)):
        return str(exc)
    return None


def main(argv: Optional[Sequence[str]] = None) -> int:
    from toposeg.commands._common import apply_threads

    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "_run", None) is None:
        parser.print_help()
        return 2
    try:
        apply_threads(getattr(args, "threads", None))
        _check_paths(args)
        _check_data_root(args)
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        message = error_message(exc)
        if message is None:
            raise
        print(f"{_command_prog(parser, args)}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
