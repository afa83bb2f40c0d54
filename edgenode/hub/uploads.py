"""Receiving a node's queued writes: exactly once in effect, checked against the registry.

Each item is handled in its own write transaction that commits the ledger row (node, key,
sequence, hash, verdict) together with the item's effect, so a crash before the answer leaves
either both or neither, and a re-sent item is recognised by its key and answered "duplicate".
A bad item is rejected alone, with a reason, and never blocks the items behind it.

Items of one node are hash-chained (``hash = sha256(prev || canonical(item without hash))``);
the hub checks every link against the item it holds at the previous sequence, rejected ones
included, so that removal or alteration of an item in the node's queue is detectable.

Reconciliation: an uploaded 交付記録 names the 履歴番号 it printed and the replica cursor it was
printed from. Every change-log transaction after that cursor committed before the certificate
was issued, and touching a printed person (or their household's 支援措置/抑止), is a finding.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from typing import Any

from edgenode.durable import utcnow, write_tx
from edgenode.hub.backend import INTEGRITY_ERRORS
from edgenode.hub.store import TenantDB
from edgenode.sqlconn import DB
from edgenode.wire import canonical_bytes

SQL = """
CREATE TABLE IF NOT EXISTS upload_ledger (
  node_id     TEXT NOT NULL,
  key         TEXT NOT NULL,
  seq         INTEGER NOT NULL,
  kind        TEXT NOT NULL,
  hash        TEXT NOT NULL,
  status      TEXT NOT NULL,
  reason      TEXT,
  received_at TEXT NOT NULL,
  item        TEXT NOT NULL,
  PRIMARY KEY (node_id, key)
);
CREATE UNIQUE INDEX IF NOT EXISTS upload_ledger_seq ON upload_ledger (node_id, seq);
CREATE TABLE IF NOT EXISTS node_audit (
  node_id TEXT NOT NULL,
  seq     INTEGER NOT NULL,
  at      TEXT NOT NULL,
  kind    TEXT NOT NULL,
  actor   TEXT,
  detail  TEXT NOT NULL,
  hash    TEXT NOT NULL,
  PRIMARY KEY (node_id, seq)
);
CREATE TABLE IF NOT EXISTS intake (
  id          TEXT PRIMARY KEY,
  node_id     TEXT NOT NULL,
  type        TEXT NOT NULL,
  received_at TEXT NOT NULL,
  record      TEXT NOT NULL,
  status      TEXT NOT NULL,
  conflicts   TEXT NOT NULL,
  note        TEXT,
  resolved_by TEXT,
  resolved_at TEXT
);
CREATE TABLE IF NOT EXISTS notice_sent (
  issuance_id TEXT PRIMARY KEY,
  sent_at     TEXT NOT NULL,
  sent_by     TEXT NOT NULL,
  note        TEXT
);
CREATE TABLE IF NOT EXISTS issuance_record (
  id          TEXT PRIMARY KEY,
  node_id     TEXT NOT NULL,
  issued_at   TEXT NOT NULL,
  day         TEXT NOT NULL,
  record      TEXT NOT NULL,
  findings    TEXT NOT NULL,
  voided_at   TEXT,
  void_reason TEXT,
  received_at TEXT NOT NULL
);
"""
KINDS = ("issuance", "void", "audit", "intake")
INTAKE_TYPES = ("転居届", "転出届", "転入届")
#: the newest queue schema this hub understands (see `edgenode.outbox` for the history)
SCHEMA = 2
GENESIS = "0" * 64
MAX_ITEMS = 500


def item_hash(item: dict[str, Any]) -> str:
    """The chain hash of an item: over its predecessor's hash and its own canonical form."""
    body = {k: v for k, v in item.items() if k != "hash"}
    return hashlib.sha256(bytes.fromhex(str(item.get("prev", GENESIS))) + canonical_bytes(body)).hexdigest()


class Rejected(Exception):
    """An item the hub refuses; the message is the reason sent back to the node."""


class Conflict(Exception):
    """An item taken in but opened as a conflict for a person to resolve (its effect stays)."""


