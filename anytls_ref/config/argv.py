"""anytls_ref.config.argv — command lines: ours, and anytls-go's spellings of the same flags.

anytls-go's cmd/server and cmd/client (v0.0.12; ``-dr`` from v0.0.13) parse their flags with
Go's ``flag`` package: ``-l``, ``-p``, ``-padding-scheme`` (server), ``-l``, ``-s``, ``-sni``,
``-p``, ``-m``, ``-dr`` (client), each as ``-flag VALUE`` or ``-flag=VALUE``; a boolean as
``-dr``, ``-dr=true`` or ``-dr=false``. Go's package knows no short-flag bundling, no glued
values and no abbreviations: a single-dash word is one flag name, or an error.

Python's argparse does all three, even with ``allow_abbrev=False``: ``-padding-scheme=FILE``,
where that flag is unknown, becomes ``-p`` with the value ``adding-scheme=FILE`` (the
password!), ``-snix`` becomes ``-s nix`` and ``-d`` an abbreviation of ``-dr``. So
``StrictParser`` looks at each single-dash word before argparse does: one that is not exactly
a flag of this (sub)command (before any ``=``) is an error naming it, and a value that belongs
to the flag before it is skipped. Double-dash words are left to argparse, whose abbreviations
``allow_abbrev=False`` turns off. Every error is one line (``UsageError``).
"""

from __future__ import annotations

import argparse
import difflib
import math
import sys
from typing import NoReturn


class UsageError(Exception):
    """Bad command-line input: printed as one line, exit code 2."""


_GO_TRUE, _GO_FALSE = ("1", "t", "true"), ("0", "f", "false")


def go_bool(text: str) -> bool:
    """A Go ``flag`` boolean's value: 1, t, true / 0, f, false (any case)."""
    value = text.lower()
    if value not in _GO_TRUE + _GO_FALSE:
        raise argparse.ArgumentTypeError(f"{text!r} is not true or false")
    return value in _GO_TRUE


def seconds(text: str) -> float:
    """A flag's number of seconds: finite and 0 or more (``nan``, ``inf`` and ``-1`` are not)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a number of seconds") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a number of seconds (0 or more)")
    return value


def positive_int(text: str) -> int:
    """A flag's count: a whole number, 1 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


class StrictParser(argparse.ArgumentParser):
    """argparse without abbreviations, bundled short flags or glued values; one-line errors."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)

    def parse_known_args(self, args=None, namespace=None):
        argv = list(sys.argv[1:] if args is None else args)
        self._check_single_dash_words(argv)
        return super().parse_known_args(argv, namespace)

    def _check_single_dash_words(self, argv: list[str]) -> None:
        values_to_skip = 0
        for n, word in enumerate(argv):
            if values_to_skip:
                values_to_skip -= 1
                continue
            if word == "--":
                return
            if not word.startswith("-") or word == "-" or self._negative_number_matcher.match(word):
                if self._subparsers is not None:
                    return  # a subcommand: its own parser checks what follows
                continue
            name, equals, _ = word.partition("=")
            action = self._option_string_actions.get(name)
            if action is None and self._subparsers is not None:
                self._check_misplaced(name)
            if action is None:
                if word.startswith("--"):
                    continue  # argparse names it ("unrecognized arguments")
                raise UsageError(self._unknown_flag(word))
            if not equals:
                values_to_skip = self._values_after(action, argv[n + 1:])

    def _check_misplaced(self, name: str) -> None:
        """A subcommand's flag given before the subcommand (``anytls-ref -p PW server``):
        say where it goes, rather than call it unknown (or take its value for a subcommand)."""
        owners = [command for command, parser in self._subcommands().items()
                  if name in parser._option_string_actions]
        if owners:
            names = " and ".join(filter(None, (", ".join(owners[:-1]), owners[-1])))
            raise UsageError(f"{name} is a flag of {names}: give it after the subcommand "
                             f"(anytls-ref {owners[0]} {name} ...)")

    def _subcommands(self) -> dict[str, argparse.ArgumentParser]:
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                return dict(action.choices)
        return {}

    @staticmethod
    def _values_after(action: argparse.Action, rest: list[str]) -> int:
        """How many of the next words are this flag's value(s)."""
        if action.nargs is None:
            return 1
        if isinstance(action.nargs, int):
            return action.nargs
        if action.nargs == argparse.OPTIONAL:
            return 1 if rest and not rest[0].startswith("-") else 0
        return next((i for i, w in enumerate(rest) if w.startswith("-")), len(rest))

    def _unknown_flag(self, word: str) -> str:
        name = word.partition("=")[0]
        known = [s for s in self._option_string_actions if s.startswith("-")]
        # a close match that is not just the word's first two letters: a typo of that flag
        close = [s for s in difflib.get_close_matches(name, known, n=2, cutoff=0.75)
                 if s != word[:2]]
        if close:
            return f"unknown flag {name} (did you mean {close[0]}?)"
        prefix = self._option_string_actions.get(word[:2])
        if prefix is not None and prefix.nargs != 0:
            # maybe a value glued to a short flag (-pSECRET): say how to write it, and do not
            # echo what could be a password
            return (f"unknown flag {word[:2]}… (write {word[:2]} VALUE or {word[:2]}=VALUE; "
                    "a value glued to a flag is not accepted)")
        return f"unknown flag {name}"
