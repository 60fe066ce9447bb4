"""Deterministic generation of a simulated estate file from a seed.

`python -m pipelines.simulators.estate_gen --sizes 2000 --stores 12 --seed 7 -o data/estate.json`

`erp=True` (`--erp`) adds the `erp` section (the mapping to the ERP behind the commerce platform, see
`pipelines/domain/erp/mapping.py`) and `erp_bundles` gift-set products marked `"bundle": true`, each sold online as one
SKU and mapped in `erp.bundles` to two or three catalogue SKUs. Without it the estate is exactly what it was (the
bundles and the section draw from their own random stream).
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path
from typing import Any

# (id prefix, city, country, currency, timezone)
_CITIES = [
    ("SE", "Stockholm", "SE", "SEK", "Europe/Stockholm"),
    ("SE", "Gothenburg", "SE", "SEK", "Europe/Stockholm"),
    ("SE", "Malmo", "SE", "SEK", "Europe/Stockholm"),
    ("DK", "Copenhagen", "DK", "DKK", "Europe/Copenhagen"),
    ("NO", "Oslo", "NO", "NOK", "Europe/Oslo"),
    ("DE", "Berlin", "DE", "EUR", "Europe/Berlin"),
    ("DE", "Hamburg", "DE", "EUR", "Europe/Berlin"),
    ("DE", "Munich", "DE", "EUR", "Europe/Berlin"),
    ("GB", "London", "GB", "GBP", "Europe/London"),
    ("GB", "Manchester", "GB", "GBP", "Europe/London"),
    ("FI", "Helsinki", "FI", "EUR", "Europe/Helsinki"),
    ("NL", "Amsterdam", "NL", "EUR", "Europe/Amsterdam"),
]
_FX_TO_EUR = {"EUR": 1.0, "SEK": 0.087, "DKK": 0.134, "NOK": 0.085, "GBP": 1.17}
_TAX = {"SE": 0.25, "DK": 0.25, "NO": 0.25, "DE": 0.19, "GB": 0.20, "FI": 0.255, "NL": 0.21}
_PRICE_FACTOR = {"EUR": 1.0, "SEK": 11.0, "DKK": 7.5, "NOK": 11.5, "GBP": 0.85}
_GARMENTS = ["Crew", "Tee", "Hoodie", "Chino", "Jacket", "Shirt", "Cardigan", "Dress", "Coat", "Jeans",
             "Knit", "Polo", "Shorts", "Skirt", "Blazer", "Parka", "Sneaker", "Boot", "Scarf", "Cap"]
_MATERIALS = ["Merino", "Organic", "Linen", "Wool", "Denim", "Canvas", "Cashmere", "Cotton", "Tech", "Suede"]
_COLOURS = [("BLK", "Black"), ("NVY", "Navy"), ("OFW", "Off White"), ("GRN", "Forest"), ("SND", "Sand"),
            ("RED", "Brick"), ("GRY", "Grey Melange"), ("BLU", "Sky")]
_SIZE_RUNS = [["XS", "S", "M", "L", "XL"], ["S", "M", "L"], ["28", "30", "32", "34", "36"],
              ["38", "39", "40", "41", "42", "43", "44"], ["ONE"]]


def _ean13(body12: str) -> str:
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(body12))
    return body12 + str((10 - total % 10) % 10)


def generate_estate(*, sizes: int = 2000, stores: int = 12, seed: int = 7,
                    timezone: str = "Europe/Stockholm", stock_per_store: tuple[int, int] = (0, 6),
                    stock_dc: tuple[int, int] = (20, 200), commerce: str = "centra", erp: bool = False,
                    erp_bundles: int = 3) -> dict[str, Any]:
    rng = random.Random(seed)
    stores = max(1, stores)
    cities = [_CITIES[i % len(_CITIES)] for i in range(stores)]
    currencies = sorted({c[3] for c in cities} | {"EUR"})
    pricelists = [
        {"id": i + 1, "name": f"Retail {cur}", "currency": cur, "store_id": 1,
         "countries": sorted({c[2] for c in cities if c[3] == cur})}
        for i, cur in enumerate(currencies)
    ]
    pl_by_cur = {p["currency"]: p["id"] for p in pricelists}
    warehouses = [{"id": 1, "name": "DC Boras"}]
    locations: list[dict[str, Any]] = [{
        "id": "DC01", "name": "Distribution centre Boras", "kind": "dc", "country": "SE",
        "currency": "SEK", "timezone": "Europe/Stockholm", "newstore_node_id": "DC01",
        "centra_warehouse_id": 1, "centra_market_id": None, "centra_pricelist_id": None,
    }]
    countries = sorted({c[2] for c in cities})
    markets, rules = [], []
    for i, country in enumerate(countries):
        cur = next(c[3] for c in cities if c[2] == country)
        markets.append({"id": i + 1, "name": f"Market {country}", "store_id": 1, "countries": [country],
                        "allocation_rule_id": i + 1, "pricelist_id": pl_by_cur[cur]})
    market_by_country = {m["countries"][0]: m["id"] for m in markets}
    per_country_count: dict[str, int] = {}
    for i, (prefix, city, country, cur, tz) in enumerate(cities):
        per_country_count[country] = per_country_count.get(country, 0) + 1
        node = f"{prefix}{per_country_count[country]:02d}"
        if i >= len(_CITIES):
            city = f"{city} {i // len(_CITIES) + 1}"
        wid = i + 2
        warehouses.append({"id": wid, "name": f"Store {city}"})
        locations.append({
            "id": f"ST-{node}", "name": f"{city} flagship" if per_country_count[country] == 1 else f"{city} store",
            "kind": "store", "country": country, "currency": cur, "timezone": tz, "newstore_node_id": node,
            "centra_warehouse_id": wid, "centra_market_id": market_by_country[country],
            "centra_pricelist_id": pl_by_cur[cur],
        })
    # Online orders allocate from the DC only: ship-from-store (store warehouses in the rule) needs the
    # final stock check against the POS (flow 5), which the simulated estate does not run yet. Click-and-
    # collect orders allocate explicitly from the pickup store's warehouse.
    for i, country in enumerate(countries):
        rules.append({"id": i + 1, "name": f"Allocation {country}", "warehouse_ids": [1]})

    catalog: list[dict[str, Any]] = []
    made, size_id, variant_id, pnum = 0, 1, 1, 1000
    while made < sizes:
        pnum += 1
        run = rng.choice(_SIZE_RUNS)
        base_eur = rng.choice([29, 39, 49, 59, 79, 89, 99, 129, 149, 199, 249])
        product = {"product_id": pnum - 1000, "product_number": f"P{pnum}",
                   "name": f"{rng.choice(_MATERIALS)} {rng.choice(_GARMENTS)}", "variants": []}
        for code, colour in rng.sample(_COLOURS, rng.randint(1, 3)):
            if made >= sizes:
                break
            prices = {str(pl["id"]): _round_price(base_eur * _PRICE_FACTOR[pl["currency"]], pl["currency"])
                      for pl in pricelists}
            variant = {"variant_id": variant_id, "variant_number": code, "name": colour, "prices": prices, "sizes": []}
            variant_id += 1
            for size in run:
                if made >= sizes:
                    break
                sku = f"P{pnum}{code}{size}"
                variant["sizes"].append({"size_id": size_id, "size": size, "sku": sku,
                                         "ean": _ean13(f"735{size_id:09d}"), "active": True})
                size_id += 1
                made += 1
            product["variants"].append(variant)
        catalog.append(product)

    all_skus = [s["sku"] for p in catalog for v in p["variants"] for s in v["sizes"]]
    initial_stock: dict[str, dict[str, int]] = {}
    for loc in locations:
        lo, hi = stock_dc if loc["kind"] == "dc" else stock_per_store
        initial_stock[loc["newstore_node_id"]] = {sku: rng.randint(lo, hi) for sku in all_skus}

    extra: dict[str, Any] = {}
    if erp:
        bundles = _bundles(random.Random(f"{seed}:erp"), catalog, pricelists, locations, initial_stock, stock_dc,
                           erp_bundles)
        extra["erp"] = _erp_section(locations, markets, pricelists, {c: _TAX[c] for c in countries}, bundles)

    return {
        "name": "Nordlys Lifestyle (simulated)",
        "commerce_platform": commerce,
        "commercetools": _commercetools(locations, markets),
        "seed": seed,
        "base_currency": "EUR",
        "business_timezone": timezone,
        "fx_to_base": {c: _FX_TO_EUR[c] for c in currencies},
        "tax_rates": {c: _TAX[c] for c in countries},
        "centra": {
            "stores": [{"id": 1, "name": "Retail", "type": "DIRECT_TO_CONSUMER"},
                       {"id": 2, "name": "Wholesale", "type": "WHOLESALE"}],
            "warehouses": warehouses,
            "allocation_rules": rules,
            "pricelists": pricelists,
            "markets": markets,
        },
        "locations": locations,
        "catalog": catalog,
        "initial_stock": initial_stock,
        **extra,
    }


#: The ERP company's chart of accounts as the simulated estate uses it (ASSUMPTION: numbers in the style of Business
#: Central's W1 demo company; any retailer sets its own). Store balancing accounts are `STORE_CASH_PREFIX` + index.
ERP_ACCOUNTS = {"revenue": "6110", "discount": "6910", "vat": "5610", "shipping": "6310", "cash": "2910"}
STORE_CASH_PREFIX = "291"


def erp_customer_number(country: str) -> str:
    """The ERP customer a market's web orders are sold to (one per market: the web shop of that country)."""
    return f"WEB-{country}"


