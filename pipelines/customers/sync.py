"""One pass of the single customer view: read the customers that changed on either platform since the last pass,
pair them (stored link first, then normalised e-mail), merge each pair by field ownership
(`pipelines.domain.customers.merge`), write both sides and record the pair's link.

* Incremental: each side has a cursor (the latest modification time read), read again with an overlap
  (``overlap_s``) for clock skew; a pair whose two versions equal the ones its link recorded is skipped, so a pass
  repeated over the same records writes nothing. Our own writes move the versions the link records.
* A customer known on one side only is created on the other (commerce: key and externalId from the store id;
  store: NewStore's get-or-create by e-mail), so a crash between the write and the link is repaired by the next
  pass instead of making a second customer.
* A linked customer missing on one side (deleted there) is not created again: it is counted as ``orphaned``.
* Order history for store staff: the online orders of linked customers are imported into the store system as past
  orders (NewStore: order injection with ``is_historical``, attached to the profile by e-mail), those changed since
  the orders cursor and, for a customer linked in this pass, all of them; an order the store system already holds
  under its number is left alone. Orders of customers not linked (guest checkouts) are not sent: the store system
  would create a profile for them.
* Problems become exception records (`pipelines.domain.customer_exceptions`): an owned field edited on the wrong
  side and set back (``customer_conflict``, WARN), an e-mail matching several customers on one side
  (``customer_conflict``), a refused write (``customer_write_failed``). A refused or stale write leaves the cursor
  at that customer, so the next pass reads it again.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from pipelines.domain.customer_exceptions import CUSTOMER_CONFLICT, CUSTOMER_WRITE_FAILED
from pipelines.domain.customers import Changes, Customer, email_key, match_by_email, merge
from pipelines.domain.exceptions import ExceptionRecord
from pipelines.domain.flows.customer_ports import (
    CommerceCustomers,
    CustomerWriteRefused,
    HistoryOrder,
    StaleCustomer,
    StoreCustomers,
)
from pipelines.store import customers as state
from pipelines.store.inbox import record_exceptions

log = logging.getLogger("pipelines.customers.sync")
SOURCE = "customer_links"
MAX_ROUNDS = 2  # a create can return an existing record (get-or-create); one more merge settles it


@dataclass
class PassResult:
    created_commerce: int = 0
    created_store: int = 0
    updated_commerce: int = 0
    updated_store: int = 0
    unchanged: int = 0
    stale: int = 0
    failed: int = 0
    orphaned: int = 0
    ambiguous: int = 0
    history_added: int = 0
    history_known: int = 0
    history_unlinked: int = 0
    read_commerce: int = 0
    read_store: int = 0
    store_listing_capped: bool = False
    records: list[ExceptionRecord] = field(default_factory=list)

    @property
    def created(self) -> int:
        return self.created_commerce + self.created_store

    @property
    def updated(self) -> int:
        return self.updated_commerce + self.updated_store

    @property
    def conflicts(self) -> int:
        return sum(1 for r in self.records if r.type == CUSTOMER_CONFLICT.name)

    def metadata(self) -> dict[str, Any]:
        return {"created": self.created, "updated": self.updated, "conflicts": self.conflicts,
                "created_commerce": self.created_commerce, "created_store": self.created_store,
                "updated_commerce": self.updated_commerce, "updated_store": self.updated_store,
                "unchanged": self.unchanged, "write_failed": self.failed, "stale_retry_next_pass": self.stale,
                "orphaned": self.orphaned, "ambiguous_email": self.ambiguous,
                "history_orders_added": self.history_added, "history_orders_known": self.history_known,
                "history_orders_unlinked": self.history_unlinked, "read_commerce": self.read_commerce,
                "read_store": self.read_store, "store_listing_capped": self.store_listing_capped}


def _minus(cursor: str | None, seconds: float) -> str | None:
    if cursor is None:
        return None
    try:
        at = datetime.fromisoformat(cursor.replace("Z", "+00:00"))
    except ValueError:
        return cursor
    at = (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(UTC) - timedelta(seconds=seconds)
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"  # both platforms' format


def _digest(*parts: Any) -> str:
    return hashlib.sha256("\x1f".join("" if p is None else str(p) for p in parts).encode()).hexdigest()[:16]


class _Pass:
    def __init__(self, engine: Engine, commerce: CommerceCustomers, store: StoreCustomers, result: PassResult) -> None:
        self.engine, self.commerce, self.store, self.r = engine, commerce, store, result
        self.retry_floor: dict[str, str] = {}  # side -> earliest modified_at of a customer to read again
        self.new_links: list[str] = []  # e-mails of pairs linked in this pass (their earlier orders go to history)
        self._store_email: dict[str, str | None] = {}

    def hold_at(self, side: str, modified_at: str | None) -> None:
        if modified_at:
            prev = self.retry_floor.get(side)
            self.retry_floor[side] = modified_at if prev is None else min(prev, modified_at)

    def hold(self, c: Customer | None, s: Customer | None) -> None:
        for side, rec in ((state.COMMERCE_SIDE, c), (state.STORE_SIDE, s)):
            if rec is not None and rec.modified_at:
                prev = self.retry_floor.get(side)
                self.retry_floor[side] = rec.modified_at if prev is None else min(prev, rec.modified_at)

    def evidence(self, c: Customer | None, s: Customer | None) -> dict[str, Any]:
        return {"commerce_platform": getattr(self.commerce, "platform", "commerce"), "commerce_id": c and c.id,
                "store_platform": getattr(self.store, "platform", "store"), "store_id": s and s.id,
                "email": (c or s).email if (c or s) else None}

    def conflicts(self, c: Customer, s: Customer, side_changes: Changes, side: str) -> None:
        for fc in side_changes.overridden:
            ev = {**self.evidence(c, s), "field": fc.field, "owner": fc.owner, "overwritten_on": side,
                  "kept": fc.kept, "overwritten": fc.overridden, "last_synced": fc.last_synced}
            self.r.records.append(ExceptionRecord.of(
                CUSTOMER_CONFLICT, f"{c.id}:{s.id}:{fc.field}:{_digest(fc.kept, fc.overridden)}", SOURCE,
                f"customer {c.id}/{s.id}: {fc.field} changed on the {side} side (not its owner) and set back to the "
                f"{fc.owner} value", payload=ev))

    def free(self, c: Customer, s: Customer) -> bool:
        """Whether a new pair may be linked: a create can hand back a record already linked to another customer
        (NewStore's get-or-create by e-mail, commercetools' e-mail uniqueness) when an e-mail moved between
        customers; that is reported, never linked twice."""
        taken = [x for x in (state.find_link(self.engine, commerce_id=c.id), state.find_link(self.engine, store_id=s.id))
                 if x is not None and (x.commerce_id, x.store_id) != (c.id, s.id)]
        if not taken:
            return True
        self.r.ambiguous += 1
        self.hold(c, s)
        self.r.records.append(ExceptionRecord.of(
            CUSTOMER_CONFLICT, f"linked_elsewhere:{_digest(c.id, s.id)}", SOURCE,
            f"customer {c.id} and profile {s.id} share an e-mail but one of them is linked to another customer; "
            "not linked", payload={**self.evidence(c, s), "existing_links": [
                {"commerce_id": x.commerce_id, "store_id": x.store_id} for x in taken]}))
        return False

    def sync_pair(self, c: Customer | None, s: Customer | None, link: state.CustomerLink | None) -> None:
        if link is not None and (c is None or s is None):
            self.r.orphaned += 1
            return
        if link is not None and c is not None and s is not None and \
                c.version == link.commerce_version and s.version == link.store_version:
            self.r.unchanged += 1
            return
        baseline = link.synced_values if link is not None else None
        wrote = False
        try:
            for _ in range(MAX_ROUNDS):
                cc, sc = merge(c, s, baseline)
                if c is not None and s is not None:
                    self.conflicts(c, s, cc, "commerce")
                    self.conflicts(c, s, sc, "store")
                if cc.empty and sc.empty:
                    break
                wrote = True
                if sc.create:
                    assert c is not None
                    s = self.store.create(sc.set, link_id=c.id)
                    if not self.free(c, s):
                        return
                    self.r.created_store += 1
                elif sc.set:
                    assert s is not None
                    s = self.store.update(s, sc.set)
                    self.r.updated_store += 1
                if cc.create:
                    assert s is not None
                    c = self.commerce.create(cc.set, link_id=s.id)
                    if not self.free(c, s):
                        return
                    self.r.created_commerce += 1
                elif cc.set:
                    assert c is not None
                    c = self.commerce.update(c, cc.set)
                    self.r.updated_commerce += 1
                assert c is not None and s is not None
                baseline = c.synced_values() if c.synced_values() == s.synced_values() else baseline
        except StaleCustomer as exc:
            log.info("customer sync: %s; read again next pass", exc)
            self.r.stale += 1
            self.hold(c, s)
            return
        except CustomerWriteRefused as exc:
            self.r.failed += 1
            self.hold(c, s)
            ev = {**self.evidence(c, s), "error": str(exc), **exc.evidence}
            self.r.records.append(ExceptionRecord.of(
                CUSTOMER_WRITE_FAILED, _digest(c and c.id, s and s.id, exc.evidence.get("platform")), SOURCE,
                str(exc), payload=ev))
            return
        assert c is not None and s is not None
        if not wrote:
            self.r.unchanged += 1
        agreed = c.synced_values() == s.synced_values()
        values = c.synced_values() if agreed else (baseline or c.synced_values())
        state.save_link(self.engine, commerce_id=c.id, store_id=s.id, email=email_key(c.email) or "",
                        commerce_version=c.version if agreed else None, store_version=s.version if agreed else None,
                        synced_values=values)
        self._store_email[s.id] = s.email
        if link is None:
            self.new_links.append(c.email)

    def history(self, cursor: str | None, overlap_s: float) -> list[str]:
        """Online orders of linked customers into the store system's order history: orders changed since the
        orders cursor, and every order of a customer linked in this pass. Returns the modification times read."""
        orders: dict[str, HistoryOrder] = {}
        read: list[str] = []
        for order in self.commerce.orders_since(_minus(cursor, overlap_s)):
            orders[order.order_ref] = order
            if order.modified_at:
                read.append(order.modified_at)
        for email in self.new_links:
            for order in self.commerce.orders_since(None, email=email):
                orders.setdefault(order.order_ref, order)
        for order in orders.values():
            link = state.find_link(self.engine, commerce_id=order.customer_id) if order.customer_id else None
            link = link or state.find_link_by_email(self.engine, email_key(order.email) or "")
            email = self.store_email(link.store_id) if link is not None else None
            if link is None or email is None:
                self.r.history_unlinked += 1
                continue
            try:
                # the linked profile's own e-mail: NewStore attaches the order by it (never a second profile)
                added = self.store.add_to_history(replace(order, email=email))
            except CustomerWriteRefused as exc:
                self.r.failed += 1
                self.hold_at(state.ORDERS_SIDE, order.modified_at)
                self.r.records.append(ExceptionRecord.of(
                    CUSTOMER_WRITE_FAILED, f"history:{_digest(order.order_ref)}", SOURCE, str(exc),
                    payload={"order_ref": order.order_ref, "commerce_id": link.commerce_id,
                             "store_id": link.store_id, "error": str(exc), **exc.evidence}))
                continue
            if added:
                self.r.history_added += 1
            else:
                self.r.history_known += 1
        return read

    def store_email(self, store_id: str) -> str | None:
        if store_id not in self._store_email:
            found = self.store.get(store_id)
            self._store_email[store_id] = found.email if found else None
        return self._store_email[store_id]


def run_pass(engine: Engine, commerce: CommerceCustomers, store: StoreCustomers, *,
             overlap_s: float = 300.0, order_history: bool = True) -> PassResult:
    """One incremental pass; exceptions are recorded (`record_exceptions`) and returned in the result. With
    ``order_history``, linked customers' online orders go to the store system's order history."""
    r = PassResult()
    p = _Pass(engine, commerce, store, r)
    cursors = {side: state.cursor(engine, side) for side in (state.COMMERCE_SIDE, state.STORE_SIDE)}
    changed_c = list(commerce.changed_since(_minus(cursors[state.COMMERCE_SIDE], overlap_s)))
    changed_s = list(store.changed_since(_minus(cursors[state.STORE_SIDE], overlap_s)))
    r.read_commerce, r.read_store = len(changed_c), len(changed_s)
    r.store_listing_capped = bool(getattr(store, "listing_capped", False))
    by_c = {c.id: c for c in changed_c}
    by_s = {s.id: s for s in changed_s}

    done_c: set[str] = set()
    done_s: set[str] = set()
    pairs: list[tuple[Customer | None, Customer | None, state.CustomerLink | None]] = []
    unlinked_c: list[Customer] = []
    unlinked_s: list[Customer] = []
    for c in changed_c:
        link = state.find_link(engine, commerce_id=c.id)
        if link is None:
            unlinked_c.append(c)
            continue
        s = by_s.get(link.store_id) or store.get(link.store_id)
        pairs.append((c, s, link))
        done_c.add(c.id)
        done_s.add(link.store_id)
    for s in changed_s:
        if s.id in done_s:
            continue
        link = state.find_link(engine, store_id=s.id)
        if link is None:
            unlinked_s.append(s)
            continue
        c = by_c.get(link.commerce_id) or commerce.get(link.commerce_id)
        pairs.append((c, s, link))
        done_c.add(link.commerce_id)
        done_s.add(s.id)

    for group in match_by_email(unlinked_c, unlinked_s):
        cs, ss = list(group.commerce), list(group.store)
        if not ss:
            ss = [x for x in store.find_by_email(group.email) if state.find_link(engine, store_id=x.id) is None]
        if not cs:
            cs = [x for x in commerce.find_by_email(group.email)
                  if state.find_link(engine, commerce_id=x.id) is None]
        if len(cs) > 1 or len(ss) > 1:
            r.ambiguous += 1
            for rec in (*cs, *ss):
                p.hold(rec if rec in cs else None, rec if rec in ss else None)
            r.records.append(ExceptionRecord.of(
                CUSTOMER_CONFLICT, f"duplicate_email:{_digest(group.email)}", SOURCE,
                f"one e-mail matches {len(cs)} commerce customer(s) and {len(ss)} store profile(s); not synced",
                payload={"email": group.email, "commerce_ids": [x.id for x in cs], "store_ids": [x.id for x in ss],
                         "commerce_platform": getattr(commerce, "platform", "commerce"),
                         "store_platform": getattr(store, "platform", "store")}))
            continue
        pairs.append((cs[0] if cs else None, ss[0] if ss else None, None))

    for c, s, link in pairs:
        p.sync_pair(c, s, link)

    order_times: list[str] = []
    if order_history:
        order_times = p.history(state.cursor(engine, state.ORDERS_SIDE), overlap_s)

    for side, seen in ((state.COMMERCE_SIDE, [x.modified_at for x in changed_c if x.modified_at]),
                       (state.STORE_SIDE, [x.modified_at for x in changed_s if x.modified_at]),
                       (state.ORDERS_SIDE, order_times)):
        if not seen:
            continue
        new = max(seen)
        floor = p.retry_floor.get(side)
        state.set_cursor(engine, side, min(new, floor) if floor else new)
    if r.records:
        record_exceptions(engine, r.records)
    return r
