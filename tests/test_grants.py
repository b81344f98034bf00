"""Every privilege the web and collector roles hold, listed: nothing more is exposed
than this file states. A new grant fails here until it is added below, on purpose:
adding it is the moment to ask whether it should exist."""

from __future__ import annotations

WEB_ROLES = ("anon", "member", "admin", "authenticator", "collector")

# (kind, object, grantee, privilege) on the api schema.
API_GRANTS = {
    ("function", "api.change_password(text,text)", "member", "EXECUTE"),
    ("function", "api.check_request()", "admin", "EXECUTE"),
    ("function", "api.check_request()", "anon", "EXECUTE"),
    ("function", "api.check_request()", "member", "EXECUTE"),
    ("function", "api.login(text,text)", "anon", "EXECUTE"),
    ("function", "api.login(text,text)", "member", "EXECUTE"),
    ("function", "api.mark_notifications_read()", "member", "EXECUTE"),
    ("function", "api.parse_domain(text)", "anon", "EXECUTE"),
    ("function", "api.parse_domain(text)", "member", "EXECUTE"),
    ("function", "api.refresh_token()", "member", "EXECUTE"),
    ("function", "api.signup(text,text)", "anon", "EXECUTE"),
    ("function", "api.signup(text,text)", "member", "EXECUTE"),
    ("column", "api.notifications.read_at", "member", "UPDATE"),
    ("view", "api.me", "member", "SELECT"),
    ("view", "api.notifications", "member", "DELETE"),
    ("view", "api.notifications", "member", "SELECT"),
    ("view", "api.tiers", "anon", "SELECT"),
    ("view", "api.tiers", "member", "SELECT"),
    # market
    ("view", "api.market_feed", "anon", "SELECT"),
    ("view", "api.market_feed", "member", "SELECT"),
    ("view", "api.listings", "member", "SELECT"),
    ("view", "api.listings", "member", "DELETE"),
    *{("column", f"api.listings.{c}", "member", p)
      for c in ("domain", "asking_price", "min_offer", "currency", "description", "status")
      for p in ("INSERT", "UPDATE")},
    *{("function", f, r, "EXECUTE")
      for f in ("api.feed(text,text[],numeric,numeric,interval,integer,text[],text[],boolean,boolean,integer,"
                "boolean,text,text,integer)",
                "api.score_breakdown(text)", "api.similar_domains(text,integer)", "api.valuation(text)")
      for r in ("anon", "member")},
    ("function", "api.verify_listing(bigint)", "member", "EXECUTE"),
    # TLD intelligence (sql/tld/)
    ("function", "api.tld_compare(text[])", "anon", "EXECUTE"),
    ("function", "api.tld_compare(text[])", "member", "EXECUTE"),
    ("function", "api.tld_price_history(text,text,text,timestamp with time zone,timestamp with time zone)",
     "anon", "EXECUTE"),
    ("function", "api.tld_price_history(text,text,text,timestamp with time zone,timestamp with time zone)",
     "member", "EXECUTE"),
    ("view", "api.price_changes", "anon", "SELECT"),
    ("view", "api.price_changes", "member", "SELECT"),
    ("view", "api.tld_intel", "anon", "SELECT"),
    ("view", "api.tld_intel", "member", "SELECT"),
    ("view", "api.tld_offers", "anon", "SELECT"),
    ("view", "api.tld_offers", "member", "SELECT"),
    ("view", "api.tld_price_alerts", "member", "SELECT"),
    ("view", "api.tld_price_alerts", "member", "DELETE"),
    ("column", "api.tld_price_alerts.tld", "member", "INSERT"),
    ("column", "api.tld_price_alerts.registrar", "member", "INSERT"),
    ("column", "api.tld_price_alerts.kind", "member", "INSERT"),
    ("column", "api.tld_price_alerts.direction", "member", "INSERT"),
    ("column", "api.tld_price_alerts.min_change_pct", "member", "INSERT"),
    ("column", "api.tld_price_alerts.direction", "member", "UPDATE"),
    ("column", "api.tld_price_alerts.min_change_pct", "member", "UPDATE"),
}

