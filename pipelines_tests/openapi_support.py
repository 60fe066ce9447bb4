"""Validate requests/responses against NewStore's Swagger 2.0 specs (../shared/reference/specs/newstore).

openapi-core only reads OpenAPI 3, so each operation's schemas are turned into JSON Schema draft 4
(Swagger 2.0's dialect) with the spec's ``definitions`` embedded, and checked with ``jsonschema``.
Non-body parameters (path, query, header) are coerced from strings by their declared type first.

The published specs are partly loose or wrong. What we patch before validating (:data:`DEVIATIONS`):

* ``type: object`` next to ``allOf: [$ref: <string enum>]`` (``currency``, ``price_method``, order/item
  ``status``, ``channel_type`` ...) cannot be satisfied by any value; the stray ``type`` is dropped.
* ``Item8.carrier`` / ``Item8.tracking_code`` (fulfillment requests) are ``type: string`` and required but
  documented as ``null`` until shipped; they are made nullable.
* ``$ref`` names containing ``%27`` get an unquoted alias so references resolve.
* Loose schemas (``shipments.items: {}``, ``ip_address: {}``, ``reason: {}``) accept anything: we
  validate what the spec defines, nothing more.

Operations the specs do not contain (token, returns, stocked products, ATP by keys, locations, event
stream) cannot be validated here; :meth:`SwaggerSpecs.operation` returns ``None`` for them.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import jsonschema
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
SPEC_DIR = REPO_ROOT / ".." / "shared" / "reference" / "specs" / "newstore"
SPEC_FILES = {
    "order-injection": "newstore-order-injection-api-openapi.yml",
    "sales-orders": "newstore-sales-orders-api-openapi.yml",
    "orders": "newstore-orders-api-openapi.yml",
    "fulfillment-requests": "newstore-fulfillment-requests-api-openapi.yml",
    "stock": "newstore-stock-api-openapi.yml",
    "stores": "newstore-stores-api-openapi.yml",
    "reservations": "newstore-reservations-api-openapi.yml",
}
NULLABLE_PATCHES: dict[str, dict[str, tuple[str, ...]]] = {
    "fulfillment-requests": {"Item8": ("carrier", "tracking_code")},
}
DEVIATIONS = [
    "dropped `type: object` beside `allOf` of a non-object $ref (string enums) everywhere",
    "fulfillment-requests Item8.carrier/tracking_code made nullable (documented as null before shipping)",
    "definition names with %27 aliased unquoted so $ref resolves",
]


class SpecValidationError(AssertionError):
    """A request or response does not match the spec; ``errors`` lists every problem."""

    def __init__(self, what: str, errors: list[str]) -> None:
        super().__init__(f"{what}:\n  " + "\n  ".join(errors))
        self.errors = errors


def spec_dir() -> Path | None:
    """The specs folder, or None when ../shared is not checked out."""
    path = SPEC_DIR.resolve()
    return path if path.is_dir() and any(path.glob("*.yml")) else None


def require_specs() -> Path:
    """The specs folder; skips the calling test with a clear reason when it is absent."""
    path = spec_dir()
    if path is None:
        import pytest

        pytest.skip(f"NewStore OpenAPI specs not found at {SPEC_DIR.resolve()} (../shared is not checked out)")
    return path


# -- schema conversion -----------------------------------------------------------------------------


def _target(ref: str, definitions: Mapping[str, Any]) -> Any:
    name = unquote(ref.rsplit("/", 1)[-1])
    return definitions.get(name) or definitions.get(ref.rsplit("/", 1)[-1])


def _convert(node: Any, definitions: Mapping[str, Any]) -> Any:
    if isinstance(node, list):
        return [_convert(x, definitions) for x in node]
    if not isinstance(node, dict):
        return node
    out = {k: _convert(v, definitions) for k, v in node.items()
           if k not in ("example", "examples", "discriminator", "readOnly", "xml", "externalDocs")}
    if "allOf" in out and out.get("type") == "object" and "properties" not in out:
        non_object = False
        for member in node["allOf"]:
            target = _target(member["$ref"], definitions) if isinstance(member, dict) and "$ref" in member else member
            if isinstance(target, dict) and target.get("type") not in (None, "object"):
                non_object = True
        if non_object:
            out.pop("type")
    if out.pop("x-nullable", False) and "type" in out:
        out["type"] = [out["type"], "null"] if isinstance(out["type"], str) else [*out["type"], "null"]
    return out


def _definitions(spec_name: str, spec: dict[str, Any]) -> dict[str, Any]:
    raw = copy.deepcopy(spec.get("definitions") or {})
    for def_name, props in NULLABLE_PATCHES.get(spec_name, {}).items():
        for prop in props:
            if def_name in raw and prop in raw[def_name].get("properties", {}):
                raw[def_name]["properties"][prop]["x-nullable"] = True
    converted = {k: _convert(v, raw) for k, v in raw.items()}
    for k in list(converted):
        if "%" in k:
            converted.setdefault(unquote(k), converted[k])
    return converted


def _validator(schema: Any, definitions: dict[str, Any]) -> jsonschema.Draft4Validator:
    root = dict(_convert(schema, definitions))
    root["definitions"] = definitions
    return jsonschema.Draft4Validator(root, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER)


def _errors(validator: jsonschema.Draft4Validator, value: Any, where: str) -> list[str]:
    out = []
    for err in sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path)):
        loc = "/".join(str(p) for p in err.absolute_path)
        out.append(f"{where}{'/' + loc if loc else ''}: {err.message}")
    return out


# -- operations ---------------------------------------------------------------------------------------


@dataclass
class Operation:
    spec: str
    method: str
    template: str
    regex: re.Pattern[str]
    parameters: list[dict[str, Any]]
    responses: dict[str, Any]
    definitions: dict[str, Any]

    @property
    def literal_segments(self) -> int:
        return sum(1 for s in self.template.split("/") if s and not s.startswith("{"))


def _coerce(value: Any, param: Mapping[str, Any]) -> Any:
    kind = param.get("type")
    if kind == "array":
        values = value if isinstance(value, list) else [value]
        if param.get("collectionFormat", "csv") == "csv" and len(values) == 1 and isinstance(values[0], str):
            values = values[0].split(",")
        return [_coerce(v, param.get("items") or {}) for v in values]
    if isinstance(value, list):
        value = value[-1]
    if not isinstance(value, str):
        return value
    try:
        if kind == "integer":
            return int(value)
        if kind == "number":
            return float(value)
        if kind == "boolean" and value.lower() in ("true", "false"):
            return value.lower() == "true"
    except ValueError:
        return value
    return value


def _param_schema(param: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("type", "format", "enum", "items", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
            "minLength", "maxLength", "pattern", "maxItems", "minItems", "uniqueItems", "multipleOf")
    return {k: param[k] for k in keys if k in param}


class SwaggerSpecs:
    """All NewStore specs (or a subset) loaded for request/response validation."""

    def __init__(self, specs: Mapping[str, dict[str, Any]]) -> None:
        self.operations: list[Operation] = []
        for name, spec in specs.items():
            definitions = _definitions(name, spec)
            for template, item in (spec.get("paths") or {}).items():
                shared = item.get("parameters") or []
                for method, op in item.items():
                    if method == "parameters" or not isinstance(op, dict):
                        continue
                    pattern = "^" + re.sub(r"\\{[^}]+\\}", "([^/]+)", re.escape(template)) + "$"
                    self.operations.append(Operation(
                        spec=name, method=method.upper(), template=template, regex=re.compile(pattern),
                        parameters=[*shared, *(op.get("parameters") or [])], responses=op.get("responses") or {},
                        definitions=definitions,
                    ))

    @classmethod
    def load(cls, names: list[str] | None = None) -> SwaggerSpecs:
        """Load specs by short name (default: all); skips the test when ../shared is absent."""
        folder = require_specs()
        chosen = names or list(SPEC_FILES)
        specs = {}
        for n in chosen:
            with open(folder / SPEC_FILES[n], encoding="utf-8") as fh:
                specs[n] = yaml.safe_load(fh)
        return cls(specs)

    def operation(self, method: str, path: str) -> Operation | None:
        """The operation serving ``method path`` (most literal template wins), or None."""
        found = [op for op in self.operations if op.method == method.upper() and op.regex.match(path)]
        return max(found, key=lambda op: op.literal_segments) if found else None

    def _require(self, method: str, path: str) -> Operation:
        op = self.operation(method, path)
        if op is None:
            raise SpecValidationError(f"{method} {path}", ["no operation in the loaded specs"])
        return op

    def request_errors(self, method: str, path: str, *, query: Mapping[str, Any] | None = None,
                       body: Any = None, headers: Mapping[str, str] | None = None) -> list[str]:
        """Problems of a request against its operation (path/query/header parameters and JSON body)."""
        op = self._require(method, path)
        match = op.regex.match(path)
        assert match is not None
        names = re.findall(r"{([^}]+)}", op.template)
        path_values = dict(zip(names, (unquote(g) for g in match.groups()), strict=True))
        query = dict(query or {})
        lower_headers = {k.lower(): v for k, v in (headers or {}).items()}
        errors: list[str] = []
        for param in op.parameters:
            where, name = param.get("in"), param.get("name")
            if where == "body":
                if body is None:
                    if param.get("required"):
                        errors.append("body: required but missing")
                    continue
                errors += _errors(_validator(param.get("schema") or {}, op.definitions), body, "body")
                continue
            if where == "path":
                present, value = name in path_values, path_values.get(name)
            elif where == "query":
                present, value = name in query, query.get(name)
            elif where == "header":
                if headers is None:
                    continue
                present, value = name.lower() in lower_headers, lower_headers.get(name.lower())
            else:
                continue
            if not present:
                if param.get("required"):
                    errors.append(f"{where} parameter {name!r}: required but missing")
                continue
            validator = jsonschema.Draft4Validator(_param_schema(param),
                                                   format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER)
            errors += _errors(validator, _coerce(value, param), f"{where}:{name}")
        return errors

    def response_errors(self, method: str, path: str, status: int, body: Any) -> list[str]:
        """Problems of a response: status must be declared (or ``default``), body must match its schema."""
        op = self._require(method, path)
        spec = op.responses.get(str(status)) or op.responses.get(status) or op.responses.get("default")
        if spec is None:
            return [f"status {status} is not declared for {op.method} {op.template}"]
        schema = spec.get("schema")
        if schema is None:
            return []
        if body is None:
            return [f"status {status}: a body matching the schema is required"]
        return _errors(_validator(schema, op.definitions), body, f"response {status}")

    def validate_request(self, method: str, path: str, *, query: Mapping[str, Any] | None = None, body: Any = None,
                         headers: Mapping[str, str] | None = None) -> None:
        errors = self.request_errors(method, path, query=query, body=body, headers=headers)
        if errors:
            raise SpecValidationError(f"request {method} {path}", errors)

    def validate_response(self, method: str, path: str, status: int, body: Any) -> None:
        errors = self.response_errors(method, path, status, body)
        if errors:
            raise SpecValidationError(f"response {status} of {method} {path}", errors)


def validate_exchanges(specs: SwaggerSpecs, exchanges: list[Any], *, requests: bool = True,
                       responses: bool = True) -> tuple[int, list[str]]:
    """Validate recorded exchanges (``method, path, query, body, status, response`` attributes).

    Exchanges whose operation the specs lack are skipped. Returns (how many were checked, errors).
    """
    checked, errors = 0, []
    for ex in exchanges:
        if specs.operation(ex.method, ex.path) is None:
            continue
        checked += 1
        if requests and ex.status not in (401, 403, 429):
            errors += [f"{ex.method} {ex.path}: {e}" for e in
                       specs.request_errors(ex.method, ex.path, query=ex.query, body=ex.body)]
        if responses:
            errors += [f"{ex.method} {ex.path}: {e}" for e in
                       specs.response_errors(ex.method, ex.path, ex.status, ex.response)]
    return checked, errors
