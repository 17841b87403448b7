"""``${name}`` templates in playbooks: built-in values, playbook vars and ``${env:NAME}`` secrets.

A template is shell text written by the playbook's author. Each ``${...}`` reference is
replaced by its value *quoted* for the shell, so values never change the command's shape;
``$${`` writes a literal ``${``. Values from ``${env:NAME}`` are :class:`Secret`: they run
but show as ``***``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from deployer.errors import InputError, printable
from deployer.values import Secret, Shell, Token, quote, secret_env

BUILTINS = ("app", "environment", "version", "color", "port", "host", "address", "state_dir")
REF = re.compile(r"\$\$\{|\$\{([^}]*)\}")
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
SAFE_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$")
SAFE_VALUE = re.compile(r"^[A-Za-z0-9._+:/=@,-]{0,256}$")
#: the most a rendered value or command may hold: vars that reference each other twice
#: double at each step (a 2 KB playbook rendered 168 MB before this bound)
MAX_RENDERED = 256 * 1024


def references(template: str) -> list[str]:
    """Every name referenced by a template (``env:NAME`` included as written)."""
    return [m.group(1) for m in REF.finditer(template) if m.group(1) is not None]


def check_reference(ref: str, defined: set[str]) -> str | None:
    """Why a reference is wrong, or None when it is fine."""
    if ref.startswith("env:"):
        return None if NAME.fullmatch(ref[4:]) else f"'${{{ref}}}' is not a valid environment name"
    if ref in defined:
        return None
    import difflib

    close = difflib.get_close_matches(ref, sorted(defined), n=1)
    hint = f"; did you mean '${{{close[0]}}}'?" if close else ""
    return f"unknown variable '${{{ref}}}'{hint}"


def resolve(ref: str, values: Mapping[str, Token], env: Mapping[str, str]) -> Token:
    if ref.startswith("env:"):
        name = ref[4:]
        if name not in env:
            raise InputError(f"environment variable {name} is not set (referenced as ${{{ref}}})")
        return Secret(env[name], name)
    try:
        return values[ref]
    except KeyError:
        raise InputError(f"unknown variable '${{{ref}}}'") from None


def render(template: str, values: Mapping[str, Token], env: Mapping[str, str]) -> Shell:
    """Shell text with every reference replaced by its quoted value."""
    text: list[str] = []
    shown: list[str] = []
    used: list[Token] = []
    pos = 0
    for m in REF.finditer(template):
        text.append(template[pos : m.start()])
        shown.append(template[pos : m.start()])
        if m.group(1) is None:
            text.append("${")
            shown.append("${")
        else:
            value = resolve(m.group(1), values, env)
            used.append(value)
            real, seen = quote(value)
            text.append(real)
            shown.append(seen)
            _bounded(sum(len(t) for t in text), template)
        pos = m.end()
    text.append(template[pos:])
    shown.append(template[pos:])
    _bounded(sum(len(t) for t in text), template)
    return Shell("".join(text), "".join(shown), secret_env(used))


def _bounded(size: int, template: str) -> None:
    if size > MAX_RENDERED:
        raise InputError(
            f"{printable(template, 60)!r} renders to more than {MAX_RENDERED // 1024} KiB "
            "(vars that reference each other several times double at each step)"
        )


def render_value(template: str, values: Mapping[str, Token], env: Mapping[str, str]) -> Token:
    """A template used as a plain value (a path, a URL): substituted, not shell-quoted."""
    secret = False
    parts: list[str] = []
    pos = 0
    for m in REF.finditer(template):
        parts.append(template[pos : m.start()])
        if m.group(1) is None:
            parts.append("${")
        else:
            value = resolve(m.group(1), values, env)
            if isinstance(value, Secret):
                secret = True
                value = value.value
            parts.append(value)
            _bounded(sum(len(p) for p in parts), template)
        pos = m.end()
    parts.append(template[pos:])
    out = "".join(parts)
    return Secret(out) if secret else out


def check_version(version: str) -> str:
    if not SAFE_VERSION.fullmatch(version):
        raise InputError(
            f"version {printable(version)!r} is not allowed: use letters, digits and . _ + - "
            "(at most 128, starting with a letter or digit)"
        )
    return version


_DEPLOYMENT = re.compile(
    r"^(?:https?://)?[A-Za-z0-9][A-Za-z0-9._-]{0,250}(?::[0-9]{1,5})?(?:/[A-Za-z0-9._-]+){0,4}/?$"
)


def check_deployment(ref: str) -> str:
    """A deployment id (``dpl_...``) or URL given on the command line."""
    if not _DEPLOYMENT.fullmatch(ref):
        raise InputError(
            f"--deployment {printable(ref)!r}: not a deployment id or URL "
            "(dpl_..., my-app-abc123.vercel.app or https://...)"
        )
    return ref


def parse_var(assignment: str) -> tuple[str, str]:
    """``KEY=VALUE`` from ``--var``; the value is checked against a safe pattern."""
    key, sep, value = assignment.partition("=")
    if not sep or not NAME.fullmatch(key):
        raise InputError(f"--var {printable(assignment)!r}: expected KEY=VALUE")
    shown = printable(value)
    if not SAFE_VALUE.fullmatch(value):
        raise InputError(
            f"--var {key}: value {shown!r} is not allowed: use letters, digits "
            "and . _ + : / = @ , -"
        )
    if value.startswith("-"):
        raise InputError(f"--var {key}: value {shown!r} is not allowed: it starts with '-'")
    if ".." in value.split("/"):
        raise InputError(f"--var {key}: value {shown!r} is not allowed: '..' path segment")
    return key, value
