"""Shipping a build: a deterministic archive of a local folder, its digest, and the upload
that stages it beside its destination and renames it into place."""

from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile
import threading
import time
from pathlib import Path

from deployer.commands import files
from deployer.errors import DeployerError, HostError, UntrustedError, printable
from deployer.ports import Runner


def archive(local: Path) -> bytes:
    """A tar.gz of a file or a directory's contents (no owners, no caches)."""

    def keep(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        if "__pycache__" in info.name or info.name.endswith(".pyc"):
            return None
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        return info

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        if local.is_dir():
            for child in sorted(local.iterdir()):
                tar.add(child, arcname=child.name, filter=keep)
        else:
            tar.add(local, arcname=local.name, filter=keep)
    return buf.getvalue()


def digest_tree(local: Path) -> str:
    """SHA-256 of what is shipped (relative paths, modes, contents; not mtimes), so the same
    build always has the same digest."""
    h = hashlib.sha256()
    files = [local] if local.is_file() else sorted(p for p in local.rglob("*") if p.is_file())
    for path in files:
        rel = path.name if path == local else path.relative_to(local).as_posix()
        if "__pycache__" in rel or rel.endswith(".pyc"):
            continue
        h.update(f"{rel}\0{path.stat().st_mode & 0o777:o}\0".encode())
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


_builds: dict[tuple[str, tuple[tuple[str, int, int], ...]], tuple[str, bytes]] = {}
_builds_lock = threading.Lock()


def build(local: Path) -> tuple[str, bytes]:
    """(digest, archive) of a local build, made once per operation even for twenty hosts
    (and so the very same bytes for all), again only if a file changed."""
    files_ = [local] if local.is_file() else sorted(p for p in local.rglob("*") if p.is_file())
    seen = tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files_)
    key = (str(local.resolve()), seen)
    with _builds_lock:
        if key not in _builds:
            _builds.clear()  # one build at a time is enough
            _builds[key] = (digest_tree(local), archive(local))
        return _builds[key]


def upload(
    runner: Runner, local: Path, dest: str, version: str = "", timeout: float = 600.0
) -> str:
    """Ship a local file or directory as the immutable release directory ``dest``.

    A version is shipped once: staged in a fresh private directory beside ``dest`` (never a
    name another local user could guess), unpacked, given a manifest (version, digest,
    time) and renamed into place in one step. The same build already there is not shipped
    again; another build under the same name is refused, never overwritten.
    """
    if not local.exists():
        raise HostError(f"{runner.name}: upload source {local} does not exist")
    digest, data = build(local)
    kind, _, text = runner.run(files.inspect_release(dest)).stdout.partition("\n")
    if kind.strip() == "manifest":
        try:
            shipped = json.loads(text).get("digest")
        except (ValueError, AttributeError):
            shipped = None
        if shipped == digest:
            return f"{dest} already holds this build ({digest[:12]}); not shipped again"
        raise DeployerError(
            f"{runner.name}: {dest} already holds another build ({str(shipped)[:12]}, not "
            f"{digest[:12]}); releases are immutable: release it under a new version"
        )
    if kind.strip() == "unmanaged":
        raise DeployerError(
            f"{runner.name}: {dest} exists but was not shipped by deployer (no manifest); "
            "move it away or release under a new version"
        )
    staging = text.strip()
    parent = dest.rstrip("/").rsplit("/", 1)[0] or "/"
    expected = re.compile(re.escape(parent.rstrip("/")) + r"/\.deployer-upload\.[A-Za-z0-9]{10}")
    if not expected.fullmatch(staging):  # read back from the host: input
        raise UntrustedError(
            f"{runner.name}: mktemp -d printed {printable(staging)!r}, not a staging "
            f"directory beside {dest}"
        )
    manifest = json.dumps(
        {"version": version, "digest": digest, "shipped_at": time.time(), "source": str(local)},
        sort_keys=True,
    )
    # streamed into the staging directory and installed in one session (a session costs
    # ~120 ms on a slow host, and a fleet multiplies it)
    runner.run_input(files.receive_and_install(staging, dest, manifest), data, timeout=timeout)
    return f"{dest} ({digest[:12]})"
