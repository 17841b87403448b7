"""Runners for hosts: SSH through fabric (strict host keys) and the local machine.

paramiko and invoke errors are translated here into deployer's error tree. Fabric's own
default is to trust any unknown host key (``AutoAddPolicy``); we replace it: an unknown key
is refused unless ``accept_new_host_key`` was given, and a changed key is always refused.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import tarfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from deployer import progress
from deployer.adapters import known_hosts as known_hosts_file
from deployer.commands import files
from deployer.commands.shell import Secret, Shell, join, redact, stdin_script
from deployer.errors import CommandFailed, DeployerError, HostError, HostKeyError
from deployer.playbook.models import Host
from deployer.ports import CommandResult, Runner

#: a command given no timeout of its own gets this one: nothing waits forever on a host
DEFAULT_TIMEOUT = 120.0


class _StrictPolicy:
    """paramiko's missing-host-key hook: refuse, or (opt-in) accept and save a new key."""

    def __init__(
        self, label: str, known_hosts: Path, accept_new: bool, keys: known_hosts_file.HostKeys
    ):
        self.label, self.known_hosts, self.accept_new = label, known_hosts, accept_new
        self.keys = keys

    def missing_host_key(self, client: Any, hostname: str, key: Any) -> None:
        fp = known_hosts_file.fingerprint(key)
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


