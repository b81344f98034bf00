"""PostgREST's query-string dialect, turned into SQL.

Identifiers come only from the schema cache (catalog.py) and are quoted with
sql.Identifier; every value from a request is a bound parameter (named placeholders,
so a WHERE clause can appear twice, in the page and in its count).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from psycopg import sql

from .catalog import Catalog, Column


class ApiError(Exception):
    """An error answered PostgREST-style: {"code", "message", "details", "hint"}."""

    def __init__(self, status: int, code: str, message: str, details: str | None = None,
                 hint: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.details, self.hint, self.headers = details, hint, headers or {}

    def body(self) -> dict:
        return {"code": self.code, "details": self.details, "hint": self.hint, "message": self.message}


def parse_error(message: str, details: str | None = None) -> ApiError:
    return ApiError(400, "PGRST100", message, details)


# --------------------------------------------------------------------------------------
# lexing helpers
# --------------------------------------------------------------------------------------

def split_top(s: str, sep: str = ",") -> list[str]:
    """Split on sep outside parentheses and double quotes (backslash escapes in quotes)."""
    out, buf, depth, quoted, i = [], [], 0, False, 0
    while i < len(s):
        ch = s[i]
        if quoted:
            buf.append(ch)
            if ch == "\\" and i + 1 < len(s):
                buf.append(s[i + 1])
                i += 1
            elif ch == '"':
                quoted = False
        elif ch == '"':
            quoted = True
            buf.append(ch)
        elif ch == "(":
            depth += 1
            buf.append(ch)
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise parse_error(f'"failed to parse: unbalanced parentheses in {s!r}"')
            buf.append(ch)
        elif ch == sep and depth == 0:
            out.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
        i += 1
    if quoted or depth:
        raise parse_error(f'"failed to parse: unclosed quote or parenthesis in {s!r}"')
    out.append("".join(buf))
    return out


def unquote(v: str) -> str:
    if len(v) >= 2 and v[0] == '"' and v[-1] == '"':
        return re.sub(r"\\(.)", r"\1", v[1:-1])
    return v


# --------------------------------------------------------------------------------------
# the SQL builder
# --------------------------------------------------------------------------------------

@dataclass
class Params:
    values: dict[str, object] = field(default_factory=dict)

    def add(self, value) -> sql.Placeholder:
        name = f"p{len(self.values)}"
        self.values[name] = value
        return sql.Placeholder(name)


@dataclass
class Source:
    """What a request reads from: an api relation, or the rows an api function returns."""
    label: str                       # for messages: the relation or function name
    columns: dict[str, Column]


def field_sql(src: Source, text: str, p: Params) -> tuple[sql.Composable, str]:
    """`col` or `col->key->>key` -> (SQL, default output name)."""
    parts = re.split(r"(->>|->)", text.strip())
    name = unquote(parts[0].strip())
    if not name or any(not k for k in parts[2::2]):
        raise parse_error(f'"failed to parse field ({text})"')
    if name not in src.columns:
        raise ApiError(400, "42703", f"column {src.label}.{name} does not exist")
    out: sql.Composable = sql.Identifier(name)
    label = name
    for arrow, key in zip(parts[1::2], parts[2::2]):
        key = unquote(key)
        keysql = sql.SQL("CAST({} AS integer)").format(p.add(int(key))) \
            if re.fullmatch(r"-?\d{1,9}", key) else p.add(key)
        out = sql.SQL("({} {} {})").format(out, sql.SQL(arrow), keysql)
        label = key
    return out, label


# --------------------------------------------------------------------------------------
# filters
# --------------------------------------------------------------------------------------

SIMPLE_OPS = {"eq": "=", "neq": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<=",
              "like": "LIKE", "ilike": "ILIKE", "match": "~", "imatch": "~*",
              "cs": "@>", "cd": "<@", "ov": "&&", "sl": "<<", "sr": ">>", "nxr": "&<", "nxl": "&>",
              "adj": "-|-", "isdistinct": "IS DISTINCT FROM"}
QUANTIFIABLE = {"eq", "neq", "gt", "gte", "lt", "lte", "like", "ilike", "match", "imatch"}
FTS_OPS = {"fts": "to_tsquery", "plfts": "plainto_tsquery", "phfts": "phraseto_tsquery",
           "wfts": "websearch_to_tsquery"}
IS_VALUES = {"null": "IS NULL", "not_null": "IS NOT NULL", "true": "IS TRUE", "false": "IS FALSE",
             "unknown": "IS UNKNOWN"}
_OP = re.compile(r"^(not\.)?([a-z]+)(?:\((any|all|[a-z_]+)\))?\.(.*)$", re.S)


def op_sql(src: Source, column: str, expr: str, p: Params, in_tree: bool) -> sql.Composable:
    """column + `[not.]op[(mod)].value` -> a boolean SQL expression."""
    m = _OP.match(expr)
    if not m:
        raise parse_error(f'"failed to parse filter ({expr})"', f"unexpected filter syntax for column {column!r}")
    negate, op, mod, value = bool(m.group(1)), m.group(2), m.group(3), m.group(4)
    lhs, _ = field_sql(src, column, p)
    if op in ("like", "ilike"):
        value = value.replace("*", "%")
    if op in SIMPLE_OPS:
        if mod in ("any", "all"):
            if op not in QUANTIFIABLE:
                raise parse_error(f'"failed to parse filter ({expr})"', f"{op} does not take ({mod})")
            if not (value.startswith("{") and value.endswith("}")):
                raise parse_error(f'"failed to parse filter ({expr})"', "expected {value,...}")
            if op in ("like", "ilike"):
                value = value.replace("*", "%")
            # one array literal, typed by PostgreSQL from the column (as PostgREST does)
            arr = p.add(value)
            cond = sql.SQL("{} {} {}({})").format(lhs, sql.SQL(SIMPLE_OPS[op]), sql.SQL(mod.upper()), arr)
        elif mod is not None:
            raise parse_error(f'"failed to parse filter ({expr})"')
        else:
            if in_tree:
                value = unquote(value)
            cond = sql.SQL("{} {} {}").format(lhs, sql.SQL(SIMPLE_OPS[op]), p.add(value))
    elif op == "in":
        if not (value.startswith("(") and value.endswith(")")):
            raise parse_error(f'"failed to parse filter ({expr})"', "in. expects a list: in.(a,b,c)")
        inner = value[1:-1]
        items = [unquote(v.strip()) for v in split_top(inner)] if inner.strip() else []
        cond = sql.SQL("{} IN ({})").format(lhs, sql.SQL(", ").join(p.add(v) for v in items)) if items \
            else sql.SQL("false")
    elif op == "is":
        if value.lower() not in IS_VALUES:
            raise parse_error(f'"failed to parse filter ({expr})"',
                              "is. accepts null, not_null, true, false or unknown")
        cond = sql.SQL("{} {}").format(lhs, sql.SQL(IS_VALUES[value.lower()]))
    elif op in FTS_OPS:
        fn = sql.SQL(FTS_OPS[op])
        if mod:
            cond = sql.SQL("{} @@ {}({}::regconfig, {})").format(lhs, fn, p.add(mod), p.add(unquote(value)))
        else:
            cond = sql.SQL("{} @@ {}({})").format(lhs, fn, p.add(unquote(value)))
    else:
        raise parse_error(f'"failed to parse filter ({expr})"', f"unknown operator {op!r}")
    return sql.SQL("NOT ({})").format(cond) if negate else cond


def logic_sql(src: Source, key: str, value: str, p: Params) -> sql.Composable:
    """`or=(a.eq.1,and(b.gt.2,c.is.null))`, `not.and=(...)` -> SQL."""
    negate = key.startswith("not.")
    kind = key[4:] if negate else key
    if not (value.startswith("(") and value.endswith(")")):
        raise parse_error(f'"failed to parse logic tree ({value})"', f"{kind}= expects a list in parentheses")
    parts = [s for s in split_top(value[1:-1])]
    if not parts or any(not s.strip() for s in parts):
        raise parse_error(f'"failed to parse logic tree ({value})"')
    conds = []
    for part in parts:
        part = part.strip()
        tree = re.match(r"^((?:not\.)?(?:and|or))(\(.*\))$", part, re.S)
        if tree:
            conds.append(logic_sql(src, tree.group(1), tree.group(2), p))
            continue
        if part.startswith('"'):
            close = part.index('"', 1) if '"' in part[1:] else -1
            if close < 0:
                raise parse_error(f'"failed to parse logic tree ({value})"')
            column, rest = part[:close + 1], part[close + 2:]
        else:
            if "." not in part:
                raise parse_error(f'"failed to parse logic tree ({value})"', f"{part!r} is not column.operator.value")
            column, rest = part.split(".", 1)
        conds.append(op_sql(src, column, rest, p, in_tree=True))
    joined = sql.SQL(" AND " if kind == "and" else " OR ").join(conds)
    out = sql.SQL("({})").format(joined)
    return sql.SQL("NOT {}").format(out) if negate else out


RESERVED = {"select", "order", "limit", "offset", "columns", "on_conflict"}
LOGIC_KEYS = {"or", "and", "not.or", "not.and"}


def where_sql(src: Source, filters: list[tuple[str, str]], p: Params) -> sql.Composable:
    conds: list[sql.Composable] = []
    for key, value in filters:
        if key in LOGIC_KEYS:
            conds.append(logic_sql(src, key, value, p))
        elif "." in key.split("->")[0] and not key.startswith('"'):
            raise ApiError(400, "PGRST108", f"'{key.split('.')[0]}' is not an embedded resource in this request",
                           hint="Resource embedding is not supported by the local API server")
        else:
            conds.append(op_sql(src, key, value, p, in_tree=False))
    return sql.SQL(" AND ").join(conds) if conds else sql.SQL("true")


# --------------------------------------------------------------------------------------
# select= and order=
# --------------------------------------------------------------------------------------

_SELECT_ITEM = re.compile(r"^(?:([^:()]+):(?!:))?(.+?)(?:::([A-Za-z_][A-Za-z0-9_ ]*(?:\[\])?))?$", re.S)


def select_sql(src: Source, catalog: Catalog, text: str | None, p: Params) -> sql.Composable:
    if text is None or text.strip() in ("", "*"):
        return sql.SQL(", ").join(sql.Identifier(c) for c in src.columns) if src.columns else sql.SQL("*")
    items: list[sql.Composable] = []
    for raw in split_top(text):
        raw = raw.strip()
        if not raw:
            continue
        if raw == "*":
            items.extend(sql.Identifier(c) for c in src.columns)
            continue
        if "(" in raw:
            target = raw.split("(", 1)[0].split(":")[-1].split("!")[0].lstrip(".")
            if raw.endswith("()") or re.search(r"\.\w+\(\)", raw):
                raise ApiError(400, "PGRST123", "Use of aggregate functions is not allowed")
            raise ApiError(400, "PGRST200",
                           f"Could not find a relationship between '{src.label}' and '{target}' in the schema cache",
                           hint="Resource embedding is not supported by the local API server")
        m = _SELECT_ITEM.match(raw)
        if not m:
            raise parse_error(f'"failed to parse select parameter ({text})"')
        alias, fld, cast = m.group(1), m.group(2), m.group(3)
        expr, label = field_sql(src, fld, p)
        if cast:
            t = catalog.cast_type(cast[:-2] if cast.endswith("[]") else cast)
            if t is None:
                raise ApiError(400, "42704", f'type "{cast}" does not exist')
            tsql: sql.Composable = t.ident
            if cast.endswith("[]"):
                tsql = sql.SQL("{}[]").format(tsql)
            expr = sql.SQL("CAST({} AS {})").format(expr, tsql)
        items.append(sql.SQL("{} AS {}").format(expr, sql.Identifier(unquote(alias.strip()) if alias else label)))
    if not items:
        raise parse_error(f'"failed to parse select parameter ({text})"')
    return sql.SQL(", ").join(items)


def order_sql(src: Source, text: str | None, p: Params) -> sql.Composable | None:
    if not text:
        return None
    terms = []
    for raw in split_top(text):
        parts = raw.strip().split(".")
        mods: list[str] = []
        while len(parts) > 1 and parts[-1] in ("asc", "desc", "nullsfirst", "nullslast"):
            mods.insert(0, parts.pop())
        if not parts or not parts[0] or len(mods) > 2:
            raise parse_error(f'"failed to parse order ({text})"')
        expr, _ = field_sql(src, ".".join(parts), p)
        direction = next((m for m in mods if m in ("asc", "desc")), None)
        nulls = next((m for m in mods if m.startswith("nulls")), None)
        t = [expr]
        if direction:
            t.append(sql.SQL(direction.upper()))
        if nulls:
            t.append(sql.SQL("NULLS FIRST" if nulls == "nullsfirst" else "NULLS LAST"))
        terms.append(sql.SQL(" ").join(t))
    return sql.SQL(", ").join(terms)


def columns_param(src: Source, text: str) -> list[str]:
    cols = [unquote(c.strip()) for c in split_top(text) if c.strip()]
    for c in cols:
        if c not in src.columns:
            raise ApiError(400, "PGRST204", f"Could not find the '{c}' column of '{src.label}' in the schema cache")
    return cols


# --------------------------------------------------------------------------------------
# ranges
# --------------------------------------------------------------------------------------

def non_negative(name: str, value: str) -> int:
    if not re.fullmatch(r"\d{1,18}", value.strip()):
        raise parse_error(f'"failed to parse {name} parameter ({value})"', f"{name} must be a non-negative integer")
    return int(value)


def page_range(query: dict[str, str], range_header: str | None, range_unit: str | None,
               max_rows: int | None) -> tuple[int, int | None]:
    """(offset, limit or None) from limit/offset and the Range header, capped by db-max-rows."""
    offset = non_negative("offset", query["offset"]) if "offset" in query else 0
    limit = non_negative("limit", query["limit"]) if "limit" in query else None
    if range_header and (range_unit or "items").lower() == "items":
        m = re.fullmatch(r"\s*(?:items=)?(\d+)-(\d*)\s*", range_header)
        if m:
            lo = int(m.group(1))
            hi = int(m.group(2)) if m.group(2) else None
            if hi is not None and hi < lo:
                raise ApiError(416, "PGRST103", "Requested range not satisfiable",
                               "The lower boundary must be lower than or equal to the upper boundary in the Range header.")
            # intersect the header's range with limit/offset
            # PostgREST: the header's range meets offset=, then limit= counts from there
            start = max(offset, lo)
            ends = [e for e in ((start + limit) if limit is not None else None,
                                (hi + 1) if hi is not None else None) if e is not None]
            end = min(ends) if ends else None
            offset, limit = start, (None if end is None else max(0, end - start))
    if max_rows is not None:
        limit = max_rows if limit is None else min(limit, max_rows)
    return offset, limit
