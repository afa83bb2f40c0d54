"""Issuing certificates at the node: safety rules, the issuance record, 処分.

The counter UI and `edgenode node issue` both go through `IssuanceService.issue`, so the same
rules hold everywhere, and both fail closed:

- 支援措置 / 仮支援措置 / 抑止 on any person the certificate shows (or on their household)
  refuses the request, whatever its level; an end date does not release it (spec 3.1).
- When the replica is stale beyond `approval_lag_seconds`, requests by a 代理人 or 第三者 need a
  supervisor's approval, which is recorded with the issuance.
- Certificate rules (omissions, 第三者 never shows 個人番号/住民票コード, 除票 only 個人票 …) and
  the glyph check live in `edgenode.certs`.

Each issuance is recorded in ``node.db`` (交付記録: when, where, who, what, which 履歴番号 was
printed, every 発行番号, requester, fee, the replica's cursor and chain) and in the audit log,
durably, before the PDF is handed out.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
import secrets
import sqlite3
import tomllib
import zoneinfo
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgenode import outbox, registry
from edgenode.audit import AuditLog
from edgenode.certs.config import CertConfig
from edgenode.certs.errors import RuleViolation
from edgenode.certs.issue import draft, prepare
from edgenode.certs.model import CertRequest, Document, Requester, Scope
from edgenode.certs.rules import select_persons
from edgenode.certs.serial import SerialCounter
from edgenode.durable import open_db, parse_time, utcnow, write_tx
from edgenode.errors import ConfigError
from edgenode.settings import Settings
from edgenode.sync.replica import Replica
from edgenode.sync.state import NodeState
from edgenode.sync.syncer import node_status

JST = zoneinfo.ZoneInfo("Asia/Tokyo")
#: 届出 the counter takes in offline (intake only; the registry changes at the datacenter).
INTAKE_TYPES = ("転居届", "転出届")
#: 転入届 has no record to start from: it is taken in on a form of its own (`intake_newcomers`).
MOVE_IN = "転入届"
#: newcomer fields a 転入届 asks for (the form's names), and the most newcomers one 届出 takes
NEWCOMER_FIELDS = ("name", "kana", "birth_date", "sex", "relationship")
MAX_NEWCOMERS = 8
CERTS_CONFIG = "certs.toml"

SQL = """
CREATE TABLE IF NOT EXISTS issuance (
  id           TEXT PRIMARY KEY,
  issued_at    TEXT NOT NULL,
  day          TEXT NOT NULL,
  clerk        TEXT NOT NULL,
  node_id      TEXT NOT NULL,
  kind         TEXT NOT NULL,
  scope        TEXT NOT NULL,
  layout       TEXT NOT NULL,
  requester    TEXT NOT NULL,
  subjects     TEXT NOT NULL,
  omissions    TEXT NOT NULL,
  copies       INTEGER NOT NULL,
  pages        INTEGER NOT NULL,
  serials      TEXT NOT NULL,
  fee          INTEGER NOT NULL,
  purpose      TEXT NOT NULL,
  id_document  TEXT NOT NULL,
  approval     TEXT,
  replica      TEXT NOT NULL,
  voided_at    TEXT,
  void_reason  TEXT,
  voided_by    TEXT
);
CREATE INDEX IF NOT EXISTS issuance_day ON issuance (day);
"""


@dataclass(frozen=True)
class Approval:
    """A supervisor's approval of a request the rules hold back (verified by the caller)."""

    supervisor: str
    reason: str


@dataclass(frozen=True)
class Issued:
    """What `issue` returns: the record id, the PDF, every 発行番号, the fee."""

    id: str
    pdf: bytes
    serials: list[str]
    fee: int
    pages: int


def _stamp(path: Path) -> str:
    # the content, not the mtime: two edits within one timestamp tick must not look alike
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return ""


