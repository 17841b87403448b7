"""Evidence records: what happened, sealed into a hash chain. Pure: no I/O.

Each record holds ``seq``, ``prev_hash`` and ``hash`` = SHA-256 of the canonical JSON (sorted
keys, no spaces, UTF-8) of everything else in it; the first ``prev_hash`` is 64 zeros. Any
edit, deletion, insertion or reordering breaks the chain at a nameable record, and a
checkpoint (``seq:hash`` kept elsewhere) exposes a truncated or rewritten tail.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64
CHAIN_KEYS = ("seq", "prev_hash", "hash")
KINDS = ("release", "rollback", "drill", "recover", "lint", "unlock")
OUTCOMES = ("succeeded", "aborted", "rolled_back", "failed", "interrupted")
REDACTED = "***"
GATE_STATS = ("target", "probes", "errors", "error_rate", "p50_ms", "p95_ms", "p99_ms", "window_s")


def canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


#: not part of a record's hash: the hash itself, and the signed envelope made from it
UNHASHED = ("hash", "envelope")

#: makes a sealed record's signed envelope (deployer.evidence.signing.Signer.envelope), or
#: None when it could not (the record is stored unsigned)
Sign = Callable[[dict[str, Any]], dict[str, Any] | None]


def record_hash(record: dict[str, Any]) -> str:
    return hashlib.sha256(
        canonical({k: v for k, v in record.items() if k not in UNHASHED})
    ).hexdigest()


def seal(
    record: dict[str, Any], seq: int, prev_hash: str, sign: Sign | None = None
) -> dict[str, Any]:
    """The record with its place in the chain (and, with ``sign``, its signed envelope)."""
    body = {k: v for k, v in record.items() if k not in (*CHAIN_KEYS, "envelope")}
    body["seq"], body["prev_hash"] = seq, prev_hash
    body["hash"] = record_hash(body)
    envelope = sign(body) if sign is not None else None
    if envelope is not None:
        body["envelope"] = envelope
    return body


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def scrub(obj: Any, secrets: Iterable[str]) -> Any:
    """Replace every secret value inside any string of ``obj`` by ``***`` (in every form
    it may have been printed in: see :mod:`deployer.redaction`)."""
    from deployer.redaction import Redactor

    return Redactor(secrets).obj(obj)


def time_to_restore(op: dict[str, Any]) -> float | None:
    """Seconds from the failing verdict to traffic on the old color (automatic rollback), or
    from the start of a rollback to its switch (a rollback or drill)."""
    if op.get("restore_seconds") is not None:
        return float(op["restore_seconds"])
    if op.get("kind") in ("rollback", "drill") and op.get("outcome") == "succeeded":
        elapsed = 0.0
        for step in op.get("steps", []):
            elapsed += float(step.get("seconds", 0))
            if step.get("name") in ("switch", "promote", "rollback") and step.get("status") == "ok":
                return round(elapsed, 3)
    return None


def build(
    op: dict[str, Any],
    *,
    playbook_digest: str | None,
    commit: dict[str, Any] | None,
    actor: dict[str, str],
    ci: dict[str, str] | None,
    secrets: Sequence[str] = (),
    playbook: str | None = None,
) -> dict[str, Any]:
    """An unsealed record from an operation's result (``OperationResult.to_dict()``)."""
    gates = op.get("gates") or []
    post = next((g for g in gates if g.get("name") == "post_switch"), None)
    traffic = None
    if post is not None:
        traffic = {k: post.get(k) for k in GATE_STATS}
    migrations = op.get("migrations")
    record = {
        "id": uuid.uuid4().hex,
        "operation_id": op.get("id"),
        "kind": op["kind"],
        "app": op.get("app"),
        "environment": op.get("environment"),
        "version_from": op.get("from_version"),
        "version_to": op.get("version"),
        "color_from": op.get("from_color"),
        "color_to": op.get("to_color"),
        "commit": commit,
        "actor": actor,
        "ci": ci,
        "started_at": iso(op.get("started_at")),
        "ended_at": iso(op.get("ended_at")),
        "duration_s": op.get("duration_s"),
        "steps": op.get("steps") or [],
        "gates": gates,
        "traffic": traffic,
        "migrations": migrations,
        "lint": (migrations or {}).get("lint"),
        "outcome": op.get("outcome"),
        "exit_code": op.get("exit_code"),
        "message": op.get("message", ""),
        "warnings": op.get("warnings") or [],
        "time_to_restore_s": time_to_restore(op),
        "drill": op.get("drill"),
        "target": op.get("target"),
        "playbook": playbook,
        "playbook_digest": playbook_digest,
    }
    scrubbed: dict[str, Any] = scrub(record, secrets)
    return scrubbed


