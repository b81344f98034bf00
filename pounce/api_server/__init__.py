"""The local API server: PostgREST's REST dialect over the `api` schema, configured by
the same api_config/postgrest.conf that production PostgREST reads.

  conf.py     the config file ($(VAR) interpolation)
  catalog.py  the schema cache: views, columns, functions, comments, from pg_catalog
  dialect.py  query string -> SQL (filters, select, order, ranges), identifiers only
              from the catalog, values always bound
  app.py      HTTP: one transaction per request as PostgREST does it, JWT, errors,
              OpenAPI at /, admin server (/live, /ready, /metrics), graceful shutdown
"""
