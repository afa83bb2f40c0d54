"""The hub takes each queued item exactly once, rejects bad ones alone, and keeps the chain."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from edgenode import outbox
from edgenode.durable import open_db, write_tx
from edgenode.hub.store import HubStore
from edgenode.hub.uploads import issuances, item_hash, receive
from tests.outbox_items import queue_issuances, queue_item
from tests.records import person

LG = "454214"


@pytest.fixture
def tenant(tmp_path: Path, hub_db: str) -> Any:
    store = HubStore(tmp_path / "hub", hub_db)
    store.create()
    return store.add_tenant(LG, "門川町")


def _queue(tmp_path: Path, n: int, node: str = "honcho-1") -> list[dict[str, Any]]:
    return queue_issuances(tmp_path / "node.db", n, node)


def _move_person_2(tenant: Any) -> None:
    """The datacenter records a 転居 of person 2 (a new 履歴番号)."""
    moved = {
        **person(2, household=2),
        "address": "宮崎県東臼杵郡門川町大字川内",
        "change_reason": "転居",
        "change_class": "修正",
    }
    conn = tenant.connect()
    conn.execute("BEGIN IMMEDIATE")
    tenant.commit_in(conn, [("転居", tenant.records_to_ops(conn, [moved]))])
    conn.execute("COMMIT")
    conn.close()


def test_each_item_takes_effect_once_however_often_it_is_sent(tenant: Any, tmp_path: Path) -> None:
    items = _queue(tmp_path, 5)
    assert [r["status"] for r in receive(tenant, "honcho-1", items)] == ["accepted"] * 5
    assert [r["status"] for r in receive(tenant, "honcho-1", items)] == ["duplicate"] * 5
    assert len(issuances(tenant)) == 5


def test_an_altered_item_is_rejected_alone_and_the_rest_proceed(tenant: Any, tmp_path: Path) -> None:
    items = _queue(tmp_path, 4)
    items[1] = copy.deepcopy(items[1])
    items[1]["payload"]["fee"] = 0  # changed after it was queued
    verdicts = receive(tenant, "honcho-1", items)
    assert [v["status"] for v in verdicts] == ["accepted", "rejected", "accepted", "accepted"]
    assert "hash" in verdicts[1]["reason"]
    assert len(issuances(tenant)) == 3


def test_a_removed_item_breaks_the_chain_but_does_not_block_the_queue(tenant: Any, tmp_path: Path) -> None:
    items = _queue(tmp_path, 4)
    assert receive(tenant, "honcho-1", items[:2])[1]["status"] == "accepted"
    forged = copy.deepcopy(items[3])
    forged["seq"] = 3  # item 3 was removed from the queue and item 4 renumbered
    forged["hash"] = item_hash(forged)
    v = receive(tenant, "honcho-1", [forged])[0]
    assert v["status"] == "rejected" and "chain" in v["reason"]


def test_items_of_another_node_or_unknown_kind_are_refused(tenant: Any, tmp_path: Path) -> None:
    items = _queue(tmp_path, 1, node="honcho-1")
    assert receive(tenant, "shisho-2", items)[0]["status"] == "rejected"
    odd = copy.deepcopy(items[0])
    odd["kind"] = "転居届"
    odd["hash"] = item_hash(odd)  # a well-formed item of a kind this hub does not know
    assert "unknown item kind" in receive(tenant, "honcho-1", [odd])[0]["reason"]
    assert receive(tenant, "honcho-1", ["not an item"])[0]["status"] == "rejected"


def test_the_ledger_and_the_effect_commit_together(tenant: Any, tmp_path: Path) -> None:
    items = _queue(tmp_path, 3)
    receive(tenant, "honcho-1", items)
    conn = tenant.connect()
    ledger = conn.execute("SELECT count(*) FROM upload_ledger WHERE status = 'accepted'").fetchone()[0]
    records = conn.execute("SELECT count(*) FROM issuance_record").fetchone()[0]
    conn.close()
    assert ledger == records == 3


def test_a_change_committed_before_the_issue_but_after_the_printed_cursor_is_a_finding(
    tenant: Any, tmp_path: Path
) -> None:
    from tests.hub.test_store import _commit_people

    _commit_people(tenant, 1, 3)  # seq 1-3: three people move in
    _move_person_2(tenant)  # seq 4
    conn = open_db(tmp_path / "node.db", outbox.SQL)
    with write_tx(conn):
        items = [
            outbox.append_in(
                conn,
                "honcho-1",
                "issuance",
                "tanaka",
                {
                    "id": f"iss-{i}",
                    "issued_at": "2999-01-01T00:00:00.000000Z",
                    "day": "2999-01-01",
                    "requester": "第三者" if i else "本人",
                    "replica": {"cursor": 3},
                    "subjects": [
                        {
                            "atena_no": person(i + 1)["atena_no"],
                            "rireki_no": 1,
                            "household_no": person(i + 1, household=i + 1)["household_no"],
                        }
                    ],
                },
                {"cursor": 3},
            )
            for i in range(2)
        ]
    conn.close()
    assert [v["status"] for v in receive(tenant, "honcho-1", items)] == ["accepted", "accepted"]
    rows = {r["id"]: r for r in issuances(tenant)}
    assert rows["iss-0"]["findings"] == []  # person 1 did not change after cursor 3
    (finding,) = rows["iss-1"]["findings"]  # person 2 moved at seq 4, before the certificate was issued
    assert finding["seq"] == 4 and finding["reason"] == "転居" and finding["printed_rireki_no"] == 1
    assert rows["iss-1"]["notify"] is True and rows["iss-0"]["notify"] is False


def _intake_items(tmp_path: Path, persons: list[dict[str, Any]]) -> list[dict[str, Any]]:
    payload = {
        "id": "in-1",
        "type": "転居届",
        "persons": persons,
        "date": "令和8年12月1日",
        "new_address": "門川町大字川内1番地",
        "notifier": "本人",
    }
    return [queue_item(tmp_path / "node.db", "intake", payload, {"cursor": 3})]


def test_an_intake_on_a_record_changed_since_is_opened_as_a_conflict(tenant: Any, tmp_path: Path) -> None:
    from edgenode.hub.uploads import intakes, resolve
    from tests.hub.test_store import _commit_people

    _commit_people(tenant, 1, 2)
    _move_person_2(tenant)
    items = _intake_items(
        tmp_path,
        [{"atena_no": person(1)["atena_no"], "rireki_no": 1}, {"atena_no": person(2)["atena_no"], "rireki_no": 1}],
    )
    (v,) = receive(tenant, "honcho-1", items)
    assert v["status"] == "conflict"
    assert receive(tenant, "honcho-1", items)[0]["status"] == "conflict"  # re-sent: same answer, no second row
    (row,) = intakes(tenant)
    assert row["status"] == "conflict" and [c["atena_no"] for c in row["conflicts"]] == [person(2)["atena_no"]]
    with pytest.raises(Exception, match="note"):
        resolve(tenant, "in-1", True, " ", "yamada")
    resolve(tenant, "in-1", True, "川内への転居を入力済み", "yamada")
    assert intakes(tenant)[0]["status"] == "accepted"
    with pytest.raises(Exception, match="already decided"):
        resolve(tenant, "in-1", False, "やはり却下", "yamada")


def _as_schema_1(item: dict[str, Any]) -> dict[str, Any]:
    """The same item as a node running the schema-1 software would have queued it."""
    old = copy.deepcopy(item)
    old["schema"] = 1
    old["payload"].pop("newcomers", None)
    old["base"].pop("as_of", None)
    old["hash"] = item_hash(old)
    return old


def test_an_item_queued_under_the_old_schema_is_upgraded_and_taken_in(tenant: Any, tmp_path: Path) -> None:
    from edgenode.hub.uploads import intakes

    (item,) = _intake_items(tmp_path, [])
    (v,) = receive(tenant, "honcho-1", [_as_schema_1(item)])
    assert v == {"key": item["key"], "status": "accepted", "reason": None}
    (row,) = intakes(tenant)
    assert row["status"] == "received" and row["record"]["newcomers"] == []
    conn = tenant.connect()
    ledger = conn.execute("SELECT item FROM upload_ledger").fetchone()[0]
    conn.close()
    assert '"schema": 1' in ledger  # the ledger keeps the item exactly as the node sent it


def test_items_the_upgrade_cannot_carry_are_quarantined_with_a_reason(tenant: Any, tmp_path: Path) -> None:
    move_in = queue_item(tmp_path / "node.db", "intake", {"id": "in-9", "type": "転入届"}, {})
    later = queue_item(tmp_path / "node.db", "intake", {"id": "in-10", "type": "転居届"}, {})
    v1 = _as_schema_1(move_in)
    v2 = copy.deepcopy(_as_schema_1(later))
    v2["prev"] = v1["hash"]
    v2["hash"] = item_hash(v2)
    too_old = copy.deepcopy(v2)
    verdicts = receive(tenant, "honcho-1", [v1, v2])
    assert verdicts[0]["status"] == "rejected" and "cannot be upgraded" in verdicts[0]["reason"]
    assert verdicts[1]["status"] == "accepted"  # the item behind the quarantined one goes on
    too_old.update(key="k-0", seq=3, prev=v2["hash"], schema=0)
    too_old["hash"] = item_hash(too_old)
    (v0,) = receive(tenant, "honcho-1", [too_old])
    assert v0["status"] == "rejected" and "not a schema edgenode ever wrote" in v0["reason"]


def _move_in(tmp_path: Path, newcomers: list[dict[str, str]], rid: str = "in-20") -> list[dict[str, Any]]:
    payload = {"id": rid, "type": "転入届", "persons": [], "newcomers": newcomers, "new_address": "門川町"}
    return [queue_item(tmp_path / "node.db", "intake", payload, {"cursor": 3, "chain": "", "as_of": None})]


def test_a_move_in_of_someone_already_in_the_registry_opens_a_conflict(tenant: Any, tmp_path: Path) -> None:
    from edgenode.hub.uploads import intakes
    from tests.hub.test_store import _commit_people

    _commit_people(tenant, 1, 3)
    known = person(2)
    newcomers = [
        {"name": "日向\u3000花子", "kana": "ヒュウガ\u3000ハナコ", "birth_date_iso": "1990-04-01"},
        # keyed with a different space and in hiragana: still the same 氏名 reading and birth date
        {"name": "門川 太郎", "kana": "かどがわ たろう", "birth_date_iso": known["birth_date_iso"]},
    ]
    (v,) = receive(tenant, "honcho-1", _move_in(tmp_path, newcomers))
    assert v["status"] == "conflict"
    (row,) = intakes(tenant)
    assert {c["newcomer"] for c in row["conflicts"]} == {2}
    assert {c["atena_no"] for c in row["conflicts"]} == {person(i)["atena_no"] for i in (1, 2, 3)}


def test_a_move_in_of_someone_new_is_taken_in_without_conflict(tenant: Any, tmp_path: Path) -> None:
    from edgenode.hub.uploads import intakes
    from tests.hub.test_store import _commit_people

    _commit_people(tenant, 1, 3)
    newcomer = {"name": "日向\u3000花子", "kana": "ヒュウガ\u3000ハナコ", "birth_date_iso": "1990-04-01"}
    (v,) = receive(tenant, "honcho-1", _move_in(tmp_path, [newcomer]))
    assert v["status"] == "accepted"
    assert intakes(tenant)[0]["status"] == "received"
    (bad,) = receive(tenant, "honcho-1", _move_in(tmp_path, [{"name": "x"}], "in-21"))
    assert bad["status"] == "rejected" and "malformed" in bad["reason"]
