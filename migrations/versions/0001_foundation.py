"""Foundation: roles, extensions, schemas, settings, domain names and TLDs, identity,
notifications, ingest rejects, cron registry.

Revision ID: 0001
Revises:
Create Date: 2026-12-04
"""

from pounce.schema import run_revision_sql as run_sql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql("0001_foundation.sql")


def downgrade() -> None:
    raise NotImplementedError("Pounce migrations are forward-only; restore from a backup to go back")
