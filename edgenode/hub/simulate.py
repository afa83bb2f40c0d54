"""Realistic daily 異動 on a tenant's current records (demo activity and tests).

`simulate` returns registry transactions (`Change`): the scenario name and the new full
record of every person it touches. Record-level 異動事由 use the standard's vocabulary
(住民記録システム標準仕様書 1.2.2): 国内転入, 国外転入等, 出生, 国内転出, 国外転出, 死亡,
転居, 世帯分離, 世帯合併, 世帯主変更, 職権修正 (氏名変更 after a 戸籍 notice), 誤記修正.

Household order: members who join are appended (others keep their numbers); a change of
世帯主 renumbers the whole household, since every member gets a new record anyway.
"""

from __future__ import annotations

import datetime as _dt
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from edgenode.hub.synth import SP, HouseholdFactory, elsewhere_address, order_rank, pick, wareki, weights
from edgenode.resident import is_valid_relationship

Record = dict[str, Any]


@dataclass(frozen=True)
class Change:
    """One registry transaction: its scenario and the new full record of each person touched."""

    reason: str
    records: list[Record]


#: Scenarios and their share of a day's 異動 in a small town.
SCENARIOS = weights(
    "転入:22 国外転入:4 転出:22 転居:12 出生:6 死亡:12 世帯分離:4 世帯合併:2 世帯主変更:4 氏名変更:5 誤記修正:4"
)
_EVENT_KEYS = "rireki_no change_reason change_class change_date change_date_iso notified_on notified_date processed_on"
_INCOMING = weights("single_young:40 couple_young:15 family:25 single_parent:5 couple_mid:5 single_old:5 couple_old:5")
_SIBLINGS = ("兄", "姉", "弟", "妹")
_NOT_SPLIT = ("世帯主", "妻", "夫", "子の子の妻", "子の子の夫")
_LOT = re.compile(r"\d+番地$")  # the 地番 at the end of a 本籍
_HOUSEHOLD_KEYS = ("household_no", "head_name", "address", "banchi", "katagaki", "address_code", "postal_code")
_ADDRESS_KEYS = ("address", "banchi", "katagaki", "address_code", "postal_code")


def _split(name: str) -> tuple[str, str]:
    sur, _, given = name.partition(SP)
    return sur, given


def _named(rec: Record) -> bool:
    """A 日本人住民 whose name and kana split into 氏 and 名."""
    return rec["resident_type"] == "日本人住民" and SP in rec["name"] and SP in rec.get("kana", "")


def _woman(rec: Record) -> bool:
    return rec.get("sex") == "女" and _named(rec)


def _sibling(rec: Record, ref: Record) -> str:
    older = rec.get("birth_date_iso", "") < ref.get("birth_date_iso", "")
    if rec.get("sex") == "男":
        return "兄" if older else "弟"
    return "姉" if older else "妹"


def _prefix(label: str, rel: str) -> str:
    """`label`の`rel`, or 縁故者 when that is past the standard's four terms."""
    out = f"{label}の{rel}"
    return out if is_valid_relationship(out) else "縁故者"


def _rebased(rel: str, m: Record, head: Record, old: Record, married: bool) -> str:
    """続柄 of `m` towards the new head `head`, given `rel` towards the old head `old`."""
    lh = head.get("relationship", "")
    if rel in ("同居人", "縁故者"):
        return rel
    if lh in ("妻", "夫"):  # the old head's children are taken to be the spouse's too
        back = "夫" if lh == "妻" else "妻"
        return back if rel == "世帯主" else rel if rel.startswith("子") else _prefix(back, rel)
    if lh == "子":
        parent = "父" if old.get("sex") == "男" else "母"
        own = {"子の妻": "妻", "子の夫": "夫", "子の子": "子"}
        if rel in own:
            return own[rel] if married else "縁故者"
        fixed = {"世帯主": parent, "妻": "母", "夫": "父"}
        return fixed.get(rel) or (_sibling(m, head) if rel == "子" else _prefix(parent, rel))
    if lh in ("父", "母"):
        fixed = {"世帯主": "子", "妻": "子の妻", "夫": "子の夫", "父": "夫", "母": "妻"}
        if rel in fixed:
            return fixed[rel]
        return _prefix("子", rel) if rel.startswith("子") else "子" if rel in _SIBLINGS else "縁故者"
    if lh in _SIBLINGS:
        if rel in ("父", "母"):
            return rel
        return _sibling(m, head) if rel in (*_SIBLINGS, "世帯主") else _prefix(_sibling(old, head), rel)
    return "同居人" if lh == "同居人" else "縁故者"


