"""known_hosts read the way OpenSSH reads it, for one host.

paramiko's own reader skips marker lines and has no patterns, so a ``@revoked`` key would
be trusted and ``*.example.com`` entries ignored; a non-UTF-8 byte crashed it. Here:
plain and ``[host]:port`` names, comma lists, ``*``/``?`` wildcards and ``!`` negation,
hashed names (``|1|salt|hash``, HMAC-SHA1), ``@revoked`` (refused even when also listed)
and ``@cert-authority`` (not supported: skipped). Any unreadable file is a
:class:`HostKeyError` (exit 7) naming ``file:line``.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deployer.errors import HostKeyError


def lookup_name(host: str, port: int) -> str:
    return host if port == 22 else f"[{host}]:{port}"


def fingerprint(key: Any) -> str:
    """OpenSSH's ``SHA256:...`` fingerprint of a paramiko key."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


@functools.lru_cache(maxsize=4096)
def _pattern(pattern: str) -> re.Pattern[str]:
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile("".join(parts), re.IGNORECASE)


def _pattern_matches(pattern: str, name: str) -> bool:
    """OpenSSH's pattern match, case-insensitive; a name without wildcards is compared as
    it is (a fleet's known_hosts is read once per host: 100 hosts, 10,000 lines)."""
    if "*" not in pattern and "?" not in pattern:
        return pattern.lower() == name.lower()
    return _pattern(pattern).fullmatch(name) is not None


def _hashed_match(entry: str, name: str) -> bool:
    try:
        _, _, salt, digest = entry.split("|", 3)
        want = base64.b64decode(digest)
        got = hmac.new(base64.b64decode(salt), name.encode(), hashlib.sha1).digest()
    except (ValueError, binascii.Error):
        return False
    return hmac.compare_digest(want, got)


def host_matches(hosts_field: str, name: str) -> bool:
    if hosts_field.startswith("|1|"):
        return _hashed_match(hosts_field, name)
    matched = False
    for pattern in hosts_field.split(","):
        negate = pattern.startswith("!")
        pattern = pattern[1:] if negate else pattern
        if _pattern_matches(pattern, name):
            if negate:
                return False
            matched = True
    return matched


@dataclass
class HostKeys:
    known: list[Any] = field(default_factory=list)
    revoked: list[Any] = field(default_factory=list)

    def is_revoked(self, key: Any) -> bool:
        return any(k.asbytes() == key.asbytes() for k in self.revoked)


@dataclass(frozen=True)
class _Entry:
    number: int
    marker: str | None
    hosts: str
    fields: tuple[str, ...]


@dataclass(frozen=True)
class _Parsed:
    #: entries whose hosts field is one plain name (lowercased), by that name
    plain: dict[str, tuple[_Entry, ...]]
    #: the others (patterns, lists, negations, hashed names), in file order
    scanned: tuple[_Entry, ...]


_PARSED: dict[tuple[str, int, int, int, int], _Parsed] = {}
_PARSED_LOCK = threading.Lock()


def _parse(path: Path, raw: bytes) -> _Parsed:
    plain: dict[str, list[_Entry]] = {}
    scanned: list[_Entry] = []
    for number, line_bytes in enumerate(raw.split(b"\n"), 1):
        try:
            line = line_bytes.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise HostKeyError(
                f"{path}:{number}: not UTF-8 text; fix or remove that line"
            ) from None
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        marker = fields.pop(0) if fields[0].startswith("@") else None
        if len(fields) < 3:
            raise HostKeyError(f"{path}:{number}: expected HOSTS KEYTYPE KEY")
        if marker == "@cert-authority":
            continue
        entry = _Entry(number, marker, fields[0], tuple(fields))
        if any(c in fields[0] for c in "*?,!|"):
            scanned.append(entry)
        else:
            plain.setdefault(fields[0].lower(), []).append(entry)
    return _Parsed({k: tuple(v) for k, v in plain.items()}, tuple(scanned))


def _parsed(path: Path) -> _Parsed | None:
    """The file parsed once per content (every host of a fleet reads the same file: 100
    hosts were 10,000 lines parsed and matched, ~3 ms of CPU per connection); None when
    there is no file."""
    try:
        st = path.stat()
        key = (str(path), st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino)
        with _PARSED_LOCK:
            hit = _PARSED.get(key)
        if hit is not None:
            return hit
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise HostKeyError(f"cannot read {path}: {exc.strerror or exc}") from exc
    parsed = _parse(path, raw)
    if len(raw) == st.st_size:  # not changed while read: may be reused
        with _PARSED_LOCK:
            if len(_PARSED) > 64:
                _PARSED.clear()
            _PARSED[key] = parsed
    return parsed


def load(path: Path, host: str, port: int) -> HostKeys:
    import paramiko

    name = lookup_name(host, port)
    out = HostKeys()
    parsed = _parsed(path)
    if parsed is None:
        return out
    candidates = parsed.plain.get(name.lower(), ()) + tuple(
        e for e in parsed.scanned if host_matches(e.hosts, name)
    )
    for entry in sorted(candidates, key=lambda e: e.number):
        number, marker, fields = entry.number, entry.marker, list(entry.fields)
        if marker not in (None, "@revoked"):
            raise HostKeyError(f"{path}:{number}: unknown marker {marker[:20]!r}")
        try:
            key = paramiko.PKey.from_type_string(fields[1], base64.b64decode(fields[2]))
        except (ValueError, binascii.Error, paramiko.SSHException, TypeError):
            if marker == "@revoked":
                raise HostKeyError(f"{path}:{number}: unreadable @revoked key") from None
            continue  # a key type this client cannot use: OpenSSH skips it too
        (out.revoked if marker else out.known).append(key)
    out.known = [k for k in out.known if not out.is_revoked(k)]
    return out


class StrictPolicy:
    """paramiko's missing-host-key hook: refuse, or (opt-in) accept and save a new key."""

    def __init__(self, label: str, known_hosts: Path, accept_new: bool, keys: HostKeys):
        self.label, self.known_hosts, self.accept_new = label, known_hosts, accept_new
        self.keys = keys

    def missing_host_key(self, client: Any, hostname: str, key: Any) -> None:
        fp = fingerprint(key)
        if self.keys.is_revoked(key):
            raise HostKeyError(
                f"{self.label}: host key {key.get_name()} {fp} is REVOKED in "
                f"{self.known_hosts}; refusing to connect"
            )
        if self.keys.known:
            raise HostKeyError(
                f"{self.label}: host key CHANGED (got {key.get_name()} {fp}), it does not "
                f"match {self.known_hosts}; refusing to connect"
            )
        if not self.accept_new:
            raise HostKeyError(
                f"{self.label}: host key ({key.get_name()} {fp}) is not in "
                f"{self.known_hosts}; verify it and add it, or pass --accept-new-host-key"
            )
        client.get_host_keys().add(hostname, key.get_name(), key)
        self.known_hosts.parent.mkdir(parents=True, exist_ok=True)
        with self.known_hosts.open("a", encoding="ascii") as fh:
            fh.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")
