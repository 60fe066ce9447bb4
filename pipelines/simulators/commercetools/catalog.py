"""The project built from the estate: channels, stores, tax categories, products (with prices) and Types.

Conventions (issue 13, ``ct_common.md``): a supply channel per stock location keyed by the location id, the web
price channel, a Store per market, one Product per estate product (``key`` = product number) with a variant per
size (``sku`` = ``key`` = SKU, attributes ``colour``/``size``/``ean``), prices per price list and country on the web
channel (tax included), one TaxCategory ``standard`` with the estate's tax rates (``includedInPrice`` true).
"""

from __future__ import annotations

import copy
from typing import Any

from pipelines.estate.model import Estate

from .common import CtError, cents, duplicate, invalid_input, invalid_operation, money, new_id, ref
from .core import StateCore

# resourceTypeIds a Type may name, per resource path (ResourceTypeId in the RAML).
RESOURCE_TYPE_IDS = {"inventory": "inventory-entry", "orders": "order", "customers": "customer",
                     "payments": "payment", "channels": "channel"}


class CatalogMixin(StateCore):
    estate: Estate

    def _build_catalog(self, estate: Estate) -> None:
        ct = estate.commercetools
        if ct is None:
            raise ValueError("the estate has no commercetools section")
        self.channel_ids: dict[str, str] = {}
        for ch in ct.channels:
            doc = self._new_doc("channels", {"key": ch.key, "roles": list(ch.roles), "name": {"en": ch.name}})
            self.channel_ids[ch.key] = doc["id"]
        for st in ct.stores:
            self._new_doc("stores", {
                "key": st.key, "name": {"en": st.name}, "languages": list(st.languages),
                "countries": [{"code": c} for c in st.countries],
                "distributionChannels": [ref("channel", self.channel_ids[k]) for k in st.distribution_channel_keys],
                "supplyChannels": [ref("channel", self.channel_ids[k]) for k in st.supply_channel_keys],
                "productSelections": []})
        rates = [{"id": new_id()[:8], "name": f"{country} VAT", "amount": rate, "includedInPrice": True,
                  "country": country, "subRates": []} for country, rate in sorted(estate.tax_rates.items())]
        self.tax_category = self._new_doc("tax-categories", {"key": "standard", "name": "Standard", "rates": rates})
        self.product_type = self._new_doc("product-types", {
            "key": "garment", "name": "Garment", "description": "Simulated apparel",
            "attributes": [{"name": name, "label": {"en": name.capitalize()}, "type": {"name": "text"},
                            "isRequired": False, "attributeConstraint": "None", "isSearchable": True,
                            "inputHint": "SingleLine", "level": "Variant"} for name in ("colour", "size", "ean")]})
        web = self.channel_ids[ct.price_channel_key]
        self.variant_of_sku: dict[str, tuple[str, int]] = {}
        for product in estate.catalog:
            variants: list[dict[str, Any]] = []
            for variant in product.variants:
                for size in variant.sizes:
                    prices = []
                    for pl in estate.centra.pricelists:
                        amount = variant.prices.get(pl.id, variant.prices.get(str(pl.id)))  # type: ignore[call-overload]
                        if amount is None:
                            continue
                        for country in pl.countries:
                            prices.append({"id": new_id(), "value": money(cents(amount), pl.currency),
                                           "country": country, "channel": ref("channel", web)})
                    variants.append({"id": len(variants) + 1, "sku": size.sku, "key": size.sku, "prices": prices,
                                     "images": [], "attributes": [{"name": "colour", "value": variant.name},
                                                                  {"name": "size", "value": size.size},
                                                                  *([{"name": "ean", "value": size.ean}]
                                                                    if size.ean else [])],
                                     "assets": []})
            if not variants:
                continue
            data = {"name": {"en": product.name}, "description": {"en": product.name}, "categories": [],
                    "categoryOrderHints": {}, "slug": {"en": product.product_number.lower()},
                    "masterVariant": variants[0], "variants": variants[1:], "searchKeywords": {}, "attributes": []}
            doc = self._new_doc("products", {
                "key": product.product_number, "productType": ref("product-type", self.product_type["id"]),
                "masterData": {"current": data, "staged": copy.deepcopy(data), "published": True,
                               "hasStagedChanges": False},
                "taxCategory": ref("tax-category", self.tax_category["id"]), "priceMode": "Embedded"})
            for v in variants:
                self.variant_of_sku[v["sku"]] = (doc["id"], v["id"])

    # -- views -----------------------------------------------------------------------------------------

    def product_projections(self, staged: bool = False) -> list[dict[str, Any]]:
        """ProductProjections of the current (``staged=False``) or staged data."""
        with self.lock:
            out = []
            for p in self.docs["products"].values():
                data = p["masterData"]["staged" if staged else "current"]
                out.append(copy.deepcopy({
                    "id": p["id"], "version": p["version"], "key": p.get("key"), "productType": p["productType"],
                    **data, "taxCategory": p["taxCategory"], "published": p["masterData"]["published"],
                    "hasStagedChanges": p["masterData"]["hasStagedChanges"], "priceMode": p.get("priceMode"),
                    "createdAt": p["createdAt"], "lastModifiedAt": p["lastModifiedAt"]}))
            return out

    def _variant(self, sku: str) -> tuple[dict[str, Any], dict[str, Any]]:
        if sku not in self.variant_of_sku:
            raise invalid_input(f"A product variant with SKU '{sku}' does not exist.")
        pid, vid = self.variant_of_sku[sku]
        product = self.docs["products"][pid]
        data = product["masterData"]["current"]
        variant = next(v for v in [data["masterVariant"], *data["variants"]] if v["id"] == vid)
        return product, variant

    def channel_id(self, key: str) -> str:
        if key not in self.channel_ids:
            raise KeyError(f"no channel {key!r}")
        return self.channel_ids[key]

    def _resolve(self, resource: str, identifier: Any, what: str) -> dict[str, Any]:
        """A ResourceIdentifier ``{typeId?, id | key}`` -> the record (400 InvalidInput when it does not exist)."""
        if not isinstance(identifier, dict) or not (identifier.get("id") or identifier.get("key")):
            raise invalid_input(f"'{what}' must name an 'id' or a 'key'.")
        for doc in self.docs[resource].values():
            if identifier.get("id") and doc["id"] == identifier["id"]:
                return doc
            if not identifier.get("id") and identifier.get("key") and doc.get("key") == identifier["key"]:
                return doc
        raise CtError(400, "ReferencedResourceNotFound",
                      f"The referenced object of type '{identifier.get('typeId', what)}' "
                      f"'{identifier.get('id') or identifier.get('key')}' was not found. It either doesn't exist, or "
                      "it can't be accessed from this endpoint (e.g., if the endpoint filters by store or customer "
                      "account).", typeId=identifier.get("typeId", what),
                      **({"id": identifier["id"]} if identifier.get("id") else {"key": identifier["key"]}))

    # -- Types (custom fields) -------------------------------------------------------------------------

    def create_type(self, draft: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            if not isinstance(draft, dict) or not draft.get("key") or not draft.get("name") \
                    or not isinstance(draft.get("resourceTypeIds"), list):
                raise invalid_input("A TypeDraft needs 'key', 'name' and 'resourceTypeIds'.")
            if any(t.get("key") == draft["key"] for t in self.docs["types"].values()):
                raise duplicate("key", draft["key"])
            doc = self._new_doc("types", {"key": draft["key"], "name": draft["name"],
                                          "description": draft.get("description"),
                                          "resourceTypeIds": list(draft["resourceTypeIds"]),
                                          "fieldDefinitions": list(draft.get("fieldDefinitions") or [])})
            if doc["description"] is None:
                del doc["description"]
            return copy.deepcopy(doc)

    def update_type(self, ident: str, body: Any) -> dict[str, Any]:
        """POST /types/{ident} ``{version, actions}``: ``addFieldDefinition`` (a field name the type has already: 400
        InvalidOperation, an ASSUMPTION: the error code for it is not captured)."""
        with self.lock:
            doc = self._find("types", ident)
            if not isinstance(body, dict) or not isinstance(body.get("actions"), list):
                raise invalid_input("A type update needs 'version' and 'actions'.")
            self._check_version("types", doc, body.get("version"))
            new = copy.deepcopy(doc)
            for action in body["actions"]:
                if action.get("action") != "addFieldDefinition" or not isinstance(action.get("fieldDefinition"), dict):
                    raise invalid_input(f"Unsupported type update action {action.get('action')!r} (simulator).")
                name = action["fieldDefinition"].get("name")
                if any(f.get("name") == name for f in new["fieldDefinitions"]):
                    raise invalid_operation(f"A field definition with the name '{name}' already exists.")
                new["fieldDefinitions"].append(copy.deepcopy(action["fieldDefinition"]))
            return copy.deepcopy(self._commit("types", doc, new, [], None))

    def _custom_from_draft(self, resource: str, draft: Any) -> dict[str, Any] | None:
        """A CustomFieldsDraft / setCustomType ``{type: {id|key}, fields?}`` -> CustomFields."""
        if draft is None or not isinstance(draft, dict) or draft.get("type") is None:
            return None
        type_doc = self._resolve("types", draft["type"], "type")
        if RESOURCE_TYPE_IDS.get(resource) not in type_doc["resourceTypeIds"]:
            raise invalid_operation(f"The type '{type_doc['key']}' cannot be used for resources of type "
                                    f"'{RESOURCE_TYPE_IDS.get(resource)}'.")
        return {"type": ref("type", type_doc["id"]), "fields": dict(draft.get("fields") or {})}

    def _custom_action(self, resource: str, doc: dict[str, Any], action: dict[str, Any],
                       prefix: str | None) -> list[tuple[str, dict[str, Any]]]:
        """setCustomType / setCustomField on ``doc`` (in place); the messages for ``prefix`` (Order, Customer)."""
        out: list[tuple[str, dict[str, Any]]] = []
        if action["action"] == "setCustomType":
            previous = doc.get("custom", {}).get("type", {}).get("id")
            custom = self._custom_from_draft(resource, action if action.get("type") else None)
            if custom is None:
                doc.pop("custom", None)
                if prefix and previous:
                    out.append((f"{prefix}CustomTypeRemoved", {"previousTypeId": previous}))
            else:
                doc["custom"] = custom
                if prefix:
                    fields: dict[str, Any] = {"customFields": custom}
                    if previous:
                        fields["previousTypeId"] = previous
                    out.append((f"{prefix}CustomTypeSet", fields))
            return out
        custom = doc.get("custom")
        if not custom:
            raise invalid_operation("This resource has no custom type set: use setCustomType first.")
        name = action.get("name")
        if not isinstance(name, str) or not name:
            raise invalid_input("'name' is required.")
        previous = custom["fields"].get(name)
        if action.get("value") is None:
            if name in custom["fields"]:
                del custom["fields"][name]
                if prefix:
                    out.append((f"{prefix}CustomFieldRemoved", {"name": name}))
        else:
            custom["fields"][name] = action["value"]
            if prefix:
                if previous is None:
                    out.append((f"{prefix}CustomFieldAdded", {"name": name, "value": action["value"]}))
                else:
                    out.append((f"{prefix}CustomFieldChanged", {"name": name, "value": action["value"],
                                                              "previousValue": previous}))
        return out