# Privileges of web roles on private objects. security_invoker views check the
# caller's rights on the tables beneath, so these back the api views above; policies
# then decide which rows.
PRIVATE_GRANTS = {
    ("column", "pounce.notifications.read_at", "member", "UPDATE"),
    ("column", "pounce.users.created_at", "member", "SELECT"),
    ("column", "pounce.users.disabled", "member", "SELECT"),
    ("column", "pounce.users.email", "member", "SELECT"),
    ("column", "pounce.users.id", "member", "SELECT"),
    ("column", "pounce.users.last_login_at", "member", "SELECT"),
    ("column", "pounce.users.role", "member", "SELECT"),
    ("column", "pounce.users.tier", "member", "SELECT"),
    ("function", "pounce.current_role_claim()", "admin", "EXECUTE"),
    ("function", "pounce.current_role_claim()", "anon", "EXECUTE"),
    ("function", "pounce.current_role_claim()", "member", "EXECUTE"),
    ("function", "pounce.current_user_id()", "admin", "EXECUTE"),
    ("function", "pounce.current_user_id()", "anon", "EXECUTE"),
    ("function", "pounce.current_user_id()", "member", "EXECUTE"),
    ("table", "pounce.notifications", "member", "DELETE"),
    ("table", "pounce.notifications", "member", "SELECT"),
    ("table", "pounce.tiers", "anon", "SELECT"),
    ("table", "pounce.tiers", "member", "SELECT"),
    # market: the columns api.market_feed shows, for everyone; members' own listings
    *{("column", f"pounce.auctions.{c}", r, "SELECT")
      for c in ("id", "platform", "domain", "sld", "tld", "auction_type", "current_price", "currency", "price_usd",
                "bids", "end_time", "pounce_score", "est_value", "url", "first_seen", "sld_length", "has_digit",
                "has_hyphen", "word_quality", "status")
      for r in ("anon", "member")},
    ("table", "pounce.listing_offers", "anon", "SELECT"),
    ("table", "pounce.listing_offers", "member", "SELECT"),
    ("table", "pounce.listings", "member", "SELECT"),
    ("table", "pounce.listings", "member", "DELETE"),
    *{("column", f"pounce.listings.{c}", "member", p)
      for c in ("domain", "asking_price", "min_offer", "currency", "description", "status")
      for p in ("INSERT", "UPDATE")},
    ("table", "pounce.market_item_ids", "member", "USAGE"),
    ("function", "pounce.idna_to_unicode(text)", "member", "EXECUTE"),
    *{("function", f, "member", "EXECUTE")
      for f in ("pounce.pounce_score(text,text,smallint,integer,numeric,numeric)",
                "pounce.score_parts(text,text,smallint,integer,numeric,numeric)")},
    ("function", "collector.ingest_auctions(text,jsonb)", "collector", "EXECUTE"),
    ("function", "collector.finish_snapshot(text,timestamp with time zone)", "collector", "EXECUTE"),
    ("function", "collector.record_listing_verifications(jsonb)", "collector", "EXECUTE"),
    # TLD intelligence (sql/tld/): public price data behind the api views, members' alerts
    ("table", "pounce.price_changes", "anon", "SELECT"),
    ("table", "pounce.price_changes", "member", "SELECT"),
    ("table", "pounce.tld_prices", "anon", "SELECT"),
    ("table", "pounce.tld_prices", "member", "SELECT"),
    ("view", "pounce.tld_intel", "anon", "SELECT"),
    ("view", "pounce.tld_intel", "member", "SELECT"),
    ("table", "pounce.tld_price_alerts", "member", "SELECT"),
    ("table", "pounce.tld_price_alerts", "member", "DELETE"),
    ("column", "pounce.tld_price_alerts.tld", "member", "INSERT"),
    ("column", "pounce.tld_price_alerts.registrar", "member", "INSERT"),
    ("column", "pounce.tld_price_alerts.kind", "member", "INSERT"),
    ("column", "pounce.tld_price_alerts.direction", "member", "INSERT"),
    ("column", "pounce.tld_price_alerts.min_change_pct", "member", "INSERT"),
    ("column", "pounce.tld_price_alerts.direction", "member", "UPDATE"),
    ("column", "pounce.tld_price_alerts.min_change_pct", "member", "UPDATE"),
    ("function", "collector.ingest_tld_prices(text,jsonb,boolean)", "collector", "EXECUTE"),
}

