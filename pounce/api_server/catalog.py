"""The schema cache: everything the server serves comes from pg_catalog, never from a
list in code. Loaded at start and again on `NOTIFY pgrst, 'reload schema'` (as PostgREST).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import psycopg
from psycopg import sql


@dataclass(frozen=True)
class Type:
    schema: str
    name: str          # typname (arrays: _int4), a valid type name for sql.Identifier
    display: str       # format_type(): "integer", "timestamp with time zone", "text[]"
    category: str      # pg_type.typcategory: N numeric, S string, B boolean, A array, ...

    @property
    def ident(self) -> sql.Identifier:
        return sql.Identifier(self.schema, self.name)


@dataclass(frozen=True)
class Column:
    name: str
    type: Type
    nullable: bool
    default: str | None
    comment: str | None


@dataclass
class Relation:
    name: str
    kind: str                  # v view, m materialized view, r table, f foreign, p partitioned
    comment: str | None
    insertable: bool
    updatable: bool
    deletable: bool
    columns: dict[str, Column] = field(default_factory=dict)

    @property
    def ident(self) -> sql.Identifier:
        return sql.Identifier("api", self.name)


@dataclass(frozen=True)
class Arg:
    name: str
    type: Type
    has_default: bool


@dataclass
class Function:
    oid: int
    name: str
    comment: str | None
    volatility: str            # i, s, v
    args: list[Arg]
    returns_set: bool
    return_type: Type
    # columns of the result when it is a row type (a table/view type, RETURNS TABLE, OUT args)
    result_columns: dict[str, Column] | None
    single_unnamed_json: bool  # f(json) / f(jsonb) without a name: the body is the argument

    @property
    def ident(self) -> sql.Identifier:
        return sql.Identifier("api", self.name)

    @property
    def read_only(self) -> bool:
        return self.volatility in ("i", "s")

    @property
    def is_void(self) -> bool:
        return self.return_type.schema == "pg_catalog" and self.return_type.name == "void"

    @property
    def shape(self) -> str:
        """'rows' (SETOF row type: filterable array), 'row' (one object), 'scalars'
        (SETOF scalar: array of values), 'scalar' (a bare value), 'void'."""
        if self.is_void:
            return "void"
        if self.result_columns is not None:
            return "rows" if self.returns_set else "row"
        return "scalars" if self.returns_set else "scalar"


@dataclass
class Catalog:
    schema_comment: str | None
    relations: dict[str, Relation]
    functions: dict[str, list[Function]]
    types: dict[str, Type]     # for casts in select=: typname and format_type names

    def cast_type(self, name: str) -> Type | None:
        return self.types.get(name.strip().lower())


_RELATIONS = """
SELECT c.oid, c.relname, c.relkind::text, obj_description(c.oid, 'pg_class'),
       pg_relation_is_updatable(c.oid::regclass, true)
FROM pg_class c
WHERE c.relnamespace = %(schema)s::regnamespace AND c.relkind IN ('v', 'm', 'r', 'f', 'p')
ORDER BY c.relname
"""

_COLUMNS = """
SELECT a.attrelid, a.attname, tn.nspname, t.typname, format_type(a.atttypid, a.atttypmod),
       t.typcategory::text, NOT a.attnotnull, pg_get_expr(d.adbin, d.adrelid),
       col_description(a.attrelid, a.attnum)
FROM pg_attribute a
JOIN pg_type t ON t.oid = a.atttypid
JOIN pg_namespace tn ON tn.oid = t.typnamespace
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attrelid = ANY(%(oids)s) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attrelid, a.attnum
"""

_FUNCTIONS = """
SELECT p.oid, p.proname, obj_description(p.oid, 'pg_proc'), p.provolatile::text, p.proretset,
       rn.nspname, rt.typname, format_type(p.prorettype, NULL), rt.typcategory::text,
       rt.typrelid, p.pronargs, p.pronargdefaults,
       coalesce(p.proargnames, '{}'), coalesce(p.proargmodes::text[], '{}'),
       coalesce(p.proallargtypes, p.proargtypes::oid[])
