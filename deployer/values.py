"""The value types every layer passes around: shell text that knows how to show itself without
its secrets and keeps them off argv, the secrets themselves, and the constants the playbook
and the command builders share. The bottom floor: it imports nothing of deployer's.

A :class:`Shell` is what runs (``text``), what people, logs and the journal may see
(``shown``) and the secret values it needs (``env``). Every value that came from
``${env:...}`` is a :class:`Secret`: in ``text`` it is a reference to an environment
variable (``"$_DEPLOYER_SECRET_…"``), in ``shown`` it is ``***``, and its value travels in
``env``, which runners hand to the host's shell through stdin (SSH) or the process
environment (local), never through a command line that ``ps`` would show. Every plain value
is quoted with :func:`shlex.quote` when it enters a command; command builders return argv
tuples that :func:`join` quotes once, at the edge.
"""

from __future__ import annotations

import hashlib
import shlex
from collections.abc import Iterable
from dataclasses import dataclass

REDACTED = "***"
SECRET_PREFIX = "_DEPLOYER_SECRET_"

Env = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Secret:
    """A value that may run but must never be shown."""

    value: str
    name: str = ""

    def __repr__(self) -> str:
        return f"Secret({self.name or 'value'}={REDACTED})"

    __str__ = __repr__

    @property
    def variable(self) -> str:
        """The environment variable that carries the value to the host's shell."""
        return SECRET_PREFIX + hashlib.sha256(self.value.encode()).hexdigest()[:16].upper()


Token = str | Secret


def merge_env(*envs: Env) -> Env:
    seen: dict[str, str] = {}
    for env in envs:
        seen.update(env)
    return tuple(sorted(seen.items()))


@dataclass(frozen=True)
class Shell:
    text: str
    shown: str
    env: Env = ()

    def __str__(self) -> str:
        return self.shown

    @classmethod
    def raw(cls, text: str) -> Shell:
        """Shell text written by us or the playbook author, with no values in it."""
        return cls(text, text)

    @classmethod
    def around(cls, text: str, shown: str, *parts: Shell) -> Shell:
        """New shell text built around ``parts`` (their secrets come along)."""
        return cls(text, shown, merge_env(*(p.env for p in parts)))

    def then(self, other: Shell) -> Shell:
        return Shell(
            f"{self.text} && {other.text}",
            f"{self.shown} && {other.shown}",
            merge_env(self.env, other.env),
        )


def quote(token: Token) -> tuple[str, str]:
    """(text, shown) for one value, quoted for a POSIX shell; a secret becomes a reference
    to its variable (see :func:`secret_env`)."""
    if isinstance(token, Secret):
        return f'"${{{token.variable}}}"', REDACTED
    q = shlex.quote(token)
    return q, q


def secret_env(tokens: Iterable[Token]) -> Env:
    return merge_env(tuple((t.variable, t.value) for t in tokens if isinstance(t, Secret)))


def join(argv: Iterable[Token]) -> Shell:
    """Quote every token and join them: the one place argv becomes shell text."""
    tokens = list(argv)
    pairs = [quote(t) for t in tokens]
    return Shell(" ".join(p[0] for p in pairs), " ".join(p[1] for p in pairs), secret_env(tokens))


#: nginx's access-log format that canary analysis reads (`deployer docs strategy`)
LOG_FORMAT = (
    "log_format deployer '$time_iso8601 $upstream_addr $status $request_time "
    '$upstream_response_time "$request_method $uri"\';'
)
