"""Array helpers shared by the rules and the builder of a findings frame (FINDING_COLUMNS)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from pipelines.domain.reconciliation.model import FINDING_DTYPES, FindingType, empty_findings
from pipelines.domain.reconciliation.rules.keyspace import _DENSE_LIMIT, _obj
from pipelines.domain.reconciliation.rules.ranking import rank_findings, sort_findings

_EPS = 1e-9


def _group(space: int, parts: list[tuple[np.ndarray, np.ndarray | None]]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Union of integer keys over several parts, ascending, and per part the sum of its weights (count
    when None) per key."""
    rows = sum(len(k) for k, _ in parts)
    if space <= max(_DENSE_LIMIT // 4, 4 * rows):
        present = np.zeros(space, dtype=bool)
        for k, _ in parts:
            present[k] = True
        ukeys = np.flatnonzero(present)
        sums = [np.bincount(k, weights=w, minlength=space)[ukeys].astype(float) for k, w in parts]
        return ukeys, sums
    allk = np.concatenate([k for k, _ in parts]) if parts else np.empty(0, np.int64)
    ukeys, inv = np.unique(allk, return_inverse=True)
    sums, start = [], 0
    for k, w in parts:
        sums.append(np.bincount(inv[start:start + len(k)], weights=w, minlength=len(ukeys)).astype(float))
        start += len(k)
    return ukeys, sums


def _col(df: pd.DataFrame, name: str, mask: np.ndarray | None = None, dtype: Any = float) -> np.ndarray:
    a = df[name].to_numpy(dtype=dtype)
    return a if mask is None else _take(a, mask)


def _take(a: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """a[mask], without a copy when every row is kept (the usual case: one day, stores only)."""
    return a if mask.all() else a[mask]


def _pair_key(store: np.ndarray, sku: np.ndarray, width: int) -> np.ndarray:
    key = store * width
    key += sku
    return key


def _over(diff_abs: np.ndarray, tol: float | np.ndarray) -> np.ndarray:
    return np.abs(diff_abs) > np.asarray(tol) + _EPS


def _ints(values: np.ndarray | None, n: int) -> pd.arrays.IntegerArray:
    if values is None:
        return pd.array([pd.NA] * n, dtype="Int64")
    arr = np.asarray(values, dtype=float)
    return pd.array(np.where(np.isnan(arr), np.nan, np.rint(arr)), dtype="Int64")


def _floats(values: np.ndarray | float | None, n: int) -> np.ndarray:
    if values is None:
        return np.full(n, np.nan)
    return np.round(np.broadcast_to(np.asarray(values, dtype=float), (n,)).astype(float), 2)


def _objs(values: np.ndarray | pd.Series | None, n: int) -> np.ndarray:
    if values is None:
        return np.full(n, None, dtype=object)
    arr = _obj(values).copy()
    arr[pd.isna(arr)] = None
    return arr


def _findings(ft: FindingType, business_date: str, locations: pd.DataFrame, loc_codes: np.ndarray, *,
              value: np.ndarray, location_ids: np.ndarray | None = None, sku: np.ndarray | None = None,
              order_ref: np.ndarray | None = None, transaction_id: np.ndarray | None = None,
              tax_rate: np.ndarray | None = None, quantity_pos: np.ndarray | None = None,
              quantity_commerce: np.ndarray | None = None, amount_pos: np.ndarray | None = None,
              amount_commerce: np.ndarray | None = None, detail: Iterable[str] | None = None,
              currency: np.ndarray | None = None, fx: np.ndarray | None = None) -> pd.DataFrame:
    """A findings frame of one type. Store currency and fx come from ``locations`` by code; the ``currency``
    and ``fx`` arrays fill rows without a store. value_at_risk = round(|value|, 2)."""
    loc_codes = np.asarray(loc_codes, dtype=np.int64)
    n = len(loc_codes)
    if n == 0:
        return empty_findings()
    ok = loc_codes >= 0
    safe = np.where(ok, loc_codes, 0)
    loc_ids = np.where(ok, _obj(locations["location_id"])[safe], None) if len(locations) else np.full(n, None)
    if location_ids is not None:
        loc_ids = np.where(ok, loc_ids, _objs(location_ids, n))
    cur = np.where(ok, _obj(locations["currency"])[safe], None) if len(locations) else np.full(n, None)
    fxa = np.where(ok, locations["fx_to_base"].to_numpy(dtype=float)[safe], np.nan) if len(locations) \
        else np.full(n, np.nan)
    if currency is not None:
        cur = np.where(ok, cur, _objs(currency, n))
    if fx is not None:
        fxa = np.where(ok, fxa, np.asarray(fx, dtype=float))
    val = np.round(np.abs(np.nan_to_num(np.asarray(value, dtype=float))), 2)
    base = np.round(np.where(np.isnan(fxa), val, val * np.nan_to_num(fxa)), 2)
    qp, qc = _ints(quantity_pos, n), _ints(quantity_commerce, n)
    ap, ac = _floats(amount_pos, n), _floats(amount_commerce, n)
    df = pd.DataFrame({
        "business_date": np.full(n, business_date, dtype=object),
        "finding_type": np.full(n, ft.name, dtype=object),
        "severity": np.full(n, ft.severity, dtype=object),
        "owner_team": np.full(n, ft.owner_team, dtype=object),
        "location_id": loc_ids.astype(object),
        "sku": _objs(sku, n),
        "order_ref": _objs(order_ref, n),
        "transaction_id": _objs(transaction_id, n),
        "tax_rate": np.full(n, np.nan) if tax_rate is None else np.round(np.asarray(tax_rate, dtype=float), 4),
        "quantity_pos": qp,
        "quantity_commerce": qc,
        "quantity_diff": qc - qp,
        "amount_pos": ap,
        "amount_commerce": ac,
        "amount_diff": np.round(ac - ap, 2),
        "currency": cur.astype(object),
        "value_at_risk": val,
        "value_at_risk_base": base,
        "risk_rank": np.zeros(n, dtype=np.int64),
        "playbook": np.full(n, ft.playbook, dtype=object),
        "detail": np.full(n, "", dtype=object) if detail is None else _obj(list(detail)),
    })
    return df


def _pair_findings(business_date: str, locations: pd.DataFrame, split: Iterable[tuple[FindingType, np.ndarray]],
                   loc: np.ndarray, skus: np.ndarray, q_pos: np.ndarray, q_com: np.ndarray, diff: np.ndarray,
                   price: np.ndarray, detail: np.ndarray) -> pd.DataFrame:
    """Findings of (store, SKU) unit differences, one type per mask of ``split``: value = |diff| x price,
    amounts = quantity x price (stock drift, sync)."""
    out = []
    for ft, mask in split:
        if mask.any():
            out.append(_findings(ft, business_date, locations, loc[mask], value=np.abs(diff[mask]) * price[mask],
                                 sku=skus[mask], quantity_pos=q_pos[mask], quantity_commerce=q_com[mask],
                                 amount_pos=q_pos[mask] * price[mask], amount_commerce=q_com[mask] * price[mask],
                                 detail=detail[mask]))
    return _concat(out)


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if len(f)]
    if not frames:
        return empty_findings()
    return sort_findings(rank_findings(pd.concat(frames, ignore_index=True).astype(FINDING_DTYPES)))


def _nearest(values: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Per x, the nearest of the sorted ``values`` (the lower one on a tie)."""
    idx = np.clip(np.searchsorted(values, x), 1, max(len(values) - 1, 1))
    lo, hi = values[idx - 1], values[np.minimum(idx, len(values) - 1)]
    return np.where(np.abs(x - lo) <= np.abs(hi - x), lo, hi)


def _fmt(x: float) -> str:
    return "n/a" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:.2f}"


def _norm_ref(values: pd.Series) -> np.ndarray:
    """Order references as text ("100123"), None for missing; ints and floats without their ".0"."""
    s = values
    if pd.api.types.is_numeric_dtype(s.dtype):
        num = pd.to_numeric(s, errors="coerce")
        out = np.full(len(s), None, dtype=object)
        ok = num.notna().to_numpy()
        out[ok] = num[ok].astype("int64").astype(str).to_numpy()
        return out
    arr = _obj(s).copy()
    na = pd.isna(arr)
    arr[~na] = [str(v).strip() for v in arr[~na]] if (~na).sum() < 200_000 else \
        pd.Series(arr[~na]).astype(str).str.strip().to_numpy(dtype=object)
    arr[na] = None
    arr[arr == ""] = None
    return arr