def _check_shape(item: Any, node_id: str) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise Rejected("item is not an object")
    for k, t in (
        ("key", str),
        ("seq", int),
        ("kind", str),
        ("created_at", str),
        ("prev", str),
        ("hash", str),
        ("schema", int),
        ("payload", dict),
        ("base", dict),
    ):
        if not isinstance(item.get(k), t) or isinstance(item.get(k), bool):
            raise Rejected(f"item field {k} is missing or has the wrong type")
    if item.get("node_id") != node_id:
        raise Rejected("item belongs to another node")
    if len(item["prev"]) != 64 or len(item["hash"]) != 64 or item["seq"] < 1:
        raise Rejected("item hashes or sequence are malformed")
    try:
        bytes.fromhex(item["prev"])
    except ValueError as exc:
        raise Rejected("item hashes are malformed") from exc
    return item


def _check_content(item: dict[str, Any]) -> dict[str, Any]:
    """Checks whose failure is recorded in the ledger, so that the chain goes on past the item.

    Returns the item upgraded to the current schema (the ledger keeps it as it was sent).
    """
    if item_hash(item) != item["hash"]:
        raise Rejected("item hash does not match its content (altered in the queue or on the way)")
    if item["schema"] > SCHEMA:
        raise Rejected(f"item schema {item['schema']} is newer than this hub understands ({SCHEMA})")
    if item["kind"] not in KINDS:
        raise Rejected(f"unknown item kind {item['kind']!r}")
    return upgrade(item)


def _upgrade_1_to_2(item: dict[str, Any]) -> dict[str, Any]:
    # schema 2 added 転入届 (payload.newcomers) and the as-of time of an intake's base data
    if item["kind"] != "intake":
        return item
    payload, base = dict(item["payload"]), dict(item["base"])
    if payload.get("type") not in ("転居届", "転出届"):
        raise Rejected(f"schema 1 had no 届出 of type {payload.get('type')!r}; the item cannot be upgraded")
    if "newcomers" in payload:
        raise Rejected("a schema 1 item cannot carry newcomers (schema 2 field): written by a faulty node")
    payload["newcomers"] = []
    base.setdefault("as_of", None)  # not recorded under schema 1: unknown, shown as such
    return {**item, "payload": payload, "base": base}


#: schema N → N+1, applied in turn until the item is at `SCHEMA`
UPGRADES: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: _upgrade_1_to_2}


def upgrade(item: dict[str, Any]) -> dict[str, Any]:
    """Bring an item written under an older schema up to `SCHEMA`, or raise `Rejected` (quarantine).

    A node may have queued items offline across a hub upgrade; they must still drain. Items the
    upgrade cannot carry over are quarantined with a reason a person can act on, never guessed.
    """
    version = item["schema"]
    if version < 1:
        raise Rejected(f"item schema {version} is not a schema edgenode ever wrote")
    while version < SCHEMA:
        item = {**UPGRADES[version](item), "schema": version + 1}
        version += 1
    return item


class ChangeIndex:
    """Who each change-log transaction after some cursor touched, read once per upload batch.

    Reconciliation asks, for every 交付記録, which transactions after its cursor touched its
    persons; scanning the log per record would be O(records × changes).
    """

    def __init__(self, conn: DB, after: int) -> None:
        self.after = after
        self.by_person: dict[str, list[tuple[int, str, str]]] = {}
        self.by_household: dict[str, list[tuple[int, str, str]]] = {}
        for seq, at, line in conn.execute("SELECT seq, at, line FROM changelog WHERE seq > ? ORDER BY seq", (after,)):
            tx = json.loads(line)
            entry = (seq, at, str(tx.get("reason") or ""))
            for op in tx["ops"]:
                if op.get("t") == "ph":
                    self.by_person.setdefault(str(op.get("a")), []).append(entry)
                elif op.get("t") == "rs":
                    v = op.get("v") or {}
                    if v.get("atena_no"):
                        self.by_person.setdefault(str(v["atena_no"]), []).append(entry)
                    if v.get("household_no"):
                        self.by_household.setdefault(str(v["household_no"]), []).append(entry)

    def findings(self, record: dict[str, Any], issued_at: str) -> list[dict[str, Any]]:
        """Changes the datacenter had committed before the certificate was printed from older data."""
        cursor = int(record.get("replica", {}).get("cursor", 0))
        found: dict[int, dict[str, Any]] = {}
        for s in record.get("subjects", []):
            hits = [(e, s["atena_no"]) for e in self.by_person.get(s["atena_no"], [])]
            hits += [(e, f"世帯 {s['household_no']}") for e in self.by_household.get(str(s.get("household_no")), [])]
            for (seq, at, reason), who in hits:
                if seq > cursor and at < issued_at and seq not in found:
                    found[seq] = {
                        "seq": seq,
                        "committed_at": at,
                        "reason": reason,
                        "person": who,
                        "printed_rireki_no": s.get("rireki_no"),
                    }
        return [found[k] for k in sorted(found)]


