"""Event-stream integrations of the NewStore tenant: the registry endpoints and starting an integration
(which replays the requested window of past events)."""

from __future__ import annotations

from typing import Any

from .common import SimError, opt_time
from .core import StateCore
from .records import Integration


class IntegrationsMixin(StateCore):
    def list_integrations(self) -> list[dict[str, Any]]:
        with self._lock:
            return [i.to_json() for i in self._integrations.values()]

    def get_integration(self, integration_id: str) -> dict[str, Any]:
        with self._lock:
            integ = self._integrations.get(integration_id)
            if integ is None:
                raise SimError(404, "integration_not_found", f"Integration {integration_id!r} not found.")
            return integ.to_json()

    def create_integration(self, body: Any) -> dict[str, Any]:
        """Create (and, with callback parameters, start) an event-stream integration."""
        if not isinstance(body, dict) or not isinstance(body.get("id"), str) or not body["id"]:
            raise SimError(400, "bad_request", "'id' is required")
        with self._lock:
            if body["id"] in self._integrations:
                raise SimError(409, "integration_already_exists", f"Integration {body['id']!r} already exists.")
            if len(self._integrations) >= 25:
                raise SimError(400, "too_many_integrations", "At most 25 integrations are allowed.")
            itype = body.get("integration_type", "permanent")
            if itype not in ("permanent", "temporary"):
                raise SimError(400, "bad_request", "integration_type must be permanent or temporary")
            cb = body.get("callback_parameters") or {}
            integ = Integration(
                id=body["id"], integration_type=itype, callback_url=cb.get("callback_url"), api_key=cb.get("api_key"),
                starts_at=opt_time(body.get("starts_at")), ends_at=opt_time(body.get("ends_at")),
                filter_conditions=body.get("filter_conditions"), created_at=self.clock(),
            )
            self._integrations[integ.id] = integ
            if integ.callback_url:
                self._start(integ)
            return integ.to_json()

    def start_integration(self, integration_id: str, body: Any = None) -> dict[str, Any]:
        """``POST .../{id}/_start`` (optionally with new ``callback_parameters``); idempotent."""
        with self._lock:
            integ = self._integrations.get(integration_id)
            if integ is None:
                raise SimError(404, "integration_not_found", f"Integration {integration_id!r} not found.")
            cb = (body or {}).get("callback_parameters") if isinstance(body, dict) else None
            if cb:
                integ.callback_url = cb.get("callback_url", integ.callback_url)
                integ.api_key = cb.get("api_key", integ.api_key)
            if not integ.callback_url:
                raise SimError(400, "bad_request", "callback_parameters.callback_url is required")
            if integ.status != "running":
                self._start(integ)
            return integ.to_json()

    def stop_integration(self, integration_id: str) -> dict[str, Any]:
        with self._lock:
            integ = self._integrations.get(integration_id)
            if integ is None:
                raise SimError(404, "integration_not_found", f"Integration {integration_id!r} not found.")
            integ.status = "stopped"
            return integ.to_json()

    def _start(self, integ: Integration) -> None:
        integ.status = "running"
        if integ.starts_at is not None and self._emitter is not None:  # replay the requested window
            for at, env in self._events:
                if integ.accepts(at):
                    self._emitter.enqueue(env, integ.target())