FROM pg_proc p
JOIN pg_type rt ON rt.oid = p.prorettype
JOIN pg_namespace rn ON rn.oid = rt.typnamespace
WHERE p.pronamespace = %(schema)s::regnamespace AND p.prokind = 'f'
ORDER BY p.proname, p.oid
"""

_TYPES = """
SELECT t.oid, n.nspname, t.typname, format_type(t.oid, NULL), t.typcategory::text
FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
"""

_COMMENT = "SELECT obj_description(%(schema)s::regnamespace, 'pg_namespace')"

# Short names PostgreSQL's parser accepts for built-in types (int -> int4, ...).
_ALIASES = {
    "int": "int4", "integer": "int4", "smallint": "int2", "bigint": "int8", "real": "float4",
    "float": "float8", "double precision": "float8", "boolean": "bool", "decimal": "numeric",
    "varchar": "varchar", "character varying": "varchar", "char": "bpchar", "character": "bpchar",
    "timestamptz": "timestamptz", "timestamp with time zone": "timestamptz",
    "timestamp": "timestamp", "timestamp without time zone": "timestamp",
}


def load(conn: psycopg.Connection, schema: str = "api") -> Catalog:
    p = {"schema": schema}
    rows = {k: conn.execute(q, p).fetchall() for k, q in
            (("types", _TYPES), ("relations", _RELATIONS), ("functions", _FUNCTIONS), ("comment", _COMMENT))}
    relids = [r[0] for r in rows["relations"]] + [r[9] for r in rows["functions"] if r[9]]
    rows["columns"] = conn.execute(_COLUMNS, {"oids": relids}).fetchall()
    return build(schema, rows)


async def load_async(conn: psycopg.AsyncConnection, schema: str = "api") -> Catalog:
    p = {"schema": schema}
    rows = {}
    for k, q in (("types", _TYPES), ("relations", _RELATIONS), ("functions", _FUNCTIONS), ("comment", _COMMENT)):
        rows[k] = await (await conn.execute(q, p)).fetchall()
    relids = [r[0] for r in rows["relations"]] + [r[9] for r in rows["functions"] if r[9]]
    rows["columns"] = await (await conn.execute(_COLUMNS, {"oids": relids})).fetchall()
    return build(schema, rows)


def build(schema: str, rows: dict[str, list[tuple]]) -> Catalog:
    types_by_oid: dict[int, Type] = {}
    by_name: dict[str, Type] = {}
    for oid, nsp, name, display, cat in rows["types"]:
        t = Type(nsp, name, display, cat)
        types_by_oid[oid] = t
        if nsp in ("pg_catalog", "public", schema):
            by_name.setdefault(name, t)
            by_name.setdefault(display, t)
    for alias, name in _ALIASES.items():
        if name in by_name:
            by_name.setdefault(alias, by_name[name])

    columns: dict[int, dict[str, Column]] = {}
    for relid, name, nsp, typ, display, cat, nullable, default, comment in rows["columns"]:
        columns.setdefault(relid, {})[name] = Column(name, Type(nsp, typ, display, cat), nullable, default, comment)

    relations: dict[str, Relation] = {}
    for oid, name, kind, comment, upd in rows["relations"]:
        relations[name] = Relation(name, kind, comment, bool(upd & 8), bool(upd & 4), bool(upd & 16),
                                   columns.get(oid, {}))

    functions: dict[str, list[Function]] = {}
    for (oid, name, comment, vol, retset, rnsp, rname, rdisplay, rcat, typrelid, nargs, ndefaults,
         argnames, argmodes, argtypes) in rows["functions"]:
        modes = argmodes or ["i"] * len(argtypes)
        inputs = [i for i, m in enumerate(modes) if m in ("i", "b", "v")]
        args = [Arg(argnames[i] if i < len(argnames) else "", types_by_oid[argtypes[i]],
                    k >= len(inputs) - ndefaults) for k, i in enumerate(inputs)]
        out_cols = {argnames[i]: Column(argnames[i], types_by_oid[argtypes[i]], True, None, None)
                    for i, m in enumerate(modes) if m in ("o", "b", "t")}
        ret = Type(rnsp, rname, rdisplay, rcat)
        if typrelid:
            result_columns = columns.get(typrelid, {})
        elif len(out_cols) > 1 or "t" in modes:
            result_columns = out_cols
        else:
            result_columns = None
            if len(out_cols) == 1:
                ret = next(iter(out_cols.values())).type
        single_json = len(args) == 1 and not args[0].name and args[0].type.name in ("json", "jsonb")
        functions.setdefault(name, []).append(Function(
            oid, name, comment, vol, args, retset, ret, result_columns, single_json))

    comment = rows["comment"][0][0] if rows["comment"] else None
    return Catalog(comment, relations, functions, by_name)