# --- watch and the job queue (sql/jobs/queue.sql, sql/watch/) ---
API_GRANTS |= {
    ("column", "api.watched_domains.domain", "member", "INSERT"),
    ("column", "api.watched_domains.note", "member", "INSERT"),
    ("column", "api.watched_domains.note", "member", "UPDATE"),
    ("column", "api.watched_domains.tags", "member", "INSERT"),
    ("column", "api.watched_domains.tags", "member", "UPDATE"),
    ("function", "api.domain_changes(text,integer)", "member", "EXECUTE"),
    ("function", "api.domain_history(text,integer)", "member", "EXECUTE"),
    ("function", "api.import_watchlist(text[])", "member", "EXECUTE"),
    ("function", "api.refresh_health(text)", "member", "EXECUTE"),
    ("view", "api.job_queue", "admin", "SELECT"),
    ("view", "api.sources", "admin", "SELECT"),
    ("view", "api.watched_domains", "member", "DELETE"),
    ("view", "api.watched_domains", "member", "SELECT"),
    ("view", "api.watchlist", "member", "SELECT"),
}
PRIVATE_GRANTS |= {
    # the watchlist views (security_invoker) read and write through these
    ("column", "pounce.watched_domains.domain", "member", "INSERT"),
    ("column", "pounce.watched_domains.note", "member", "INSERT"),
    ("column", "pounce.watched_domains.note", "member", "UPDATE"),
    ("column", "pounce.watched_domains.tags", "member", "INSERT"),
    ("column", "pounce.watched_domains.tags", "member", "UPDATE"),
    ("table", "pounce.watched_domains", "member", "DELETE"),
    ("table", "pounce.watched_domains", "member", "SELECT"),
    ("table", "pounce.monitored_domains", "member", "SELECT"),
    ("table", "pounce.domain_checks", "member", "SELECT"),
    # api.job_queue (admin only)
    ("table", "pounce.jobs", "admin", "SELECT"),
    ("table", "pounce.dead_jobs", "admin", "SELECT"),
    # the collectors' whole interface
    ("function", "collector.claim(text,integer,text[])", "collector", "EXECUTE"),
    ("function", "collector.complete(text,bigint[])", "collector", "EXECUTE"),
    ("function", "collector.fail(text,bigint[],text[],interval,boolean)", "collector", "EXECUTE"),
    ("function", "collector.heartbeat(text,bigint[])", "collector", "EXECUTE"),
    ("function", "collector.release(text,bigint[])", "collector", "EXECUTE"),
    ("function", "collector.rdap_bootstrap()", "collector", "EXECUTE"),
    ("function", "collector.record_checks(jsonb)", "collector", "EXECUTE"),
    # market-data sources (sql/sources/registry.sql): api.sources is admin only
    ("table", "pounce.sources", "admin", "SELECT"),
    ("function", "collector.source(text)", "collector", "EXECUTE"),
    ("function", "collector.record_source_fetches(jsonb)", "collector", "EXECUTE"),
}

# --- sniper alerts, matching and e-mail (sql/alerts/) ---
ALERT_COLUMNS = ("name", "keywords", "excluded_keywords", "tlds", "platforms", "kind", "max_price", "max_length",
                 "min_score", "no_digits", "no_hyphens", "ending_within", "active", "delivery")
API_GRANTS |= {
    ("view", "api.sniper_alerts", "member", "SELECT"),
    ("view", "api.sniper_alerts", "member", "DELETE"),
    *{("column", f"api.sniper_alerts.{c}", "member", p) for c in ALERT_COLUMNS for p in ("INSERT", "UPDATE")},
    ("view", "api.alert_matches", "member", "SELECT"),
    ("view", "api.email_settings", "member", "SELECT"),
    ("function", "api.alert_preview(jsonb,integer)", "member", "EXECUTE"),
    ("function", "api.set_email_settings(text,text[],text[])", "member", "EXECUTE"),
    # one-click unsubscribe works without signing in (the token is the credential)
    ("function", "api.unsubscribe(text)", "anon", "EXECUTE"),
    ("function", "api.unsubscribe(text)", "member", "EXECUTE"),
}
PRIVATE_GRANTS |= {
    ("table", "pounce.sniper_alerts", "member", "SELECT"),
    ("table", "pounce.sniper_alerts", "member", "DELETE"),
    *{("column", f"pounce.sniper_alerts.{c}", "member", p) for c in ALERT_COLUMNS for p in ("INSERT", "UPDATE")},
    ("table", "pounce.alert_matches", "member", "SELECT"),
    ("table", "pounce.email_settings", "member", "SELECT"),
    # the mailer's whole interface
    ("function", "collector.claim_emails(text,integer)", "collector", "EXECUTE"),
    ("function", "collector.emails_sent(text,text[])", "collector", "EXECUTE"),
    ("function", "collector.emails_failed(text,bigint[],text[],boolean[])", "collector", "EXECUTE"),
    ("function", "collector.recover_emails(text,text[])", "collector", "EXECUTE"),
    ("function", "collector.email_from()", "collector", "EXECUTE"),
}

