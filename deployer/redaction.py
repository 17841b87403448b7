"""Keep secret values out of everything deployer writes: output, JSON, journal, evidence.

A secret can come back changed by the way it was printed: shell-quoted (``shlex.quote``,
bash's ``printf %q``), JSON-escaped (with or without ``ensure_ascii``), percent-encoded or
Python-repr'd. :class:`Redactor` replaces each of those forms, longest first. Values shorter
than :data:`MIN_LENGTH` are not redacted (they would blank out ordinary text); the README
says so.

The CLI registers the playbook's secrets once (:func:`register`) and every writer that
leaves the process (the consoles, ``-o json``, the journal, evidence) scrubs through
:func:`scrub` / :func:`scrub_obj`.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote as url_quote

REDACTED = "***"
MIN_LENGTH = 3


def _bash_q(value: str) -> str | None:
    """bash's own ``printf %q`` of ``value`` (passed through the environment, not argv)."""
    try:
        out = subprocess.run(
            ["bash", "-c", 'printf %q "$DEPLOYER_Q"'],
            env={**os.environ, "DEPLOYER_Q": value},
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    return out.stdout if out.returncode == 0 else None


def variants(value: str) -> set[str]:
    forms = {
        value,
        shlex.quote(value),
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        url_quote(value, safe=""),
        repr(value)[1:-1],
    }
    if any(not (c.isalnum() or c in "-_.:/=@+,") for c in value):
        q = _bash_q(value)
        if q:
            forms.add(q)
    return {f for f in forms if len(f) >= MIN_LENGTH}


class Redactor:
    def __init__(self, secrets: Iterable[str] = ()):
        self.forms: list[str] = []
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        forms = set(self.forms)
        for s in secrets:
            if s and len(s) >= MIN_LENGTH:
                forms |= variants(s)
        self.forms = sorted(forms, key=len, reverse=True)

    def text(self, text: str) -> str:
        for form in self.forms:
            if form in text:
                text = text.replace(form, REDACTED)
        return text

    def obj(self, obj: Any) -> Any:
        if not self.forms:
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