def _apply(conn: DB, node_id: str, item: dict[str, Any], changes: Callable[[int], ChangeIndex]) -> None:
    payload = item["payload"]
    if item["kind"] == "issuance":
        rid = payload.get("id")
        if not isinstance(rid, str) or not rid:
            raise Rejected("issuance without an id")
        issued_at = str(payload.get("issued_at") or item["created_at"])
        cursor = int(payload.get("replica", {}).get("cursor", 0))
        findings = changes(cursor).findings(payload, issued_at)
        conn.execute(
            "INSERT INTO issuance_record (id, node_id, issued_at, day, record, findings, received_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                rid,
                node_id,
                issued_at,
                str(payload.get("day") or issued_at[:10]),
                json.dumps(payload, ensure_ascii=False),
                json.dumps(findings, ensure_ascii=False),
                utcnow(),
            ),
        )
    elif item["kind"] == "intake":
        # 届出受付: never applied to the registry here; a person keys it in the registry system.
        # If anyone it names changed at the datacenter since the version the clerk saw, it is
        # opened as a conflict for that person to resolve.
        rid, kind = payload.get("id"), payload.get("type")
        if not isinstance(rid, str) or not rid or kind not in INTAKE_TYPES:
            raise Rejected("届出受付 without an id or of an unknown type")
        conflicts = _move_in_conflicts(conn, payload) if kind == "転入届" else []
        for p in payload.get("persons", []):
            cur = conn.execute("SELECT rireki_no FROM person WHERE atena_no = ?", (p.get("atena_no"),)).fetchone()
            if cur is None or cur[0] != p.get("rireki_no"):
                conflicts.append(
                    {
                        "atena_no": p.get("atena_no"),
                        "base_rireki_no": p.get("rireki_no"),
                        "now_rireki_no": cur[0] if cur else None,
                    }
                )
        conn.execute(
            "INSERT INTO intake (id, node_id, type, received_at, record, status, conflicts)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                rid,
                node_id,
                kind,
                utcnow(),
                json.dumps(payload, ensure_ascii=False),
                "conflict" if conflicts else "received",
                json.dumps(conflicts, ensure_ascii=False),
            ),
        )
        if conflicts:
            changed = sum(1 for c in conflicts if "newcomer" not in c)
            known = len(conflicts) - changed
            parts = [f"{changed} 人の記録が受付後にデータセンターで変わっています"] if changed else []
            parts += [f"転入する方に既に記録がある可能性があります（{known} 件）"] if known else []
            raise Conflict("、".join(parts) + ": 確認が必要です")
    elif item["kind"] == "audit":
        # the node's own audit chain, anchored here: each entry must link to the one before it
        seq, prev = payload.get("seq"), payload.get("prev")
        if not isinstance(seq, int) or not isinstance(prev, str) or not isinstance(payload.get("hash"), str):
            raise Rejected("audit entry is malformed")
        before = conn.execute(
            "SELECT hash FROM node_audit WHERE node_id = ? AND seq = ?", (node_id, seq - 1)
        ).fetchone()
        if seq > 1 and (before is None or before[0] != prev):
            raise Rejected(f"audit entry {seq} does not follow entry {seq - 1} held by the hub")
        conn.execute(
            "INSERT INTO node_audit (node_id, seq, at, kind, actor, detail, hash) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                node_id,
                seq,
                str(payload.get("at")),
                str(payload.get("kind")),
                payload.get("actor"),
                json.dumps(payload.get("detail"), ensure_ascii=False),
                payload["hash"],
            ),
        )
    else:  # void
        row = conn.execute(
            "SELECT voided_at FROM issuance_record WHERE id = ? AND node_id = ?", (payload.get("id"), node_id)
        ).fetchone()
        if row is None:
            raise Rejected("処分 of an issuance the hub has not received")
        conn.execute(
            "UPDATE issuance_record SET voided_at = ?, void_reason = ? WHERE id = ?",
            (item["created_at"], str(payload.get("reason") or ""), payload.get("id")),
        )


