"""One lock for every plan limit: pounce.lock_plan(user_id) (the member's row FOR NO KEY
UPDATE) in listings, watchlists, health refreshes and TLD price alerts.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04
"""

from pounce.schema import run_revision_sql as run_sql

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql("0010_plan_lock.sql")


def downgrade() -> None:
    raise NotImplementedError("Pounce migrations are forward-only; restore from a backup to go back")
