"""The integer codes one reconciliation run works in: SKUs in one shared space, stores, price lookups."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

_DENSE_LIMIT = 1 << 24  # largest dense (store x SKU) or (price list x SKU) array, in elements


def _obj(values: Any) -> np.ndarray:
    return np.asarray(values, dtype=object)


def _is_cat(s: pd.Series) -> bool:
    return isinstance(s.dtype, pd.CategoricalDtype)


class KeySpace:
    """Integer codes of one reconciliation run: SKUs in one shared code space, stores as rows of
    ``locations``, memoised per frame (by identity; the frames are kept alive meanwhile), and the
    price-list lookup as a dense (price list x SKU) table."""

    def __init__(self, locations: pd.DataFrame, prices: pd.DataFrame | None = None):
        self.locations = locations
        self.prices = prices
        self._index = pd.Index([], dtype=object)
        self._memo: dict[tuple, Any] = {}
        self._frames: dict[int, pd.DataFrame] = {}
        self._loc_index = pd.Index(_obj(locations["location_id"]))
        self._node_index = pd.Index(_obj(locations["fulfillment_node_id"]))
        self._wh_index = pd.Index(locations["warehouse_id"].to_numpy(dtype=np.int64))
        self._price: tuple[np.ndarray, int, np.ndarray | None, np.ndarray, np.ndarray] | None = None
        if prices is not None and len(prices):
            self.price(np.empty(0, np.int64), np.empty(0, np.int64))  # price-list SKUs get the first codes

    # -- SKUs
    @property
    def n_skus(self) -> int:
        return len(self._index)

    @property
    def skus(self) -> np.ndarray:
        return _obj(self._index)

    def encode(self, values: Any) -> np.ndarray:
        """Codes of SKU values in the shared space (unseen SKUs get new codes; nulls -1)."""
        if isinstance(values, pd.Series) and _is_cat(values):
            cats = self.encode(_obj(values.cat.categories))
            codes = values.cat.codes.to_numpy()
            return np.where(codes >= 0, cats[np.clip(codes, 0, None)], -1) if len(cats) else np.full(len(codes), -1)
        arr = _obj(values)
        if not len(self._index):
            codes, uniq = pd.factorize(arr)
            self._index = pd.Index(_obj(uniq))
            return codes.astype(np.int64)
        codes = self._index.get_indexer(arr).astype(np.int64)
        miss = codes < 0
        if miss.any():
            new_codes, new_uniq = pd.factorize(arr[miss])
            if len(new_uniq):
                at = np.flatnonzero(miss)
                ok = new_codes >= 0
                codes[at[ok]] = new_codes[ok] + len(self._index)
                self._index = self._index.append(pd.Index(_obj(new_uniq)))
        return codes

    def presence(self, codes: np.ndarray, size: int | None = None) -> np.ndarray:
        """Boolean array over the codes (current ones, or the first ``size``): True for the given codes."""
        out = np.zeros(self.n_skus if size is None else size, dtype=bool)
        codes = codes[(codes >= 0) & (codes < len(out))]
        out[codes] = True
        return out

    # -- per-frame memo
    def _key(self, df: pd.DataFrame, *parts: Any) -> tuple:
        self._frames[id(df)] = df
        return (id(df), *parts)

    def sku(self, df: pd.DataFrame, col: str = "sku") -> np.ndarray:
        key = self._key(df, "sku", col)
        if key not in self._memo:
            self._memo[key] = self.encode(df[col])
        return self._memo[key]

    def eq(self, df: pd.DataFrame, col: str, value: Any) -> np.ndarray:
        """Row mask ``df[col] == value`` (all rows when the column is absent or value is None)."""
        if value is None or col not in df.columns:
            return np.ones(len(df), dtype=bool)
        key = self._key(df, "eq", col, value)
        if key not in self._memo:
            s = df[col]
            mask = None
            if s.dtype == object:  # numpy's elementwise compare is ~4x faster than the pandas one here
                mask = np.asarray(s.to_numpy() == value)
            if mask is None or mask.shape != (len(s),) or mask.dtype != bool:
                mask = (s == value).to_numpy(dtype=bool)
            self._memo[key] = mask
        return self._memo[key]

    def col(self, df: pd.DataFrame, name: str) -> np.ndarray:
        """A numeric column as float64, memoised."""
        key = self._key(df, "col", name)
        if key not in self._memo:
            self._memo[key] = df[name].to_numpy(dtype=float)
        return self._memo[key]

    def day(self, df: pd.DataFrame, business_date: str | None) -> np.ndarray:
        return self.eq(df, "business_date", business_date)

    def codes(self, df: pd.DataFrame, col: str) -> tuple[np.ndarray, np.ndarray]:
        """(codes, uniques) of any column, memoised (not the shared SKU space)."""
        key = self._key(df, "codes", col)
        if key not in self._memo:
            s = df[col]
            if _is_cat(s):
                self._memo[key] = (s.cat.codes.to_numpy().astype(np.int64), _obj(s.cat.categories))
            else:
                c, u = pd.factorize(_obj(s))
                self._memo[key] = (c.astype(np.int64), _obj(u))
        return self._memo[key]

    def _lookup(self, index: pd.Index, s: pd.Series) -> np.ndarray:
        if _is_cat(s):
            cats = index.get_indexer(s.cat.categories)
            codes = s.cat.codes.to_numpy()
            return np.where(codes >= 0, cats[np.clip(codes, 0, None)], -1).astype(np.int64) if len(cats) \
                else np.full(len(s), -1, dtype=np.int64)
        if pd.api.types.is_numeric_dtype(s.dtype) and index.dtype == object:
            s = s.astype(object)
        return index.get_indexer(_obj(s) if index.dtype == object else s.to_numpy()).astype(np.int64)

    def store(self, df: pd.DataFrame) -> np.ndarray:
        """Store code per row by location_id, else fulfillment_node_id; -1 for non-stores."""
        key = self._key(df, "store")
        if key not in self._memo:
            codes = self._lookup(self._loc_index, df["location_id"]) if "location_id" in df.columns \
                else np.full(len(df), -1, dtype=np.int64)
            if "fulfillment_node_id" in df.columns:
                miss = codes < 0
                if miss.any():
                    codes[miss] = self._lookup(self._node_index, df["fulfillment_node_id"])[miss]
            self._memo[key] = codes
        return self._memo[key]

    def store_by_warehouse(self, df: pd.DataFrame, col: str = "warehouse_id") -> np.ndarray:
        """Store code per row by Centra warehouse id; -1 for non-store warehouses."""
        key = self._key(df, "warehouse", col)
        if key not in self._memo:
            s = df[col]
            whs = self._wh_index.to_numpy()
            top = int(whs.max(initial=0))
            if pd.api.types.is_integer_dtype(s.dtype) and not _is_cat(s) and whs.min(initial=0) >= 0 \
                    and top < _DENSE_LIMIT:
                lut = np.full(top + 2, -1, dtype=np.int64)  # last slot: ids outside the table
                lut[whs] = np.arange(len(whs))
                w = s.to_numpy(dtype=np.int64)
                self._memo[key] = lut[np.where((w >= 0) & (w <= top), w, top + 1)]
            else:
                w = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float)
                self._memo[key] = self._wh_index.get_indexer(w).astype(np.int64)
        return self._memo[key]

    # -- prices
    def price(self, store: np.ndarray, sku: np.ndarray) -> np.ndarray:
        """The store's price-list price of each (store code, SKU code); NaN when there is none."""
        out = np.full(len(store), np.nan)
        if self.prices is None or not len(self.prices):
            return out
        if self._price is None:
            pcodes = self.encode(self.prices["sku"])
            pl_index = pd.Index(pd.unique(self.prices["pricelist_id"].to_numpy(dtype=np.int64)))
            loc_pl = pl_index.get_indexer(pd.to_numeric(self.locations["pricelist_id"], errors="coerce")
                                          .to_numpy(dtype=float)).astype(np.int64)
            width = self.n_skus
            pkey = pl_index.get_indexer(self.prices["pricelist_id"].to_numpy(dtype=np.int64)) * width + pcodes
            pval = self.prices["price"].to_numpy(dtype=float)
            if len(pl_index) * width <= _DENSE_LIMIT:
                table = np.full(len(pl_index) * width, np.nan)
                table[pkey] = pval
                self._price = (loc_pl, width, table, np.empty(0, np.int64), np.empty(0))
            else:
                ukey, first = np.unique(pkey, return_index=True)
                self._price = (loc_pl, width, None, ukey, pval[first])
        loc_pl, width, table, ukey, uval = self._price
        row_pl = np.where(store >= 0, loc_pl[np.clip(store, 0, None)], -1)
        ok = (row_pl >= 0) & (sku >= 0) & (sku < width)
        key = row_pl[ok] * width + sku[ok]
        if table is not None:
            out[ok] = table[key]
        elif len(ukey):
            pos = np.clip(np.searchsorted(ukey, key), 0, len(ukey) - 1)
            hit = ukey[pos] == key
            vals = np.full(len(key), np.nan)
            vals[hit] = uval[pos[hit]]
            out[ok] = vals
        return out


def _keys(keys: KeySpace | None, locations: pd.DataFrame, prices: pd.DataFrame | None) -> KeySpace:
    return keys if keys is not None else KeySpace(locations, prices)
