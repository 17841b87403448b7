"""nginx as a blue-green router: the upstream file deployer owns and the commands around it.

The switch is: write the upstream file next to its target and ``mv`` it into place (atomic),
``nginx -t``, note the master's current workers, graceful reload, then wait until those old
workers have exited before anyone may stop the old color: old workers still hold keep-alive
connections to it, and stopping it early turns their in-flight requests into 502s.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from deployer.values import Shell, join

MARKER = re.compile(r"^# deployer: live=(blue|green) version=(\S*)$", re.MULTILINE)


#: passive health for an upstream of several servers: (max_fails, fail_timeout seconds)
Health = tuple[int, float]


def _conf(
    name: str,
    markers: Sequence[str],
    servers: Sequence[str],
    keepalive: int,
    health: Health | None = None,
) -> str:
    """An upstream file: deployer's marker lines (the first names the live color, for
    ``observe``), then the upstream block with ``servers`` (``address [weight=N]``).

    ``health`` (several servers, max_fails > 0): a server whose connection fails (nginx's
    ``proxy_next_upstream`` conditions) ``max_fails`` times within ``fail_timeout`` is out of
    rotation for ``fail_timeout``, counted for all workers at once (a shared ``zone``: else
    each worker would send users to a dead host until it failed there too). Without it,
    ``max_fails=0``: one server (nginx ignores passive health for a lone server anyway) or a
    canary's weighted pair, whose failures analysis must see rather than nginx hide."""
    passive = health is not None and health[0] > 0 and len(servers) > 1
    lines = [f"# deployer: {m}" for m in markers] + [f"upstream {name} {{"]
    if passive:
        assert health is not None
        lines.append(f"    zone deployer_{name} {max(64, 32 + len(servers))}k;")
        fails = f"max_fails={health[0]} fail_timeout={health[1]:g}s"
        lines += [f"    server {s} {fails};" for s in servers]
    else:
        lines += [f"    server {s} max_fails=0;" for s in servers]
    if keepalive:
        lines.append(f"    keepalive {keepalive};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def upstream_conf(
    name: str,
    color: str,
    version: str,
    servers: Sequence[str],
    keepalive: int,
    health: Health | None = None,
) -> str:
    """The included upstream file; its first line records the live color for ``observe``."""
    return _conf(name, [f"live={color} version={version}"], servers, keepalive, health)


def canary_conf(
    name: str,
    live: tuple[str, str, Sequence[str]],
    canary: tuple[str, str, Sequence[str]],
    weight: int,
    keepalive: int,
) -> str:
    """Both colors in the upstream, ``weight`` percent of requests to the canary. The first
    line still names the live color (a crash mid-canary is undone towards it)."""
    (color, version, servers), (new_color, new_version, new_servers) = live, canary
    markers = [
        f"live={color} version={version}",
        f"canary={new_color} version={new_version} weight={weight}",
    ]
    weighted = [f"{s} weight={100 - weight}" for s in servers]
    weighted += [f"{s} weight={weight}" for s in new_servers]
    return _conf(name, markers, weighted, keepalive)


def batch_conf(
    name: str,
    live: tuple[str, str],
    new: tuple[str, str],
    servers: Sequence[tuple[str, bool]],
    batch: tuple[int, int],
    keepalive: int,
    health: Health | None = None,
) -> str:
    """A fleet mid-way: each server is its host's old or new color (``servers``: address
    and whether it has moved). The first line still names the old color as live (a crash
    between batches is undone towards it)."""
    (color, version), (new_color, new_version), (k, n) = live, new, batch
    markers = [
        f"live={color} version={version}",
        f"batch={k}/{n} new={new_color} version={new_version}",
    ]
    return _conf(name, markers, [s for s, _ in servers], keepalive, health)


LEFT_OUT = re.compile(r"^# deployer: out=(\S+)$", re.MULTILINE)


def leave_out(conf: str, hosts: Sequence[str], addresses: Sequence[str]) -> str:
    """``conf`` without the servers at ``addresses`` (hosts the batch policy left out),
    and a line naming those hosts (for `deployer status`)."""
    if not hosts:
        return conf
    drop = tuple(f"    server {a} " for a in addresses)
    lines = [ln for ln in conf.splitlines() if not ln.startswith(drop)]
    lines.insert(1, f"# deployer: out={','.join(hosts)}")
    return "\n".join(lines) + "\n"


