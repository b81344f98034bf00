"""Domain names: Punycode, IDNA, normalisation, the PSL split and the reference loaders
(sql/core/domains.sql). The `db` fixture is a fresh database with the reference data loaded."""

import json
from pathlib import Path

import psycopg
import pytest
from psycopg.types.json import Jsonb

DATA = Path(__file__).resolve().parents[1] / "data"
Invalid = psycopg.errors.InvalidParameterValue


def parse(db, name):
    return db.execute(
        "select domain, registrable, sld, tld, subdomain, unicode from pounce.parse_domain(%s)", [name]
    ).fetchone()


def normalize(db, name):
    return db.execute("select pounce.normalize_domain(%s)", [name]).fetchone()[0]


# --- Punycode -------------------------------------------------------------------------

# RFC 3492, section 7.1 (outputs without the optional mixed-case annotation)
RFC3492_SAMPLES = [
    ("ليهمابتكلموشعربي؟", "egbpdaj6bu4bxfgehfvwxn"),  # (A) Arabic
    ("他们为什么不说中文", "ihqwcrb4cv8a8dqg056pqjye"),  # (B) Chinese, simplified
    ("Pročprostěnemluvíčesky", "Proprostnemluvesky-uyb24dma41a"),  # (D) Czech
    ("почемужеонинеговорятпорусски", "b1abfaaepdrnnbgefbadotcwatmq2g4l"),  # (I) Russian
    ("3年B組金八先生", "3B-ww4c5e180e575a65lsy2b"),  # (L)
    ("安室奈美恵-with-SUPER-MONKEYS", "-with-SUPER-MONKEYS-pc58ag80a8qai00g7n9n"),  # (M)
    ("-> $1.00 <-", "-> $1.00 <--"),  # (S) only basic code points
]


@pytest.mark.parametrize(("unicode", "punycode"), RFC3492_SAMPLES)
def test_punycode_rfc3492_samples(db, unicode, punycode):
    encoded, decoded = db.execute(
        "select pounce.punycode_encode(%s), pounce.punycode_decode(%s)", [unicode, punycode]
    ).fetchone()
    assert (encoded, decoded) == (punycode, unicode)


def test_punycode_round_trips_astral_code_points(db):
    label = "😀 pounce 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 ünïcödé"
    assert db.execute("select pounce.punycode_decode(pounce.punycode_encode(%s))", [label]).fetchone()[0] == label


@pytest.mark.parametrize(
    ("punycode", "message"),
    [("abc-!!", "is not a digit"), ("zzzzzz", "unexpected end"), ("99999999", "overflow"), ("ü-a", "non-ASCII")],
)
def test_punycode_decode_rejects_invalid_input(db, punycode, message):
    with pytest.raises(Invalid, match=message):
        db.execute("select pounce.punycode_decode(%s)", [punycode])


# --- IDNA and normalisation -----------------------------------------------------------


def test_idn_and_its_ascii_form_are_the_same_name(db):
    assert normalize(db, "münchen.de") == "xn--mnchen-3ya.de"
    assert normalize(db, "XN--MNCHEN-3YA.DE.") == "xn--mnchen-3ya.de"
    assert normalize(db, "MÜNCHEN.DE") == "xn--mnchen-3ya.de"
    # NFC: "u" + combining diaeresis is the same name as "ü"
    assert normalize(db, "mu\u0308nchen.de") == "xn--mnchen-3ya.de"
    assert parse(db, "münchen.de") == parse(db, "xn--mnchen-3ya.de")
    assert parse(db, "xn--mnchen-3ya.de")[5] == "münchen.de"


def test_non_latin_tlds(db):
    assert parse(db, "пример.рф") == (
        "xn--e1afmkfd.xn--p1ai", "xn--e1afmkfd.xn--p1ai", "xn--e1afmkfd", "xn--p1ai", None, "пример.рф")
    # 公司.cn is an ICANN suffix written in Unicode in the PSL
    assert parse(db, "shop.公司.cn") == (
        "shop.xn--55qx5d.cn", "shop.xn--55qx5d.cn", "shop", "xn--55qx5d.cn", None, "shop.公司.cn")
    assert parse(db, "bücher.example.中国")[1:5] == ("example.xn--fiqs8s", "example", "xn--fiqs8s", "xn--bcher-kva")


def test_ideographic_full_stop_separates_labels(db):
    assert normalize(db, "例え。テスト") == normalize(db, "例え.テスト")


@pytest.mark.parametrize("name", ["münchen.de", "пример.рф", "例え.テスト", "bücher.example.中国", "example.com"])
def test_idna_round_trip(db, name):
    ascii_name, back = db.execute(
        "select pounce.idna_to_ascii(%s), pounce.idna_to_unicode(pounce.idna_to_ascii(%s))", [name, name]
    ).fetchone()
    assert ascii_name.isascii()
    assert back == name


def test_trailing_dot_case_and_whitespace(db):
    assert normalize(db, "  WWW.Example.COM. \n") == "www.example.com"
    with pytest.raises(Invalid, match="label 3 is empty"):
        normalize(db, "example.com..")


