"""sql/ (the current definition) and alembic (the history) must build the same database.

Both databases are built from nothing in this test, one each way, and their catalogs
are compared object by object: schemas, tables and columns, constraints, indexes,
functions (full definitions), views, policies, triggers, types, grants, comments,
default privileges, extensions, and the rows that are part of the definition (plans,
declared cron jobs, non-secret settings). The same inventory also guards the design
rules every area must follow (RLS forced on user-owned tables, security_invoker views,
COMMENT ON every api object, pinned search_path on SECURITY DEFINER functions)."""

from __future__ import annotations

import psycopg
import pytest

from pounce import schema

OURS = "('pounce', 'api', 'collector')"

CATALOG_QUERIES: dict[str, str] = {
    "schemas": f"""
        SELECT nspname, pg_get_userbyid(nspowner), coalesce(nspacl::text, '')
        FROM pg_namespace WHERE nspname IN {OURS} OR nspname = 'public'""",
    "extensions": "SELECT extname, extversion, extnamespace::regnamespace::text FROM pg_extension",
    "relations": f"""
        SELECT n.nspname, c.relname, c.relkind, pg_get_userbyid(c.relowner), coalesce(c.relacl::text, ''),
               coalesce(c.reloptions::text, ''), c.relrowsecurity, c.relforcerowsecurity, c.relpersistence
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname IN {OURS}""",
    "columns": f"""
        SELECT n.nspname, c.relname, a.attname, a.attnum, format_type(a.atttypid, a.atttypmod), a.attnotnull,
               coalesce(pg_get_expr(d.adbin, d.adrelid), ''), a.attidentity, a.attgenerated,
               coalesce(a.attacl::text, ''), coalesce(co.collname, '')
        FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        LEFT JOIN pg_collation co ON co.oid = a.attcollation AND a.attcollation <> 100
        WHERE n.nspname IN {OURS} AND a.attnum > 0 AND NOT a.attisdropped""",
    "constraints": f"""
        SELECT n.nspname, coalesce(c.relname, t.typname), con.conname, con.contype, pg_get_constraintdef(con.oid),
               con.condeferrable, con.condeferred
        FROM pg_constraint con JOIN pg_namespace n ON n.oid = con.connamespace
        LEFT JOIN pg_class c ON c.oid = con.conrelid LEFT JOIN pg_type t ON t.oid = con.contypid
        WHERE n.nspname IN {OURS}""",
    "indexes": f"SELECT schemaname, indexname, indexdef FROM pg_indexes WHERE schemaname IN {OURS}",
    "functions": f"""
        SELECT n.nspname, p.proname, pg_get_function_identity_arguments(p.oid), pg_get_function_result(p.oid),
               pg_get_functiondef(p.oid), pg_get_userbyid(p.proowner), coalesce(p.proacl::text, ''),
               p.prosecdef, p.provolatile, p.proparallel, coalesce(p.proconfig::text, '')
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname IN {OURS} AND p.prokind IN ('f', 'p', 'w')""",
    "aggregates": f"""
        SELECT n.nspname, p.proname, pg_get_function_identity_arguments(p.oid)
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname IN {OURS} AND p.prokind = 'a'""",
    "views": f"""
        SELECT schemaname, viewname, definition FROM pg_views WHERE schemaname IN {OURS}
        UNION ALL
        SELECT schemaname, matviewname, definition FROM pg_matviews WHERE schemaname IN {OURS}""",
    "policies": f"""
        SELECT schemaname, tablename, policyname, permissive, roles::text, cmd,
               coalesce(qual, ''), coalesce(with_check, '')
        FROM pg_policies WHERE schemaname IN {OURS}""",
    "triggers": f"""
        SELECT n.nspname, c.relname, t.tgname, pg_get_triggerdef(t.oid), t.tgenabled
        FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname IN {OURS} AND NOT t.tgisinternal""",
    "types": f"""
        SELECT n.nspname, t.typname, t.typtype, format_type(t.typbasetype, t.typtypmod), t.typnotnull,
               coalesce(t.typdefault, ''), coalesce(t.typacl::text, ''),
               coalesce((SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder)
                         FROM pg_enum e WHERE e.enumtypid = t.oid), '')
        FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE n.nspname IN {OURS} AND t.typtype IN ('c', 'd', 'e', 'r', 'm')
          AND NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = t.typrelid AND c.relkind <> 'c')""",
    "comments": f"""
        SELECT d.classoid::regclass::text, n.nspname,
               coalesce(c.relname, p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')',
                        t.typname, nn.nspname, ''), d.objsubid, d.description
        FROM pg_description d
        LEFT JOIN pg_class c ON d.classoid = 'pg_class'::regclass AND c.oid = d.objoid
        LEFT JOIN pg_proc p ON d.classoid = 'pg_proc'::regclass AND p.oid = d.objoid
        LEFT JOIN pg_type t ON d.classoid = 'pg_type'::regclass AND t.oid = d.objoid
        LEFT JOIN pg_namespace nn ON d.classoid = 'pg_namespace'::regclass AND nn.oid = d.objoid
        JOIN pg_namespace n ON n.oid = coalesce(c.relnamespace, p.pronamespace, t.typnamespace, nn.oid)
        WHERE n.nspname IN {OURS}""",
    "default_privileges": """
        SELECT pg_get_userbyid(defaclrole), coalesce(defaclnamespace::regnamespace::text, ''),
               defaclobjtype, defaclacl::text
        FROM pg_default_acl""",
    "sequences": f"""
        SELECT schemaname, sequencename, data_type::text, start_value, increment_by, cycle
        FROM pg_sequences WHERE schemaname IN {OURS}""",
    # Rows that are part of the definition, not of the data.
    "tiers": "SELECT to_jsonb(t)::text FROM pounce.tiers t",
    "cron_jobs": "SELECT to_jsonb(j)::text FROM pounce.cron_jobs j",
    "settings": "SELECT name, value FROM pounce.settings WHERE NOT is_secret",
}


