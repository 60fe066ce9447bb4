"""Single customer view between the commerce platform and the store system: who owns which field, and the pure
merge of one customer's two records (no Dagster, no I/O).

Ownership (:data:`OWNERSHIP`, one row per field; `docs/customers.md` prints it): the commerce platform owns the
online identity (the e-mail the customer logs in with, the names on the account, the address book, marketing
consent given online); the store system owns what is captured at the till (phone number, home store, the
associate who created the profile, store attributes such as a loyalty id). A field is synced only when both
platforms have a documented field for it (:data:`SYNCED_FIELDS`); the other rows say where the value lives and
why it stays there.

:func:`merge` takes the two records of one customer (either may be missing) and the values last synced for the
pair (None before the first sync) and returns what to write on each side:

* one side missing: create the customer on the other side with the synced fields it has;
* a synced field that differs: the owner's value is written to the other side, never the newer one. When the
  other side's value had changed since the last sync (someone edited an owned field on the wrong side), the
  overwrite is reported as a :class:`FieldConflict` so a person can carry a legitimate change over to the owner;
* the owner has no value: the other side's value fills the gap (a customer captured in store gets the name the
  associate typed), unless the owner cleared a value it had at the last sync (the clear is propagated).

Values are compared normalised (:func:`normalise`: trimmed, e-mails case-folded, empty = absent), so a second
pass over the same records writes nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

COMMERCE = "commerce"
STORE = "store"


@dataclass(frozen=True)
class FieldRule:
    """One field of the single customer view: its owner and where each platform keeps it (None: nowhere)."""

    name: str
    owner: str  # COMMERCE | STORE
    commerce_field: str | None
    store_field: str | None
    why: str

    @property
    def synced(self) -> bool:
        return self.commerce_field is not None and self.store_field is not None


OWNERSHIP: tuple[FieldRule, ...] = (
    FieldRule("email", COMMERCE, "email", "email",
              "The online login and the key both platforms match customers on (unique per commercetools project; "
              "NewStore's create is get-or-create by e-mail). Changed online only; a change made in store is "
              "overwritten and reported."),
    FieldRule("first_name", COMMERCE, "firstName", "first_name",
              "Name on the online account. Filled from the store when the account has none (customer first "
              "captured at the till)."),
    FieldRule("last_name", COMMERCE, "lastName", "last_name",
              "As first_name."),
    FieldRule("addresses", COMMERCE, "addresses", None,
              "The online address book. NewStore's customer profile API has no address field: NewStore adds "
              "addresses to a profile from the orders it receives (imported orders)."),
    FieldRule("marketing_consent", COMMERCE, None, None,
              "Not synced: neither commercetools' Customer nor NewStore's profile has a documented consent field "
              "(a commercetools Custom Field or a NewStore extended attribute would be the retailer's own "
              "definition). Consent stays with the online account, where its proof is kept."),
    FieldRule("phone", STORE, None, "phone_number",
              "Captured at the till (E.164). commercetools' Customer has no phone field (only an address's)."),
    FieldRule("home_store", STORE, None, "store_id",
              "The store the profile was created in."),
    FieldRule("created_by", STORE, None, "created_by",
              "The associate who captured the customer."),
    FieldRule("store_attributes", STORE, None, "extended_attributes",
              "Store-defined attributes (e.g. a loyalty id); a PATCH that carries them replaces them all, so the "
              "sync never sends them."),
)

RULES: dict[str, FieldRule] = {r.name: r for r in OWNERSHIP}
SYNCED_FIELDS: tuple[str, ...] = tuple(r.name for r in OWNERSHIP if r.synced)


@dataclass(frozen=True)
class Customer:
    """One platform's record of a customer, in neutral terms (adapters build it from the platform's JSON).

    ``version`` is the platform's concurrency token (commercetools: the resource version; NewStore: the profile's
    ``updated_at``, sent back as ``last_updated_at``); ``modified_at`` is when it last changed (ISO-8601 UTC).
    """

    id: str
    email: str
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    home_store: str | None = None
    version: str | None = None
    modified_at: str | None = None

    def synced_values(self) -> dict[str, str | None]:
        return {name: normalise(name, getattr(self, name, None)) for name in SYNCED_FIELDS}


@dataclass(frozen=True)
class FieldConflict:
    """An owned field edited on the non-owning side and overwritten with the owner's value."""

    field: str
    owner: str
    kept: str | None  # the owner's value, now on both sides
    overridden: str | None  # the other side's value, replaced
    last_synced: str | None


