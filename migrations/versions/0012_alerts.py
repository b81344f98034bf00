"""Sniper alerts, matching in pg_cron, the e-mail outbox, digests, unsubscribe (issue 7).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05
"""

from pounce.schema import run_revision_sql as run_sql

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql("0012_alerts.sql")


def downgrade() -> None:
    raise NotImplementedError("Pounce migrations are forward-only; restore from a backup to go back")
