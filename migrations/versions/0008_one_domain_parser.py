"""One non-raising domain parser: the watchlist import uses pounce.try_parse_domain
(domain_or_problem is gone); the feed cursor uses pounce.base64url.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

from pounce.schema import run_revision_sql as run_sql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql("0008_one_domain_parser.sql")


def downgrade() -> None:
    raise NotImplementedError("Pounce migrations are forward-only; restore from a backup to go back")