def left_out(conf: str) -> list[str]:
    m = LEFT_OUT.search(conf)
    return m.group(1).split(",") if m else []


SERVER = re.compile(r"^\s*server\s+(\S+?)(?:;|\s)", re.MULTILINE)


def servers(conf: str) -> list[str]:
    """The addresses (``host:port``) an upstream file sends traffic to, in its order."""
    return SERVER.findall(conf)


def log_size(path: str) -> Shell:
    """The access log's size in bytes (0 when it does not exist yet)."""
    return Shell.raw(f"stat -c %s {join([path]).text} 2>/dev/null || echo 0")


def log_read(path: str, offset: int, limit: int = 4_000_000) -> Shell:
    """The access log's size (a smaller size than ``offset`` means it was rotated), then at
    most ``limit`` bytes of it from byte ``offset`` on, in base64 (exact bytes: the offset
    must advance by what was read, whatever the text holds)."""
    p = join([path]).text
    return Shell.raw(
        f"stat -c %s {p} 2>/dev/null || echo 0; "
        f"tail -c +{int(offset) + 1} {p} 2>/dev/null | head -c {int(limit)} | base64 -w0"
    )


OP = re.compile(r"^# deployer: op=(\S+)$", re.MULTILINE)


def mark_op(conf: str, op_id: str) -> str:
    """``conf`` with a line naming the operation that wrote it (after the live marker), so
    an undo can check that the router still holds what its operation installed."""
    lines = [ln for ln in conf.splitlines() if not OP.fullmatch(ln)]
    at = 1 if lines and MARKER.fullmatch(lines[0]) else 0
    lines.insert(at, f"# deployer: op={op_id}")
    return "\n".join(lines) + "\n"


def op_of(conf: str) -> str | None:
    """The operation that wrote an upstream file (None: not marked)."""
    m = OP.search(conf)
    return m.group(1) if m else None


#: what an upstream file deployer may put back can hold: its own marker comments and one
#: ``upstream NAME { ... }`` block of these directives (server lines, passive health, keep-alive)
_DIRECTIVES = ("server", "zone", "keepalive", "keepalive_requests", "keepalive_timeout")
_DIRECTIVE = re.compile(r"^\s*(?P<name>[a-z_]+)(?P<args>(?:\s+[A-Za-z0-9_.:/\[\]=-]+)*)\s*;\s*$")
_OPEN = re.compile(r"^\s*upstream\s+(?P<name>[A-Za-z0-9_.-]+)\s*\{\s*$")
MAX_UPSTREAM_BYTES = 256 * 1024


def check_upstream(text: str, name: str) -> str | None:
    """Why ``text`` is not an upstream file deployer may write back into nginx's config
    (None: it may). It must be comment lines and exactly one ``upstream NAME {}`` block of
    ``server``, ``zone`` and ``keepalive`` lines with plain arguments: a file a host could
    have changed never brings a ``server {}`` block, an ``include`` or a ``$variable`` along.
    An empty text (no file yet) is fine."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_UPSTREAM_BYTES:
        return f"larger than {MAX_UPSTREAM_BYTES // 1024} KiB"
    state = "before"
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or (stripped.startswith("#") and state != "inside"):
            continue
        if state == "before":
            m = _OPEN.fullmatch(line)
            if m is None:
                return f"line {number}: expected `upstream {name} {{`"
            if m.group("name") != name:
                return f"line {number}: upstream {m.group('name')!r}, not {name!r}"
            state = "inside"
        elif state == "inside":
            if stripped == "}":
                state = "after"
                continue
            d = _DIRECTIVE.fullmatch(line)
            if d is None or d.group("name") not in _DIRECTIVES:
                return f"line {number}: only {', '.join(_DIRECTIVES)} lines may be in it"
            if d.group("name") == "server" and not d.group("args").strip():
                return f"line {number}: a server line without an address"
        else:
            return f"line {number}: something after the upstream block"
    if state == "inside":
        return "the upstream block is not closed"
    if state == "before" and text.strip():
        return f"no `upstream {name} {{` block"
    return None


def parse_live(conf: str) -> tuple[str, str] | None:
    """(live color, version) from an upstream file written by :func:`upstream_conf`."""
    m = MARKER.search(conf)
    return (m.group(1), m.group(2)) if m else None


def read_upstream(path: str) -> Shell:
    """The upstream file's text, or nothing when there is none yet (a first release)."""
    return Shell.raw(f"cat {join([path]).text} 2>/dev/null || true")


