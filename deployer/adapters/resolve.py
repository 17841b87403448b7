"""Every HTTP client deployer opens (gates, probes, the drill's watcher, the Vercel API), and
an optional resolver override, like curl's ``--resolve``.

``DEPLOYER_RESOLVE="HOST=ADDRESS:PORT[,...]"`` sends requests for ``HOST`` (a name, or
``*.suffix`` for every name under it) to ``ADDRESS:PORT`` instead of what DNS says; the URL,
the ``Host`` header and everything else stay as they were. For probing a deployment before
DNS points at it, a canary host behind a load balancer, or a local model of a platform in
tests (the Vercel fake answers for ``*.vercel.app`` and a custom domain on loopback).
"""

from __future__ import annotations

import os
import re
import ssl
import threading
from typing import Any

import httpx

from deployer.errors import InputError, printable

_ENTRY = re.compile(
    r"^(?P<host>(?:\*\.)?[A-Za-z0-9][A-Za-z0-9.-]{0,252})=(?P<addr>[A-Za-z0-9.:\[\]-]+):(?P<port>[0-9]{1,5})$"
)


def overrides(text: str | None = None) -> list[tuple[str, str, int]]:
    """The parsed ``DEPLOYER_RESOLVE``: (host or ``*.suffix``, address, port) each."""
    raw = os.environ.get("DEPLOYER_RESOLVE", "") if text is None else text
    out = []
    for entry in (e.strip() for e in raw.split(",")):
        if not entry:
            continue
        m = _ENTRY.fullmatch(entry)
        if m is None or not 0 < int(m.group("port")) < 65536:
            raise InputError(
                f"DEPLOYER_RESOLVE: {printable(entry)!r} is not HOST=ADDRESS:PORT "
                "(HOST may be *.suffix)"
            )
        out.append((m.group("host").lower(), m.group("addr").strip("[]"), int(m.group("port"))))
    return out


def _match(host: str, rules: list[tuple[str, str, int]]) -> tuple[str, int] | None:
    host = host.lower()
    for pattern, addr, port in rules:
        if (pattern.startswith("*.") and host.endswith(pattern[1:])) or host == pattern:
            return addr, port
    return None


class _Resolving(httpx.BaseTransport):
    """Connects to the override's address; the request (URL, Host header) is unchanged."""

    def __init__(self, rules: list[tuple[str, str, int]], inner: httpx.BaseTransport):
        self.rules, self.inner = rules, inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        to = _match(request.url.host, self.rules)
        if to is not None:
            request.url = request.url.copy_with(host=to[0], port=to[1])
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


_SSL: ssl.SSLContext | None = None
_SSL_LOCK = threading.Lock()


def _ssl_context() -> ssl.SSLContext:
    """One TLS context (certifi's roots, verified) for every client of the process: making
    one costs ~30 ms of CPU, and a fleet's gates and probes make a client per host (a
    100-host status spent ~3 s of CPU on them). An SSLContext is safe to share."""
    global _SSL
    with _SSL_LOCK:
        if _SSL is None:
            _SSL = httpx.create_ssl_context()
        return _SSL


def client(**kwargs: Any) -> httpx.Client:
    """An ``httpx.Client`` that never reads proxies or certificates from the environment
    and follows no redirect unless asked, with ``DEPLOYER_RESOLVE`` applied."""
    kwargs.setdefault("trust_env", False)
    kwargs.setdefault("follow_redirects", False)
    kwargs.setdefault("verify", _ssl_context())
    rules = overrides()
    if rules and "transport" not in kwargs:
        kwargs["transport"] = _Resolving(rules, httpx.HTTPTransport(verify=kwargs["verify"]))
    return httpx.Client(**kwargs)
