"""The router's dead-man switch: a watchdog on the router host that puts the previous
upstream back unless the running deployer keeps it quiet.

It is a lease, not a timer. deployer starts the watchdog through a session it holds open
on its connection to the router (:meth:`Runner.hold`) and writes a beat to it every
fraction of ``grace``. The watchdog reverts the router, with the same switch script a
release uses (test, graceful reload, restore on failure), as soon as:

- the session closes without the watchdog having been called off (deployer was killed, its
  machine or SSH connection went away: the host's sshd closes the session's stdin at once
  when the connection ends), reason ``closed``;
- no beat arrived for ``grace`` seconds (a network stall, a frozen runner), ``stalled``;
- the absolute deadline (post-switch window + probe timeout + margin) passed, as a
  backstop for everything else, ``deadline``.

It leaves a marker with the time, the switch script's exit status and the reason; the
next arming, the commit and ``recover`` print it (``fired TIME STATUS WHY``). It is called
off through a file (``…-off``) the watchdog looks for between reads, never by a signal: a
watchdog already switching back is never interrupted, and calling it off waits until it is
done (bounded) so that its marker is there to be read.
"""

from __future__ import annotations

import re
import time

from deployer.values import Shell, join

#: how long calling the watchdog off waits for one that is switching back (test + reload
#: + up to 10 s for nginx's new workers) to finish
OFF_WAIT_SECONDS = 20
#: the watchdog reads its beats with this timeout, so it looks for the off file this often
#: (a loop of shell builtins: ~50 wake-ups a second cost nothing measurable; the commit that
#: calls it off waits half of this on average)
POLL_SECONDS = 0.02
#: the same where bash has no $EPOCHREALTIME (before 5.0): each look then runs date(1)
POLL_SECONDS_OLD_BASH = 0.1
REASONS = {
    "closed": "deployer's session to the router closed (deployer or its machine died)",
    "stalled": "deployer stopped renewing it (its connection or process stalled)",
    "deadline": "its deadline passed",
}


def paths(path: str) -> tuple[str, str, str, str]:
    """(the staged previous upstream, the watchdog's pid file, the marker it leaves when it
    fired, the file that calls it off)"""
    return (
        f"{path}.deployer-deadman-conf",
        f"{path}.deployer-deadman",
        f"{path}.deployer-deadman-fired",
        f"{path}.deployer-deadman-off",
    )


def tag(path: str) -> str:
    """The last word of the watchdog's command line (proof that a pid is the watchdog's)."""
    return f"deployer-dead-man:{path}"


def _stop_running(path: str) -> str:
    """Shell text: if the pid file names our watchdog (this user's, our tag on its command
    line), call it off through the off file and wait (bounded) until it has exited; a pid
    file someone else wrote calls nothing off. The pid and off files are removed."""
    _, timer, _, off = (join([p]).text for p in paths(path))
    t = join([tag(path)]).text
    polls = int(OFF_WAIT_SECONDS / POLL_SECONDS)
    return (
        f"p=$(head -c 32 -- {timer} 2>/dev/null); "
        'case $p in ""|*[!0-9]*|0|1) ;; *) '
        'if [ "$(stat -c %u /proc/$p 2>/dev/null)" = "$(id -u)" ] && '
        f"tr '\\0' '\\n' < /proc/$p/cmdline 2>/dev/null | grep -qxF -- {t}; then "
        f": > {off}; i=0; "
        # until it has exited (a zombie its parent has not reaped yet has exited); its state
        # read by bash itself (the state follows the last ") " of /proc/PID/stat)
        'while s=; { read -r s <"/proc/$p/stat"; } 2>/dev/null && s=${s##*) } && '
        f'[ -n "$s" ] && [ "${{s%% *}}" != Z ] && [ $i -lt {polls} ]; do sleep {POLL_SECONDS:g}; '
        "i=$((i+1)); done; "
        "fi;; esac; "
        f"rm -f -- {off} {timer}"
    )


def _said_fired(path: str) -> str:
    fired = join([paths(path)[2]]).text
    return f'if [ -f {fired} ]; then echo "fired $(head -c 80 -- {fired})"; fi'


def prepare(path: str) -> Shell:
    """Before arming: a watchdog still running (a fleet's previous batch) is called off; if
    one had fired since it was armed, that is printed once (``fired TIME STATUS WHY``)."""
    fired = join([paths(path)[2]]).text
    return Shell.raw(f"{_stop_running(path)}; {_said_fired(path)}; rm -f -- {fired}; true")


