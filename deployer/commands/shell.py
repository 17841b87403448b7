"""Shell text that knows how to show itself without its secrets.

A :class:`Shell` is what runs (``text``) plus what people, logs and the journal may see
(``shown``): every value that came from ``${env:...}`` is a :class:`Secret` and shows as
``'***'``. Every value is quoted with :func:`shlex.quote` when it enters a command; command
builders return argv tuples that :func:`join` quotes once, at the edge.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from dataclasses import dataclass

REDACTED = "***"


@dataclass(frozen=True)
class Secret:
    """A value that may run but must never be shown."""

    value: str
    name: str = ""

    def __repr__(self) -> str:
        return f"Secret({self.name or 'value'}={REDACTED})"

    __str__ = __repr__


Token = str | Secret


@dataclass(frozen=True)
class Shell:
    text: str
    shown: str

    def __str__(self) -> str:
        return self.shown

    @classmethod
    def raw(cls, text: str) -> Shell:
        """Shell text written by us or the playbook author, with no values in it."""
        return cls(text, text)

    def then(self, other: Shell) -> Shell:
        return Shell(f"{self.text} && {other.text}", f"{self.shown} && {other.shown}")


def quote(token: Token) -> tuple[str, str]:
    """(text, shown) for one value, quoted for a POSIX shell."""
    if isinstance(token, Secret):
        return shlex.quote(token.value), REDACTED
    q = shlex.quote(token)
    return q, q


def join(argv: Iterable[Token]) -> Shell:
    """Quote every token and join them: the one place argv becomes shell text."""
    pairs = [quote(t) for t in argv]
    return Shell(" ".join(p[0] for p in pairs), " ".join(p[1] for p in pairs))


def redact(text: str, secrets: Iterable[Secret]) -> str:
    """Remove secret values from text that came back from a host (stderr, stdout)."""
    for secret in secrets:
        if secret.value:
            text = text.replace(secret.value, REDACTED)
    return text