def erp_tax_code(rate_percent: str) -> str:
    """The ERP tax code (VAT product posting group) of a tax percent key ("25" -> "VAT25", "25.5" -> "VAT25-5")."""
    return "VAT" + rate_percent.replace(".", "-")


def _rate_key(rate: float) -> str:
    return f"{round(rate * 100, 3):g}"  # the mapping's key of a tax percent (mapping.rate_key)


def _erp_section(locations: list[dict[str, Any]], markets: list[dict[str, Any]], pricelists: list[dict[str, Any]],
                 tax: dict[str, float], bundles: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """The estate's mapping to the ERP: a customer per market in the market's currency (the DC's currency is the
    ERP company's local one: code ""), a tax code per rate the estate trades at, items numbered like the SKUs
    (no `items` overrides), the bundles, the shipping and sales-journal accounts with a cash account per store."""
    dc = next(loc for loc in locations if loc["kind"] == "dc")
    currency_of_pl = {p["id"]: p["currency"] for p in pricelists}
    stores = [loc for loc in locations if loc["kind"] == "store"]
    return {
        "customers": {str(m["id"]): erp_customer_number(m["countries"][0]) for m in markets},
        "currencies": {cur: ("" if cur == dc["currency"] else cur) for cur in sorted(set(currency_of_pl.values()))},
        "tax_codes": {_rate_key(r): erp_tax_code(_rate_key(r)) for r in sorted(set(tax.values()))},
        "items": {},
        "bundles": bundles,
        "shipping_account": ERP_ACCOUNTS["shipping"],
        "dc_location_id": dc["id"],
        "sales_journal": {
            "revenue_account": ERP_ACCOUNTS["revenue"], "discount_account": ERP_ACCOUNTS["discount"],
            "vat_account": ERP_ACCOUNTS["vat"], "default_balancing_account": ERP_ACCOUNTS["cash"],
            "balancing_accounts": {loc["id"]: f"{STORE_CASH_PREFIX}{i + 1:02d}" for i, loc in enumerate(stores)},
        },
    }


def _bundles(rng: random.Random, catalog: list[dict[str, Any]], pricelists: list[dict[str, Any]],
             locations: list[dict[str, Any]], initial_stock: dict[str, dict[str, int]], stock_dc: tuple[int, int],
             count: int) -> dict[str, list[dict[str, Any]]]:
    """Append `count` gift-set products (`"bundle": true`, one size "ONE") to the catalogue; each bundles two or three
    other SKUs (one of them twice at most), priced at 90 % of its components' list prices. Bundles are sold online
    only: DC stock, none in the stores. Returns the `erp.bundles` mapping of each."""
    sizes = [(v, s) for p in catalog for v in p["variants"] for s in v["sizes"]]
    size_id = max(s["size_id"] for _, s in sizes) + 1
    variant_id = max(v["variant_id"] for v, _ in sizes) + 1
    product_id = max(p["product_id"] for p in catalog) + 1
    out: dict[str, list[dict[str, Any]]] = {}
    for i in range(min(count, len(sizes) // 2)):
        parts = rng.sample(sizes, rng.choice((2, 2, 3)))
        components = [{"sku": s["sku"], "quantity": 2 if j == 0 and rng.random() < 0.3 else 1}
                      for j, (_, s) in enumerate(parts)]
        prices = {}
        for pl in pricelists:
            key = str(pl["id"])
            total = sum(v["prices"][key] * c["quantity"] for (v, _), c in zip(parts, components, strict=True))
            prices[key] = _round_price(total * 0.9, pl["currency"])
        sku = f"GIFT{i + 1:03d}ONE"
        catalog.append({"product_id": product_id + i, "product_number": f"G{9001 + i}", "name": f"Gift set {i + 1}",
                        "bundle": True, "variants": [{
                            "variant_id": variant_id + i, "variant_number": "SET", "name": "Gift set",
                            "prices": prices, "sizes": [{"size_id": size_id + i, "size": "ONE", "sku": sku,
                                                         "ean": _ean13(f"735{size_id + i:09d}"), "active": True}]}]})
        for loc in locations:
            lo, hi = stock_dc if loc["kind"] == "dc" else (0, 0)
            initial_stock[loc["newstore_node_id"]][sku] = rng.randint(lo, hi)
        out[sku] = components
    return out


def _commercetools(locations: list[dict[str, Any]], markets: list[dict[str, Any]]) -> dict[str, Any]:
    """The same estate as a commercetools project: a supply channel per location (keyed by the location id), a web
    price channel, and a store per market selling from the DC (as Centra's allocation rules do)."""
    channels = [{"key": loc["id"], "name": loc["name"], "location_id": loc["id"],
                 "roles": ["InventorySupply"] + (["ProductDistribution"] if loc["kind"] == "store" else [])}
                for loc in locations]
    channels.append({"key": "web", "name": "Web shop prices", "location_id": None, "roles": ["ProductDistribution"]})
    dc = next(loc["id"] for loc in locations if loc["kind"] == "dc")
    stores = [{"key": f"web-{m['countries'][0].lower()}", "name": f"Web {m['countries'][0]}", "market_id": m["id"],
               "countries": m["countries"], "languages": ["en"], "distribution_channel_keys": ["web"],
               "supply_channel_keys": [dc]} for m in markets]
    return {"project_key": "nordlys-sim", "price_channel_key": "web", "channels": channels, "stores": stores}


def _round_price(value: float, currency: str) -> float:
    if currency in ("SEK", "NOK", "DKK"):
        return float(int(round(value / 10.0)) * 10 - 1)
    return round(int(value) + 0.95, 2)


def write_estate(path: Path, **kwargs: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = generate_estate(**kwargs)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
    tmp.replace(path)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", type=int, default=2000)
    ap.add_argument("--stores", type=int, default=12)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--commerce", choices=("centra", "commercetools"), default="centra")
    ap.add_argument("--erp", action="store_true", help="add the erp section and a few bundle products")
    ap.add_argument("-o", "--output", type=Path, default=Path("data/estate.json"))
    args = ap.parse_args()
    write_estate(args.output, sizes=args.sizes, stores=args.stores, seed=args.seed, commerce=args.commerce,
                 **({"erp": True} if args.erp else {}))
    print(args.output)


if __name__ == "__main__":
    main()
