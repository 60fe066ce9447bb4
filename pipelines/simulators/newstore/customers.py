"""NewStore's customer profile API in the fake (portal spec "customer-profile", scopes ``customer:profile:*``).
Sources per field and behaviour: ``PROVENANCE.md``, section "Customer profiles".

* ``GET /customer/profiles?q&sort&offset&count`` -> ``{pagination_info{count,offset,total}, profiles[]}``.
* ``POST /customer/profiles`` -> 201 with the profile: get-or-create by e-mail (an existing profile comes back
  unchanged, also 201).
* ``GET /customer/profiles/{profile_id}``; ``PATCH /customer/profiles/{profile_id}`` (``last_updated_at``
  required; 409 when the profile changed after it).

World API (sim-only, for tests and generators): :meth:`CustomerProfiles.capture` (a store associate creates a
profile at the till), :meth:`CustomerProfiles.edit` (an associate edits one), :meth:`CustomerProfiles.profiles`;
knobs on :class:`CustomerKnobs` (``app.state.customers.knobs``).
"""

from __future__ import annotations

import itertools
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from .common import SimError, iso, parse_time
from .framework import ApiBase

_STRING_FIELDS = ("email", "first_name", "last_name", "full_name", "phone_number", "store_id", "created_by")


@dataclass
class CustomerKnobs:
    """Behaviour of the customer profile API; defaults are the documented values where there is one."""

    max_count: int = 500  # spec: count maximum 500
    listing_limit: int = 10_000  # spec: "a maximum limit of 10,000 profiles"; beyond it "the API will start
    # returning errors" (status not documented: ASSUMPTION 400 `pagination_limit_exceeded`)
    email_unique: bool = True  # ASSUMPTION: an e-mail taken by another profile on PATCH is a 422
    id_prefix: str = ""  # ASSUMPTION: ids are opaque strings (spec example "NS-EU-<ulid>-<ulid>"); uuid4 by default


@dataclass
class ProfileRecord:
    id: str
    display_id: str
    email: str
    created_at: datetime
    updated_at: datetime
    first_name: str = ""
    last_name: str = ""
    full_name: str = ""
    phone_number: str = ""
    store_id: str = ""
    created_by: str = ""
    extended_attributes: dict[str, dict[str, str]] = field(default_factory=dict)

    def view(self) -> dict[str, Any]:
        return {"id": self.id, "display_id": self.display_id, "email": self.email, "first_name": self.first_name,
                "last_name": self.last_name, "full_name": self.full_name, "phone_number": self.phone_number,
                "store_id": self.store_id, "created_by": self.created_by,
                "extended_attributes": {k: dict(v) for k, v in self.extended_attributes.items()},
                "created_at": iso(self.created_at), "updated_at": iso(self.updated_at)}