def watchdog(path: str, switch: Shell, seconds: float, grace: float) -> Shell:
    """The watchdog, run in a session deployer holds open (its stdin carries the beats).
    It runs in a session of its own (no signal from sshd reaches it) and writes its pid
    for :func:`disarm`. ``switch`` puts the staged previous upstream back."""
    _, timer, fired, off = (join([p]).text for p in paths(path))
    backstop_ms, grace_ms = int(seconds * 1000), max(1, int(grace * 1000))
    script = (
        "trap '' HUP PIPE INT; "
        f"echo $$ > {timer} || exit 1; echo armed; exec >/dev/null 2>&1; "
        # milliseconds since the epoch without a fork (bash 5), else from date(1)
        'ms() { if [ -n "${EPOCHREALTIME:-}" ]; then local t=${EPOCHREALTIME/[.,]/}; '
        "REPLY=${t:0:${#t}-3}; else REPLY=$(date +%s%3N); fi; }; "
        f"ms; end=$((REPLY + {backstop_ms})); last=$REPLY; why=deadline; "
        f'poll={POLL_SECONDS:g}; [ -n "${{EPOCHREALTIME:-}}" ] || poll={POLL_SECONDS_OLD_BASH:g}; '
        "while :; do "
        f"  if [ -e {off} ]; then rm -f -- {off} {timer}; exit 0; fi; "
        '  ms; [ "$REPLY" -ge "$end" ] && break; '
        f"  if [ $((REPLY - last)) -ge {grace_ms} ]; then why=stalled; break; fi; "
        '  if IFS= read -r -t "$poll" line; then ms; last=$REPLY; '
        "  elif [ $? -le 128 ]; then "  # end of input: the session closed
        f"    if [ -e {off} ]; then rm -f -- {off} {timer}; exit 0; fi; why=closed; break; "
        "  fi; "
        "done; "
        "trap '' TERM; "
        f'echo "$(date +%s) - $why" > {fired}; '
        f"( {switch.text} ) </dev/null; rc=$?; "
        f'echo "$(date +%s) $rc $why" > {fired}; '
        f"rm -f -- {timer} {off}"
    )
    # --norc: a bash started under sshd reads ~/.bashrc even for `-c` (exec keeps its shell
    # level at 1); with pyenv, nvm or conda there that held the switch back ~0.1 s
    text = join(
        ["exec", "setsid", "-w", "bash", "--noprofile", "--norc", "-c", script, tag(path)]
    ).text
    shown = (
        f"watch the router: put back {paths(path)[0]} (test, reload) when deployer's "
        f"session closes, after {grace:g}s without a beat, or after {seconds:g}s"
    )
    return Shell.around(text, shown, switch)


def disarm(path: str) -> Shell:
    """Call the watchdog off (waiting for one that is switching back to finish); prints
    ``fired TIME STATUS WHY`` if it had fired."""
    conf = join([paths(path)[0]]).text
    return Shell.raw(f"{_stop_running(path)}; rm -f -- {conf}; {_said_fired(path)}; true")


_FIRED = re.compile(
    r"^fired(?: ([0-9]{1,12}) (-|-?[0-9]{1,3})(?: (closed|stalled|deadline))?"
    r"( on [A-Za-z0-9._, -]{1,200})?)?$"
)


def parse_fired(out: str) -> str | None:
    """What the router printed when the watchdog had fired (read back from the router host:
    input, checked): ``TIME STATUS WHY`` with each part checked (``?`` for a part that is
    not what it should be), or None when it had not fired."""
    text = out.strip().splitlines()[-1] if out.strip() else ""
    if not text.startswith("fired"):
        return None
    m = _FIRED.match(text)
    if not m or not m.group(1):
        return "? ? ?"
    return f"{m.group(1)} {m.group(2)} {m.group(3) or '?'}{m.group(4) or ''}"


def fired_text(fired: str) -> str:
    """``TIME STATUS WHY`` (from :func:`parse_fired`, maybe ``on ROUTERS`` after it) as
    words: when (ISO 8601 UTC), why, and whether its switch back worked."""
    where = ""
    if " on " in fired:
        fired, _, names = fired.partition(" on ")
        where = f" on {names}"
    parts = [*fired.split(), "?", "?", "?"][:3]
    when, status, why = parts
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(when))) if when.isdigit() else "?"
    because = REASONS.get(why, "for a reason it did not record")
    result = {
        "0": "",
        "-": " (still switching back when last seen)",
    }.get(status, f" (its switch back exited {status}: check the router)")
    return f"the dead-man switch had switched traffic back{where} at {at}: {because}{result}"
