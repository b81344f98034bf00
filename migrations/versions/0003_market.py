"""Market: auctions, listings, sales, pounce_score, name vectors, valuation, the feed;
English words reference data; retention of ingest rejects.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04
"""

from pounce.schema import run_revision_sql as run_sql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql("0003_market.sql")


def downgrade() -> None:
    raise NotImplementedError("Pounce migrations are forward-only; restore from a backup to go back")
