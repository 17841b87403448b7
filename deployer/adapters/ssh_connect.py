"""Opening an SSH connection: strict host keys and dead-peer detection (the bounded retries
are the runner's, hosts.py).

paramiko and fabric errors are translated here into deployer's error tree. Fabric's own
default is to trust any unknown host key (``AutoAddPolicy``); it is replaced: an unknown key
is refused unless ``accept_new_host_key`` was given, and a changed key is always refused.
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import Any

from deployer.adapters import known_hosts as known_hosts_file
from deployer.errors import HostError, HostKeyError
from deployer.playbook.models import Host

#: a host that stops answering mid-command is declared lost after about this many seconds
DEAD_PEER_SECONDS = 15


class Unreachable(HostError):
    """Could not connect (may pass: refused, timed out, reset), as opposed to a host key or
    login that is refused."""


def detect_dead_peer(conn: Any) -> None:
    """A host cut off mid-command (a pulled cable, a dead VM) must not hang a step until
    its command timeout: SSH keepalives every 5 s, and the kernel gives up on unanswered
    data after ``DEAD_PEER_SECONDS`` (TCP_USER_TIMEOUT, TCP keepalive on Linux)."""
    import socket

    transport = conn.client.get_transport()
    if transport is None:
        return
    transport.set_keepalive(5)
    sock = transport.sock
    opts = [
        (socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1),
        (socket.IPPROTO_TCP, getattr(socket, "TCP_KEEPIDLE", None), 5),
        (socket.IPPROTO_TCP, getattr(socket, "TCP_KEEPINTVL", None), 2),
        (socket.IPPROTO_TCP, getattr(socket, "TCP_KEEPCNT", None), 3),
        (socket.IPPROTO_TCP, getattr(socket, "TCP_USER_TIMEOUT", None), DEAD_PEER_SECONDS * 1000),
    ]
    for level, name, value in opts:
        if name is not None:
            with contextlib.suppress(OSError, AttributeError):
                sock.setsockopt(level, name, value)


def why(exc: BaseException) -> str:
    """What a lost connection said; paramiko's EOFError says nothing."""
    text = str(exc).strip()
    if text:
        return text
    if isinstance(exc, EOFError):
        return "it closed: the host stopped answering"
    return type(exc).__name__


_CONFIG: Any = None
_CONFIG_LOCK = threading.Lock()


def fabric_config() -> Any:
    """One fabric Config for every connection (lazy: no ssh_config files read; deployer's
    connections are explicit). Built per connection it cost ~2 ms of CPU each (invoke's
    config merging), 0.2 s of a 100-host `status`; connections only read it."""
    global _CONFIG
    with _CONFIG_LOCK:
        if _CONFIG is None:
            from fabric import Config

            _CONFIG = Config(lazy=True)
        return _CONFIG


def open_connection(
    host: Host,
    label: str,
    *,
    key: Path | None,
    known_hosts: Path,
    accept_new: bool,
    timeout: float,
) -> Any:
    """A fabric Connection to ``host``, open, its host key checked against ``known_hosts``
    only; :class:`Unreachable` for what may pass (refused, timed out, reset)."""
    import paramiko
    from fabric import Connection

    kwargs: dict[str, Any] = {
        "look_for_keys": False,
        "allow_agent": False,
        "banner_timeout": timeout,
        "auth_timeout": timeout,
    }
    if key is not None:
        kwargs["key_filename"] = str(key)
    config = fabric_config()
    try:  # fabric reads ~/.ssh/known_hosts itself (we clear that below); never crash on it
        conn = Connection(
            host.address,
            user=host.user,
            port=host.port,
            config=config,
            connect_timeout=timeout,
            connect_kwargs=kwargs,
        )
    except (UnicodeDecodeError, ValueError, paramiko.SSHException) as exc:
        raise HostKeyError(f"{label}: cannot read ~/.ssh/known_hosts: {exc}") from None
    client = conn.client
    client.get_host_keys().clear()
    try:
        keys = known_hosts_file.load(known_hosts, host.address, host.port)
    except HostKeyError as exc:
        raise HostKeyError(f"{label}: {exc}") from None
    name = known_hosts_file.lookup_name(host.address, host.port)
    # only the server's key type is compared by paramiko: give it just one key per type
    for known_key in keys.known:
        client.get_host_keys().add(name, known_key.get_name(), known_key)
    client.set_missing_host_key_policy(
        known_hosts_file.StrictPolicy(label, known_hosts, accept_new, keys)
    )
    try:
        conn.open()
    except HostKeyError:
        raise
    except paramiko.BadHostKeyException as exc:
        raise HostKeyError(
            f"{label}: host key CHANGED (got {exc.key.get_name()} "
            f"{known_hosts_file.fingerprint(exc.key)}), it does not match "
            f"{known_hosts}; refusing to connect"
        ) from exc
    except paramiko.AuthenticationException as exc:
        raise HostError(f"{label}: authentication failed ({exc})") from exc
    except (TimeoutError, paramiko.SSHException, OSError, EOFError) as exc:
        raise Unreachable(f"{label}: cannot connect: {exc or type(exc).__name__}") from exc
    detect_dead_peer(conn)
    return conn