def _move_in_conflicts(conn: DB, payload: dict[str, Any]) -> list[dict[str, Any]]:
    """A 転入届's newcomers who may already be in the registry (keyed at the datacenter already,
    or a 再転入 of someone with a 除票): same birth date and the same 氏名 or フリガナ."""
    from edgenode.search.kana import fold_kana

    newcomers = payload.get("newcomers")
    if not isinstance(newcomers, list) or not newcomers:
        raise Rejected("転入届 without newcomers")
    found = []
    for i, n in enumerate(newcomers):
        if not isinstance(n, dict) or not all(isinstance(n.get(k), str) for k in ("name", "kana", "birth_date_iso")):
            raise Rejected(f"転入届 newcomer {i + 1} is malformed")
        kana = fold_kana(n["kana"]) if n["kana"] else None
        rows = conn.execute(
            "SELECT atena_no, status, name, kana FROM person WHERE birth_date_iso = ?", (n["birth_date_iso"],)
        ).fetchall()
        for atena_no, status, name, their_kana in rows:
            if name == n["name"] or (kana and their_kana and fold_kana(their_kana) == kana):
                found.append(
                    {
                        "newcomer": i + 1,
                        "atena_no": atena_no,
                        "status": status,
                        "reason": "同じ生年月日で氏名またはフリガナが同じ記録があります（入力済み・再転入の可能性）",
                    }
                )
    return found


def receive(tenant: TenantDB, node_id: str, items: list[Any]) -> list[dict[str, Any]]:
    """Take a batch of items from one node; one verdict per item, in order."""
    conn = tenant.connect()
    index: ChangeIndex | None = None

    def changes(cursor: int) -> ChangeIndex:
        nonlocal index
        if index is None or index.after > cursor:
            index = ChangeIndex(conn, cursor)
        return index

    try:
        conn.executescript(SQL)
        # One transaction (one fsync) for the batch, a savepoint per item: each item's ledger
        # row commits with its effect, a failing item is undone alone, and a crash before the
        # COMMIT loses the whole batch, which the node then sends again.
        with write_tx(conn):
            return [_receive_one(conn, node_id, raw, changes) for raw in items[:MAX_ITEMS]]
    finally:
        conn.close()


def _receive_one(conn: DB, node_id: str, raw: Any, changes: Callable[[int], ChangeIndex]) -> dict[str, Any]:
    key = raw.get("key") if isinstance(raw, dict) else None
    try:
        item = _check_shape(raw, node_id)
    except Rejected as exc:
        return {"key": key, "status": "rejected", "reason": str(exc)}
    have = conn.execute(
        "SELECT hash, status, reason FROM upload_ledger WHERE node_id = ? AND key = ?", (node_id, item["key"])
    ).fetchone()
    if have is not None:
        if have[0] == item["hash"]:
            return {"key": key, "status": "duplicate" if have[1] == "accepted" else have[1], "reason": have[2]}
        return {
            "key": key,
            "status": "rejected",
            "reason": "the same key was already received with a different content",
        }
    status, reason = "accepted", None
    conn.execute("SAVEPOINT item")
    try:
        prev = conn.execute(
            "SELECT hash FROM upload_ledger WHERE node_id = ? AND seq = ?", (node_id, item["seq"] - 1)
        ).fetchone()
        expected = GENESIS if item["seq"] == 1 else (prev[0] if prev else None)
        if expected is None:
            raise Rejected(f"item {item['seq'] - 1} of this node has not arrived (out of order)")
        if item["prev"] != expected:
            raise Rejected("the chain to the previous item is broken (an item was removed or altered)")
        _apply(conn, node_id, _check_content(item), changes)
    except Conflict as exc:
        status, reason = "conflict", str(exc)  # the intake row stays: it is the conflict to resolve
    except Rejected as exc:
        conn.execute("ROLLBACK TO item")
        status, reason = "rejected", str(exc)
    except INTEGRITY_ERRORS:
        conn.execute("ROLLBACK TO item")
        status, reason = "rejected", "an item with this content was already applied under another key"
    conn.execute(
        "INSERT OR IGNORE INTO upload_ledger (node_id, key, seq, kind, hash, status, reason, received_at, item)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            node_id,
            item["key"],
            item["seq"],
            item["kind"],
            item["hash"],
            status,
            reason,
            utcnow(),
            json.dumps(item, ensure_ascii=False),
        ),
    )
    conn.execute("RELEASE item")
    return {"key": key, "status": status, "reason": reason}


