"""Market-data sources: the registry pounce.sources, its pg_cron scheduler
(pounce.enqueue_due_sources) and the collector functions of fetch_source jobs.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05
"""

from pounce.schema import run_revision_sql as run_sql

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql("0011_sources.sql")


def downgrade() -> None:
    raise NotImplementedError("Pounce migrations are forward-only; restore from a backup to go back")
