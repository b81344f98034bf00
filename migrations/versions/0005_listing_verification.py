"""Listing verification through the job queue: api.verify_listing.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""

from pounce.schema import run_revision_sql as run_sql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql("0005_listing_verification.sql")


def downgrade() -> None:
    raise NotImplementedError("Pounce migrations are forward-only; restore from a backup to go back")