def _read(tenant: TenantDB, query: str, params: tuple[Any, ...] = ()) -> list[Any]:
    conn = tenant.connect()
    try:
        conn.executescript(SQL)
        return list(conn.execute(query, params).fetchall())
    finally:
        conn.close()


def issuances(tenant: TenantDB) -> list[dict[str, Any]]:
    """Every issuance record received, with its findings, oldest first."""
    rows = _read(
        tenant,
        "SELECT id, node_id, issued_at, record, findings, voided_at, void_reason, received_at, n.sent_at, n.sent_by"
        " FROM issuance_record LEFT JOIN notice_sent n ON n.issuance_id = id ORDER BY issued_at, id",
    )
    out = []
    for r in rows:
        record = json.loads(r[3])
        out.append(
            {
                "id": r[0],
                "node_id": r[1],
                "issued_at": r[2],
                "record": record,
                "findings": json.loads(r[4]),
                "voided_at": r[5],
                "void_reason": r[6],
                "received_at": r[7],
                # 本人通知: registered persons are told when a 代理人 or 第三者 received a copy
                "notify": record.get("requester") in NOTIFY_REQUESTERS and not r[5],
                "notified_at": r[8],
                "notified_by": r[9],
            }
        )
    return out


NOTIFY_REQUESTERS = ("代理人", "第三者")
CSV_COLUMNS = (
    "id",
    "node_id",
    "issued_at",
    "day",
    "kind",
    "scope",
    "layout",
    "requester",
    "atena_nos",
    "copies",
    "pages",
    "serials",
    "fee",
    "clerk",
    "purpose",
    "id_document",
    "voided_at",
    "findings",
)


