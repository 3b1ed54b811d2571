"""ML Commons data frames (`column_metas` + `rows`) <-> numpy, with OpenSearch's column types."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlsearch.errors import IllegalArgumentError

COLUMN_TYPES = ("STRING", "SHORT", "INTEGER", "LONG", "DOUBLE", "BOOLEAN", "FLOAT", "NULL")
NUMERIC_TYPES = frozenset({"SHORT", "INTEGER", "LONG", "DOUBLE", "FLOAT"})
_INT32 = 2**31


@dataclass(frozen=True, slots=True)
class Frame:
    """A table: column names, their ML Commons types, and one list of Python values per column."""

    names: tuple[str, ...]
    types: tuple[str, ...]
    columns: tuple[tuple[Any, ...], ...]

    @property
    def size(self) -> int:
        return len(self.columns[0]) if self.columns else 0

    def column(self, name: str) -> tuple[Any, ...]:
        try:
            return self.columns[self.names.index(name)]
        except ValueError:
            raise IllegalArgumentError(f"input data has no column [{name}]") from None

    def without(self, name: str) -> Frame:
        keep = [i for i, n in enumerate(self.names) if n != name]
        return Frame(
            tuple(self.names[i] for i in keep), tuple(self.types[i] for i in keep), tuple(self.columns[i] for i in keep)
        )

    def numeric(self, names: Sequence[str] | None = None) -> np.ndarray:
        """The chosen columns (all by default) as a float64 matrix; strings and missing values are errors."""
        chosen = list(self.names) if names is None else list(names)
        if self.size == 0:
            raise IllegalArgumentError("input data frame is empty: no rows")
        if not chosen:
            raise IllegalArgumentError("input data frame has no columns")
        out = np.empty((self.size, len(chosen)), dtype=np.float64)
        for j, name in enumerate(chosen):
            out[:, j] = self._numeric_column(name)
        return out

    def _numeric_column(self, name: str) -> np.ndarray:
        ctype = self.types[self.names.index(name)] if name in self.names else None
        values = self.column(name)
        if ctype == "STRING":
            raise IllegalArgumentError(f"column [{name}] is of type STRING; this algorithm needs numeric columns")
        if ctype == "NULL" or any(v is None for v in values):
            raise IllegalArgumentError(f"column [{name}] has missing values; this algorithm needs a value in every row")
        return np.asarray(values, dtype=np.float64)


def parse_frame(body: Any) -> Frame:
    """An `input_data` object as sent by clients, validated."""
    if not isinstance(body, Mapping):
        raise IllegalArgumentError("input_data must be an object with column_metas and rows")
    metas = body.get("column_metas")
    rows = body.get("rows")
    if not isinstance(metas, list) or not isinstance(rows, list):
        raise IllegalArgumentError("input_data must have a column_metas array and a rows array")
    names, types = _parse_metas(metas)
    columns: list[list[Any]] = [[] for _ in names]
    for i, row in enumerate(rows):
        values = row.get("values") if isinstance(row, Mapping) else None
        if not isinstance(values, list) or len(values) != len(names):
            raise IllegalArgumentError(f"row [{i}] must have [{len(names)}] values, one per column meta")
        for j, cell in enumerate(values):
            columns[j].append(_parse_cell(cell, types[j], i, names[j]))
    return Frame(tuple(names), tuple(types), tuple(tuple(c) for c in columns))


def _parse_metas(metas: list[Any]) -> tuple[list[str], list[str]]:
    names: list[str] = []
    types: list[str] = []
    for meta in metas:
        if not isinstance(meta, Mapping) or not isinstance(meta.get("name"), str):
            raise IllegalArgumentError("each column meta needs a name and a column_type")
        ctype = str(meta.get("column_type", "")).upper()
        if ctype not in COLUMN_TYPES:
            raise IllegalArgumentError(
                f"Wrong column type [{meta.get('column_type')}] for column [{meta['name']}]; "
                f"expected one of {list(COLUMN_TYPES)}"
            )
        if meta["name"] in names:
            raise IllegalArgumentError(f"duplicate column name [{meta['name']}]")
        names.append(meta["name"])
        types.append(ctype)
    return names, types


def _parse_cell(cell: Any, ctype: str, row: int, name: str) -> Any:
    if not isinstance(cell, Mapping):
        raise IllegalArgumentError(f"row [{row}] column [{name}]: each value must be an object with column_type")
    cell_type = str(cell.get("column_type", ctype)).upper()
    value = cell.get("value")
    if cell_type == "NULL" or value is None:
        return None
    if cell_type != ctype and not (cell_type in NUMERIC_TYPES and ctype in NUMERIC_TYPES):
        raise IllegalArgumentError(f"row [{row}] column [{name}]: value of type [{cell_type}] in a [{ctype}] column")
    if ctype in NUMERIC_TYPES:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise IllegalArgumentError(f"row [{row}] column [{name}]: [{value}] is not a number")
        return int(value) if ctype in ("SHORT", "INTEGER", "LONG") and float(value).is_integer() else value
    if ctype == "BOOLEAN" and not isinstance(value, bool):
        raise IllegalArgumentError(f"row [{row}] column [{name}]: [{value}] is not a boolean")
    if ctype == "STRING" and not isinstance(value, str):
        return str(value)
    return value


def frame_from_sources(sources: Iterable[Mapping[str, Any]]) -> Frame:
    """Documents' `_source` maps as a frame: each (flattened) field a column, its type inferred from the values."""
    flat = [_flatten(s, "") for s in sources]
    names: dict[str, None] = {}
    for doc in flat:
        names.update(dict.fromkeys(doc))
    columns = [tuple(doc.get(n) for doc in flat) for n in names]
    return Frame(tuple(names), tuple(_infer_type(c) for c in columns), tuple(columns))


def _flatten(source: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in source.items():
        if isinstance(value, Mapping):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _infer_type(values: Sequence[Any]) -> str:
    present = [v for v in values if v is not None]
    if not present:
        return "NULL"
    if all(isinstance(v, bool) for v in present):
        return "BOOLEAN"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return "INTEGER" if all(-_INT32 <= v < _INT32 for v in present) else "LONG"
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        return "DOUBLE"
    return "STRING"


def render_frame(names: Sequence[str], types: Sequence[str], columns: Sequence[Sequence[Any]]) -> dict[str, Any]:
    """The `prediction_result` shape: column_metas, then one `values` list per row."""
    metas = [{"name": n, "column_type": t} for n, t in zip(names, types, strict=True)]
    rows = []
    for cells in zip(*columns, strict=True):
        rows.append({"values": [_cell(t, v) for t, v in zip(types, cells, strict=True)]})
    return {"column_metas": metas, "rows": rows}


def _cell(ctype: str, value: Any) -> dict[str, Any]:
    if value is None:
        return {"column_type": "NULL"}
    if isinstance(value, np.generic):
        value = value.item()
    if ctype in ("SHORT", "INTEGER", "LONG"):
        value = int(value)
    elif ctype in ("DOUBLE", "FLOAT"):
        value = float(value)
    return {"column_type": ctype, "value": value}