def test_limits_are_inclusive(db):
    assert normalize(db, "a" * 63 + ".com") == "a" * 63 + ".com"
    name = ".".join(["a" * 63] * 3 + ["a" * 61])  # 253 octets
    assert normalize(db, name) == name
    # the limit is on the ASCII form: 66 octets of UTF-8, 28 as xn--
    assert len(normalize(db, "中" * 22 + ".cn")) == 28 + 3


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "domain name is empty"),
        (" . ", "domain name is empty"),
        ("a..com", 'label 2 is empty'),
        (".example.com", 'label 1 is empty'),
        ("-shop.com", 'label "-shop" starts or ends with a hyphen'),
        ("shop-.com", 'label "shop-" starts or ends with a hyphen'),
        ("my_shop.com", 'label "my_shop" contains a character other than'),
        ("my shop.com", 'label "my shop" contains a character other than'),
        ("a" * 64 + ".com", f'label "{"a" * 64}" is longer than 63 octets'),
        ("ü" * 58 + ".de", "is longer than 63 octets"),  # 58 characters, 64 octets as xn--
        ("ab--cd.com", 'label "ab--cd" has "--" in positions 3 and 4'),
        (".".join(["a" * 63] * 3 + ["a" * 62]), "longer than 253 octets"),
        ("localhost", "a single label is not a domain name"),
    ],
)
def test_invalid_names_are_rejected(db, name, message):
    with pytest.raises(Invalid, match=message):
        normalize(db, name)
    with pytest.raises(Invalid, match=message):
        parse(db, name)


def test_error_carries_detail_and_hint(db):
    with pytest.raises(Invalid) as error:
        normalize(db, "my_shop.com")
    assert error.value.diag.message_detail == 'The first such character is "_".'
    assert "RFC 1123" in error.value.diag.message_hint


def test_normalize_domain_can_back_a_generated_column(db):
    # only an IMMUTABLE function may: this is how tables validate names at the door
    db.execute("create temp table t (raw text, name text generated always as (pounce.normalize_domain(raw)) stored)")
    assert db.execute("insert into t values ('Bücher.DE.') returning name").fetchone()[0] == "xn--bcher-kva.de"
    assert db.execute("select pounce.normalize_domain(null), pounce.parse_domain(null) is null").fetchone() == (
        None, True)


# --- The Public Suffix List -----------------------------------------------------------


def test_multi_label_suffix(db):
    assert parse(db, "example.co.uk") == ("example.co.uk", "example.co.uk", "example", "co.uk", None, "example.co.uk")
    assert parse(db, "www.example.co.uk")[1:5] == ("example.co.uk", "example", "co.uk", "www")
    assert parse(db, "a.b.c.example.com")[1:5] == ("example.com", "example", "com", "a.b.c")


def test_wildcard_rule(db):
    # *.ck: every second-level name under ck is a public suffix
    assert parse(db, "shop.co.ck")[1:5] == ("shop.co.ck", "shop", "co.ck", None)
    # *.kawasaki.jp
    assert parse(db, "x.y.kawasaki.jp")[1:5] == ("x.y.kawasaki.jp", "x", "y.kawasaki.jp", None)
    with pytest.raises(Invalid, match='is a public suffix') as error:
        parse(db, "anything.ck")
    assert error.value.diag.message_detail == 'It matches the rule "*.ck" of the Public Suffix List.'


def test_exception_rule_wins(db):
    # !www.ck overrides *.ck, !city.kawasaki.jp overrides *.kawasaki.jp
    assert parse(db, "www.ck")[1:5] == ("www.ck", "www", "ck", None)
    assert parse(db, "mail.www.ck")[1:5] == ("www.ck", "www", "ck", "mail")
    assert parse(db, "x.city.kawasaki.jp")[1:5] == ("city.kawasaki.jp", "city", "kawasaki.jp", "x")


def test_private_section_is_ignored(db):
    assert db.execute("select section from pounce.public_suffixes where rule = 'blogspot.com'").fetchone() == (
        "private",)
    assert parse(db, "me.blogspot.com")[1:5] == ("blogspot.com", "blogspot", "com", "me")


def test_tld_without_rule_is_its_own_suffix(db):
    # the PSL lists only second-level suffixes of za (co.za, ...): the default rule "*" applies
    assert db.execute("select count(*) from pounce.public_suffixes where rule = 'za'").fetchone() == (0,)
    assert parse(db, "example.za")[1:5] == ("example.za", "example", "za", None)
    assert parse(db, "example.co.za")[1:5] == ("example.co.za", "example", "co.za", None)


@pytest.mark.parametrize("name", ["co.uk", "CO.UK.", "公司.cn", "anything.ck"])
def test_public_suffix_alone_is_not_registrable(db, name):
    with pytest.raises(Invalid, match="is a public suffix, not a registrable domain"):
        parse(db, name)


def test_unknown_tld(db):
    with pytest.raises(Invalid, match='unknown top-level domain "notatld"'):
        parse(db, "example.notatld")
    # the name itself is valid: only parse_domain knows the TLDs
    assert normalize(db, "example.notatld") == "example.notatld"


