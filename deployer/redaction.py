"""Keep secret values out of everything deployer writes: output, JSON, journal, evidence.

A secret can come back changed by the way it was printed: shell-quoted (``shlex.quote``,
bash's ``printf %q`` and its ``set -x`` trace), JSON-escaped (with or without
``ensure_ascii``), percent-encoded (``quote`` and ``quote_plus``), HTML-escaped,
Python-repr'd, base64 (standard and URL-safe, standing alone or inside a longer encoded
text: the part of the encoding that depends on the secret alone is matched at each of the
three byte alignments), hex, or with its tabs expanded to spaces. :class:`Redactor`
replaces each of those forms, longest first. Values shorter than :data:`MIN_LENGTH` are not
redacted (they would blank out ordinary text), nor are forms that cannot be listed (a
secret split across lines, encrypted, hashed, or in an encoding not named here);
docs/concepts/safety.md says so.

The CLI registers the playbook's secrets once (:func:`register`) and every writer that
leaves the process (the consoles, ``-o json``, the journal, evidence) scrubs through
:func:`scrub` / :func:`scrub_obj`.
"""

from __future__ import annotations

import base64
import html
import json
import os
import re
import shlex
import subprocess
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote as url_quote
from urllib.parse import quote_plus

REDACTED = "***"
MIN_LENGTH = 3


#: a base64 core shorter than this is not redacted (it would match ordinary encoded text)
MIN_ENCODED = 8


def _bash(value: str) -> tuple[str | None, str | None]:
    """bash's own renderings of ``value`` (passed through the environment, never argv):
    ``printf %q``, and how ``set -x`` traces it as an argument."""
    try:
        out = subprocess.run(
            ["bash", "-c", 'printf %q "$DEPLOYER_Q"; set -x; : "$DEPLOYER_Q"'],
            env={**os.environ, "DEPLOYER_Q": value, "PS4": "+ "},
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError, ValueError):
        return None, None
    if out.returncode != 0:
        return None, None
    trace = out.stderr.rstrip("\n")
    return out.stdout, trace.removeprefix("+ : ") if trace.startswith("+ : ") else None


def _encoded(value: str) -> set[str]:
    """base64 (standard, URL-safe) and hex forms of ``value``'s UTF-8 bytes. Inside a longer
    encoded text the secret starts at any byte; at each of the three alignments, the
    characters that encode whole 3-byte groups of the secret alone are always the same."""
    raw = value.encode("utf-8", "surrogatepass")
    forms = {raw.hex(), raw.hex().upper()}
    for enc in (base64.b64encode, base64.urlsafe_b64encode):
        forms.add(enc(raw).decode())
        for skip in range(3):
            part = raw[skip:]
            core = enc(part[: len(part) // 3 * 3]).decode()
            if len(core) >= MIN_ENCODED:
                forms.add(core)
    return forms


def variants(value: str) -> set[str]:
    forms = {
        value,
        shlex.quote(value),
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        url_quote(value, safe=""),
        quote_plus(value, safe=""),
        repr(value)[1:-1],
        html.escape(value),
        html.escape(value, quote=False),
        "'" + value.replace("'", "'\\''") + "'",  # bash's `set -x` quoting
        *_encoded(value),
    }
    if any(not (c.isalnum() or c in "-_.:/=@+,") for c in value):
        for q in _bash(value):
            if q:
                forms.add(q)
    return {f for f in forms if len(f) >= MIN_LENGTH}


def _tab_pattern(value: str) -> str | None:
    """A secret with tabs, as a terminal or ``expand`` may show it: each tab as 1 to 8
    spaces (where the tab stops fall depends on what precedes it on the line)."""
    if "\t" not in value:
        return None
    return "(?:\t| {1,8})".join(re.escape(part) for part in value.split("\t"))


class Redactor:
    def __init__(self, secrets: Iterable[str] = ()):
        self.forms: list[str] = []
        self.patterns: list[re.Pattern[str]] = []
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        forms = set(self.forms)
        for s in secrets:
            if s and len(s) >= MIN_LENGTH:
                forms |= variants(s)
                tabbed = _tab_pattern(s)
                if tabbed is not None:
                    self.patterns.append(re.compile(tabbed))
        self.forms = sorted(forms, key=len, reverse=True)

    def text(self, text: str) -> str:
        for form in self.forms:
            if form in text:
                text = text.replace(form, REDACTED)
        for pattern in self.patterns:
            text = pattern.sub(REDACTED, text)
        return text

    def obj(self, obj: Any) -> Any:
        if not self.forms and not self.patterns:
            return obj
        if isinstance(obj, str):
            return self.text(obj)
        if isinstance(obj, dict):
            return {self.obj(k) if isinstance(k, str) else k: self.obj(v) for k, v in obj.items()}
        if isinstance(obj, list | tuple):
            return [self.obj(v) for v in obj]
        return obj


_process = Redactor()


def register(secrets: Iterable[str]) -> None:
    """Secrets of this process's playbook: scrubbed from everything it writes."""
    _process.add(secrets)


def scrub(text: str) -> str:
    return _process.text(text)


def scrub_obj(obj: Any) -> Any:
    return _process.obj(obj)
