"""Messages query and Subscriptions with an in-memory queue destination.

``GET /messages`` sees a message once it is published (``publication_lag_s`` knob: each message becomes
visible a random 0..lag seconds after its ``createdAt``, so pulls see them out of ``createdAt`` order) and while
it is within ``retention_days`` (``deleteDaysAfterCreation``, default 15).

Subscriptions accept any ``destination`` (the real API offers only cloud queues, no HTTP webhook); deliveries of
matching messages are queued per subscription as MessageDeliveryPayload ``{notificationType: "Message",
projectKey, ...message}``. Knobs on :class:`DeliveryKnobs`: ``duplicate_rate`` (at-least-once), ``shuffle_window``
(delivery order shuffled inside windows of that many payloads), ``delay_s``. ``subscription_queue(key)`` drains
what was delivered so far.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .common import duplicate, invalid_input, iso, ref
from .customers import CustomersMixin


@dataclass
class DeliveryKnobs:
    duplicate_rate: float = 0.0
    shuffle_window: int = 1
    delay_s: float = 0.0


class MessagesMixin(CustomersMixin):
    def _init_messages(self, knobs: DeliveryKnobs | None) -> None:
        self.delivery = knobs or DeliveryKnobs()
        self._queues: dict[str, list[tuple[datetime, dict[str, Any]]]] = {}
        self._sub_of_key: dict[str, str] = {}

    def query_messages(self) -> list[dict[str, Any]]:
        with self.lock:
            self._settle()
            return copy.deepcopy(self.visible_messages())

    # -- subscriptions ---------------------------------------------------------------------------------

    def create_subscription(self, draft: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            if not isinstance(draft, dict) or not isinstance(draft.get("destination"), dict):
                raise invalid_input("A SubscriptionDraft needs a 'destination'.")
            if not draft.get("messages") and not draft.get("changes") and not draft.get("events"):
                raise invalid_input("A subscription needs at least one of 'messages', 'changes' or 'events'.")
            if len(self.docs["subscriptions"]) >= 50:
                raise invalid_input("A project can have at most 50 subscriptions.")
            key = draft.get("key")
            if key and any(s.get("key") == key for s in self.docs["subscriptions"].values()):
                raise duplicate("key", key)
            fields = {"destination": copy.deepcopy(draft["destination"]),
                      "messages": copy.deepcopy(draft.get("messages") or []),
                      "changes": copy.deepcopy(draft.get("changes") or []),
                      "events": copy.deepcopy(draft.get("events") or []),
                      "format": copy.deepcopy(draft.get("format") or {"type": "Platform"}), "status": "Healthy"}
            if key:
                fields["key"] = key
            doc = self._new_doc("subscriptions", fields)
            qkey = key or doc["id"]
            self._sub_of_key[qkey] = doc["id"]
            # ASSUMPTION: the test message's shape (docs: "a test message is sent on create"; body not captured).
            now = self.now()
            self._queues[doc["id"]] = [(now, {"notificationType": "ResourceCreated", "projectKey": self.project_key,
                                              "resource": ref("subscription", doc["id"]), "version": 1,
                                              "modifiedAt": iso(now)})]
            return copy.deepcopy(doc)

    def _deliver(self, msg: dict[str, Any]) -> None:
        for sub in self.docs["subscriptions"].values():
            if not any(m.get("resourceTypeId") == msg["resource"]["typeId"]
                       and (not m.get("types") or msg["type"] in m["types"]) for m in sub["messages"]):
                continue
            payload = {"notificationType": "Message", "projectKey": self.project_key, **copy.deepcopy(msg)}
            due = self.now() + timedelta(seconds=self.delivery.delay_s)
            queue = self._queues.setdefault(sub["id"], [])
            queue.append((due, payload))
            if self.delivery.duplicate_rate > 0 and self.rng.random() < self.delivery.duplicate_rate:
                queue.append((due, copy.deepcopy(payload)))

    def subscription_queue(self, key: str) -> list[dict[str, Any]]:
        """Drain what the subscription (by key, or id) has delivered by now, in delivery order."""
        with self.lock:
            sid = self._sub_of_key.get(key, key)
            queue = self._queues.get(sid, [])
            now = self.now()
            ready = [p for due, p in queue if due <= now]
            self._queues[sid] = [(due, p) for due, p in queue if due > now]
            window = max(1, self.delivery.shuffle_window)
            out: list[dict[str, Any]] = []
            for i in range(0, len(ready), window):
                chunk = ready[i:i + window]
                self.rng.shuffle(chunk)
                out += chunk
            return out