# --- Reference data and loaders -------------------------------------------------------


def test_tlds_are_loaded_with_types(db):
    assert db.execute("select count(*) from pounce.tlds").fetchone() == (1442,)
    types = dict(db.execute("select type, count(*) from pounce.tlds group by type").fetchall())
    assert set(types) == {"generic", "cctld", "sponsored", "restricted-generic", "infrastructure"}
    assert sum(types.values()) == 1442
    assert db.execute(
        "select tld_unicode, type, is_idn, whois_servers from pounce.tlds where tld = 'xn--p1ai'"
    ).fetchone() == ("рф", "cctld", True, ["whois.tcinet.ru"])
    com = db.execute(
        "select created_on::text, rdap_servers, registry_url, cardinality(sample_domains) between 1 and 5 "
        "from pounce.tlds where tld = 'com'").fetchone()
    assert com == ("1985-01-01", ["https://rdap.verisign.com/com/v1/domain/"], "http://www.verisigninc.com", True)


def test_public_suffix_rules_are_loaded(db):
    rows = dict(db.execute(
        "select rule, kind || '/' || section from pounce.public_suffixes "
        "where rule in ('co.uk', '*.ck', '!www.ck', 'xn--55qx5d.cn', 'blogspot.com')").fetchall())
    assert rows == {"co.uk": "normal/icann", "*.ck": "wildcard/icann", "!www.ck": "exception/icann",
                    "xn--55qx5d.cn": "normal/icann", "blogspot.com": "normal/private"}


def snapshot(db, table, key):
    """(key, xmin, row without loaded_at) for every row: xmin shows whether a row was rewritten."""
    return db.execute(
        f"select {key}, xmin::text, (to_jsonb(t) - 'loaded_at')::text from pounce.{table} t order by 1").fetchall()


def test_load_tlds_is_idempotent_and_replaces(db):
    text = (DATA / "whoisservers.json").read_text(encoding="utf-8")
    before = snapshot(db, "tlds", "tld")
    assert db.execute("select pounce.load_tlds(%s::jsonb)", [text]).fetchone() == (1442,)
    assert snapshot(db, "tlds", "tld") == before  # no row rewritten

    doc = json.loads(text)
    del doc["aaa"]
    doc["com"]["whoisServer"] = ["whois.example"]
    assert db.execute("select pounce.load_tlds(%s)", [Jsonb(doc)]).fetchone() == (1441,)
    changed = {row[0] for row in set(snapshot(db, "tlds", "tld")) ^ set(before)}
    assert changed == {"aaa", "com"}
    assert db.execute("select whois_servers from pounce.tlds where tld = 'com'").fetchone() == (["whois.example"],)

    assert db.execute("select pounce.load_tlds(%s::jsonb)", [text]).fetchone() == (1442,)
    assert [row[::2] for row in snapshot(db, "tlds", "tld")] == [row[::2] for row in before]


def test_load_public_suffixes_is_idempotent_and_replaces(db):
    text = (DATA / "public_suffix_list.dat").read_text(encoding="utf-8")
    count = db.execute("select count(*) from pounce.public_suffixes").fetchone()[0]
    before = snapshot(db, "public_suffixes", "rule")
    assert db.execute("select pounce.load_public_suffixes(%s)", [text]).fetchone() == (count,)
    assert snapshot(db, "public_suffixes", "rule") == before

    smaller = text.replace("\nco.uk\n", "\n")
    assert db.execute("select pounce.load_public_suffixes(%s)", [smaller]).fetchone() == (count - 1,)
    assert parse(db, "example.co.uk")[1:4] == ("co.uk", "co", "uk")
    db.execute("select pounce.load_public_suffixes(%s)", [text])
    assert parse(db, "example.co.uk")[3] == "co.uk"


@pytest.mark.parametrize(
    ("call", "argument"),
    [("load_public_suffixes(%s)", "co.uk\ncom\n"), ("load_tlds(%s::jsonb)", "[]"), ("load_tlds(%s::jsonb)", "{}")],
)
def test_loaders_refuse_input_that_would_empty_the_table(db, call, argument):
    with pytest.raises(Invalid):
        db.execute(f"select pounce.{call}", [argument])
    assert db.execute("select (select count(*) from pounce.tlds), (select count(*) > 9000 from pounce.public_suffixes)"
                      ).fetchone() == (1442, True)


def test_api_parse_domain_works_for_anon(api_request):
    with api_request("anon", method="GET", path="/rpc/parse_domain") as conn:
        parts = conn.execute("SELECT api.parse_domain('WWW.München.DE.')").fetchone()[0]
    assert parts["domain"] == "www.xn--mnchen-3ya.de"
    assert parts["registrable"] == "xn--mnchen-3ya.de"
    assert parts["subdomain"] == "www" and parts["tld"] == "de" and parts["sld"] == "xn--mnchen-3ya"
    assert parts["unicode"] == "www.münchen.de"
    assert parts["tld_type"] == "cctld"
    with api_request("anon") as conn:
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="unknown top-level domain"):
            conn.execute("SELECT api.parse_domain('example.notatld')")
