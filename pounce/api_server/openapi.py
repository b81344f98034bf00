"""GET / : an OpenAPI 2.0 document built from the schema cache and COMMENT ON, showing
what the requesting role may use (PostgREST's openapi-mode = follow-privileges)."""

from __future__ import annotations

from urllib.parse import urlsplit

from .. import __version__
from .catalog import Catalog, Column, Type

# One statement, run in the request's transaction as the request's role.
PRIVILEGES_SQL = """
SELECT json_build_object(
  'relations', coalesce((SELECT json_object_agg(c.relname, json_build_object(
       'select', has_any_column_privilege(c.oid, 'SELECT'),
       'insert', has_any_column_privilege(c.oid, 'INSERT'),
       'update', has_any_column_privilege(c.oid, 'UPDATE'),
       'delete', has_table_privilege(c.oid, 'DELETE')))
     FROM pg_class c WHERE c.relnamespace = %(schema)s::regnamespace AND c.relkind IN ('v','m','r','f','p')), '{}'),
  'functions', coalesce((SELECT json_agg(p.oid::bigint) FROM pg_proc p
     WHERE p.pronamespace = %(schema)s::regnamespace AND p.prokind = 'f'
       AND has_function_privilege(p.oid, 'EXECUTE')), '[]'))
"""


def _schema_of(t: Type) -> dict:
    if t.category == "A":
        inner = t.display[:-2] if t.display.endswith("[]") else t.display
        return {"type": "array", "format": t.display, "items": {"type": _json_type(t, inner)}}
    out = {"format": t.display}
    jt = _json_type(t, t.display)
    if jt:
        out["type"] = jt
    return out


def _json_type(t: Type, display: str) -> str | None:
    if display in ("smallint", "integer", "bigint"):
        return "integer"
    if display in ("numeric", "real", "double precision") or t.category == "N" and display not in ("oid",):
        return "number"
    if display == "boolean":
        return "boolean"
    if display in ("json", "jsonb"):
        return None
    return "string"


def _column(c: Column) -> dict:
    d = _schema_of(c.type)
    if c.comment:
        d["description"] = c.comment
    if c.default is not None:
        d["default"] = c.default
    return d


def _split(comment: str | None) -> dict:
    if not comment:
        return {}
    summary, _, rest = comment.partition("\n")
    out = {"summary": summary}
    out["description"] = rest.strip() if rest.strip() else summary
    return out