def totals(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per node and day: issuances, copies and fees (voided ones excluded), for cash reconciliation."""
    acc: dict[tuple[str, str], dict[str, Any]] = {}
    for r in rows:
        rec = r["record"]
        key = (r["node_id"], str(rec.get("day")))
        t = acc.setdefault(
            key, {"node_id": r["node_id"], "day": rec.get("day"), "count": 0, "copies": 0, "fee": 0, "voided": 0}
        )
        if r["voided_at"]:
            t["voided"] += 1
            continue
        t["count"] += 1
        t["copies"] += int(rec.get("copies") or 0)
        t["fee"] += int(rec.get("fee") or 0)
    return [acc[k] for k in sorted(acc)]


def mark_notified(tenant: TenantDB, issuance_id: str, by: str, note: str = "") -> None:
    """Record that the 本人通知 for an issuance was sent (once; a second mark is refused)."""
    conn = tenant.connect()
    try:
        conn.executescript(SQL)
        with write_tx(conn):
            row = conn.execute("SELECT record, voided_at FROM issuance_record WHERE id = ?", (issuance_id,)).fetchone()
            if row is None:
                raise Rejected(f"no issuance record {issuance_id}")
            if json.loads(row[0]).get("requester") not in NOTIFY_REQUESTERS or row[1]:
                raise Rejected(f"issuance {issuance_id} needs no 本人通知")
            if conn.execute("SELECT 1 FROM notice_sent WHERE issuance_id = ?", (issuance_id,)).fetchone():
                raise Rejected(f"the 本人通知 for {issuance_id} was already recorded as sent")
            conn.execute(
                "INSERT INTO notice_sent (issuance_id, sent_at, sent_by, note) VALUES (?, ?, ?, ?)",
                (issuance_id, utcnow(), by, note[:500]),
            )
    finally:
        conn.close()


def csv_cell(value: object) -> str:
    """A CSV cell that a spreadsheet will not run as a formula (free text typed at a counter)."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def csv_rows(rows: list[dict[str, Any]]) -> Iterator[list[str]]:
    """Issuance records as CSV rows (header first), for the registry system's own import."""
    yield list(CSV_COLUMNS)
    for r in rows:
        rec = r["record"]
        values = {
            **{k: rec.get(k) for k in CSV_COLUMNS},
            "id": r["id"],
            "node_id": r["node_id"],
            "issued_at": r["issued_at"],
            "voided_at": r["voided_at"] or "",
            "atena_nos": " ".join(s["atena_no"] for s in rec.get("subjects", [])),
            "serials": " / ".join(rec.get("serials", [])),
            "findings": len(r["findings"]),
        }
        yield [csv_cell(values[k]) for k in CSV_COLUMNS]


INTAKE_CSV_COLUMNS = (
    "id",
    "node_id",
    "type",
    "received_at",
    "status",
    "date",
    "atena_nos",
    "newcomers",
    "prior_address",
    "new_address",
    "notifier",
    "note",
    "conflicts",
    "decision_note",
    "resolved_by",
)


def intake_csv_rows(rows: list[dict[str, Any]]) -> Iterator[list[str]]:
    """届出受付 as CSV rows (header first): one line per 届出; newcomers as 氏名(生年月日) joined by "／"."""
    yield list(INTAKE_CSV_COLUMNS)
    for r in rows:
        rec = r["record"]
        values = {
            **{k: rec.get(k) for k in INTAKE_CSV_COLUMNS},
            "id": r["id"],
            "node_id": r["node_id"],
            "type": r["type"],
            "received_at": r["received_at"],
            "status": r["status"],
            "atena_nos": " ".join(str(p.get("atena_no")) for p in rec.get("persons", [])),
            "newcomers": "／".join(f"{n.get('name')}({n.get('birth_date_iso')})" for n in rec.get("newcomers", [])),
            "conflicts": len(r["conflicts"]),
            "decision_note": r["note"],
            "resolved_by": r["resolved_by"],
        }
        yield [csv_cell(values[k]) for k in INTAKE_CSV_COLUMNS]


def intakes(tenant: TenantDB) -> list[dict[str, Any]]:
    """Every 届出受付 received, with its status (received, conflict, accepted, rejected)."""
    rows = _read(
        tenant,
        "SELECT id, node_id, type, received_at, record, status, conflicts, note, resolved_by, resolved_at"
        " FROM intake ORDER BY received_at, id",
    )
    keys = (
        "id",
        "node_id",
        "type",
        "received_at",
        "record",
        "status",
        "conflicts",
        "note",
        "resolved_by",
        "resolved_at",
    )
    out = []
    for r in rows:
        d = dict(zip(keys, r, strict=True))
        d["record"], d["conflicts"] = json.loads(d["record"]), json.loads(d["conflicts"])
        out.append(d)
    return out


def resolve(tenant: TenantDB, intake_id: str, accept: bool, note: str, by: str) -> None:
    """A person at the datacenter decides an intake (after keying it in, or refusing it)."""
    if not note.strip():
        raise Rejected("a decision needs a note saying why")
    conn = tenant.connect()
    try:
        conn.executescript(SQL)
        with write_tx(conn):
            row = conn.execute("SELECT status FROM intake WHERE id = ?", (intake_id,)).fetchone()
            if row is None:
                raise Rejected(f"no 届出受付 {intake_id}")
            if row[0] in ("accepted", "rejected"):
                raise Rejected(f"届出受付 {intake_id} was already decided ({row[0]})")
            conn.execute(
                "UPDATE intake SET status = ?, note = ?, resolved_by = ?, resolved_at = ? WHERE id = ?",
                ("accepted" if accept else "rejected", note, by, utcnow(), intake_id),
            )
    finally:
        conn.close()


def ledger(tenant: TenantDB, node_id: str, after: int, limit: int) -> dict[str, Any]:
    """One node's ledger rows after sequence `after` (oldest first, at most `limit`), items included.

    A node restored from its backup asks for this to learn which of its items the hub already
    holds (and their verdicts), and which it lost: the item itself comes back so that the node can
    carry on the same sequence and hash chain.
    """
    rows = _read(
        tenant,
        "SELECT seq, key, kind, hash, status, reason, received_at, item FROM upload_ledger"
        " WHERE node_id = ? AND seq > ? ORDER BY seq LIMIT ?",
        (node_id, after, limit),
    )
    last = _read(tenant, "SELECT max(seq) FROM upload_ledger WHERE node_id = ?", (node_id,))
    keys = ("seq", "key", "kind", "hash", "status", "reason", "received_at")
    items = [{**dict(zip(keys, r[:7], strict=True)), "item": json.loads(r[7])} for r in rows]
    return {"node_id": node_id, "last_seq": int(last[0][0] or 0), "items": items}
