"""Extract the GraphQL operations of Centra's documentation into the test fixture.

Reads the pages of the public `centrahq/api-documentation` repository at commit 3a2b757f from its bare
mirror (`--git-dir`, default /work/.mirror/centrahq+api-documentation/repo) and writes
`pipelines_tests/simulators/centra_documented_ops.json`: one entry per GraphQL operation found in a code
block of the pages below (doc path, heading, line, operation text verbatim, the documented variables and
`permissionsUsed` when the page's response shows them, the fragments it uses that are defined in another
block, and `scope`: `in` or `out: <reason>`).

    python scripts/extract_centra_doc_ops.py [--git-dir DIR] [--out FILE]

Scope is decided by the operation's root fields (the tables below): what the simulator simulates is
`in`; wholesale, product/media creation, ID conversion and the like are `out` with the reason. Blocks
that do not parse are kept when they are meant as operations (the doc's own typo is noted; `repaired_text`
holds the smallest repair, stated in `repair`). The test reads only the JSON, never the mirror.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
from pathlib import Path
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    OperationDefinitionNode,
    parse,
    print_ast,
    visit,
)
from graphql.language import Visitor

COMMIT = "3a2b757f"
REPO = "centrahq/api-documentation"
PAGES = [
    "pages/04.guides/02.erp-gql-integration/docs.md",
    "pages/05.api-references/02.graphql-integration-api/01.authorization/docs.md",
    "pages/05.api-references/02.graphql-integration-api/03.api-rate-limits/docs.md",
    "pages/05.api-references/02.graphql-integration-api/05.examples/01.dtc/docs.md",
    "pages/05.api-references/02.graphql-integration-api/08.events-system/docs.md",
    "pages/04.guides/06.wms-integration/docs.md",
    "pages/04.guides/05.pim-gql-integration/docs.md",
]
OUT = Path(__file__).resolve().parents[1] / "pipelines_tests" / "simulators" / "centra_documented_ops.json"

EVENTS = {"setEventListeners", "unsetEventListeners", "eventListeners", "events", "confirmEvents"}
ALLOCATION = {"unallocateOrder", "allocateOrder"}
IN_ROOTS = {
    "orders", "order", "orderConnection", "setOrdersLock", "updateDirectToConsumerOrder", "confirmOrder",
    "cancelDirectToConsumerOrder", "captureOrder", "createShipment", "updateShipment", "captureShipment",
    "completeShipment", "createReturn", "returns", "completeReturn", "refundReturn", "changeStock", "setStock",
    "rateLimits", "stores", "store", "markets", "market", "pricelists", "pricelist", "countries", "currencies",
    "warehouses", "warehouse", "products", "product", "productVariants", "productSizes", "counters",
    "stockChangeConnection",
} | EVENTS | ALLOCATION
OUT_ROOTS = {
    # product, catalog and media creation / editing (PIM), prices, displays
    **dict.fromkeys(["createSizeChart", "removeSizeChart", "createMeasurementChart", "removeMeasurementChart",
                     "createProduct", "createProductVariant", "createProductSize", "updateProduct", "createBundle",
                     "createFolder", "createBrand", "createCollection", "createDisplay", "updateDisplay",
                     "localize", "assignAttributes", "unassignAttributes"],
                    "out: product/catalog creation or editing (PIM writes)"),
    **dict.fromkeys(["createPricelist", "updatePricelist", "deletePricelist", "setPrices", "createPriceAlteration",
                     "updatePriceAlteration", "setAlteredPrices", "priceAlteration"],
                    "out: price and pricelist management"),
    **dict.fromkeys(["createMarket", "updateMarket", "createWarehouse"], "out: tenant set-up writes (markets, warehouses)"),
    **dict.fromkeys(["displays", "display", "displayConnection", "folders", "categories", "brands", "collections",
                     "sizeCharts", "mappedAttributes", "languages", "productVariant", "placeholder"],
                    "out: catalog objects not simulated (displays, folders, categories, brands, collections, size "
                    "charts, attributes, translations)"),
    **dict.fromkeys(["createAccount", "createBuyer", "createDeliveryWindow", "setDeliveryWindowVariants",
                     "updateWholesaleOrder", "accounts"], "out: wholesale"),
    **dict.fromkeys(["setIdConversions", "unsetIdConversions", "idConversions"], "out: ID conversion"),
    "releaseRemainingOrderAuthorization": "out: authorization release not simulated",
    **dict.fromkeys(["uncompleteReturn", "deleteReturn"], "out: return un-completion/deletion not simulated"),
    **dict.fromkeys(["customers"], "out: customer registry and customer attributes not simulated"),
    "invoices": "out: invoices (wholesale) not simulated",
    **dict.fromkeys(["createDiscount", "createVoucher"], "out: vouchers not simulated"),
}
# Operations that are out although their roots are simulated (doc path suffix, line) -> reason.
OUT_BY_PLACE = {
    ("01.dtc/docs.md", 297): "out: wholesale (storeType WHOLESALE, WholesaleOrder account/buyer)",
    ("01.authorization/docs.md", 345): "out: deprecated `purchaserId`/`purchaser` (the doc's 'Before' example; "
                                       "its 'After' example is in scope)",
    ("05.pim-gql-integration/docs.md", 3031): "out: custom attributes (ObjectWithAttributes) not simulated",
    ("05.pim-gql-integration/docs.md", 3755): "out: displays not simulated (product search by name with displays)",
    ("05.pim-gql-integration/docs.md", 3812): "out: translations not simulated",
    ("05.pim-gql-integration/docs.md", 1855): "out: product weight and PIM logistics data not simulated",
    ("05.pim-gql-integration/docs.md", 1476): "out: placeholder (the doc's bundle section is TBD)",
    ("05.pim-gql-integration/docs.md", 1484): "out: placeholder (the doc's bundle section is TBD)",
    ("05.pim-gql-integration/docs.md", 197): "out: Market.campaigns and Market.displays (campaigns, displays) not simulated",
    ("05.pim-gql-integration/docs.md", 207): "out: Market.campaigns and Market.displays (campaigns, displays) not simulated",
}
# Wholesale-only fragments inside otherwise-DTC operations: the test strips these type conditions.
STRIP_BY_PLACE = {("01.dtc/docs.md", 14): ["WholesaleOrder", "PreorderDeliveryWindow"]}
# Doc typos in blocks meant as operations: (doc suffix, line) -> (repair note, old, new).
REPAIRS = {
    ("02.erp-gql-integration/docs.md", 2382): (
        "the doc's `# number: 10 })` comment swallows the closing `})`; moved them to the next line",
        '# number: 10 }) {', '# number: 10\n                           }) {'),
    ("01.dtc/docs.md", 1378): (
        "the doc's `# number: 10 })` comment swallows the closing `})`; moved them to the next line",
        '# number: 10 }) {', '# number: 10\n                       }) {'),
}


def git_show(git_dir: str, path: str) -> str:
    return subprocess.run(["git", "--git-dir", git_dir, "show", f"{COMMIT}:{path}"], capture_output=True,
                          text=True, check=True).stdout


def code_blocks(text: str) -> list[dict[str, Any]]:
    """Fenced code blocks with their language, 1-based opening line and the heading above them."""
    lines, blocks, heading, i = text.split("\n"), [], "", 0
    while i < len(lines):
        m = re.match(r"^(#{1,6})\s+(.*)", lines[i])
        if m:
            heading = m.group(2).strip()
        if lines[i].strip().startswith("```"):
            lang, j, body = lines[i].strip()[3:].strip(), i + 1, []
            while j < len(lines) and not lines[j].strip().startswith("```"):
                body.append(lines[j])
                j += 1
            blocks.append({"line": i + 1, "lang": lang, "heading": heading, "text": "\n".join(body)})
            i = j
        i += 1
    return blocks


def looks_like_operation(src: str) -> bool:
    s = src.strip()
    return bool(re.match(r"^(query|mutation|subscription|fragment)\b", s)) or (
        s.startswith("{") and not re.match(r'^\{\s*"', s) and re.match(r"^\{\s*\w+\s*[({]", s) is not None)


def spreads(node: Any) -> set[str]:
    names: set[str] = set()

    class V(Visitor):
        def enter_fragment_spread(self, n: FragmentSpreadNode, *_: Any) -> None:
            names.add(n.name.value)
    visit(node, V())
    return names


def documented_permissions(blocks: list[dict[str, Any]], index: int, roots: list[str]) -> list[str] | str | None:
    """`extensions.permissionsUsed` of the response block right after the request (before the next request);
    a string saying why not when that response answers another request (its `data` key is not a root)."""
    for nxt in blocks[index + 1:index + 3]:
        if looks_like_operation(nxt["text"]):
            return None
        m = re.search(r'"permissionsUsed"\s*:\s*\[([^\]]*)\]', nxt["text"])
        if m:
            key = re.search(r'"data"\s*:\s*\{\s*"(\w+)"', nxt["text"])
            if key and key.group(1) not in roots:
                return (f"not used: the documented response's data key {key.group(1)!r} is none of the "
                        "operation's root fields (a response copied from another request)")
            return re.findall(r'"([^"]+)"', m.group(1))
    return None


def extract(git_dir: str) -> dict[str, Any]:
    docs = {p: code_blocks(git_show(git_dir, p)) for p in PAGES}
    fragments: dict[str, dict[str, dict[str, Any]]] = {}
    for path, blocks in docs.items():
        for b in blocks:
            try:
                doc = parse(b["text"])
            except GraphQLError:
                continue
            for d in doc.definitions:
                if isinstance(d, FragmentDefinitionNode):
                    fragments.setdefault(path, {}).setdefault(
                        d.name.value, {"name": d.name.value, "doc": path, "line": b["line"], "text": print_ast(d)})
    ops: list[dict[str, Any]] = []
    for path, blocks in docs.items():
        suffix = "/".join(path.split("/")[-2:])
        for idx, b in enumerate(blocks):
            src = b["text"]
            if not looks_like_operation(src):
                continue
            place = (suffix, b["line"])
            entry_base = {"doc": path, "heading": b["heading"], "line": b["line"], "lang": b["lang"]}
            text_to_parse, repair = src, None
            if place in REPAIRS:
                note, old, new = REPAIRS[place]
                text_to_parse, repair = src.replace(old, new, 1), note
            try:
                document = parse(text_to_parse)
            except GraphQLError as exc:
                reason = ("out: elided example (`...` placeholder), not a runnable operation" if "..." in src
                          and re.search(r"\.\.\.\s*\n", src) else f"out: does not parse ({exc.message})")
                if "*" in src:
                    reason = "out: illustrative snippet with a `*` placeholder, not a runnable operation"
                ops.append({**entry_base, "name": None, "type": None, "roots": [], "text": src, "variables": None,
                            "scope": reason})
                continue
            local = {d.name.value for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
            op_defs = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
            for op in op_defs:
                roots = [s.name.value for s in op.selection_set.selections if isinstance(s, FieldNode)]
                needed, missing, queue = [], set(), sorted(spreads(op) - local)
                while queue:
                    name = queue.pop(0)
                    if name in {f["name"] for f in needed} or name in local:
                        continue
                    frag = fragments.get(path, {}).get(name) or next(
                        (f[name] for f in fragments.values() if name in f), None)
                    if frag is None:
                        missing.add(name)
                        continue
                    needed.append(frag)
                    queue += sorted(spreads(parse(frag["text"])) - local)
                scope = "in"
                outs = [OUT_ROOTS[r] for r in roots if r in OUT_ROOTS]
                unknown = [r for r in roots if r not in IN_ROOTS and r not in OUT_ROOTS]
                if place in OUT_BY_PLACE:
                    scope = OUT_BY_PLACE[place]
                elif outs:
                    scope = outs[0]
                elif unknown:
                    scope = f"out: root field(s) {', '.join(unknown)} not simulated"
                elif missing:
                    scope = f"out: uses fragments defined nowhere in the docs ({', '.join(sorted(missing))})"
                entry: dict[str, Any] = {
                    **entry_base, "name": op.name.value if op.name else None, "type": op.operation.value,
                    "roots": roots, "text": src, "variables": None, "scope": scope,
                }
                if len(op_defs) > 1:
                    entry["operation_name"] = op.name.value if op.name else None
                if repair:
                    entry["repaired_text"], entry["repair"] = text_to_parse, repair
                if needed:
                    entry["fragments"] = needed
                if place in STRIP_BY_PLACE:
                    entry["strip_type_conditions"] = STRIP_BY_PLACE[place]
                if set(roots) & EVENTS:
                    entry["owner"] = "task B (events system: schema_events.graphql, resolvers/events.py)"
                if set(roots) & ALLOCATION:
                    entry["owner"] = "allocation (schema_allocation.graphql, resolvers/allocation_mutations.py)"
                perms = documented_permissions(blocks, idx, roots)
                if isinstance(perms, str):
                    entry["documented_permissions_note"] = perms
                elif perms is not None:
                    entry["documented_permissions"] = perms
                ops.append(entry)
    for i, op in enumerate(ops):
        op["id"] = f"{op['doc'].split('/')[-2]}:{op['line']}" + (
            f":{op['operation_name']}" if op.get("operation_name") else "")
        ops[i] = {"id": op.pop("id"), **op}
    return {"source": {"repo": REPO, "commit": COMMIT, "pages": PAGES,
                       "generated_by": "scripts/extract_centra_doc_ops.py"},
            "operations": ops}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--git-dir", default="/work/.mirror/centrahq+api-documentation/repo")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    result = extract(args.git_dir)
    args.out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    ops = result["operations"]
    print(f"{len(ops)} operations, {sum(op['scope'] == 'in' for op in ops)} in scope -> {args.out}")


if __name__ == "__main__":
    main()