def document(catalog: Catalog, privileges: dict, conf: dict, schema: str) -> dict:
    proxy = urlsplit(str(conf.get("openapi-server-proxy-uri") or "http://localhost:3000"))
    rel_priv = privileges.get("relations") or {}
    fn_ok = set(privileges.get("functions") or [])
    paths: dict = {"/": {"get": {"tags": ["Introspection"], "summary": "OpenAPI description (this document)",
                                 "produces": ["application/openapi+json", "application/json"],
                                 "responses": {"200": {"description": "OK"}}}}}
    definitions: dict = {}
    common_get = [{"$ref": "#/parameters/select"}, {"$ref": "#/parameters/order"},
                  {"$ref": "#/parameters/range"}, {"$ref": "#/parameters/rangeUnit"},
                  {"$ref": "#/parameters/offset"}, {"$ref": "#/parameters/limit"},
                  {"$ref": "#/parameters/preferCount"}]
    for name, rel in sorted(catalog.relations.items()):
        pr = rel_priv.get(name) or {}
        if not any(pr.values()):
            continue
        definitions[name] = {"type": "object", "properties": {c.name: _column(c) for c in rel.columns.values()}}
        if rel.comment:
            definitions[name]["description"] = rel.comment
        row_filters = [{"name": c, "in": "query", "required": False, "type": "string",
                        "description": f"filter on {c}, e.g. {c}=eq.value"} for c in rel.columns]
        item = {}
        ok = {"200": {"description": "OK", "schema": {"type": "array", "items": {"$ref": f"#/definitions/{name}"}}},
              "206": {"description": "Partial Content"}}
        meta = {"tags": [name], **_split(rel.comment)}
        if pr.get("select"):
            item["get"] = {**meta, "parameters": row_filters + common_get, "responses": ok,
                           "produces": ["application/json", "application/vnd.pgrst.object+json"]}
        if pr.get("insert") and rel.insertable:
            item["post"] = {**meta, "parameters": [{"name": "body", "in": "body", "required": False,
                                                     "schema": {"$ref": f"#/definitions/{name}"}},
                                                    {"$ref": "#/parameters/select"},
                                                    {"$ref": "#/parameters/preferReturn"}],
                            "responses": {"201": {"description": "Created"}}}
        if pr.get("update") and rel.updatable:
            item["patch"] = {**meta, "parameters": row_filters + [
                {"name": "body", "in": "body", "required": False, "schema": {"$ref": f"#/definitions/{name}"}},
                {"$ref": "#/parameters/preferReturn"}], "responses": {"204": {"description": "No Content"}}}
        if pr.get("delete") and rel.deletable:
            item["delete"] = {**meta, "parameters": row_filters + [{"$ref": "#/parameters/preferReturn"}],
                              "responses": {"204": {"description": "No Content"}}}
        if item:
            paths[f"/{name}"] = item
    for name, fns in sorted(catalog.functions.items()):
        for fn in fns:
            if fn.oid not in fn_ok:
                continue
            props = {a.name: _schema_of(a.type) for a in fn.args if a.name}
            required = [a.name for a in fn.args if a.name and not a.has_default]
            meta = {"tags": ["(rpc) " + name], **_split(fn.comment)}
            body_schema = {"type": "object", "properties": props}
            if required:
                body_schema["required"] = required
            item = {"post": {**meta, "parameters": [{"name": "args", "in": "body", "required": True,
                                                      "schema": body_schema}, {"$ref": "#/parameters/preferParams"}],
                             "produces": ["application/json", "application/vnd.pgrst.object+json"],
                             "responses": {"200": {"description": "OK"}}}}
            if fn.read_only:
                item["get"] = {**meta, "parameters": [
                    {"name": a.name, "in": "query", "required": not a.has_default, **_schema_of(a.type)}
                    for a in fn.args if a.name], "responses": {"200": {"description": "OK"}}}
            paths[f"/rpc/{name}"] = item
    return {
        "swagger": "2.0",
        "info": {"title": "Pounce API", "version": __version__,
                 "description": catalog.schema_comment or f"the {schema} schema"},
        "host": proxy.netloc,
        "basePath": proxy.path or "/",
        "schemes": [proxy.scheme or "http"],
        "consumes": ["application/json", "application/vnd.pgrst.object+json", "text/csv"],
        "produces": ["application/json", "application/vnd.pgrst.object+json"],
        "paths": paths,
        "definitions": definitions,
        "parameters": {
            "preferParams": {"name": "Prefer", "in": "header", "type": "string", "enum": ["params=single-object"]},
            "preferReturn": {"name": "Prefer", "in": "header", "type": "string",
                             "enum": ["return=representation", "return=minimal", "return=headers-only"]},
            "preferCount": {"name": "Prefer", "in": "header", "type": "string", "enum": ["count=exact", "count=planned", "count=estimated"]},
            "select": {"name": "select", "in": "query", "type": "string", "description": "Columns: a,b,alias:c,d::text"},
            "order": {"name": "order", "in": "query", "type": "string", "description": "Ordering: a.desc.nullslast,b"},
            "range": {"name": "Range", "in": "header", "type": "string", "description": "Limiting and Pagination"},
            "rangeUnit": {"name": "Range-Unit", "in": "header", "type": "string", "default": "items"},
            "offset": {"name": "offset", "in": "query", "type": "string", "description": "Limiting and Pagination"},
            "limit": {"name": "limit", "in": "query", "type": "string", "description": "Limiting and Pagination"},
        },
    }
