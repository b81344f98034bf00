"""Alembic environment: revisions are plain SQL run on a psycopg 3 connection."""

import os

from alembic import context
from sqlalchemy import create_engine, pool

config = context.config
url = config.attributes.get("url") or os.environ.get("POUNCE_DATABASE_URL")
if not url:
    raise SystemExit("alembic: no database URL (use `pounce db migrate` or set POUNCE_DATABASE_URL)")
if url.startswith("postgresql://") or url.startswith("postgres://"):
    url = "postgresql+psycopg://" + url.split("://", 1)[1]

if context.is_offline_mode():
    context.configure(url=url, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        # One transaction for the whole upgrade: a failed revision leaves nothing behind.
        context.configure(connection=connection, transaction_per_migration=False)
        with context.begin_transaction():
            context.run_migrations()