@dataclass(frozen=True)
class Changes:
    """What to write on one side: create it, or set fields (field name -> value, None clears)."""

    create: bool = False
    set: Mapping[str, str | None] = field(default_factory=dict)
    overridden: tuple[FieldConflict, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.create and not self.set


NO_CHANGES = Changes()


def normalise(name: str, value: object) -> str | None:
    """The comparable form of a field value: trimmed text, e-mails case-folded, empty as None."""
    if value is None:
        return None
    text = " ".join(str(value).split())
    if not text:
        return None
    return text.casefold() if name == "email" else text


def email_key(email: str | None) -> str | None:
    """The match key of an e-mail address."""
    return normalise("email", email)


def values_hash(values: Mapping[str, str | None]) -> str:
    """A stable fingerprint of synced values (kept with the link)."""
    return hashlib.sha256(json.dumps(dict(sorted(values.items())), sort_keys=True).encode()).hexdigest()[:32]


def merge(commerce: Customer | None, store: Customer | None,
          last_synced: Mapping[str, str | None] | None = None) -> tuple[Changes, Changes]:
    """``(commerce_changes, store_changes)`` for one customer (see the module docstring)."""
    if commerce is None and store is None:
        return NO_CHANGES, NO_CHANGES
    if store is None:
        assert commerce is not None
        return NO_CHANGES, Changes(create=True, set=_present(commerce))
    if commerce is None:
        return Changes(create=True, set=_present(store)), NO_CHANGES
    sides = {COMMERCE: commerce.synced_values(), STORE: store.synced_values()}
    raw = {COMMERCE: commerce, STORE: store}
    writes: dict[str, dict[str, str | None]] = {COMMERCE: {}, STORE: {}}
    conflicts: dict[str, list[FieldConflict]] = {COMMERCE: [], STORE: []}
    for name in SYNCED_FIELDS:
        rule = RULES[name]
        owner, other = rule.owner, (STORE if rule.owner == COMMERCE else COMMERCE)
        mine, theirs = sides[owner][name], sides[other][name]
        if mine == theirs:
            continue
        before = normalise(name, last_synced.get(name)) if last_synced is not None else None
        if mine is None and before is None:  # a gap on the owner's side: fill it
            writes[owner][name] = _raw(raw[other], name)
            continue
        # the owner's value (or the owner's clear) wins; report an edit made on the other side since the last sync
        writes[other][name] = _raw(raw[owner], name) if mine is not None else None
        other_edited = theirs != before if last_synced is not None else theirs is not None
        if other_edited:
            conflicts[other].append(FieldConflict(name, owner, mine, theirs, before))
    return (Changes(set=writes[COMMERCE], overridden=tuple(conflicts[COMMERCE])),
            Changes(set=writes[STORE], overridden=tuple(conflicts[STORE])))


def after(customer: Customer, changes: Changes) -> dict[str, str | None]:
    """The synced values of ``customer`` once ``changes`` are applied (what the link records as last synced)."""
    values = customer.synced_values()
    values.update({k: normalise(k, v) for k, v in changes.set.items()})
    return values


def _present(customer: Customer) -> dict[str, str | None]:
    return {name: _raw(customer, name) for name in SYNCED_FIELDS if customer.synced_values()[name] is not None}


def _raw(customer: Customer, name: str) -> str | None:
    value = getattr(customer, name, None)
    if value is None:
        return None
    text = " ".join(str(value).split())
    return text or None


@dataclass(frozen=True)
class EmailMatch:
    """Unlinked records grouped by e-mail: a pair, a one-sided record, or an ambiguous group."""

    email: str
    commerce: tuple[Customer, ...]
    store: tuple[Customer, ...]

    @property
    def ambiguous(self) -> bool:
        return len(self.commerce) > 1 or len(self.store) > 1


def match_by_email(commerce: Iterable[Customer], store: Iterable[Customer]) -> list[EmailMatch]:
    """Group unlinked records of both sides by normalised e-mail (records without one are left out)."""
    groups: dict[str, tuple[list[Customer], list[Customer]]] = {}
    for side, records in ((0, commerce), (1, store)):
        for c in records:
            key = email_key(c.email)
            if key is None:
                continue
            bucket = groups.setdefault(key, ([], []))[side]
            if all(x.id != c.id for x in bucket):
                bucket.append(c)
    return [EmailMatch(k, tuple(c), tuple(s)) for k, (c, s) in sorted(groups.items())]