def catalog(conninfo: str) -> dict[str, set[tuple]]:
    with psycopg.connect(conninfo) as conn:
        return {name: set(conn.execute(q).fetchall()) for name, q in CATALOG_QUERIES.items()}


@pytest.fixture(scope="module")
def both_ways(settings, scratch_db):
    with scratch_db(prefix="sqldir") as from_sql, scratch_db(prefix="alembic") as from_alembic:
        schema.apply_sql(settings.conninfo(from_sql))
        schema.alembic_upgrade(settings.url(from_alembic, driver="postgresql+psycopg"))
        yield catalog(settings.conninfo(from_sql)), catalog(settings.conninfo(from_alembic))


@pytest.mark.parametrize("kind", sorted(CATALOG_QUERIES))
def test_sql_dir_and_alembic_build_the_same(both_ways, kind):
    from_sql, from_alembic = both_ways
    only_sql = sorted(from_sql[kind] - from_alembic[kind], key=str)
    only_alembic = sorted(from_alembic[kind] - from_sql[kind], key=str)
    assert not only_sql and not only_alembic, (
        f"{kind} differ.\nonly in sql/:\n  " + "\n  ".join(map(str, only_sql))
        + "\nonly in alembic:\n  " + "\n  ".join(map(str, only_alembic))
        + "\nWrite a migration that brings the history to sql/ (or fix sql/).")


def test_the_catalog_is_not_empty(both_ways):
    """The comparison would pass vacuously on two empty databases; it must not."""
    from_sql, _ = both_ways
    for kind in ("relations", "columns", "constraints", "indexes", "functions", "views", "policies",
                 "comments", "tiers", "cron_jobs"):
        assert from_sql[kind], f"no {kind} found: the catalog queries are broken"
    assert {"pg_cron"} & {e[0] for e in from_sql["extensions"]} == set(), \
        "pg_cron must only exist in the cron database"
    assert {"vector", "pg_trgm", "pgcrypto", "citext", "pg_stat_statements"} <= {e[0] for e in from_sql["extensions"]}


def test_a_difference_is_detected(settings, both_ways, scratch_db):
    """Guard against a comparison that cannot fail: change one object, see it reported."""
    from_sql, _ = both_ways
    with scratch_db(prefix="drift") as drifted:
        schema.apply_sql(settings.conninfo(drifted))
        with psycopg.connect(settings.conninfo(drifted), autocommit=True) as conn:
            conn.execute("CREATE INDEX drift ON pounce.users (created_at)")
            conn.execute("COMMENT ON VIEW api.me IS 'changed'")
        after = catalog(settings.conninfo(drifted))
    assert after["indexes"] - from_sql["indexes"]
    assert after["comments"] ^ from_sql["comments"]


# ----------------------------------------------------------------------------
# Design rules, checked on the migrated template every test database comes from.
# ----------------------------------------------------------------------------

def test_user_owned_tables_have_rls_enabled_and_forced(db):
    rows = db.execute("""
        SELECT c.oid::regclass::text, c.relrowsecurity, c.relforcerowsecurity
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'pounce' AND c.relkind IN ('r', 'p')
          AND (EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname IN ('user_id', 'seller_id', 'member_id') AND NOT a.attisdropped)
               OR c.relname = 'users')""").fetchall()
    assert rows, "expected user-owned tables"
    bad = [r[0] for r in rows if not (r[1] and r[2])]
    assert not bad, f"user-owned tables without ENABLE + FORCE ROW LEVEL SECURITY: {bad}"


def test_api_holds_only_security_invoker_views_and_functions(db):
    rows = db.execute("""
        SELECT c.relname, c.relkind, coalesce(c.reloptions::text, '')
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'api' AND c.relkind NOT IN ('c')""").fetchall()
    assert rows
    not_views = [r[0] for r in rows if r[1] != "v"]
    assert not not_views, f"api must hold only views and functions: {not_views}"
    definer_views = [r[0] for r in rows if "security_invoker=true" not in r[2]]
    assert not definer_views, f"api views must be WITH (security_invoker = true): {definer_views}"


def test_every_api_object_is_documented(db):
    undocumented = db.execute("""
        SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'api' AND c.relkind = 'v' AND obj_description(c.oid, 'pg_class') IS NULL
        UNION ALL
        SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = 'api' AND obj_description(p.oid, 'pg_proc') IS NULL""").fetchall()
    assert not undocumented, f"COMMENT ON is the API's documentation; missing for {undocumented}"


def test_security_definer_functions_pin_search_path(db):
    rows = db.execute(f"""
        SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname IN {OURS} AND p.prosecdef
          AND NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) c WHERE c LIKE 'search_path=%')""").fetchall()
    assert not rows, f"SECURITY DEFINER without SET search_path: {rows}"
    assert db.execute(f"""SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                          WHERE n.nspname IN {OURS} AND p.prosecdef""").fetchone()[0] > 0


def test_objects_are_owned_by_pounce_owner(db):
    rows = db.execute(f"""
        SELECT c.oid::regclass::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname IN {OURS} AND pg_get_userbyid(c.relowner) <> 'pounce_owner'
        UNION ALL
        SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname IN {OURS} AND pg_get_userbyid(p.proowner) <> 'pounce_owner'""").fetchall()
    assert not rows, f"not owned by pounce_owner (a SECURITY DEFINER would run as its owner): {rows}"