def load_cert_config(data: Path, settings: Settings) -> CertConfig:
    """The node's certificate settings from DATA/certs.toml (terminal name = node id)."""
    path = data / CERTS_CONFIG
    if not path.exists():
        raise ConfigError(
            f"証明書の設定ファイル {CERTS_CONFIG} がありません: 町長名などを設定してください "
            f"(no {CERTS_CONFIG} in the node's data folder)"
        )
    try:
        values = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{CERTS_CONFIG} is not valid TOML: {exc}") from exc
    values.setdefault("terminal_name", settings["node_id"])
    values.setdefault("serial_db", str(data / "serial.db"))
    return CertConfig.from_mapping(values)


_COLUMNS = (
    "id",
    "issued_at",
    "day",
    "clerk",
    "node_id",
    "kind",
    "scope",
    "layout",
    "requester",
    "subjects",
    "omissions",
    "copies",
    "pages",
    "serials",
    "fee",
    "purpose",
    "id_document",
    "approval",
    "replica",
)


def _column(value: Any) -> Any:
    """Lists and objects are stored as JSON text; scalars as they are."""
    return json.dumps(value, ensure_ascii=False) if isinstance(value, (list, dict)) else value


class IssuanceService:
    """Everything a counter does with certificates, over one node's data folder."""

    def __init__(self, data: Path, settings: Settings, config: CertConfig | None = None) -> None:
        self.data = data
        self.settings = settings
        self.replica = Replica(data / "replica")
        self.audit = AuditLog(data / "node.db", settings["node_id"])
        self._config = config
        self._config_stamp: str | None = None if config is not None else ""
        self._renderer: Any = None

    @property
    def config(self) -> CertConfig:
        """Certificate settings (loaded on first use, so search works without them).

        An edited certs.toml is read again; if the edit does not validate, the last good
        settings stay in use (the node's watcher logs why).
        """
        stamp = _stamp(self.data / CERTS_CONFIG)
        if self._config is None or (self._config_stamp is not None and stamp != self._config_stamp):
            try:
                self._config = load_cert_config(self.data, self.settings)
            except ConfigError:
                if self._config is None:
                    raise
            self._config_stamp = stamp
        return self._config

    def _db(self) -> sqlite3.Connection:
        return open_db(self.data / "node.db", SQL, outbox.SQL)

    # ------------------------------------------------------------ reading the replica

    def household_of(self, atena_no: str) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
        """(the person, every current record of their household, restrictions on any of them)."""
        with self.replica.session() as conn:
            conn.execute("BEGIN")
            person = registry.current_record(conn, atena_no)
            if person is None:
                raise RuleViolation(f"宛名番号 {atena_no} の住民記録がありません。")
            hh = person["household_no"]
            atenas = [r[0] for r in conn.execute("SELECT atena_no FROM person WHERE household_no = ?", (hh,))]
            members = [rec for a in atenas if (rec := registry.current_record(conn, a)) is not None]
            marks = ",".join("?" * len(atenas))
            rows = conn.execute(
                f"SELECT record FROM restriction WHERE household_no = ? OR atena_no IN ({marks})", (hh, *atenas)
            ).fetchall()
            conn.execute("COMMIT")
        return person, members, [json.loads(r[0]) for r in rows]

    def staleness(self) -> float | None:
        """Seconds the data may be behind the datacenter (None if unknown: treat as stale)."""
        st = node_status(self.data, self.settings)
        if st["mode"] == "online" and st["lag_seconds"] is not None:
            return float(st["lag_seconds"])
        last = NodeState(self.data / "node.db").all().get("last_contact_at")
        if not last:
            return None
        return (_dt.datetime.now(_dt.UTC) - parse_time(last)).total_seconds()

    # ------------------------------------------------------------ rules

    @staticmethod
    def blocking_restrictions(persons: Sequence[Mapping[str, Any]], restrictions: list[dict[str, Any]]) -> list[str]:
        """Japanese reasons for every 支援措置/抑止 that stops issuing to these persons."""
        atenas = {p["atena_no"] for p in persons}
        households = {p["household_no"] for p in persons}
        today = _dt.datetime.now(JST).date().isoformat()
        reasons = []
        for r in restrictions:
            if "証明書交付" not in r.get("processes", []):
                continue
            if r.get("start_date") and r["start_date"] > today:
                continue  # not yet in force
            if r.get("atena_no") in atenas or r.get("household_no") in households:
                who = r.get("atena_no") or f"世帯 {r.get('household_no')}"
                reasons.append(f"{r['kind']}（{who}）: 証明書の交付が制限されています。")
        return reasons

    def needs_approval(self, request: CertRequest) -> str | None:
        """Why a supervisor must approve this request, or None."""
        if request.requester not in (Requester.PROXY, Requester.THIRD_PARTY):
            return None
        stale = self.staleness()
        limit = float(self.settings["approval_lag_seconds"])
        if stale is None or stale > limit:
            shown = "不明" if stale is None else f"{stale / 60:.0f}分"
            return (
                f"データの遅れ（{shown}）が基準（{limit / 60:.0f}分）を超えているため、"
                f"{request.requester.value}からの請求には監督者の承認が必要です。"
            )
        return None

    def _check(
        self, atena_no: str, request: CertRequest, approval: Approval | None, *, preview: bool = False
    ) -> tuple[CertRequest, list[dict[str, Any]]]:
        _, members, restrictions = self.household_of(atena_no)
        if not request.persons and request.scope is Scope.PART:
            request = dataclasses.replace(request, persons=(atena_no,))
        persons = select_persons(members, request)
        blocked = self.blocking_restrictions(persons, restrictions)
        if blocked:
            raise RuleViolation("交付できません。" + " ".join(blocked))
        why = self.needs_approval(request)
        if why and approval is None and not preview:
            raise RuleViolation(why)
        return request, members

    # ------------------------------------------------------------ preview and issue

    def preview(self, atena_no: str, request: CertRequest) -> tuple[Document, str]:
        """The document and its HTML as it would print, without consuming any 発行番号."""
        request, members = self._check(atena_no, request, None, preview=True)
        doc = draft(members, request, self.config, _dt.datetime.now(JST))
        return doc, self.renderer.html(doc)

    def warm_up(self) -> None:
        """Load fonts and styles now, so the first certificate of the day is not the slow one."""
        try:
            self.renderer.warm_up()
        except ConfigError:
            pass  # certificate settings missing: issuing will say so

    @property
    def renderer(self) -> Any:
        """The certificate renderer (kept warm: font parsing is the slow part)."""
        config = self.config
        if self._renderer is None or self._renderer.config is not config:
            from edgenode.certs.render import Renderer

            self._renderer = Renderer(config)
        return self._renderer

    def issue(self, atena_no: str, request: CertRequest, clerk: str, approval: Approval | None = None) -> Issued:
        """Check, number, render and record one request; the PDF comes back only once recorded."""
        request, members = self._check(atena_no, request, approval)
        with self.replica.session() as conn:
            meta = Replica.meta(conn)
        issued_at = _dt.datetime.now(JST)
        with SerialCounter(self.config.serial_db or self.data / "serial.db") as counter:
            doc = prepare(members, request, self.config, issued_at, counter=counter)
        pdf = self.renderer.pdf(doc)
        serials = [page.serial for _, page in doc.pages()]
        printed = {p.atena_no for _, page in doc.pages() for p in page.persons}
        subjects = [
            {"atena_no": m["atena_no"], "rireki_no": m["rireki_no"], "household_no": m["household_no"]}
            for m in members
            if m["atena_no"] in printed
        ]
        record_id = secrets.token_hex(16)
        replica = self._replica_base(meta)
        record: dict[str, Any] = {
            "id": record_id,
            "issued_at": utcnow(),
            "day": issued_at.date().isoformat(),
            "clerk": clerk,
            "node_id": self.settings["node_id"],
            "kind": doc.kind.value,
            "scope": doc.scope.value,
            "layout": doc.layout.value,
            "requester": doc.requester.value,
            "subjects": subjects,
            "omissions": sorted(o.value for o in (request.omissions or ())),
            "copies": request.copies,
            "pages": doc.page_count,
            "serials": serials,
            "fee": doc.fee,
            "purpose": request.purpose,
            "id_document": request.id_document,
            "approval": approval.__dict__ if approval else None,
            "replica": replica,
        }
        conn = self._db()
        try:
            with write_tx(conn):
                conn.execute(
                    f"INSERT INTO issuance ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})",
                    [_column(record[c]) for c in _COLUMNS],
                )
                # the 交付記録 for the datacenter, in the same transaction as the local record
                outbox.append_in(conn, self.settings["node_id"], "issuance", clerk, record, replica)
        finally:
            conn.close()
        self.audit.append(
            "issue",
            clerk,
            {
                "id": record_id,
                "kind": doc.kind.value,
                "subjects": [s["atena_no"] for s in subjects],
                "requester": doc.requester.value,
                "serials": serials,
                "approved_by": approval.supervisor if approval else None,
            },
        )
        return Issued(record_id, pdf, serials, doc.fee, doc.page_count)

    # ------------------------------------------------------------ the day's list and 処分

    def day(self, day: _dt.date | None = None) -> tuple[list[dict[str, Any]], dict[str, int]]:
        """The issuances of one day (JST; today by default) and totals (件数, 通数, 手数料)."""
        day = day or _dt.datetime.now(JST).date()
        conn = self._db()
        try:
            conn.row_factory = sqlite3.Row
            rows = [
                dict(r)
                for r in conn.execute("SELECT * FROM issuance WHERE day = ? ORDER BY issued_at", (day.isoformat(),))
            ]
        finally:
            conn.close()
        live = [r for r in rows if not r["voided_at"]]
        totals = {
            "count": len(live),
            "copies": sum(r["copies"] for r in live),
            "fee": sum(r["fee"] for r in live),
            "voided": len(rows) - len(live),
        }
        return rows, totals

    def day_intakes(self, day: _dt.date | None = None) -> list[dict[str, Any]]:
        """The 届出 taken in on one day (JST; today by default) with where each stands at the hub."""
        day = day or _dt.datetime.now(JST).date()
        start = _dt.datetime.combine(day, _dt.time(), JST).astimezone(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        end = _dt.datetime.combine(day + _dt.timedelta(days=1), _dt.time(), JST).astimezone(_dt.UTC)
        conn = self._db()
        try:
            rows = conn.execute(
                "SELECT created_at, state, reason, item FROM outbox WHERE kind = 'intake'"
                " AND created_at >= ? AND created_at < ? ORDER BY seq",
                (start, end.strftime("%Y-%m-%dT%H:%M:%S.%fZ")),
            ).fetchall()
        finally:
            conn.close()
        out = []
        for created_at, state, reason, raw in rows:
            payload = json.loads(raw)["payload"]
            out.append(
                {
                    "created_at": created_at,
                    "state": state,
                    "reason": reason,
                    "id": payload.get("id", ""),
                    "type": payload.get("type", ""),
                    "clerk": payload.get("clerk", ""),
                    "people": len(payload.get("persons", [])) + len(payload.get("newcomers", [])),
                    "new_address": payload.get("new_address", ""),
                }
            )
        return out

    def intake(self, atena_no: str, kind: str, persons: list[str], fields: dict[str, str], clerk: str) -> str:
        """Accept a 転居届/転出届 at the counter as intake only; queue it for the datacenter.

        The replica is never changed from it: a person keys it into the registry system, and
        the hub opens a conflict if anyone named changed since the version the clerk saw here.
        """
        if kind not in INTAKE_TYPES:
            raise RuleViolation(f"受け付けられる届出は {'、'.join(INTAKE_TYPES)} です。")
        _, members, restrictions = self.household_of(atena_no)
        chosen = [m for m in members if m["atena_no"] in set(persons)]
        if not chosen:
            raise RuleViolation("届出の対象となる方を選んでください。")
        if self.blocking_restrictions(chosen, [r for r in restrictions if "異動入力" in r.get("processes", [])]):
            raise RuleViolation("この方には異動入力の制限があります。データセンターで受け付けてください。")
        for key in ("date", "new_address", "notifier"):
            value = fields.get(key, "").strip()
            if not value or len(value) > 200:
                raise RuleViolation("異動日・新しい住所（転出先）・届出人を 200 字以内で入力してください。")
        with self.replica.session() as conn:
            meta = Replica.meta(conn)
        intake_id = secrets.token_hex(16)
        payload = {
            "id": intake_id,
            "type": kind,
            "received_at": utcnow(),
            "clerk": clerk,
            "node_id": self.settings["node_id"],
            "persons": [{"atena_no": m["atena_no"], "rireki_no": m["rireki_no"]} for m in chosen],
            "date": fields["date"].strip(),
            "new_address": fields["new_address"].strip(),
            "notifier": fields["notifier"].strip(),
            "note": fields.get("note", "").strip()[:500],
            "newcomers": [],  # only a 転入届 brings people in
        }
        return self._queue_intake(payload, meta, clerk)

    def intake_newcomers(
        self, join: str | None, newcomers: list[dict[str, str]], fields: dict[str, str], clerk: str
    ) -> str:
        """Accept a 転入届 as intake only: people moving in, alone or into an existing household.

        What was typed is kept exactly as typed (氏名 byte-exact); the birth date must read as one
        day (和暦 or 西暦) and is also stored as ISO for the datacenter's duplicate check. When the
        newcomers join a household, its members' 履歴番号 as seen here are the base version.
        """
        from edgenode.search import QueryError
        from edgenode.search.birth import parse_birth

        people = [n for n in newcomers if any(str(n.get(k, "")).strip() for k in NEWCOMER_FIELDS)]
        if not people:
            raise RuleViolation("転入する方を1人以上入力してください。")
        if len(people) > MAX_NEWCOMERS:
            raise RuleViolation(f"一度に受け付けられるのは {MAX_NEWCOMERS} 人までです。")
        clean: list[dict[str, str]] = []
        for i, n in enumerate(people, 1):
            name, birth = str(n.get("name", "")).strip(), str(n.get("birth_date", "")).strip()
            if not name or len(name) > 100:
                raise RuleViolation(f"{i}人目：氏名を 100 字以内で入力してください。")
            try:
                born = parse_birth(birth)
            except QueryError as exc:
                raise RuleViolation(f"{i}人目：生年月日が読めません（{exc}）。例：平成2年4月1日") from exc
            if not born.is_day:
                raise RuleViolation(f"{i}人目：生年月日は年月日まで入力してください。")
            sex = str(n.get("sex", "")).strip()
            if sex not in ("男", "女"):
                raise RuleViolation(f"{i}人目：性別を選んでください。")
            kana, rel = str(n.get("kana", "")).strip(), str(n.get("relationship", "")).strip()
            if len(kana) > 100 or len(rel) > 20:
                raise RuleViolation(f"{i}人目：フリガナは 100 字、続柄は 20 字以内で入力してください。")
            clean.append(
                {
                    "name": name,
                    "kana": kana,
                    "birth_date": birth,
                    "birth_date_iso": born.first.isoformat(),
                    "sex": sex,
                    "relationship": rel,
                }
            )
        for key in ("date", "prior_address", "new_address", "notifier"):
            value = fields.get(key, "").strip()
            if not value or len(value) > 200:
                raise RuleViolation("異動日・前住所・新しい住所・届出人を 200 字以内で入力してください。")
        members: list[dict[str, Any]] = []
        if join:
            _, members, restrictions = self.household_of(join)
            if self.blocking_restrictions(members, [r for r in restrictions if "異動入力" in r.get("processes", [])]):
                raise RuleViolation("加わる世帯に異動入力の制限があります。データセンターで受け付けてください。")
            members = [m for m in members if m["status"] == "住民"]
        with self.replica.session() as conn:
            meta = Replica.meta(conn)
        payload = {
            "id": secrets.token_hex(16),
            "type": MOVE_IN,
            "received_at": utcnow(),
            "clerk": clerk,
            "node_id": self.settings["node_id"],
            "persons": [{"atena_no": m["atena_no"], "rireki_no": m["rireki_no"]} for m in members],
            "household_no": members[0]["household_no"] if members else None,
            "newcomers": clean,
            "date": fields["date"].strip(),
            "prior_address": fields["prior_address"].strip(),
            "new_address": fields["new_address"].strip(),
            "notifier": fields["notifier"].strip(),
            "note": fields.get("note", "").strip()[:500],
        }
        return self._queue_intake(payload, meta, clerk)

    def _replica_base(self, meta: dict[str, str] | None = None) -> dict[str, Any]:
        """Where the replica stood (cursor, hub-signed chain hash, as-of time) for a queue item."""
        if meta is None:
            if not self.replica.exists():
                return {}
            with self.replica.session() as conn:
                meta = Replica.meta(conn)
        return {
            "cursor": int(meta["cursor"]),
            "chain": meta["chain"],
            "as_of": meta.get("last_tx_at") or meta.get("bootstrapped_at"),
        }

    def _queue_intake(self, payload: dict[str, Any], meta: dict[str, str], clerk: str) -> str:
        base = self._replica_base(meta)
        conn = self._db()
        try:
            with write_tx(conn):
                outbox.append_in(conn, self.settings["node_id"], "intake", clerk, payload, base)
        finally:
            conn.close()
        detail = {
            "id": payload["id"],
            "type": payload["type"],
            "persons": [p["atena_no"] for p in payload["persons"]],
            "newcomers": len(payload["newcomers"]),
        }
        self.audit.append("intake", clerk, detail)
        return str(payload["id"])

    def counts(self) -> tuple[int, int]:
        """(issuances ever recorded here, of which voided): for metrics."""
        conn = self._db()
        try:
            total, voided = conn.execute("SELECT count(*), count(voided_at) FROM issuance").fetchone()
        finally:
            conn.close()
        return int(total), int(voided)

    def void(self, issuance_id: str, reason: str, user: str) -> None:
        """処分: mark a spoiled issuance (its 発行番号 are never reused); audited."""
        reason = reason.strip()
        if not reason or len(reason) > 200:
            raise RuleViolation("処分の理由を 200 字以内で入力してください。")
        conn = self._db()
        try:
            conn.execute("BEGIN IMMEDIATE")
            row = conn.execute("SELECT voided_at, serials FROM issuance WHERE id = ?", (issuance_id,)).fetchone()
            if row is None:
                conn.execute("ROLLBACK")
                raise RuleViolation("その交付記録はありません。")
            if row[0]:
                conn.execute("ROLLBACK")
                raise RuleViolation("この交付はすでに処分済みです。")
            conn.execute(
                "UPDATE issuance SET voided_at = ?, void_reason = ?, voided_by = ? WHERE id = ?",
                (utcnow(), reason, user, issuance_id),
            )
            outbox.append_in(
                conn,
                self.settings["node_id"],
                "void",
                user,
                {"id": issuance_id, "reason": reason, "serials": json.loads(row[1])},
                self._replica_base(),
            )
            conn.execute("COMMIT")
        finally:
            conn.close()
        self.audit.append("void", user, {"id": issuance_id, "serials": json.loads(row[1]), "reason": reason})
