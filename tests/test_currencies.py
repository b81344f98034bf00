"""Currencies (sql/core/currencies.sql): ISO 4217 reference data and USD conversion."""

import json
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from psycopg.types.json import Jsonb

DATA = Path(__file__).resolve().parents[1] / "data"


def test_reference_data_loaded(db):
    listed = {c["alpha_3"] for c in json.loads((DATA / "iso_4217.json").read_text())["4217"]}
    stored = {r[0] for r in db.execute("select code from pounce.currencies")}
    assert stored == listed
    assert {"USD", "EUR", "GBP", "JPY"} <= stored
    assert db.execute("select name, numeric_code, usd_rate from pounce.currencies where code = 'EUR'").fetchone() \
        == ("Euro", "978", None)
    assert db.execute("select usd_rate from pounce.currencies where code = 'USD'").fetchone()[0] == 1


def test_reload_keeps_operator_rates_and_retired_codes(db):
    db.execute("update pounce.currencies set usd_rate = 1.08, rate_as_of = '2026-12-01' where code = 'EUR'")
    db.execute("insert into pounce.currencies (code, name) values ('ZZZ', 'Retired test currency')")
    doc = json.loads((DATA / "iso_4217.json").read_text())
    assert db.execute("select pounce.load_currencies(%s)", [Jsonb(doc)]).fetchone()[0] == len(doc["4217"])
    assert db.execute("select usd_rate from pounce.currencies where code = 'EUR'").fetchone()[0] == Decimal("1.08")
    assert db.execute("select count(*) from pounce.currencies where code = 'ZZZ'").fetchone()[0] == 1


@pytest.mark.parametrize("doc", [{}, {"4217": []}, {"4217": {"alpha_3": "USD"}}, []])
def test_loader_refuses_wrong_documents(db, doc):
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="not an ISO 4217 document"):
        db.execute("select pounce.load_currencies(%s)", [Jsonb(doc)])


def test_to_usd(db):
    db.execute("update pounce.currencies set usd_rate = 1.25, rate_as_of = '2026-12-01' where code = 'GBP'")
    got = db.execute("select pounce.to_usd(10, 'GBP'), pounce.to_usd(10, 'USD'), pounce.to_usd(10, 'JPY'),"
                     " pounce.to_usd(10, 'XYZ')").fetchone()
    assert got == (12.5, 10, None, None)


def test_codes_and_rates_are_checked(db):
    with pytest.raises(psycopg.errors.CheckViolation):
        db.execute("insert into pounce.currencies (code, name) values ('usd', 'lower case')")
    with pytest.raises(psycopg.errors.CheckViolation):
        db.execute("update pounce.currencies set usd_rate = -1, rate_as_of = current_date where code = 'EUR'")
    with pytest.raises(psycopg.errors.CheckViolation):  # a rate without its date
        db.execute("update pounce.currencies set usd_rate = 2 where code = 'EUR'")