def _ms(dt: datetime) -> datetime:
    """Times at the millisecond precision the API renders (so a read ``updated_at`` compares equal)."""
    return dt.replace(microsecond=dt.microsecond // 1000 * 1000)


def _names(body: dict[str, Any]) -> dict[str, str]:
    """The name fields of a request: first/last or full name, never both (spec: "Providing both approaches will
    result in a bad request error")."""
    split = any(body.get(k) not in (None, "") for k in ("first_name", "last_name"))
    full = body.get("full_name") not in (None, "")
    if split and full:
        raise SimError(400, "bad_request", "Provide either first_name and last_name or full_name, not both.")
    if split:
        first, last = str(body.get("first_name") or ""), str(body.get("last_name") or "")
        return {"first_name": first, "last_name": last, "full_name": " ".join(x for x in (first, last) if x)}
    if full:
        return {"full_name": str(body["full_name"])[:256], "first_name": "", "last_name": ""}
    return {}


def _check_body(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise SimError(400, "bad_request", "The request body must be a JSON object.")
    for key in _STRING_FIELDS:
        if body.get(key) is not None and not isinstance(body[key], str):
            raise SimError(400, "bad_request", f"'{key}' must be a string.")
    attrs = body.get("extended_attributes")
    if attrs is not None and (not isinstance(attrs, dict) or not all(
            isinstance(v, dict) and "data_type" in v and "value" in v for v in attrs.values())):
        raise SimError(400, "bad_request", "'extended_attributes' values must be {data_type, value}.")
    return body


class CustomerProfiles:
    """The tenant's customer profiles. Thread-safe."""

    def __init__(self, *, clock: Callable[[], datetime] | None = None, knobs: CustomerKnobs | None = None) -> None:
        self.clock = clock or (lambda: datetime.now(UTC))
        self.knobs = knobs or CustomerKnobs()
        self._lock = threading.RLock()
        self._profiles: dict[str, ProfileRecord] = {}
        self._display = itertools.count(100001)

    # -- world API -----------------------------------------------------------------------------------------------

    def capture(self, email: str, *, first_name: str | None = None, last_name: str | None = None,
                phone_number: str | None = None, store_id: str | None = None,
                associate_id: str | None = None) -> dict[str, Any]:
        """A store associate creates a profile at the till (the same path as the API's create)."""
        body = {"email": email, "first_name": first_name, "last_name": last_name, "phone_number": phone_number,
                "store_id": store_id, "created_by": associate_id}
        return self.create({k: v for k, v in body.items() if v is not None})

    def edit(self, profile_id: str, **changes: Any) -> dict[str, Any]:
        """A store associate edits a profile (no concurrency check)."""
        with self._lock:
            rec = self._get(profile_id)
            return self.update(profile_id, {"last_updated_at": iso(rec.updated_at), **changes})

    def profiles(self) -> list[dict[str, Any]]:
        with self._lock:
            return [p.view() for p in self._ordered()]

    # -- API -----------------------------------------------------------------------------------------------------

    def create(self, body: Any) -> dict[str, Any]:
        body = _check_body(body)
        email = body.get("email")
        if not isinstance(email, str) or not email.strip():
            raise SimError(400, "bad_request", "'email' is a required property.")
        names = _names(body)
        with self._lock:
            existing = self._by_email(email)
            if existing is not None:  # get-or-create: returned unchanged
                return existing.view()
            now = _ms(self.clock())
            rec = ProfileRecord(id=f"{self.knobs.id_prefix}{uuid.uuid4()}", display_id=str(next(self._display)),
                                email=email.strip(), created_at=now, updated_at=now,
                                extended_attributes=dict(body.get("extended_attributes") or {}), **names)
            for key in ("phone_number", "store_id", "created_by"):
                if body.get(key):
                    setattr(rec, key, body[key])
            self._profiles[rec.id] = rec
            return rec.view()

    def show(self, profile_id: str) -> dict[str, Any]:
        with self._lock:
            return self._get(profile_id).view()

    def update(self, profile_id: str, body: Any) -> dict[str, Any]:
        body = _check_body(body)
        raw = body.get("last_updated_at")
        if not raw:
            raise SimError(400, "bad_request", "'last_updated_at' is a required property.")
        try:
            given = parse_time(str(raw))
        except ValueError:
            raise SimError(400, "bad_request", f"invalid date-time {raw!r}") from None
        names = _names(body)
        with self._lock:
            rec = self._get(profile_id)
            if rec.updated_at > given:
                raise SimError(409, "conflict", "The profile has a newer state than the given last_updated_at.")
            email = body.get("email")
            if email is not None:
                if not email.strip():
                    raise SimError(422, "unprocessable_entity", "'email' must not be empty.")
                other = self._by_email(email)
                if self.knobs.email_unique and other is not None and other.id != rec.id:
                    raise SimError(422, "email_already_exists", "Another profile has this e-mail.")
                rec.email = email.strip()
            for key, value in names.items():
                setattr(rec, key, value)
            for key in ("phone_number", "store_id", "created_by"):
                if key in body and body[key] is not None:
                    setattr(rec, key, body[key])
            if "extended_attributes" in body and body["extended_attributes"] is not None:
                rec.extended_attributes = dict(body["extended_attributes"])  # spec: replaces the existing ones
            now = _ms(self.clock())
            rec.updated_at = max(now, rec.updated_at + timedelta(milliseconds=1))  # every change moves it on
            return rec.view()

    def listing(self, q: str | None, offset: int, count: int) -> dict[str, Any]:
        if count < 1 or count > self.knobs.max_count:
            raise SimError(400, "bad_request", f"'count' must be between 1 and {self.knobs.max_count}.")
        if offset < 0:
            raise SimError(400, "bad_request", "'offset' must be 0 or more.")
        if offset + count > self.knobs.listing_limit:
            raise SimError(400, "pagination_limit_exceeded",
                           f"Profiles beyond {self.knobs.listing_limit} cannot be paged through.")
        with self._lock:
            rows = [p for p in self._ordered() if self._matches(p, q)]
            page = rows[offset:offset + count]
            return {"pagination_info": {"count": len(page), "offset": offset, "total": len(rows)},
                    "profiles": [p.view() for p in page]}

    # -- helpers -------------------------------------------------------------------------------------------------

    def _get(self, profile_id: str) -> ProfileRecord:
        rec = self._profiles.get(profile_id)
        if rec is None:
            raise SimError(404, "not_found", f"Profile {profile_id} not found.")
        return rec

    def _by_email(self, email: str) -> ProfileRecord | None:
        key = email.strip().casefold()
        return next((p for p in self._ordered() if p.email.casefold() == key), None)

    def _ordered(self) -> list[ProfileRecord]:
        return sorted(self._profiles.values(), key=lambda p: (p.created_at, p.display_id))

    @staticmethod
    def _matches(p: ProfileRecord, q: str | None) -> bool:
        if not q:
            return True
        term = q.casefold()
        if q in (p.id, p.display_id):
            return True
        return any(term in v.casefold() for v in (p.email, p.full_name, p.phone_number) if v)


def _int_param(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise SimError(400, "bad_request", f"'{name}' must be an integer.") from None


class CustomerHandlers(ApiBase):
    """The customer profile routes (mixed into the app beside the other handlers)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.customers = CustomerProfiles(clock=self.state.clock)

    async def list_profiles(self, request: Request, body: Any) -> Any:
        return self.customers.listing(request.query_params.get("q"), _int_param(request, "offset", 0),
                                      _int_param(request, "count", 10))

    async def create_profile(self, request: Request, body: Any) -> Any:
        return 201, self.customers.create(body)

    async def show_profile(self, request: Request, body: Any) -> Any:
        return self.customers.show(request.path_params["profile_id"])

    async def update_profile(self, request: Request, body: Any) -> Any:
        return self.customers.update(request.path_params["profile_id"], body)

    def customer_routes(self) -> list[Route]:
        a = self.api
        return [
            Route("/customer/profiles", a(self.list_profiles), methods=["GET"]),
            Route("/customer/profiles", a(self.create_profile), methods=["POST"]),
            Route("/customer/profiles/{profile_id}", a(self.show_profile), methods=["GET"]),
            Route("/customer/profiles/{profile_id}", a(self.update_profile), methods=["PATCH"]),
        ]
