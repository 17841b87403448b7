"""Hostile and broken input: playbooks, --var/--version values, journals, known_hosts.

Every case ends in one readable line with file:line and its documented exit code (2 for a
playbook, 7 for known_hosts), never a traceback, a hang or exit 1.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_playbook import GOOD

from deployer.adapters.journal import FileJournal
from deployer.errors import HostKeyError, InputError, PlaybookError
from deployer.playbook import load_playbook, parse_playbook
from deployer.playbook.variables import check_version, parse_var

ROOT = Path(__file__).resolve().parent.parent
HOSTILE = ROOT / "tests" / "hostile_playbooks"


def _cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deployer", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={**os.environ, "NO_COLOR": "1"},
        check=False,
    )


# ----- the loader -----
@pytest.mark.parametrize("name", sorted(p.name for p in HOSTILE.glob("*.yml")))
def test_hostile_playbook_is_exit_2_with_file_and_line_and_json(name: str) -> None:
    path = HOSTILE / name
    started = time.monotonic()
    proc = _cli("-o", "json", "validate", "-p", str(path))
    assert time.monotonic() - started < 10
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    first = proc.stderr.splitlines()[0]
    assert first.startswith(f"deployer: error: {path}:"), first
    assert json.loads(proc.stdout)["exit_code"] == 2


def test_alias_bomb_is_refused_quickly_without_expanding() -> None:
    started = time.monotonic()
    with pytest.raises(PlaybookError, match="alias"):
        load_playbook(HOSTILE / "alias_bomb.yml")
    assert time.monotonic() - started < 2


def test_fifo_and_devices_are_refused_without_reading(tmp_path: Path) -> None:
    fifo = tmp_path / "p.yml"
    os.mkfifo(fifo)
    for path in (fifo, Path("/dev/zero"), tmp_path):
        with pytest.raises(PlaybookError, match="not a regular file"):
            load_playbook(path)


def test_oversized_playbook_is_refused(tmp_path: Path) -> None:
    big = tmp_path / "big.yml"
    big.write_text("app: x\n" + "#" * (2 * 1024 * 1024))
    with pytest.raises(PlaybookError, match="larger than"):
        load_playbook(big)


def test_merge_keys_work() -> None:
    text = GOOD + "vars:\n  <<: {a: one, b: two}\n  b: three\n"
    pb = parse_playbook(text, "p.yml")
    assert pb.vars == {"a": "one", "b": "three"}


def test_not_utf8_names_its_line(tmp_path: Path) -> None:
    with pytest.raises(PlaybookError) as err:
        load_playbook(HOSTILE / "not_utf8.yml")
    assert err.value.line == 3


def test_control_characters_in_values_are_escaped_and_long_values_cut() -> None:
    text = GOOD.replace("app: shop", 'app: "Sh\\nop\\u2028' + "x" * 300 + '"')
    with pytest.raises(PlaybookError) as err:
        parse_playbook(text, "p.yml")
    message = str(err.value)
    assert "\n" not in message and "\u2028" not in message
    assert "\\x0a" in message and len(message) < 300


def test_newline_in_version_cannot_forge_a_second_error_line() -> None:
    proc = _cli("release", "-p", "nope.yml", "--version", "v1\ndeployer: error: all good")
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


_keys = st.sampled_from(["app", "hosts", "colors", "router", "service", "vars", "<<", "x"])
_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20))
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_keys, inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(_keys, _values, max_size=6), st.sampled_from(["dump", "mangle"]))
def test_fuzzed_playbooks_fail_only_with_located_playbook_errors(doc: dict, how: str) -> None:
    text = yaml.safe_dump(doc)
    if how == "mangle":
        text = text.replace(":", ": &a", 1).replace("- ", "- *a ", 1)
    try:
        parse_playbook(text, "fuzz.yml")
    except PlaybookError as exc:
        assert str(exc).startswith("fuzz.yml"), str(exc)


@settings(max_examples=150, deadline=2000)
@given(st.text(max_size=200))
def test_fuzzed_text_never_crashes_the_loader(text: str) -> None:
    try:
        parse_playbook(text, "fuzz.yml")
    except PlaybookError as exc:
        assert str(exc).startswith("fuzz.yml")


# ----- validate catches what would fail at release -----
def _set(text: str, path: str, value: object) -> str:
    doc = yaml.safe_load(text)
    node = doc
    keys = path.split(".")
    for k in keys[:-1]:
        node = node[int(k)] if k.isdigit() else node.setdefault(k, {})
    node[keys[-1]] = value
    return yaml.safe_dump(doc, sort_keys=False)


@pytest.mark.parametrize(
    ("path", "value", "needle"),
    [
        ("gates.pre_switch.expect_json", {"version": "${verison}"}, "unknown variable"),
        ("vars", {"a": "${b}", "b": "x"}, "defined after it"),
        ("vars", {"a": "${state_dir}/x"}, "defined after it"),
        ("router.url", "file:///etc/passwd", "router.url"),
        ("router.url", "ftp://x", "router.url"),
        ("router.upstream_name", "x; } server { listen 80", "upstream_name"),
        ("hosts.0.app_address", "1.2.3.4:80; evil", "app_address"),
        ("lock.path", "/", "lock.path"),
        ("lock.path", "", "lock.path"),
        ("state_dir", "/", "state_dir"),
        ("router.upstream_file", "", "upstream_file"),
        ("lock.ttl", 0, "lock.ttl"),
        ("lock.ttl", "5s", "worst case"),
        ("gates.post_switch.window", ".inf", "duration"),
        ("gates.post_switch.window", "99999h", "168h"),
        ("gates.post_switch.window", "٣s", "duration"),
        ("gates.post_switch.window", float("inf"), "duration"),
        ("gates.pre_switch.expect_status", 999, "status"),
        ("gates.post_switch.rate", 0, "rate"),
        ("lock.path", "/var/lib/${env:TOKEN}/lock", "secret"),
        ("state_dir", "/srv/${env:TOKEN}", "secret"),
    ],
)
def test_validate_refuses_what_would_fail_at_release(path: str, value: object, needle: str) -> None:
    text = _set(GOOD, path, value)
    if value == ".inf":
        text = text.replace("'.inf'", ".inf")
    with pytest.raises(PlaybookError) as err:
        parse_playbook(text, "p.yml")
    assert needle in str(err.value), str(err.value)
    assert str(err.value).startswith("p.yml:")


@pytest.mark.parametrize("value", ["-rf", "../../etc", "a/../b", "x\ny", "a b", "$(id)"])
def test_hostile_var_values_are_refused(value: str) -> None:
    with pytest.raises(InputError):
        parse_var(f"root={value}")


def test_empty_var_is_refused_unless_its_default_is_empty(tmp_path: Path) -> None:
    pb = tmp_path / "p.yml"
    pb.write_text(GOOD + "vars:\n  root: /srv/app\n  extra: ''\n")
    proc = _cli("plan", "-p", str(pb), "--version", "v1", "--live", "blue", "--var", "root=")
    assert proc.returncode == 2 and "empty value" in proc.stderr
    proc = _cli("plan", "-p", str(pb), "--version", "v1", "--live", "blue", "--var", "extra=")
    assert proc.returncode == 0, proc.stderr


def test_version_with_control_characters_is_refused_and_escaped() -> None:
    with pytest.raises(InputError) as err:
        check_version("v1\x1b[2J")
    assert "\x1b" not in str(err.value)


# ----- -o json everywhere -----
def test_output_json_works_after_the_subcommand(tmp_path: Path) -> None:
    pb = tmp_path / "p.yml"
    pb.write_text(GOOD)
    proc = _cli("validate", "-p", str(pb), "-o", "json")
    assert proc.returncode == 0 and json.loads(proc.stdout)["valid"] is True
    score = _cli("score", "-p", str(pb), "-o", "json")
    assert score.returncode == 0, score.stderr
    assert "points" in json.loads(score.stdout)


def test_usage_errors_print_the_json_error_document() -> None:
    proc = _cli("release", "-o", "json", "--bogus")
    assert proc.returncode == 2
    doc = json.loads(proc.stdout)
    assert doc["exit_code"] == 2 and doc["outcome"] == "error"


# ----- the journal -----
def _journal(tmp_path: Path, lines: list[bytes]) -> FileJournal:
    path = tmp_path / "j.journal"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return FileJournal(path)


def test_journal_skips_and_names_bad_lines(tmp_path: Path) -> None:
    good = json.dumps({"id": "a", "event": "begin", "kind": "release"}).encode()
    j = _journal(tmp_path, [b"[1, 2]", b"\xff\xfe", b'{"event": "step"}', good, b"{torn"])
    records = j.records()
    assert [r["id"] for r in records] == ["a"]
    assert len(j.problems) == 4
    assert all(f"{j.path}:" in p for p in j.problems)
    assert j.unfinished() is not None and j.unfinished()["id"] == "a"  # type: ignore[index]


def test_a_damaged_begin_still_leaves_the_operation_unfinished(tmp_path: Path) -> None:
    op = {"kind": "release", "version": "v2", "from_color": "blue", "upstream_before": "x"}
    step = {"id": "r1", "event": "step", "step": "switch@bed", "phase": "start", "op": op}
    j = _journal(tmp_path, [b'{"id": "r1", "event": "beg', json.dumps(step).encode()])
    pending = j.unfinished()
    assert pending is not None and pending["damaged"] and pending["version"] == "v2"


def test_an_append_after_a_torn_line_starts_a_new_line(tmp_path: Path) -> None:
    path = tmp_path / "j.journal"
    path.write_bytes(b'{"id": "a", "event": "begin", "kind": "release"}\n{"id": "a", "ev')
    j = FileJournal(path)
    j.append({"id": "a", "event": "end", "outcome": "succeeded"})
    assert [r["event"] for r in j.records()] == ["begin", "end"]
    assert j.unfinished() is None and len(j.problems) == 1


def test_a_big_journal_keeps_only_the_last_operation_once_none_is_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from deployer.adapters import journal as journal_mod

    path = tmp_path / "j.journal"
    j = FileJournal(path)
    pad = "x" * 2000  # a step record repeats the operation: ~2 KB each

    def operation(op_id: str, end: bool = True) -> None:
        j.append({"id": op_id, "event": "begin", "kind": "release", "pad": pad})
        for n in range(20):
            j.append({"id": op_id, "event": "step", "step": f"s{n}", "phase": "done", "op": {}})
        if end:
            j.append({"id": op_id, "event": "end", "outcome": "succeeded"})

    operation("r1")
    assert not j.compact()  # small: left alone
    for n in range(2, 8):
        operation(f"r{n}")
    monkeypatch.setattr(journal_mod, "COMPACT_BYTES", 1024)
    operation("open", end=False)
    assert not j.compact()  # an operation is open: nothing is dropped
    assert j.unfinished() is not None and j.unfinished()["id"] == "open"  # type: ignore[index]
    j.append({"id": "open", "event": "end", "outcome": "rolled_back"})
    assert path.stat().st_size > 20_000 and j.compact()
    records = j.records()
    assert {r["id"] for r in records} == {"open"} and len(records) == 22
    assert j.unfinished() is None and not j.problems
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert [p.name for p in tmp_path.iterdir()] == ["j.journal"]  # no temporary file left
    j.append({"id": "r9", "event": "begin", "kind": "release"})
    assert j.unfinished()["id"] == "r9"  # type: ignore[index]


# ----- known_hosts -----
def _host_key(tmp_path: Path, name: str = "k") -> tuple[str, str]:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / name)], check=True
    )
    kind, b64 = (tmp_path / f"{name}.pub").read_text().split()[:2]
    return kind, b64


def test_known_hosts_patterns_hashes_and_revoked(tmp_path: Path) -> None:
    from deployer.adapters import known_hosts

    kind, b64 = _host_key(tmp_path)
    kind2, b64_2 = _host_key(tmp_path, "k2")
    salt = os.urandom(20)
    name = "[10.0.0.5]:2222"
    digest = hmac.new(salt, name.encode(), hashlib.sha1).digest()
    hashed = f"|1|{base64.b64encode(salt).decode()}|{base64.b64encode(digest).decode()}"
    path = tmp_path / "known_hosts"
    path.write_text(
        f"# comment\n*.other.example {kind2} {b64_2}\n{hashed} {kind} {b64}\n"
        f"[10.0.0.*]:2222,!10.0.0.9 {kind2} {b64_2}\n@cert-authority * {kind2} {b64_2}\n"
    )
    keys = known_hosts.load(path, "10.0.0.5", 2222)
    assert sorted(k.get_base64() for k in keys.known) == sorted([b64, b64_2])
    assert known_hosts.load(path, "10.0.0.9", 22).known == []
    path.write_text(f"Web1.Example.COM,[LB.example]:2200 {kind} {b64}\n")  # as OpenSSH: any case
    assert [k.get_base64() for k in known_hosts.load(path, "web1.example.com", 22).known] == [b64]
    assert [k.get_base64() for k in known_hosts.load(path, "lb.EXAMPLE", 2200).known] == [b64]
    assert known_hosts.load(path, "web1.example.co", 22).known == []
    path.write_text(
        f"# comment\n*.other.example {kind2} {b64_2}\n{hashed} {kind} {b64}\n"
        f"[10.0.0.*]:2222,!10.0.0.9 {kind2} {b64_2}\n@cert-authority * {kind2} {b64_2}\n"
    )
    path.write_text(path.read_text() + f"@revoked * {kind} {b64}\n")
    keys = known_hosts.load(path, "10.0.0.5", 2222)
    assert [k.get_base64() for k in keys.known] == [b64_2]
    assert keys.revoked and keys.is_revoked(keys.revoked[0])
    fp = known_hosts.fingerprint(keys.revoked[0])
    out = subprocess.run(
        ["ssh-keygen", "-lf", str(tmp_path / "k.pub")], capture_output=True, text=True, check=True
    ).stdout
    assert fp in out  # the same SHA256: form OpenSSH prints


def test_known_hosts_lookup_agrees_with_a_line_by_line_reading(tmp_path: Path) -> None:
    """The loader indexes a file once per content; here it is compared with the plain
    reading (every line, in order, matched by host_matches) on random files."""
    import random

    from deployer.adapters import known_hosts

    keys = [_host_key(tmp_path, f"k{i}") for i in range(3)]
    rng = random.Random(26)
    names = ["web1", "Web1", "web2.example", "10.0.0.5", "[10.0.0.5]:2222", "lb"]
    pats = ["web*", "w?b1", "*.example", "10.0.0.*", "[10.0.0.*]:2222", "!web1", "*"]

    def field() -> str:
        kind = rng.random()
        if kind < 0.5:
            return rng.choice(names)
        if kind < 0.6:
            name = rng.choice(names).lower()
            salt = os.urandom(20)
            digest = hmac.new(salt, name.encode(), hashlib.sha1).digest()
            return f"|1|{base64.b64encode(salt).decode()}|{base64.b64encode(digest).decode()}"
        return ",".join(rng.choice(names + pats) for _ in range(rng.randint(1, 3)))

    def reference(path: Path, host: str, port: int) -> tuple[list[str], list[str]]:
        name = known_hosts.lookup_name(host, port)
        known: list[str] = []
        revoked: list[str] = []
        for line in path.read_text().splitlines():
            parts = line.split()
            if not parts or parts[0].startswith("#"):
                continue
            marker = parts.pop(0) if parts[0].startswith("@") else None
            if marker == "@cert-authority" or not known_hosts.host_matches(parts[0], name):
                continue
            (revoked if marker else known).append(parts[2])
        return [k for k in known if k not in revoked], revoked

    for n in range(40):
        lines = []
        for _ in range(rng.randint(1, 12)):
            marker = rng.choice(["", "", "", "@revoked ", "@cert-authority "])
            kind, b64 = rng.choice(keys)
            lines.append(f"{marker}{field()} {kind} {b64}")
        path = tmp_path / f"known_hosts{n}"
        path.write_text("\n".join(lines) + "\n")
        for host, port in [("web1", 22), ("WEB1", 22), ("web2.example", 22),
                           ("10.0.0.5", 2222), ("10.0.0.5", 22), ("lb", 22)]:  # fmt: skip
            got = known_hosts.load(path, host, port)
            want = reference(path, host, port)
            assert [k.get_base64() for k in got.known] == want[0], (lines, host, port)
            assert [k.get_base64() for k in got.revoked] == want[1], (lines, host, port)


def test_known_hosts_that_is_not_utf8_is_a_host_key_error(tmp_path: Path) -> None:
    from deployer.adapters import known_hosts

    path = tmp_path / "known_hosts"
    path.write_bytes(b"host ssh-ed25519 AAAA\n\xff\xfe garbage\n")
    with pytest.raises(HostKeyError, match=":2: not UTF-8"):
        known_hosts.load(path, "host", 22)
