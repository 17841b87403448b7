"""The deploy lock: a directory created with ``mkdir`` (atomic on every POSIX filesystem).

``acquire`` fails when the directory exists; the ``info`` file inside names the holder
(owner, machine, pid and that process's start, time, TTL, release id, last heartbeat) so a
refused release can say who holds it, and only that very process counts as its live holder.
The lock's directory and every one above it must be owned by root or deployer's user and
writable by nobody else (:func:`deployer.commands.files.check_owned`): anyone who can
create the lock path can block releases forever, and anyone who can swap a directory on
the way can do worse.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from deployer.commands.files import check_owned
from deployer.values import Shell, join

#: exit status of :func:`acquire` when the lock's parent could be changed by other users
UNSAFE_PARENT = 95
#: exit status of :func:`renew` when the lock is no longer this release's
NOT_OURS = 94
#: exit status of :func:`acquire` when the lock's parent directory cannot be created
NO_PARENT = 93


@dataclass(frozen=True)
class LockInfo:
    release_id: str
    owner: str
    host: str
    pid: int
    acquired_at: float
    ttl: float
    renewed_at: float = 0.0
    #: the holder process's user and start (boot id and start time in clock ticks): a pid
    #: alone is reused, and another user's process may carry any name
    uid: int = -1
    started: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> LockInfo | None:
        try:
            data = json.loads(text)
            info = cls(
                str(data["release_id"]),
                str(data["owner"]),
                str(data["host"]),
                int(data["pid"]),
                float(data["acquired_at"]),
                float(data["ttl"]),
                float(data.get("renewed_at", 0.0)),
                int(data.get("uid", -1)),
                str(data.get("started", ""))[:80],
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            return None
        return info

    def expired(self, now: float) -> bool:
        """No heartbeat for ``ttl`` seconds."""
        return now > max(self.acquired_at, self.renewed_at) + self.ttl

    def describe(self) -> str:
        return f"{self.owner}@{self.host} (pid {self.pid}, release {self.release_id})"


@dataclass(frozen=True)
class LockState:
    """What is at the lock path: ``absent``, ``dir`` (with its info text) or ``other``."""

    kind: str
    text: str = ""

    @property
    def info(self) -> LockInfo | None:
        return LockInfo.from_json(self.text) if self.kind == "dir" else None

    @classmethod
    def parse(cls, output: str) -> LockState:
        kind, _, text = output.partition("\n")
        kind = kind.strip()
        return cls(kind if kind in ("absent", "dir") else "other", text[:4096])


def acquire(path: str, info: LockInfo) -> Shell:
    """Create the lock directory and write who holds it; exits non-zero if already held
    (and with :data:`UNSAFE_PARENT` when other users could create or swap it)."""
    parent = join([_parent(path)]).text
    return Shell.raw(
        f"mkdir -p -- {parent} || exit {NO_PARENT}; "
        f"( {check_owned([_parent(path)]).text} ) || exit {UNSAFE_PARENT}; "
        f"mkdir -m 0700 -- {join([path]).text} 2>/dev/null || exit 1; "
        f"printf %s {join([info.to_json()]).text} > {join([path + '/info']).text}"
    )


def read(path: str) -> Shell:
    """Prints ``absent``, ``dir`` and the holder's info, or ``other`` (a file, a link...)."""
    p, info = join([path]).text, join([path + "/info"]).text
    return Shell.raw(
        f"if [ -L {p} ] || {{ [ -e {p} ] && [ ! -d {p} ]; }}; then echo other; "
        f"elif [ -d {p} ]; then echo dir; head -c 4096 {info} 2>/dev/null; "
        "else echo absent; fi; true"
    )


def renew(path: str, info: LockInfo) -> Shell:
    """Rewrite the holder record with a new heartbeat, only while this release holds it."""
    target = join([path + "/info"]).text
    tmp = join([path + "/info.tmp"]).text
    rid = join([f'"release_id": "{info.release_id}"']).text
    return Shell.raw(
        f"grep -qF {rid} {target} 2>/dev/null || exit {NOT_OURS}; "
        f"printf %s {join([info.to_json()]).text} > {tmp} && mv -f {tmp} {target}"
    )


def release(path: str, release_id: str) -> Shell:
    """Remove the lock only if this release holds it."""
    info = join([path + "/info"]).text
    rid = join([f'"release_id": "{release_id}"']).text
    return Shell.raw(
        f"if grep -qF {rid} {info} 2>/dev/null; then rm -rf -- {join([path]).text}; fi"
    )


def break_stale(path: str, stale_release_id: str) -> Shell:
    """Remove a stale lock, but only the one that was read (not a newer holder's)."""
    return release(path, stale_release_id)


def break_any(path: str) -> Shell:
    """Remove whatever is at the lock path (`deployer unlock`, with a recorded reason)."""
    return join(["rm", "-rf", "--", path])


def _parent(path: str) -> str:
    parent = path.rstrip("/").rsplit("/", 1)[0]
    return parent or "/"
