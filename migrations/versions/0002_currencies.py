"""Currencies: ISO 4217 codes with operator-set USD rates, shared by every priced area.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04
"""

from pounce.schema import run_revision_sql as run_sql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql("0002_currencies.sql")


def downgrade() -> None:
    raise NotImplementedError("Pounce migrations are forward-only; restore from a backup to go back")
