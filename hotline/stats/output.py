"""Statistics rows as a supervisor reads them: an aligned table, JSON or CSV.

JSON and CSV carry every column under its SQL name (timestamps in ISO 8601 with the period's
offset); the table shows the usual columns under short headers, times as local wall-clock time.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

FORMATS = ("table", "json", "csv")
Row = dict[str, Any]  # one row of a statistics SQL function, by column name
_BUCKET_COLUMNS = ("bucket_start", "bucket_end")


@dataclass(frozen=True)
class Column:
    key: str
    header: str


def columns(*pairs: tuple[str, str]) -> list[Column]:
    return [Column(k, h) for k, h in pairs]


def render(rows: Sequence[Row], fmt: str, table_columns: Sequence[Column], zone: ZoneInfo,
           bucket: timedelta | None, lead: int = 1) -> str:
    """`lead`: how many of the table's columns name the row's subject (the bucket follows them)."""
    if fmt == "json":
        return json_text(list(rows), zone)
    if fmt == "csv":
        return _csv(rows, zone)
    return table(rows, _with_bucket(table_columns, bucket, lead), zone, bucket)


def table(rows: Sequence[Row], cols: Sequence[Column], zone: ZoneInfo,
          bucket: timedelta | None = None) -> str:
    if not rows:
        return "(no activity)"
    cells = [[_cell(r.get(c.key), zone, bucket) for c in cols] for r in rows]
    widths = [max(len(c.header), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    numeric = [all(_is_number(r.get(c.key)) for r in rows) for c in cols]
    lines = [_line([c.header for c in cols], widths, numeric)]
    lines += [_line(row, widths, numeric) for row in cells]
    return "\n".join(lines)


def title(what: str, since: datetime, until: datetime, zone: ZoneInfo, bucket: timedelta | None) -> str:
    per = f", per {_interval_name(bucket)}" if bucket else ""
    return f"{what}, {_when(since, zone)} - {_when(until, zone)} ({zone.key}){per}"


def _with_bucket(cols: Sequence[Column], bucket: timedelta | None, lead: int) -> list[Column]:
    if bucket is None:
        return list(cols)
    label = "DAY" if bucket >= timedelta(days=1) else "FROM"
    return [*cols[:lead], Column("bucket_start", label), *cols[lead:]]


def _line(cells: Sequence[str], widths: Sequence[int], numeric: Sequence[bool]) -> str:
    out = (c.rjust(w) if num else c.ljust(w) for c, w, num in zip(cells, widths, numeric, strict=True))
    return "  ".join(out).rstrip()


def _cell(value: object, zone: ZoneInfo, bucket: timedelta | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        local = value.astimezone(zone)
        return local.strftime("%Y-%m-%d" if bucket and bucket >= timedelta(days=1) else "%Y-%m-%d %H:%M")
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items()) or "-"
    if isinstance(value, list):
        return ",".join(map(str, value))
    return str(value)


def _is_number(value: object) -> bool:
    return value is None or (isinstance(value, int | float | Decimal) and not isinstance(value, bool))


def json_text(value: object, zone: ZoneInfo) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2, default=lambda v: _json_value(v, zone))


def _json_value(value: object, zone: ZoneInfo) -> object:
    if isinstance(value, datetime):
        return value.astimezone(zone).isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, timedelta):
        return value.total_seconds()
    return value


def _csv(rows: Sequence[Row], zone: ZoneInfo) -> str:
    if not rows:
        return ""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(rows[0].keys())
    for row in rows:
        writer.writerow([_csv_value(v, zone) for v in row.values()])
    return buffer.getvalue().rstrip("\n")


def _csv_value(value: object, zone: ZoneInfo) -> object:
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    if value is None:
        return ""
    return _json_value(value, zone)


def _when(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def _interval_name(bucket: timedelta) -> str:
    if bucket == timedelta(days=1):
        return "day"
    if bucket == timedelta(hours=1):
        return "hour"
    return f"{int(bucket.total_seconds() // 60)} min"