class _Sim:
    """Working copy of the tenant: current records plus household and address indexes."""

    def __init__(
        self, current: list[Record], rng: random.Random, today: _dt.date, municipality: str, lg_code: str
    ) -> None:
        self.rng, self.today, self.today_iso = rng, today, today.isoformat()
        self.people: dict[str, Record] = {}
        self.households: dict[str, list[str]] = {}
        self.pool: list[str] = []
        self.addr_of: dict[str, tuple[str, str, str]] = {}
        self.at_addr: dict[tuple[str, str, str], dict[str, None]] = {}
        max_a = max_h = 0
        taken: list[str] = []
        for rec in current:
            a, h = rec["atena_no"], rec["household_no"]
            max_a, max_h = max(max_a, int(a[:-1] or 0)), max(max_h, int(h[:-1] or 0))
            taken += [rec[k] for k in ("my_number", "juminhyo_code", "residence_card_no") if rec.get(k)]
            self.people[a] = rec
            if rec.get("status") == "住民":
                self.pool.append(a)
                self.households.setdefault(h, []).append(a)
        for h in self.households:
            self._index(h)
        h0, size = max_h + 1 if max_h else 5000001, max(30, len(current) // 120)
        kw: dict[str, Any] = {"next_atena": max_a + 1, "next_household": h0, "taken": taken, "buildings": size}
        self.f = HouseholdFactory(rng, today, lg_code, municipality, **kw)

    # ---- bookkeeping ---------------------------------------------------------------------
    def _index(self, hh: str) -> None:
        old = self.addr_of.pop(hh, None)
        if old is not None:
            self.at_addr[old].pop(hh, None)
        members = self.households.get(hh)
        if members:
            r = self.people[members[0]]
            key = (r.get("address", ""), r.get("banchi", ""), r.get("katagaki", ""))
            self.addr_of[hh] = key
            self.at_addr.setdefault(key, {})[hh] = None

    def commit(self, recs: list[Record]) -> None:
        """Make `recs` current and update the indexes."""
        touched: dict[str, None] = {}
        for rec in recs:
            a = rec["atena_no"]
            old = self.people.get(a)
            if old is None:
                self.pool.append(a)
            elif old.get("status") == "住民":
                self.households[old["household_no"]].remove(a)
                touched[old["household_no"]] = None
            self.people[a] = rec
            if rec["status"] == "住民":
                self.households.setdefault(rec["household_no"], []).append(a)
                touched[rec["household_no"]] = None
        for hh in touched:
            if not self.households.get(hh):
                self.households.pop(hh, None)
            self._index(hh)

    def members(self, hh: str) -> list[Record]:
        """Current 住民 of a household in 並び順."""
        recs = [self.people[a] for a in self.households.get(hh, ())]
        return sorted(recs, key=lambda r: r.get("household_order") or 0)

    def age(self, rec: Record) -> int | None:
        iso = rec.get("birth_date_iso")
        if not iso:
            return None
        b = _dt.date.fromisoformat(iso)
        return self.today.year - b.year - ((self.today.month, self.today.day) < (b.month, b.day))

    def person(self, pred: Callable[[Record], bool], tries: int = 60) -> Record | None:
        """A random 住民 satisfying `pred`, or None."""
        r, pool = self.rng, self.pool
        for _ in range(tries if pool else 0):
            rec = self.people[pool[int(r.random() * len(pool))]]
            if rec.get("status") == "住民" and pred(rec):
                return rec
        return None

    def copy(self, rec: Record) -> Record:
        """The record without its 履歴番号 and last event, ready for a new event."""
        new = dict(rec)
        for k in _EVENT_KEYS.split():
            new.pop(k, None)
        return new

    def stamp(self, recs: list[Record], reason: str, cls: str, day: _dt.date, notified: bool = True) -> list[Record]:
        """Set 異動事由, its class, 異動日 and today's 処理日 (and 届出日 unless 職権)."""
        for rec in recs:
            rec.pop("rireki_no", None)
            rec["change_reason"], rec["change_class"] = reason, cls
            rec["change_date"], rec["change_date_iso"] = wareki(day), day.isoformat()
            rec["processed_on"] = self.today_iso
            if notified:
                rec["notified_on"], rec["notified_date"] = self.today_iso, wareki(self.today)
            else:
                rec.pop("notified_on", None)
                rec.pop("notified_date", None)
        return recs

    def days_ago(self, most: int) -> _dt.date:
        return self.today - _dt.timedelta(days=self.rng.randint(0, most))

    def new_member(
        self, base: Record, rel: str, sex: str, birth: _dt.date, sur: tuple[str, str], koseki: tuple[str, str]
    ) -> Record:
        """A new 日本人住民 in `base`'s household (order appended)."""
        f = self.f
        family = self.members(base["household_no"])
        used = {_split(m["name"])[1] for m in family}
        given = f.given(sex, birth)
        for _ in range(3):  # no two in one family share a 名
            if given[0] not in used:
                break
            given = f.given(sex, birth)
        order = max((m.get("household_order") or 0 for m in family), default=0) + 1
        rec: Record = {
            "atena_no": f.atena(),
            "resident_type": "日本人住民",
            "status": "住民",
            "name": sur[0] + SP + given[0],
            "kana": sur[1] + SP + given[1],
            "birth_date": wareki(birth),
            "birth_date_iso": birth.isoformat(),
            "sex": sex,
            "relationship": rel,
            "household_order": order,
            "honseki": koseki[0],
            "hittosha": koseki[1],
        }
        rec.update({k: base[k] for k in _HOUSEHOLD_KEYS if base.get(k)})
        rec["juminhyo_code"], rec["my_number"] = f.juminhyo_code(), f.my_number()
        return rec

    # ---- scenarios -----------------------------------------------------------------------
    def moving_in(self) -> list[Record] | None:
        day = self.days_ago(14)
        if self.rng.random() < 0.25:
            joined = self._join(day)
            if joined:
                return joined
        kind = pick(self.rng, _INCOMING)
        return self.stamp(self.f.household(kind, arrived=day), "国内転入", "記載", day)

    def _join(self, day: _dt.date) -> list[Record] | None:
        """Someone moves into an existing Japanese household: spouse, parent or lodger."""
        r, f = self.rng, self.f
        head = self.person(lambda x: x.get("relationship") == "世帯主" and _named(x) and (self.age(x) or 0) >= 24)
        if head is None:
            return None
        sur = (_split(head["name"])[0], _split(head["kana"])[0])
        age = self.age(head) or 40
        alone = len(self.households[head["household_no"]]) == 1
        if alone and age <= 45 and head.get("sex") in ("男", "女"):
            rel, sex = ("妻", "女") if head["sex"] == "男" else ("夫", "男")
            birth = f.birth(age + r.randint(-4, 4), day)
            koseki = (head.get("honseki", ""), head.get("hittosha", ""))
        elif age <= 65 and head.get("sex") == "男":
            rel, sex, birth = "母", "女", f.birth(min(100, age + r.randint(24, 34)), day)
            koseki = (f.honseki(0.5), sur[0] + SP + f.given("男", birth)[0])
        else:
            rel, sex = "同居人", r.choice("男女")
            birth, sur = f.birth(r.triangular(20, 75, 40), day), f.surname()
            koseki = (f.honseki(0.2), sur[0] + SP + f.given(sex, birth)[0])
        rec = self.new_member(head, rel, sex, birth, sur, koseki)
        rec["resident_since"], rec["resident_since_iso"] = wareki(day), day.isoformat()
        rec["prev_address"] = elsewhere_address(r)
        return self.stamp([rec], "国内転入", "記載", day)

    def moving_in_from_abroad(self) -> list[Record]:
        day = self.days_ago(14)
        kind = "foreign_worker" if self.rng.random() < 0.75 else "foreign_family"
        return self.stamp(self.f.household(kind, arrived=day, abroad=True), "国外転入等", "記載", day)

    def moving_out(self) -> list[Record] | None:
        r = self.rng
        who = self.person(lambda x: True)
        if who is None:
            return None
        hh = self.members(who["household_no"])
        whole = len(hh) == 1 or who.get("relationship") == "世帯主" or r.random() < 0.5
        leaving = hh if whole else [who]
        day = self.today + _dt.timedelta(days=r.randint(-7, 14))  # 転出予定日 may lie ahead
        abroad = who["resident_type"] == "外国人住民" and bool(who.get("nationality")) and r.random() < 0.6
        to = who["nationality"] if abroad else elsewhere_address(r)
        out = []
        for m in leaving:
            new = self.copy(m)
            new.update(status="転出", removal_reason="転出", removal_date=wareki(day), moved_to=to)
            out.append(new)
        return self.stamp(out, "国外転出" if abroad else "国内転出", "消除", day)

    def relocation(self) -> list[Record] | None:
        who = self.person(lambda x: True)
        if who is None:
            return None
        hh = self.members(who["household_no"])
        old = (who.get("address"), who.get("banchi"), who.get("katagaki"))
        addr = self.f.address(apartment=self.rng.random() < (0.6 if who.get("katagaki") else 0.2))
        if (addr["address"], addr["banchi"], addr.get("katagaki")) == old:
            return None
        day = self.days_ago(14)
        out = []
        for m in hh:
            new = self.copy(m)
            for k in _ADDRESS_KEYS:
                new.pop(k, None)
            new.update(addr)
            new["address_since"], new["address_since_iso"] = wareki(day), day.isoformat()
            out.append(new)
        return self.stamp(out, "転居", "修正", day)

    def birth(self) -> list[Record] | None:
        wife = ("世帯主", "妻", "子の妻")
        mother = self.person(lambda x: _woman(x) and x.get("relationship") in wife and 18 <= (self.age(x) or 0) <= 45)
        if mother is None:
            return None
        day = self.days_ago(13)
        rel = "子の子" if mother["relationship"] == "子の妻" else "子"
        sur = (_split(mother["name"])[0], _split(mother["kana"])[0])
        rec = self.new_member(
            mother, rel, self.rng.choice("男女"), day, sur, (mother.get("honseki", ""), mother.get("hittosha", ""))
        )
        rec["resident_since"], rec["resident_since_iso"] = wareki(day), day.isoformat()
        return self.stamp([rec], "出生", "記載", day)

    def death(self) -> list[Record] | None:
        # The oldest of a few random residents: deaths cluster among the old.
        picks = [p for p in (self.person(lambda x: self.age(x) is not None) for _ in range(3)) if p]
        if not picks:
            return None
        who = min(picks, key=lambda x: x["birth_date_iso"])
        day = self.days_ago(7)
        dead = self.copy(who)
        dead.update(status="死亡", removal_reason="死亡", removal_date=wareki(day))
        out = self.stamp([dead], "死亡", "消除", day)
        rest = [m for m in self.members(who["household_no"]) if m["atena_no"] != who["atena_no"]]
        if who.get("relationship") == "世帯主" and rest:
            out += self.stamp(self._new_head(rest, self._successor(rest), who), "世帯主変更", "修正", day)
        return out

    def head_change(self) -> list[Record] | None:
        head = self.person(lambda x: x.get("relationship") == "世帯主" and (self.age(x) or 0) >= 65)
        if head is None:
            return None
        ms = self.members(head["household_no"])
        married_son = [
            m
            for m in ms
            if m.get("relationship") == "子"
            and m.get("sex") == "男"
            and any(x.get("relationship") == "子の妻" for x in ms)
        ]
        spouse = [m for m in ms if m.get("relationship") in ("妻", "夫")]
        heirs = married_son or spouse
        if not heirs:
            return None
        return self.stamp(self._new_head(ms, heirs[0], head), "世帯主変更", "修正", self.today)

    def split(self) -> list[Record] | None:
        """世帯分離 at the same address: parents, a married child's family, an adult child or a lodger."""
        who = self.person(lambda x: x.get("relationship") not in _NOT_SPLIT and (self.age(x) or 0) >= 20)
        if who is None:
            return None
        ms = self.members(who["household_no"])
        rel = who.get("relationship")
        if rel in ("父", "母"):
            unit = [m for m in ms if m.get("relationship") in ("父", "母")]
            unit.sort(key=lambda m: m.get("relationship") != "父")
            new_rel = {"父": "世帯主", "母": "妻" if unit[0].get("relationship") == "父" else "世帯主"}
        elif (
            rel in ("子", "子の妻")
            and sum(m.get("relationship") == "子の妻" for m in ms) == 1
            and any(m.get("relationship") == "子" and m.get("sex") == "男" for m in ms)
        ):
            son = next(m for m in ms if m.get("relationship") == "子" and m.get("sex") == "男")
            unit = [son] + [m for m in ms if m.get("relationship") in ("子の妻", "子の子")]
            new_rel = {"子": "世帯主", "子の妻": "妻", "子の子": "子"}
        else:
            unit, new_rel = [who], {rel or "": "世帯主"}
        if len(unit) == len(ms):
            return None
        hh = self.f.household_no()
        head = unit[0]
        out = []
        for i, m in enumerate(
            sorted(unit, key=lambda m: (order_rank(new_rel[m["relationship"]]), m.get("birth_date_iso", ""))), start=1
        ):
            new = self.copy(m)
            new.update(
                household_no=hh, head_name=head["name"], relationship=new_rel[m["relationship"]], household_order=i
            )
            out.append(new)
        return self.stamp(out, "世帯分離", "修正", self.today)

    def merge(self) -> list[Record] | None:
        """Parents living as their own 世帯 at their child's address join the child's 世帯."""
        shared = [hs for hs in self.at_addr.values() if len(hs) >= 2]
        if not shared:
            return None
        hhs = list(self.rng.choice(shared))
        heads = []
        for hh in hhs:
            h = next((m for m in self.members(hh) if m.get("relationship") == "世帯主"), None)
            if h is not None and h.get("birth_date_iso"):
                heads.append(h)
        if len(heads) < 2:
            return None
        heads.sort(key=lambda h: h["birth_date_iso"])
        old, young = heads[0], heads[-1]
        gap = (self.age(old) or 0) - (self.age(young) or 0)
        if gap < 16 or not _named(old) or not _named(young) or _split(old["name"])[0] != _split(young["name"])[0]:
            return None  # not visibly the young head's parents
        mapping = {"世帯主": "父" if old.get("sex") == "男" else "母", "妻": "母", "夫": "父", "同居人": "同居人"}
        order = max(m.get("household_order") or 0 for m in self.members(young["household_no"]))
        out = []
        for m in self.members(old["household_no"]):
            rel = m.get("relationship", "")
            new_rel = _sibling(m, young) if rel == "子" else mapping.get(rel, "縁故者")
            order += 1
            new = self.copy(m)
            new.update(
                household_no=young["household_no"], head_name=young["name"], relationship=new_rel, household_order=order
            )
            out.append(new)
        return self.stamp(out, "世帯合併", "修正", self.today)

    def name_change(self) -> list[Record] | None:
        """Marriage noted from the 戸籍: new surname, 旧氏 recorded, new 戸籍."""
        f = self.f
        single = ("子", "世帯主")
        who = self.person(lambda x: _woman(x) and x.get("relationship") in single and 20 <= (self.age(x) or 0) <= 40)
        if who is not None and who.get("former_surname"):
            return None
        if who is None:
            return None
        (sur, given), (sur_k, given_k) = _split(who["name"]), _split(who["kana"])
        new_sur = f.surname()
        if new_sur[0] == sur:
            return None
        new = self.copy(who)
        husband = new_sur[0] + SP + f.given("男", _dt.date.fromisoformat(who["birth_date_iso"]))[0]
        new.update(name=new_sur[0] + SP + given, kana=new_sur[1] + SP + given_k, honseki=f.honseki(0.3))
        new.update(former_surname=sur, former_surname_kana=sur_k, hittosha=husband)
        out = [new]
        if who.get("relationship") == "世帯主":
            new["head_name"] = new["name"]
            for m in self.members(who["household_no"]):
                if m["atena_no"] != who["atena_no"]:
                    other = self.copy(m)
                    other["head_name"] = new["name"]
                    out.append(other)
        return self.stamp(out, "職権修正", "修正", self.today, notified=False)

    def correction(self) -> list[Record] | None:
        """A small 誤記 fixed: a 在留期間の満了の日, or the 本籍 lot number of one 戸籍 in the 世帯."""
        r = self.rng
        who = self.person(lambda x: bool(_LOT.search(x.get("honseki", "")) or x.get("residence_expiry")))
        if who is None:
            return None
        if who.get("residence_expiry"):
            new = self.copy(who)
            shift = _dt.timedelta(days=r.choice((-1, 1)) * r.randint(1, 30))
            exp = max(_dt.date.fromisoformat(who["residence_expiry"]) + shift, self.today + _dt.timedelta(days=1))
            new["residence_expiry"] = exp.isoformat()
            return self.stamp([new], "誤記修正", "修正", self.today, notified=False)
        fixed = _LOT.sub(f"{r.randint(1, 3999)}番地", who["honseki"])
        if fixed == who["honseki"]:
            return None
        koseki = (who["honseki"], who.get("hittosha"))
        out = [
            self.copy(m) for m in self.members(who["household_no"]) if (m.get("honseki"), m.get("hittosha")) == koseki
        ]
        for m in out:
            m["honseki"] = fixed
        return self.stamp(out, "誤記修正", "修正", self.today, notified=False)

    # ---- 世帯主 succession -----------------------------------------------------------------
    def _successor(self, rest: list[Record]) -> Record:
        """Next 世帯主 when the head dies: spouse, married son, oldest adult child, parent, oldest."""

        def adult(m: Record) -> bool:
            return (self.age(m) or 0) >= 18

        by_age = sorted(rest, key=lambda m: m.get("birth_date_iso", "9999"))
        for test in (
            lambda m: m.get("relationship") in ("妻", "夫") and adult(m),
            lambda m: (
                m.get("relationship") == "子"
                and m.get("sex") == "男"
                and adult(m)
                and any(x.get("relationship") == "子の妻" for x in rest)
            ),
            lambda m: m.get("relationship") == "子" and adult(m),
            lambda m: m.get("relationship") in ("父", "母"),
            adult,
        ):
            found = [m for m in by_age if test(m)]
            if found:
                return found[0]
        return by_age[0]

    def _new_head(self, ms: list[Record], head: Record, old: Record) -> list[Record]:
        """Records of `ms` with `head` as 世帯主: 続柄 re-derived, head name and order renewed."""
        spouses = [m for m in ms if m.get("relationship") in ("子の妻", "子の夫")]
        # Only a single child-in-law can be known to be the new head's own spouse.
        married = len(spouses) == 1 and head.get("sex") == ("男" if spouses[0]["relationship"] == "子の妻" else "女")
        out = []
        for m in ms:
            same = m["atena_no"] == head["atena_no"]
            new_rel = "世帯主" if same else _rebased(m.get("relationship", ""), m, head, old, married)
            new = self.copy(m)
            new["relationship"] = new_rel if is_valid_relationship(new_rel) else "縁故者"
            new["head_name"] = head["name"]
            out.append(new)
        out.sort(key=lambda r: (order_rank(r["relationship"]), r.get("birth_date_iso", "")))
        for i, r in enumerate(out, start=1):
            r["household_order"] = i
        return out


def simulate(
    current: list[dict[str, Any]], n: int, rng: random.Random, today: _dt.date, municipality: str, lg_code: str
) -> list[Change]:
    """About `n` realistic 異動 on `current` (all current records, 除票 included), drawn from `rng` only.

    New 宛名番号/世帯番号 continue after the largest in `current`; 個人番号, 住民票コード and
    在留カード番号 are checked against every one in `current` and issued in this call.
    """
    sim = _Sim(current, rng, today, municipality, lg_code)
    run: dict[str, Callable[[], list[Record] | None]] = {
        "転入": sim.moving_in,
        "国外転入": sim.moving_in_from_abroad,
        "転出": sim.moving_out,
        "転居": sim.relocation,
        "出生": sim.birth,
        "死亡": sim.death,
        "世帯分離": sim.split,
        "世帯合併": sim.merge,
        "世帯主変更": sim.head_change,
        "氏名変更": sim.name_change,
        "誤記修正": sim.correction,
    }
    out: list[Change] = []
    for _ in range(20 * n + 20):  # a scenario without candidates is redrawn; 転入 always works
        if len(out) >= n:
            break
        reason = pick(rng, SCENARIOS)
        recs = run[reason]()
        if recs:
            sim.commit(recs)
            out.append(Change(reason, recs))
    return out
