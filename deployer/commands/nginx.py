"""nginx as a blue-green router: the upstream file deployer owns and the commands around it.

The switch is: write the upstream file next to its target and ``mv`` it into place (atomic),
``nginx -t``, note the master's current workers, graceful reload, then wait until those old
workers have exited before anyone may stop the old color: old workers still hold keep-alive
connections to it, and stopping it early turns their in-flight requests into 502s.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from deployer.commands.shell import Shell, join

MARKER = re.compile(r"^# deployer: live=(blue|green) version=(\S*)$", re.MULTILINE)


def upstream_conf(
    name: str, color: str, version: str, servers: Sequence[str], keepalive: int
) -> str:
    """The included upstream file; its first line records the live color for ``observe``."""
    lines = [f"# deployer: live={color} version={version}", f"upstream {name} {{"]
    lines += [f"    server {s} max_fails=0;" for s in servers]
    if keepalive:
        lines.append(f"    keepalive {keepalive};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def parse_live(conf: str) -> tuple[str, str] | None:
    """(live color, version) from an upstream file written by :func:`upstream_conf`."""
    m = MARKER.search(conf)
    return (m.group(1), m.group(2)) if m else None


def read_upstream(path: str) -> Shell:
    """The upstream file's text, or nothing when there is none yet (a first release)."""
    return Shell.raw(f"cat {join([path]).text} 2>/dev/null || true")


TEST_FAILED = 97
NO_NEW_WORKERS = 98


def switch(staged: str, path: str, test: Shell, reload: Shell, pid_file: str) -> Shell:
    """One round trip for the whole switch (sessions cost ~90 ms each on a fast host).

    Moves the staged upstream into place (rename(2): atomic), runs the test command and puts
    the previous file back if it fails (exit 97), notes the master's workers, reloads, then
    waits (at most 10 s) for a worker that was not there before (exit 98 if none appears).
    Prints ``old: PID PID`` for the workers that will drain.
    """
    f, s, b = join([path]).text, join([staged]).text, join([path + ".deployer-prev"]).text
    pid = join([pid_file]).text
    script = (
        f"if [ -f {f} ]; then cp -p {f} {b}; fi; mv -f {s} {f}; "
        f"if ! {{ {test.text}; }} >&2; then if [ -f {b} ]; then mv -f {b} {f}; fi; "
        f"exit {TEST_FAILED}; fi; "
        f"m=$(cat {pid}); old=$(ps -o pid= --ppid \"$m\" | tr -s ' \\n' ' '); "
        f"{{ {reload.text}; }} >&2 || exit $?; i=0; "
        'while [ $i -lt 200 ]; do for p in $(ps -o pid= --ppid "$m"); do '
        'case " $old " in *" $p "*) ;; *) echo "old: $old"; exit 0;; esac; done; '
        f"sleep 0.05; i=$((i+1)); done; exit {NO_NEW_WORKERS}"
    )
    shown = script.replace(test.text, test.shown).replace(reload.text, reload.shown)
    return Shell(script, shown)


def staged_path(path: str) -> str:
    return f"{path}.deployer-new"


def workers_alive(pids: Sequence[int]) -> Shell:
    """Prints the pids among ``pids`` that still exist (old workers still draining)."""
    if not pids:
        return Shell.raw("true")
    listed = " ".join(str(int(p)) for p in pids)
    return Shell.raw(f"for p in {listed}; do kill -0 $p 2>/dev/null && echo $p; done; true")
