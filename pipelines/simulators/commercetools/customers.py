"""Customers: create (``{customer}``), email uniqueness per project, update actions and their Messages."""

from __future__ import annotations

import copy
import secrets
import string
from typing import Any

from .common import duplicate, invalid_input, invalid_json, invalid_operation
from .inventory import _actions, _set
from .orders import OrdersMixin

_ID_CHARS = string.ascii_letters + string.digits


def _address_id() -> str:
    return "".join(secrets.choice(_ID_CHARS) for _ in range(8))


class CustomersMixin(OrdersMixin):
    def _email_taken(self, email: str, other_than: str | None = None) -> bool:
        # ASSUMPTION: uniqueness is case-insensitive (commercetools stores emails case-insensitively by default).
        return any(c["email"].lower() == email.lower() and c["id"] != other_than
                   for c in self.docs["customers"].values())

    def create_customer(self, draft: dict[str, Any]) -> dict[str, Any]:
        """The CustomerSignInResult ``{customer}`` (no cart)."""
        with self.lock:
            if not isinstance(draft, dict) or not isinstance(draft.get("email"), str) or not draft["email"]:
                raise invalid_json("Request body does not contain valid JSON. email: Missing required value")
            mode = draft.get("authenticationMode", "Password")
            if mode not in ("Password", "ExternalAuth"):
                raise invalid_json(f"Request body does not contain valid JSON. Unknown authenticationMode '{mode}'.")
            if mode == "Password" and not draft.get("password"):
                raise invalid_operation("A password is required for authenticationMode 'Password'.")
            if self._email_taken(draft["email"]):
                raise duplicate("email", draft["email"])
            for field in ("key", "customerNumber"):
                if draft.get(field) and any(c.get(field) == draft[field] for c in self.docs["customers"].values()):
                    raise duplicate(field, draft[field])
            addresses = [dict(copy.deepcopy(a), id=a.get("id") or _address_id()) for a in draft.get("addresses") or []]
            fields: dict[str, Any] = {"email": draft["email"], "addresses": addresses, "shippingAddressIds": [],
                                      "billingAddressIds": [], "isEmailVerified": bool(draft.get("isEmailVerified")),
                                      "customerGroupAssignments": [], "stores": [], "authenticationMode": mode}
            for name in ("key", "customerNumber", "externalId", "firstName", "lastName", "middleName", "title",
                         "dateOfBirth", "companyName", "vatId", "locale", "salutation"):
                if draft.get(name) is not None:
                    fields[name] = draft[name]
            for index_field, id_field, ids_field in (("defaultShippingAddress", "defaultShippingAddressId",
                                                      "shippingAddressIds"),
                                                     ("defaultBillingAddress", "defaultBillingAddressId",
                                                      "billingAddressIds")):
                idx = draft.get(index_field)
                if idx is not None:
                    if not isinstance(idx, int) or not 0 <= idx < len(addresses):
                        raise invalid_input(f"'{index_field}' is not a valid address index.")
                    fields[id_field] = addresses[idx]["id"]
                    fields[ids_field].append(addresses[idx]["id"])
            if draft.get("stores"):
                fields["stores"] = [{"typeId": "store", "key": self._resolve("stores", s, "store")["key"]}
                                    for s in draft["stores"]]
            custom = self._custom_from_draft("customers", draft.get("custom"))
            if custom:
                fields["custom"] = custom
            doc = self._new_doc("customers", fields)
            self.updates["customers"] += 1
            self._message("customers", doc, "CustomerCreated", {"customer": copy.deepcopy(doc)})
            return {"customer": copy.deepcopy(doc)}

    def update_customer(self, ident: str, body: Any) -> dict[str, Any]:
        with self.lock:
            doc = self._find("customers", ident)
            actions = _actions(body)
            self._check_version("customers", doc, body.get("version"))
            new = copy.deepcopy(doc)
            messages: list[tuple[str, dict[str, Any]]] = []
            for a in actions:
                messages += self._customer_action(new, a)
            return copy.deepcopy(self._commit("customers", doc, new, messages))

    def _customer_action(self, c: dict[str, Any], a: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        name = a["action"]
        if name == "setFirstName":
            _set(c, "firstName", a.get("firstName"))
            return [("CustomerFirstNameSet", {"firstName": a["firstName"]} if a.get("firstName") else {})]
        if name == "setLastName":
            _set(c, "lastName", a.get("lastName"))
            return [("CustomerLastNameSet", {"lastName": a["lastName"]} if a.get("lastName") else {})]
        if name == "changeEmail":
            email = a.get("email")
            if not isinstance(email, str) or not email:
                raise invalid_json("Request body does not contain valid JSON. email: Missing required value")
            if self._email_taken(email, c["id"]):
                raise duplicate("email", email)
            old, c["email"] = c["email"], email
            return [("CustomerEmailChanged", {"email": email, "oldEmail": old})]
        if name in ("setKey", "setCustomerNumber"):
            field = "key" if name == "setKey" else "customerNumber"
            value = a.get(field)
            if value and any(o.get(field) == value and o["id"] != c["id"] for o in self.docs["customers"].values()):
                raise duplicate(field, value)
            if field == "customerNumber" and c.get("customerNumber"):
                raise invalid_operation("The customer number can only be set once.")
            _set(c, field, value)
            return []
        if name == "setExternalId":
            _set(c, "externalId", a.get("externalId"))
            return [("CustomerExternalIdSet", {"externalId": a["externalId"]} if a.get("externalId") else {})]
        if name == "addAddress":
            address = dict(copy.deepcopy(a.get("address") or {}), id=_address_id())
            if not address.get("country"):
                raise invalid_input("An address needs a 'country'.")
            c["addresses"].append(address)
            return [("CustomerAddressAdded", {"address": copy.deepcopy(address)})]
        if name == "changeAddress":
            idx = self._address_index(c, a)
            address = dict(copy.deepcopy(a.get("address") or {}), id=c["addresses"][idx]["id"])
            c["addresses"][idx] = address
            return [("CustomerAddressChanged", {"address": copy.deepcopy(address)})]
        if name == "setDefaultShippingAddress":
            if a.get("addressId") is None and a.get("addressKey") is None:
                c.pop("defaultShippingAddressId", None)
                return [("CustomerDefaultShippingAddressSet", {})]
            address = c["addresses"][self._address_index(c, a)]
            c["defaultShippingAddressId"] = address["id"]
            if address["id"] not in c["shippingAddressIds"]:
                c["shippingAddressIds"].append(address["id"])
            return [("CustomerDefaultShippingAddressSet", {"address": copy.deepcopy(address)})]
        if name in ("setCustomType", "setCustomField"):
            return self._custom_action("customers", c, a, "Customer")
        raise invalid_json(f"Request body does not contain valid JSON. Unknown action '{name}'.")

    @staticmethod
    def _address_index(c: dict[str, Any], a: dict[str, Any]) -> int:
        for i, addr in enumerate(c["addresses"]):
            if (a.get("addressId") and addr["id"] == a["addressId"]) or \
                    (a.get("addressKey") and addr.get("key") == a["addressKey"]):
                return i
        raise invalid_input(f"The customer does not have an address '{a.get('addressId') or a.get('addressKey')}'.")
