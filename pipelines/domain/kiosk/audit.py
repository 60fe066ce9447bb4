"""The daily SKU audit between the commerce platform (the product master) and the Cloudshelf kiosk catalogue.

Products and variants match on the immutable SKU (the variant GlobalId `gid://external/CentraVariant/<SKU>`). A SKU
should be purchasable on the kiosk when it is active in the commerce platform (size and product) and priced in the
kiosk price list (the store market's price list, `availability.catalog_pricelist`). Four kinds of findings, each
for e-commerce with its playbook, in the style of the reconciliation's orphan-SKU findings:

- `kiosk_sku_missing_on_kiosk` (ERROR): active and priced in the commerce platform, absent from the kiosk;
- `kiosk_sku_not_purchasable_on_kiosk` (ERROR): on the kiosk, but `availableToPurchase` is false there;
- `kiosk_sku_inactive_in_commerce` (ERROR): purchasable on the kiosk, but inactive or unpriced in the commerce
  platform (the kiosk sells what the web shop has retired);
- `kiosk_sku_unknown_in_commerce` (ERROR when purchasable on the kiosk, else WARN): a kiosk variant whose SKU the
  commerce platform does not know (or whose id is not one of ours).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pipelines.domain.exceptions import ExceptionType
from pipelines.domain.kiosk.catalog import SizeLike, is_sellable

OWNER = "ecommerce"

KIOSK_SKU_MISSING = ExceptionType(
    "kiosk_sku_missing_on_kiosk", "ERROR", OWNER,
    "A SKU active and priced in the commerce platform is not on the Cloudshelf kiosk: shoppers in store cannot find "
    "it. Run kiosk_catalog (it sends every SKU changed since its last publish; with full=true every SKU); if the "
    "SKU is still missing, read the run's log for Cloudshelf's userErrors on the variant and fix the product data "
    "in the commerce platform. Re-run the audit for the day.",
)
KIOSK_SKU_NOT_PURCHASABLE = ExceptionType(
    "kiosk_sku_not_purchasable_on_kiosk", "ERROR", OWNER,
    "A SKU active and priced in the commerce platform is on the kiosk but not available to purchase there "
    "(availableToPurchase false): lost sales in store. If the SKU was reactivated or priced recently, run "
    "kiosk_catalog (the change is sent); if someone switched it off in Cloudshelf's admin, switch it back or "
    "deactivate it in the commerce platform too. Re-run the audit for the day.",
)
KIOSK_SKU_INACTIVE_IN_COMMERCE = ExceptionType(
    "kiosk_sku_inactive_in_commerce", "ERROR", OWNER,
    "A SKU inactive in the commerce platform (or without a price in the kiosk price list) can still be bought on "
    "the kiosk: an order for it cannot be fulfilled online. Run kiosk_catalog so the kiosk stops selling it "
    "(availableToPurchase false), or reactivate and price the SKU if it is still sold. Re-run the audit for the day.",
)
KIOSK_SKU_UNKNOWN_IN_COMMERCE = ExceptionType(
    "kiosk_sku_unknown_in_commerce", "ERROR", OWNER,
    "The kiosk has a variant whose SKU the commerce platform does not know (created in Cloudshelf by hand, by "
    "another integration, or a SKU renamed in the commerce platform: SKUs are the match key and must not change). "
    "Delete the variant in Cloudshelf or create the SKU in the commerce platform; never rename a SKU in place. "
    "Re-run the audit for the day.",
)
FINDING_TYPES = (KIOSK_SKU_MISSING, KIOSK_SKU_NOT_PURCHASABLE, KIOSK_SKU_INACTIVE_IN_COMMERCE,
                 KIOSK_SKU_UNKNOWN_IN_COMMERCE)


@dataclass(frozen=True)
class KioskSku:
    """A kiosk variant as the audit reads it: its id, the SKU of ours it names (None when the id is not ours and
    Cloudshelf gives no SKU), and whether it is available to purchase."""

    variant_id: str
    sku: str | None
    purchasable: bool


@dataclass(frozen=True)
class AuditFinding:
    finding_type: str
    severity: str
    owner_team: str
    playbook: str
    sku: str
    detail: str
    kiosk_variant_id: str | None = None

    @classmethod
    def of(cls, kind: ExceptionType, sku: str, detail: str, variant_id: str | None = None,
           severity: str | None = None) -> AuditFinding:
        return cls(kind.name, severity or kind.severity, kind.owner_team, kind.playbook, sku, detail, variant_id)


def audit(sizes: Iterable[SizeLike], prices: Mapping[int, Mapping[int, float]], pricelist_id: int | None,
          kiosk: Iterable[KioskSku]) -> list[AuditFinding]:
    """The findings (module docstring), sorted by type and SKU. `prices`: variant id -> price list id -> price."""
    commerce = {s.sku: s for s in sizes}
    on_kiosk: dict[str, KioskSku] = {}
    findings: list[AuditFinding] = []
    for k in kiosk:
        if k.sku is None or k.sku not in commerce:
            findings.append(AuditFinding.of(
                KIOSK_SKU_UNKNOWN_IN_COMMERCE, k.sku or k.variant_id,
                f"kiosk variant {k.variant_id} ({'available' if k.purchasable else 'not available'} to purchase) "
                f"names SKU {k.sku!r}, unknown in the commerce platform", k.variant_id,
                severity=None if k.purchasable else "WARN"))
            continue
        on_kiosk[k.sku] = k
    for sku, size in commerce.items():
        priced = pricelist_id is not None and prices.get(size.variant_id, {}).get(pricelist_id) is not None
        expected = is_sellable(size) and priced
        k = on_kiosk.get(sku)
        if expected and k is None:
            findings.append(AuditFinding.of(KIOSK_SKU_MISSING, sku, f"active and priced in price list {pricelist_id}, "
                                            "not on the kiosk"))
        elif expected and k is not None and not k.purchasable:
            findings.append(AuditFinding.of(KIOSK_SKU_NOT_PURCHASABLE, sku, "active and priced in price list "
                                            f"{pricelist_id}, not available to purchase on the kiosk", k.variant_id))
        elif not expected and k is not None and k.purchasable:
            why = ("inactive" if not is_sellable(size) else f"without a price in price list {pricelist_id}")
            findings.append(AuditFinding.of(KIOSK_SKU_INACTIVE_IN_COMMERCE, sku,
                                            f"{why} in the commerce platform, available to purchase on the kiosk",
                                            k.variant_id))
    return sorted(findings, key=lambda f: (f.finding_type, f.sku))
