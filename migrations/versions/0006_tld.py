"""TLD intelligence: registrars, price history and ingestion, LAG change detection,
price alerts (plan limit tiers.tld_price_alert_limit), the TLD intel materialized view.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""

from pounce.schema import run_revision_sql as run_sql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql("0006_tld.sql")


def downgrade() -> None:
    raise NotImplementedError("Pounce migrations are forward-only; restore from a backup to go back")
