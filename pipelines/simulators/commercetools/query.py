"""Query predicates, sorting and paging of the commercetools fake.

The predicate subset (reference §3.7): comparisons ``=``, ``!=``/``<>``, ``>``, ``>=``, ``<``, ``<=``, ``in (...)``,
``not in (...)``, ``is defined``, ``is not defined``, ``and``, ``or``, ``not(...)``, parentheses, nested fields
``supplyChannel(id="...")`` and arrays ``lineItems(variant(sku="X"))`` (any element matches), and input variables
``:name`` bound by ``var.name`` query parameters (repeated for ``in``). Several ``where`` parameters are AND-ed.
Values that look like ISO datetimes are compared as datetimes, so ``"2024-01-01T00:00:00Z"`` equals
``"2024-01-01T00:00:00.000Z"``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from functools import lru_cache
from typing import Any

from .common import invalid_input, parse_time

Predicate = Callable[[dict[str, Any]], bool]

MAX_LIMIT = 500
DEFAULT_LIMIT = 20
MAX_OFFSET = 10_000

_TOKEN = re.compile(r'\s*(?:(?P<str>"(?:[^"\\]|\\.)*")|(?P<num>-?\d+(?:\.\d+)?)(?![\w])|(?P<var>:[A-Za-z_]\w*)'
                    r'|(?P<op>>=|<=|!=|<>|=|>|<|\(|\)|,)|(?P<word>[A-Za-z_][\w.-]*))')
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")


def _tokens(text: str) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise invalid_input(f"Malformed parameter: where: Syntax error while parsing 'where' at {pos}.")
        pos = m.end()
        kind = m.lastgroup
        value = m.group(kind) if kind else ""
        if kind == "str":
            out.append(("val", re.sub(r"\\(.)", r"\1", value[1:-1])))
        elif kind == "num":
            out.append(("val", float(value) if "." in value else int(value)))
        elif kind == "var":
            out.append(("var", value[1:]))
        elif kind == "op":
            out.append(("op", value))
        else:
            low = value.lower()
            if low in ("and", "or", "not", "in", "is", "defined", "empty", "contains", "all", "any"):
                out.append(("kw", low))
            elif low in ("true", "false"):
                out.append(("val", low == "true"))
            else:
                out.append(("name", value))
    return out


def _norm(value: Any) -> Any:
    if isinstance(value, str) and len(value) >= 16 and value[4] == "-" and value[10] == "T" and _ISO.match(value):
        return _as_time(value)
    return value


@lru_cache(maxsize=65536)
def _as_time(value: str) -> Any:
    try:
        return parse_time(value)
    except ValueError:
        return value


def _compare(left: Any, op: str, right: Any) -> bool:
    if left is None:
        return op in ("!=", "<>") and right is not None
    a, b = _norm(left), _norm(right)
    if isinstance(a, datetime) != isinstance(b, datetime):
        a, b = str(left), str(right)
    try:
        if op == "=":
            return a == b
        if op in ("!=", "<>"):
            return a != b
        if op == ">":
            return a > b
        if op == ">=":
            return a >= b
        if op == "<":
            return a < b
        if op == "<=":
            return a <= b
    except TypeError:
        return False
    raise invalid_input(f"Malformed parameter: where: unknown operator {op}.")


class _Parser:
    def __init__(self, text: str, variables: dict[str, list[str]]) -> None:
        self.toks = _tokens(text)
        self.i = 0
        self.vars = variables

    def peek(self, n: int = 0) -> tuple[str, Any] | None:
        return self.toks[self.i + n] if self.i + n < len(self.toks) else None

    def take(self, kind: str | None = None, value: Any = None) -> tuple[str, Any]:
        tok = self.peek()
        if tok is None or (kind and tok[0] != kind) or (value is not None and tok[1] != value):
            raise invalid_input(f"Malformed parameter: where: Syntax error near token {self.i}.")
        self.i += 1
        return tok

    def parse(self) -> Predicate:
        pred = self.expr()
        if self.peek() is not None:
            raise invalid_input("Malformed parameter: where: unexpected trailing input.")
        return pred

    def expr(self) -> Predicate:
        left = self.conj()
        while self.peek() == ("kw", "or"):
            self.i += 1
            right = self.conj()
            left = (lambda a, b: lambda o: a(o) or b(o))(left, right)
        return left

    def conj(self) -> Predicate:
        left = self.unary()
        while self.peek() == ("kw", "and"):
            self.i += 1
            right = self.unary()
            left = (lambda a, b: lambda o: a(o) and b(o))(left, right)
        return left

    def unary(self) -> Predicate:
        tok = self.peek()
        if tok == ("kw", "not"):
            self.i += 1
            self.take("op", "(")
            inner = self.expr()
            self.take("op", ")")
            return lambda o: not inner(o)
        if tok == ("op", "("):
            self.i += 1
            inner = self.expr()
            self.take("op", ")")
            return inner
        return self.atom()

    def value(self) -> Any:
        kind, val = self.take()
        if kind == "val":
            return val
        if kind == "var":
            if val not in self.vars:
                raise invalid_input(f"Malformed parameter: where: missing input variable 'var.{val}'.")
            vals = self.vars[val]
            return vals if len(vals) != 1 else vals[0]
        raise invalid_input("Malformed parameter: where: a value was expected.")

    def atom(self) -> Predicate:
        _, name = self.take("name")
        tok = self.peek()
        if tok == ("op", "("):  # nested object / array element
            self.i += 1
            inner = self.expr()
            self.take("op", ")")

            def nested(o: dict[str, Any]) -> bool:
                v = o.get(name) if isinstance(o, dict) else None
                if isinstance(v, list):
                    return any(isinstance(x, dict) and inner(x) for x in v)
                return isinstance(v, dict) and inner(v)
            return nested
        if tok == ("kw", "is"):
            self.i += 1
            negate = self.peek() == ("kw", "not")
            if negate:
                self.i += 1
            self.take("kw", "defined")
            return lambda o: (_get(o, name) is not None) != negate
        negate = False
        if tok == ("kw", "not"):
            self.i += 1
            negate = True
            tok = self.peek()
        if tok == ("kw", "in"):
            self.i += 1
            if self.peek() and self.peek()[0] == "var":
                vals = self.value()
                values = vals if isinstance(vals, list) else [vals]
            else:
                self.take("op", "(")
                values = [self.value()]
                while self.peek() == ("op", ","):
                    self.i += 1
                    values.append(self.value())
                self.take("op", ")")
            normed = [_norm(v) for v in values]

            def member(o: dict[str, Any]) -> bool:
                v = _get(o, name)
                vs = v if isinstance(v, list) else [v]
                return any(_norm(x) in normed or str(x) in map(str, values) for x in vs if x is not None) != negate
            return member
        _, op = self.take("op")
        if op not in ("=", "!=", "<>", ">", ">=", "<", "<="):
            raise invalid_input(f"Malformed parameter: where: unexpected '{op}'.")
        right = self.value()

        def cmp(o: dict[str, Any]) -> bool:
            v = _get(o, name)
            if isinstance(v, list):
                return any(_compare(x, op, right) for x in v)
            return _compare(v, op, right)
        return cmp


def _get(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, dict) else None


def compile_where(wheres: list[str], variables: dict[str, list[str]] | None = None) -> Predicate:
    preds = [_Parser(w, variables or {}).parse() for w in wheres if w and w.strip()]
    return lambda o: all(p(o) for p in preds)


def _path(obj: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        obj = obj.get(part) if isinstance(obj, dict) else None
    return obj


def sort_results(items: list[dict[str, Any]], sorts: list[str]) -> list[dict[str, Any]]:
    """Stable multi-key sort; ``sort=createdAt asc&sort=id asc``. Without ``sort`` the order is by ``id``
    (ASSUMPTION: commercetools does not define the default order)."""
    out = sorted(items, key=lambda o: o.get("id", ""))
    if sorts and sorts[0].split()[:1] == ["id"]:  # id is unique: nothing after it matters
        sorts = sorts[:1]
    for spec in reversed(sorts or []):
        if spec.split() == ["id", "asc"] or spec.split() == ["id"]:
            continue  # already in id order
        parts = spec.strip().split()
        if not parts or len(parts) > 2 or (len(parts) == 2 and parts[1].lower() not in ("asc", "desc")):
            raise invalid_input(f"Malformed parameter: sort: Invalid sort expression '{spec}'.")
        field, desc = parts[0], len(parts) == 2 and parts[1].lower() == "desc"
        present = [o for o in out if _path(o, field) is not None]
        missing = [o for o in out if _path(o, field) is None]
        present.sort(key=lambda o: _sort_key(_path(o, field)), reverse=desc)
        out = present + missing if not desc else missing + present
    return out


def _sort_key(value: Any) -> Any:
    n = _norm(value)
    if isinstance(n, datetime):
        return (1, n.timestamp(), "")
    if isinstance(n, int | float) and not isinstance(n, bool):
        return (0, float(n), "")
    return (2, 0.0, str(n))


def paging(params: dict[str, list[str]], with_total_default: bool = True) -> tuple[int, int, bool]:
    def one(name: str, default: int) -> int:
        raw = params.get(name)
        if not raw:
            return default
        try:
            return int(raw[-1])
        except ValueError:
            raise invalid_input(f"Malformed parameter: {name}: Invalid int value '{raw[-1]}'.") from None
    limit, offset = one("limit", DEFAULT_LIMIT), one("offset", 0)
    if limit < 0 or limit > MAX_LIMIT:
        raise invalid_input(f"Malformed parameter: limit: Limit must be between 0 and {MAX_LIMIT}.")
    if offset < 0 or offset > MAX_OFFSET:
        raise invalid_input(f"Malformed parameter: offset: Offset must be between 0 and {MAX_OFFSET}.")
    raw_total = params.get("withTotal")
    with_total = with_total_default if not raw_total else raw_total[-1].lower() == "true"
    return limit, offset, with_total


def page(items: list[dict[str, Any]], params: dict[str, list[str]], *,
         with_total_default: bool = True) -> dict[str, Any]:
    """Apply where/sort/limit/offset/withTotal; the PagedQueryResponse ``{limit, offset, count, total?, results}``."""
    limit, offset, with_total = paging(params, with_total_default)
    variables = {k[4:]: v for k, v in params.items() if k.startswith("var.")}
    pred = compile_where(params.get("where", []), variables)
    matched = sort_results([o for o in items if pred(o)], params.get("sort", []))
    results = matched[offset:offset + limit]
    body: dict[str, Any] = {"limit": limit, "offset": offset, "count": len(results)}
    if with_total:
        body["total"] = min(len(matched), MAX_OFFSET) if params.get("where") else len(matched)
    body["results"] = results
    return body