TEST_FAILED = 97
NO_NEW_WORKERS = 98
RELOAD_FAILED = 99
NOT_RUNNING = 96


def _paths(path: str, pid_file: str) -> tuple[str, str, str]:
    """(upstream file, pid file, switch lock), quoted."""
    f, pid = join([path]).text, join([pid_file]).text
    return f, pid, join([path + ".deployer-switch.lock"]).text


def _locked(lock: str) -> str:
    # one switch at a time on this router (deployer's, the dead-man watchdog's, a canary
    # shift's): they share the backup file, and one's restore must not undo the other
    return f"if command -v flock >/dev/null; then exec 9>>{lock} && flock -w 30 9 || exit 1; fi; "


def _restore_on_failure(f: str, b: str) -> str:
    return (
        f"restore() {{ if [ $had = 1 ]; then mv -f {b} {f}; else rm -f {f}; fi; }}; "
        "trap 'rc=$?; if [ $rc -ne 0 ]; then restore; fi' EXIT; "
    )


def _install_and_test(s: str, f: str, test: Shell) -> str:
    return (
        f"mv -f {s} {f} || exit 1; if ! {{ {test.text}; }} 9>&- >&2; then exit {TEST_FAILED}; fi; "
    )


def _reload(pid_file: str, pid: str, reload: Shell, done: str) -> str:
    """Graceful reload, then wait for new workers (``done`` runs once they serve: the
    backup is dropped), then for the old ones to stop accepting; prints ``old: PID ...``."""
    # the master's workers and a worker's title are read from /proc by bash itself (`ps`
    # scans every process: ~10 ms a call, and the loops below call it every 20 ms); `ps`
    # where the kernel has no children file
    return (
        f"m=$(cat {pid} 2>/dev/null); "
        f'if [ -z "$m" ] || ! kill -0 "$m" 2>/dev/null; then '
        f"echo 'nginx is not running (no live master in {pid_file})' >&2; exit {NOT_RUNNING}; fi; "
        'kids() { K=; if [ -r "/proc/$m/task/$m/children" ]; then '
        '{ read -r K <"/proc/$m/task/$m/children"; } 2>/dev/null; '
        "else K=$(ps -o pid= --ppid \"$m\" | tr -s ' \\n' ' '); fi; }; "
        "title() { T=; if [ -r /proc/self/cmdline ]; then "
        '{ IFS= read -r -d "" T <"/proc/$1/cmdline"; } 2>/dev/null; '
        'else T=$(ps -o args= -p "$1" 2>/dev/null); fi; }; '
        "kids; old=$K; "
        f"if ! {{ {reload.text}; }} 9>&- >&2; then exit {RELOAD_FAILED}; fi; i=0; "
        "while [ $i -lt 500 ]; do kids; for p in $K; do "
        'case " $old " in *" $p "*) ;; *) '
        f"trap - EXIT; {done}; "
        # then until every old worker has closed its listening sockets (its title says
        # "shutting down", or it is gone): before that, a new connection may still land on
        # it and be served the previous upstream (bounded: 2 s, then it is left to drain)
        "j=0; while [ $j -lt 100 ]; do busy=0; for o in $old; do "
        'title "$o"; case "$T" in ""|*"shutting down"*) ;; '
        "*) busy=1;; esac; done; [ $busy = 0 ] && break; sleep 0.02; j=$((j+1)); done; "
        'echo "old: $old"; exit 0;; esac; done; '
        f"sleep 0.02; i=$((i+1)); done; exit {NO_NEW_WORKERS}"
    )