SCHEMA_GRANTS = {
    ("schema", "api", "admin", "USAGE"),
    ("schema", "api", "anon", "USAGE"),
    ("schema", "api", "member", "USAGE"),
    ("schema", "collector", "collector", "USAGE"),
}

GRANTS_QUERY = """
WITH objects AS (
  SELECT CASE c.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'view' ELSE 'table' END AS kind,
         n.nspname || '.' || c.relname AS name, c.relacl AS acl, c.relowner AS owner
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE n.nspname = ANY(%(schemas)s) AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
  UNION ALL
  SELECT 'column', n.nspname || '.' || c.relname || '.' || a.attname, a.attacl, c.relowner
  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE n.nspname = ANY(%(schemas)s) AND a.attnum > 0 AND a.attacl IS NOT NULL
  UNION ALL
  -- a function without an ACL has the default one, which grants EXECUTE to PUBLIC
  SELECT 'function', p.oid::regprocedure::text, coalesce(p.proacl, acldefault('f', p.proowner)), p.proowner
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
  WHERE n.nspname = ANY(%(schemas)s)
  UNION ALL
  SELECT 'schema', n.nspname, n.nspacl, n.nspowner FROM pg_namespace n
  WHERE n.nspname = ANY(%(schemas)s)
)
SELECT o.kind, o.name, CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE a.grantee::regrole::text END, a.privilege_type
FROM objects o, aclexplode(o.acl) a
WHERE a.grantee <> o.owner
"""


def grants(db, schemas: list[str]) -> set[tuple]:
    return set(db.execute(GRANTS_QUERY, {"schemas": schemas}).fetchall())


def test_api_grants_are_exactly_the_intended_ones(db):
    actual = {g for g in grants(db, ["api"]) if g[0] != "schema"}
    assert actual - API_GRANTS == set(), f"granted but not intended: {sorted(actual - API_GRANTS)}"
    assert API_GRANTS - actual == set(), f"intended but not granted: {sorted(API_GRANTS - actual)}"


def test_private_schemas_grant_only_what_backs_the_api(db):
    actual = {g for g in grants(db, ["pounce", "collector"]) if g[0] != "schema"}
    assert actual - PRIVATE_GRANTS == set(), f"granted but not intended: {sorted(actual - PRIVATE_GRANTS)}"
    assert PRIVATE_GRANTS - actual == set(), f"intended but not granted: {sorted(PRIVATE_GRANTS - actual)}"


def test_schema_usage(db):
    actual = grants(db, ["api", "pounce", "collector", "public"])
    ours = {g for g in actual if g[0] == "schema" and g[1] != "public"}
    assert ours == SCHEMA_GRANTS
    # public keeps USAGE for everyone (the extensions live there) and CREATE for no one.
    public = {g for g in actual if g[0] == "schema" and g[1] == "public"}
    assert ("schema", "public", "PUBLIC", "CREATE") not in public


def test_nothing_is_executable_by_public(db):
    leaked = [g for g in grants(db, ["api", "pounce", "collector"]) if g[2] == "PUBLIC"]
    assert leaked == []


def test_role_attributes(db):
    rows = {r[0]: r[1:] for r in db.execute(
        "SELECT rolname, rolcanlogin, rolinherit, rolsuper, rolbypassrls, rolcreaterole, rolcreatedb "
        "FROM pg_roles WHERE rolname = ANY(%s)", [list(WEB_ROLES) + ["pounce_owner"]])}
    assert rows["authenticator"] == (True, False, False, False, False, False)  # LOGIN NOINHERIT
    assert rows["collector"][:1] == (True,) and not any(rows["collector"][2:])
    for role in ("anon", "member", "admin", "pounce_owner"):
        assert rows[role][0] is False and not any(rows[role][2:]), role
    members = set(db.execute("""
        SELECT r.rolname, m.rolname FROM pg_auth_members am
        JOIN pg_roles r ON r.oid = am.roleid JOIN pg_roles m ON m.oid = am.member
        WHERE m.rolname = ANY(%s)""", [list(WEB_ROLES)]).fetchall())
    assert members == {("anon", "authenticator"), ("member", "authenticator"), ("admin", "authenticator"),
                       ("member", "admin")}
