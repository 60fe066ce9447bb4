"""The core of the commercetools state: records, lock, clock, versions, messages, faults and counters.

Every resource is kept as its API JSON (a dict) in ``self.docs[resource][id]``; reads return deep copies.
Each change goes through :meth:`StateCore._commit`, which bumps ``version`` once per update request, sets
``lastModifiedAt`` and appends the change's Messages (``sequenceNumber`` +1 per resource).
"""

from __future__ import annotations

import copy
import random
import threading
from collections import Counter, deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from .common import TYPE_IDS, CtError, client_ref, concurrent, iso, new_id, not_found, parse_time

# Fields that are ResourceUserProvidedIdentifiers, per message resource (UserProvidedIdentifiers.raml).
_RUPI = {"order": ("orderNumber",), "customer": ("key", "externalId", "customerNumber"),
         "inventory-entry": ("key",), "payment": ("key",)}


class StateCore:
    """Records, lock and the message log. Knobs (constructor keywords) are plain attributes too."""

    def __init__(self, project_key: str, *, clock: Callable[[], datetime] | None = None, seed: int = 0,
                 publication_lag_s: float = 0.0, retention_days: int = 15, inventory_lag_s: float = 0.0,
                 with_total_default: bool = True, burst_rate: float = 0.0, burst_length: int = 3,
                 request_log_size: int = 10_000) -> None:
        self.project_key = project_key
        self.lock = threading.RLock()
        self.clock = clock or (lambda: datetime.now(UTC))
        self.rng = random.Random(seed)
        self.publication_lag_s = publication_lag_s
        self.retention_days = retention_days
        self.inventory_lag_s = inventory_lag_s
        self.with_total_default = with_total_default
        self.burst_rate = burst_rate
        self.burst_length = burst_length
        self.docs: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in TYPE_IDS}
        self.messages: list[dict[str, Any]] = []
        self._visible_at: dict[str, datetime] = {}
        self._created_at: dict[str, datetime] = {}
        self._sequence: dict[str, int] = {}
        self._faults: deque[tuple[int, bool]] = deque()
        self._burst_left = 0
        self._writer: tuple[float, tuple[str, ...], int] | None = None
        self.requests: Counter[tuple[str, str]] = Counter()
        self.updates: Counter[str] = Counter()
        self.request_log: deque[dict[str, Any]] = deque(maxlen=request_log_size)
        self.current_client: str | None = None

    # -- time ------------------------------------------------------------------------------------------

    def now(self) -> datetime:
        ts = self.clock()
        return ts if ts.tzinfo else ts.replace(tzinfo=UTC)

    def _at(self, at: datetime | str | None) -> datetime:
        return parse_time(at) or self.now()

    # -- records ---------------------------------------------------------------------------------------

    def _new_doc(self, resource: str, fields: dict[str, Any], at: datetime | None = None) -> dict[str, Any]:
        ts = iso(at or self.now())
        doc = {"id": fields.pop("id", None) or new_id(), "version": 1, "createdAt": ts, "lastModifiedAt": ts,
               "lastModifiedBy": client_ref(self.current_client), "createdBy": client_ref(self.current_client)}
        doc.update(fields)
        self.docs[resource][doc["id"]] = doc
        return doc

    def _find(self, resource: str, ident: str) -> dict[str, Any]:
        """A record by id, ``key=<key>`` or (orders) ``order-number=<n>``; 404 ResourceNotFound otherwise."""
        docs = self.docs[resource]
        for prefix, field in (("key=", "key"), ("order-number=", "orderNumber")):
            if ident.startswith(prefix):
                value = ident[len(prefix):]
                for doc in docs.values():
                    if doc.get(field) == value:
                        return doc
                raise CtError(404, "ResourceNotFound",
                              f"The Resource with {field} '{value}' was not found.")
        if ident not in docs:
            raise not_found(ident)
        return docs[ident]

    def get(self, resource: str, ident: str) -> dict[str, Any]:
        with self.lock:
            self._settle()
            return copy.deepcopy(self._find(resource, ident))

    def all(self, resource: str) -> list[dict[str, Any]]:
        with self.lock:
            self._settle()
            return [copy.deepcopy(d) for d in self.docs[resource].values()]

    def _check_version(self, resource: str, doc: dict[str, Any], version: Any) -> None:
        self._maybe_other_writer(resource, doc)
        if not isinstance(version, int) or isinstance(version, bool):
            raise CtError(400, "InvalidJsonInput", "Request body does not contain valid JSON.",
                          detailedErrorMessage="version: Missing required value")
        if version != doc["version"]:
            raise concurrent(doc["id"], version, doc["version"])

    def _commit(self, resource: str, doc: dict[str, Any], new: dict[str, Any],
                messages: list[tuple[str, dict[str, Any]]], at: datetime | None = None) -> dict[str, Any]:
        """Replace ``doc`` by ``new`` (version +1) and write its messages."""
        ts = at or self.now()
        new["version"] = doc["version"] + 1
        new["lastModifiedAt"] = iso(ts)
        new["lastModifiedBy"] = client_ref(self.current_client)
        self.docs[resource][new["id"]] = new
        self.updates[resource] += 1
        for mtype, fields in messages:
            self._message(resource, new, mtype, fields, ts)
        return new

    # -- messages --------------------------------------------------------------------------------------

    def _message(self, resource: str, doc: dict[str, Any], mtype: str, fields: dict[str, Any],
                 at: datetime | None = None) -> dict[str, Any]:
        type_id = TYPE_IDS[resource]
        seq = self._sequence.get(doc["id"], 0) + 1
        self._sequence[doc["id"]] = seq
        ts = at or self.now()
        msg: dict[str, Any] = {"id": new_id(), "version": 1, "sequenceNumber": seq,
                               "resource": {"typeId": type_id, "id": doc["id"]},
                               "resourceVersion": doc["version"]}
        rupi = {f: doc[f] for f in _RUPI.get(type_id, ()) if doc.get(f) is not None}
        if rupi:
            msg["resourceUserProvidedIdentifiers"] = rupi
        msg.update({"type": mtype, **copy.deepcopy(fields), "createdAt": iso(ts), "lastModifiedAt": iso(ts),
                    "lastModifiedBy": client_ref(self.current_client),
                    "createdBy": client_ref(self.current_client)})
        lag = self.rng.uniform(0.0, self.publication_lag_s) if self.publication_lag_s > 0 else 0.0
        self._visible_at[msg["id"]] = ts + timedelta(seconds=lag)
        self._created_at[msg["id"]] = ts
        self.messages.append(msg)
        self._deliver(msg)
        return msg

    def _deliver(self, msg: dict[str, Any]) -> None:  # subscriptions (messages.py) override this
        pass

    def message_count(self, mtype: str | None = None) -> int:
        with self.lock:
            return sum(1 for m in self.messages if mtype is None or m["type"] == mtype)

    def all_messages(self) -> list[dict[str, Any]]:
        """Every message written so far (ground truth, no publication lag or retention)."""
        with self.lock:
            return copy.deepcopy(self.messages)

    def visible_messages(self) -> list[dict[str, Any]]:
        """What ``GET /messages`` can see now: published (lag knob) and within retention."""
        now = self.now()
        oldest = now - timedelta(days=self.retention_days)
        return [m for m in self.messages if self._visible_at[m["id"]] <= now and self._created_at[m["id"]] >= oldest]

    # -- faults and other writers ----------------------------------------------------------------------

    def fail_next(self, status: int, count: int = 1, after_execute: bool = False) -> None:
        """The next ``count`` API requests answer ``status``; ``after_execute``: the request takes effect first."""
        with self.lock:
            for _ in range(count):
                self._faults.append((status, after_execute))

    def take_fault(self) -> tuple[int, bool] | None:
        with self.lock:
            if self._faults:
                return self._faults.popleft()
            if self._burst_left > 0:
                self._burst_left -= 1
                return self.rng.choice((502, 503, 504)), False
            if self.burst_rate > 0 and self.rng.random() < self.burst_rate:
                self._burst_left = max(0, self.burst_length - 1)
                return self.rng.choice((502, 503, 504)), False
            return None

    def concurrent_writer(self, rate: float, resources: tuple[str, ...] = ("inventory",), delta: int = 0) -> None:
        """Another writer: with probability ``rate`` an update request finds the record changed (version +1,
        and for inventory ``quantityOnStock`` += ``delta`` via ``addQuantity``) between the client's read and
        its write. ``rate=0`` turns it off."""
        with self.lock:
            self._writer = (rate, tuple(resources), delta) if rate > 0 else None

    def _maybe_other_writer(self, resource: str, doc: dict[str, Any]) -> None:
        if self._writer is None:
            return
        rate, resources, delta = self._writer
        if resource in resources and self.rng.random() < rate:
            self._other_write(resource, doc, delta)

    def _other_write(self, resource: str, doc: dict[str, Any], delta: int) -> dict[str, Any]:
        new = copy.deepcopy(doc)
        messages: list[tuple[str, dict[str, Any]]] = []
        if resource == "inventory" and delta:
            messages = self._quantity_change(new, new["quantityOnStock"] + delta)  # type: ignore[attr-defined]
        saved, self.current_client = self.current_client, "other-writer"
        try:
            committed = self._commit(resource, doc, new, messages)
        finally:
            self.current_client = saved
        doc.clear()
        doc.update(committed)
        return committed

    def _settle(self) -> None:  # inventory.py applies due order deductions
        pass

    # -- request accounting ----------------------------------------------------------------------------

    def record_request(self, method: str, resource: str, path: str, status: int) -> None:
        with self.lock:
            self.requests[(method, resource)] += 1
            self.request_log.append({"method": method, "resource": resource, "path": path, "status": status,
                                     "at": iso(self.now())})

    def request_count(self, method: str | None = None, resource: str | None = None) -> int:
        with self.lock:
            return sum(n for (m, r), n in self.requests.items()
                       if (method is None or m == method) and (resource is None or r == resource))