@dataclass(frozen=True)
class Verdict:
    ok: bool
    count: int
    head_seq: int
    head_hash: str
    problem: str = ""
    bad_seq: int | None = None


def verify(records: Sequence[dict[str, Any]], checkpoint: tuple[int, str] | None = None) -> Verdict:
    """Check the chain in storage order; name the first record that breaks it."""
    prev_hash, expected_seq = GENESIS, 1
    for rec in records:
        seq = rec.get("seq")
        rid = rec.get("id", "?")
        if rec.get("damaged"):
            return Verdict(
                False,
                len(records),
                expected_seq - 1,
                prev_hash,
                f"record {seq if seq is not None else expected_seq} is damaged: "
                f"{rec['damaged']} (edited by hand or corrupted)",
                seq if isinstance(seq, int) else expected_seq,
            )
        if seq != expected_seq:
            what = (
                "missing (deleted?)"
                if isinstance(seq, int) and seq > expected_seq
                else "out of place (inserted or reordered?)"
            )
            return Verdict(
                False,
                len(records),
                expected_seq - 1,
                prev_hash,
                f"record {expected_seq} is {what}: found seq {seq} (id {rid})",
                seq,
            )
        if rec.get("prev_hash") != prev_hash:
            return Verdict(
                False,
                len(records),
                seq - 1,
                prev_hash,
                f"record {seq} (id {rid}) does not follow record {seq - 1}: "
                "prev_hash differs (inserted, reordered or rewritten)",
                seq,
            )
        if record_hash(rec) != rec.get("hash"):
            return Verdict(
                False,
                len(records),
                seq - 1,
                prev_hash,
                f"record {seq} (id {rid}) was edited: its hash does not match its content",
                seq,
            )
        prev_hash, expected_seq = rec["hash"], seq + 1
    head = expected_seq - 1
    if checkpoint is not None:
        cp_seq, cp_hash = checkpoint
        if cp_seq == 0:  # the checkpoint of an empty store: any chain extends it
            if cp_hash != GENESIS:
                return Verdict(
                    False, len(records), head, prev_hash, "checkpoint 0 must be 0:" + GENESIS, 0
                )
            return Verdict(True, len(records), head, prev_hash)
        if head < cp_seq:
            return Verdict(
                False,
                len(records),
                head,
                prev_hash,
                f"truncated: the checkpoint is at record {cp_seq}, the chain ends at {head}",
                head + 1,
            )
        at = records[cp_seq - 1] if cp_seq >= 1 else None
        if at is None or at.get("hash") != cp_hash:
            return Verdict(
                False,
                len(records),
                head,
                prev_hash,
                f"rewritten: record {cp_seq} no longer has the checkpoint's hash",
                cp_seq,
            )
    return Verdict(True, len(records), head, prev_hash)


def parse_checkpoint(text: str) -> tuple[int, str]:
    seq, sep, digest = text.strip().partition(":")
    if not sep or not seq.isdigit() or len(digest) != 64:
        from deployer.errors import InputError

        raise InputError(
            f"checkpoint {text!r}: expected SEQ:SHA256 (from `deployer evidence checkpoint`)"
        )
    return int(seq), digest