class SshRunner:
    def __init__(
        self,
        host: Host,
        *,
        key: Path | None,
        known_hosts: Path,
        accept_new_host_key: bool = False,
        secrets: Sequence[Secret] = (),
        connect_timeout: float = 10.0,
    ):
        self.name = host.name
        self.label = f"{host.name} ({host.user}@{host.address}:{host.port})"
        self._host, self._key, self._known_hosts = host, key, known_hosts
        self._accept_new = accept_new_host_key
        self._secrets = list(secrets)
        self._timeout = connect_timeout
        self._conn: Any = None

    def _connect(self) -> Any:
        if self._conn is not None:
            return self._conn
        import paramiko
        from fabric import Config, Connection

        kwargs: dict[str, Any] = {
            "look_for_keys": False,
            "allow_agent": False,
            "banner_timeout": self._timeout,
            "auth_timeout": self._timeout,
        }
        if self._key is not None:
            kwargs["key_filename"] = str(self._key)
        config = Config(lazy=True)
        try:  # fabric reads ~/.ssh/known_hosts itself (we clear that below); never crash on it
            conn = Connection(
                self._host.address,
                user=self._host.user,
                port=self._host.port,
                config=config,
                connect_timeout=int(self._timeout),
                connect_kwargs=kwargs,
            )
        except (UnicodeDecodeError, ValueError, paramiko.SSHException) as exc:
            raise HostKeyError(f"{self.label}: cannot read ~/.ssh/known_hosts: {exc}") from None
        client = conn.client
        client.get_host_keys().clear()
        try:
            keys = known_hosts_file.load(self._known_hosts, self._host.address, self._host.port)
        except HostKeyError as exc:
            raise HostKeyError(f"{self.label}: {exc}") from None
        name = known_hosts_file.lookup_name(self._host.address, self._host.port)
        # only the server's key type is compared by paramiko: give it just one key per type
        for key in keys.known:
            client.get_host_keys().add(name, key.get_name(), key)
        client.set_missing_host_key_policy(
            _StrictPolicy(self.label, self._known_hosts, self._accept_new, keys)
        )
        try:
            conn.open()
        except HostKeyError:
            raise
        except paramiko.BadHostKeyException as exc:
            raise HostKeyError(
                f"{self.label}: host key CHANGED (got {exc.key.get_name()} "
                f"{known_hosts_file.fingerprint(exc.key)}), it does not match "
                f"{self._known_hosts}; refusing to connect"
            ) from exc
        except paramiko.AuthenticationException as exc:
            raise HostError(f"{self.label}: authentication failed ({exc})") from exc
        except (TimeoutError, paramiko.SSHException, OSError, EOFError) as exc:
            raise HostError(f"{self.label}: cannot connect: {exc or type(exc).__name__}") from exc
        self._conn = conn
        return conn

    def run(
        self, command: Shell, *, check: bool = True, timeout: float | None = None
    ) -> CommandResult:
        conn = self._connect()
        timeout = DEFAULT_TIMEOUT if timeout is None else timeout
        from invoke.exceptions import CommandTimedOut

        if command.env:  # secrets go through stdin, never the remote command line
            return self._run_script(conn, command, check=check, timeout=timeout)
        try:
            res = conn.run(
                command.text, hide=True, warn=True, in_stream=False, timeout=timeout, pty=False
            )
        except CommandTimedOut as exc:
            raise CommandFailed(
                self.name, command.shown, 124, f"timed out after {timeout}s"
            ) from exc
        except (OSError, EOFError) as exc:
            self._conn = None
            raise HostError(f"{self.label}: connection lost: {exc}") from exc
        result = CommandResult(
            res.exited, redact(res.stdout, self._secrets), redact(res.stderr, self._secrets)
        )
        if check and not result.ok:
            raise CommandFailed(self.name, command.shown, result.exit_status, result.stderr)
        return result

    def _run_script(
        self, conn: Any, command: Shell, *, check: bool, timeout: float
    ) -> CommandResult:
        """``bash -s`` with the script (exports of the secrets, then the command) written to
        the channel's stdin at once. invoke's own stdin feeding reads a non-terminal stream
        one byte per 10 ms, which made a 300-byte script cost 3 s."""
        deadline = time.monotonic() + timeout
        out, err = bytearray(), bytearray()
        try:
            chan = conn.client.get_transport().open_session(timeout=min(timeout, 30))
            try:
                chan.settimeout(min(timeout, 30))
                chan.exec_command("exec bash -s")
                chan.sendall(stdin_script(command).encode())
                chan.shutdown_write()
                while True:
                    busy = False
                    if chan.recv_ready():
                        out += chan.recv(65536)
                        busy = True
                    if chan.recv_stderr_ready():
                        err += chan.recv_stderr(65536)
                        busy = True
                    drained = not (chan.recv_ready() or chan.recv_stderr_ready())
                    if chan.exit_status_ready() and not busy and drained:
                        break
                    if time.monotonic() > deadline:
                        raise CommandFailed(
                            self.name, command.shown, 124, f"timed out after {timeout}s"
                        )
                    if not busy:
                        time.sleep(0.005)
                status = chan.recv_exit_status()
            finally:
                chan.close()
        except (OSError, EOFError) as exc:
            self._conn = None
            raise HostError(f"{self.label}: connection lost: {exc}") from exc
        result = CommandResult(
            status,
            redact(out.decode(errors="replace"), self._secrets),
            redact(err.decode(errors="replace"), self._secrets),
        )
        if check and not result.ok:
            raise CommandFailed(self.name, command.shown, result.exit_status, result.stderr)
        return result

    def put_bytes(self, data: bytes, remote_path: str) -> None:
        conn = self._connect()
        try:
            sftp = conn.sftp()
            sftp.get_channel().settimeout(DEFAULT_TIMEOUT)

            def sent(done: int, total: int) -> None:
                progress.emit("upload", host=self.name, sent=done, total=total)

            sftp.putfo(io.BytesIO(data), remote_path, callback=sent, confirm=True)
        except (OSError, EOFError) as exc:
            raise HostError(f"{self.label}: upload to {remote_path} failed: {exc}") from exc

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class LocalRunner:
    """Runs commands with bash on this machine (for ``transport: local`` hosts)."""

    def __init__(self, host: Host, secrets: Sequence[Secret] = ()):
        self.name = host.name
        self._secrets = list(secrets)

    def run(
        self, command: Shell, *, check: bool = True, timeout: float | None = None
    ) -> CommandResult:
        timeout = DEFAULT_TIMEOUT if timeout is None else timeout
        try:
            proc = subprocess.run(
                ["bash", "-c", command.text],
                capture_output=True,
                text=True,
                timeout=timeout,
                stdin=subprocess.DEVNULL,
                check=False,
                env={**os.environ, **dict(command.env)} if command.env else None,
            )
        except subprocess.TimeoutExpired as exc:
            raise CommandFailed(
                self.name, command.shown, 124, f"timed out after {timeout}s"
            ) from exc
        result = CommandResult(
            proc.returncode, redact(proc.stdout, self._secrets), redact(proc.stderr, self._secrets)
        )
        if check and not result.ok:
            raise CommandFailed(self.name, command.shown, result.exit_status, result.stderr)
        return result

    def put_bytes(self, data: bytes, remote_path: str) -> None:
        path = Path(remote_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def close(self) -> None:
        pass


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


def upload(runner: Runner, local: Path, dest: str, version: str = "") -> str:
    """Ship a local file or directory as the immutable release directory ``dest``.

    A version is shipped once: staged in a fresh private directory beside ``dest`` (never a
    name another local user could guess), unpacked, given a manifest (version, digest,
    time) and renamed into place in one step. The same build already there is not shipped
    again; another build under the same name is refused, never overwritten.
    """
    if not local.exists():
        raise HostError(f"{runner.name}: upload source {local} does not exist")
    digest = digest_tree(local)
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
    data = archive(local)
    staging = text.strip()
    if not staging.startswith("/") or "\n" in staging:
        raise HostError(f"{runner.name}: mktemp -d printed {staging[:80]!r}, not a directory")
    manifest = json.dumps(
        {"version": version, "digest": digest, "shipped_at": time.time(), "source": str(local)},
        sort_keys=True,
    )
    try:
        runner.put_bytes(data, f"{staging}/upload.tar.gz")
    except BaseException:
        runner.run(join(["rm", "-rf", "--", staging]), check=False)
        raise
    runner.run(files.install_release(staging, dest, manifest))
    return f"{dest} ({digest[:12]})"