def _shell(script: str, test: Shell, reload: Shell) -> Shell:
    shown = script.replace(test.text, test.shown).replace(reload.text, reload.shown)
    return Shell.around(script, shown, test, reload)


def switch(staged: str, path: str, test: Shell, reload: Shell, pid_file: str) -> Shell:
    """One round trip for the whole switch (sessions cost ~90 ms each on a fast host).

    Moves the staged upstream into place (rename(2): atomic) and from then on puts the
    previous file back on any failure (a trap on EXIT): the test command fails (exit 97,
    nothing was loaded), nginx is not running (96), the reload fails (99), or no new worker
    appears within 10 s (98). Only after new workers serve is the backup dropped; it then
    waits (at most 2 s) until the old workers stop accepting connections. Prints ``old: PID
    PID`` for the workers that will drain. Switches on one router take turns (``flock`` on
    ``PATH.deployer-switch.lock``, at most 30 s): the dead-man watchdog firing while deployer's
    own switch runs must not have its work undone by the other's restore.
    """
    f, pid, lock = _paths(path, pid_file)
    s, b = join([staged]).text, join([path + ".deployer-prev"]).text
    script = (
        _locked(lock)
        + f"had=0; if [ -f {f} ]; then cp -p {f} {b} || exit 1; had=1; fi; "
        + _restore_on_failure(f, b)
        + _install_and_test(s, f, test)
        + _reload(pid_file, pid, reload, f"rm -f {b}")
    )
    return _shell(script, test, reload)


def _held(path: str) -> tuple[str, str]:
    """Where a staged switch keeps the previous upstream, and the marker saying there was
    none (a first release), until it is reloaded or put back."""
    return join([path + ".deployer-held"]).text, join([path + ".deployer-held-none"]).text


def stage(staged: str, path: str, test: Shell, reload: Shell, pid_file: str) -> Shell:
    """The first half of a switch on several routers: move the staged upstream into place
    and test it, keeping the previous one aside; nothing is reloaded. A failed test puts
    the previous file back (exit 97). :func:`reload_staged` or :func:`unstage` follows."""
    f, _, lock = _paths(path, pid_file)
    s = join([staged]).text
    held, none = _held(path)
    script = (
        _locked(lock)
        + f"rm -f {held} {none}; had=0; "
        + f"if [ -f {f} ]; then cp -p {f} {held} || exit 1; had=1; else : > {none}; fi; "
        + _restore_on_failure(f, held)
        + _install_and_test(s, f, test)
        + "trap - EXIT; exit 0"
    )
    return _shell(script, test, reload)


def reload_staged(path: str, test: Shell, reload: Shell, pid_file: str) -> Shell:
    """The second half: reload what :func:`stage` put in place (the same exit codes as
    :func:`switch`; on failure the held previous upstream is put back)."""
    f, pid, lock = _paths(path, pid_file)
    held, none = _held(path)
    script = (
        _locked(lock)
        + f"if [ -f {held} ]; then had=1; elif [ -f {none} ]; then had=0; else "
        + "echo 'no staged upstream to reload' >&2; exit 1; fi; "
        + _restore_on_failure(f, held)
        + _reload(pid_file, pid, reload, f"rm -f {held} {none}")
    )
    return _shell(script, test, reload)


def unstage(path: str, pid_file: str) -> Shell:
    """Put back the upstream :func:`stage` held aside (another router refused the new one)."""
    f, _, lock = _paths(path, pid_file)
    held, none = _held(path)
    return Shell.raw(
        _locked(lock)
        + f"if [ -f {held} ]; then mv -f {held} {f}; elif [ -f {none} ]; then rm -f {f}; fi; "
        + f"rm -f {none}"
    )


def staged_path(path: str) -> str:
    return f"{path}.deployer-new"


def workers_alive(pids: Sequence[int]) -> Shell:
    """Prints the pids among ``pids`` that still exist (old workers still draining)."""
    if not pids:
        return Shell.raw("true")
    listed = " ".join(str(int(p)) for p in pids)
    return Shell.raw(f"for p in {listed}; do kill -0 $p 2>/dev/null && echo $p; done; true")
