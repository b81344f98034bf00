#!/usr/bin/env bash
# Rebuilds the reference data that sql/core/domains.sql loads:
#   data/public_suffix_list.dat  the Public Suffix List of Debian's `publicsuffix` package
#   data/whoisservers.json       TLD data of the npm package whoisserver-world, with at most
#                                5 sample domains per suffix (the rest is kept as published)
#   data/iso_4217.json           ISO 4217 currencies of Debian's `iso-codes` package
#   data/words.txt               English words of Debian's `wamerican` (lower-case a-z, 2-20
#                                letters), for the market's dictionary-word quality
# Run it after raising WHOISSERVER_WORLD_VERSION or upgrading `publicsuffix`; commit the diff.
set -euo pipefail

WHOISSERVER_WORLD_VERSION=1.0.31
PSL=/usr/share/publicsuffix/public_suffix_list.dat
ISO_4217=/usr/share/iso-codes/json/iso_4217.json
WORDS=/usr/share/dict/american-english

cd "$(dirname "$0")/.."
[[ -r $PSL ]] || { echo "$PSL missing: apt-get install publicsuffix" >&2; exit 1; }
[[ -r $ISO_4217 ]] || { echo "$ISO_4217 missing: apt-get install iso-codes" >&2; exit 1; }
[[ -r $WORDS ]] || { echo "$WORDS missing: apt-get install wamerican" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "whoisserver-world@$WHOISSERVER_WORLD_VERSION" >/dev/null && tar xzf ./*.tgz)

mkdir -p data
cp "$PSL" data/public_suffix_list.dat
cp "$ISO_4217" data/iso_4217.json
LC_ALL=C grep -E '^[a-z]{2,20}$' "$WORDS" | LC_ALL=C sort -u > data/words.txt
python3 - "$tmp/package/whoisservers.json" data/whoisservers.json <<'EOF'
import json, sys

source, target = sys.argv[1:]
with open(source, encoding="utf-8") as f:
    tlds = json.load(f)
for entry in tlds.values():
    entry["sampleDomains"] = {suffix: names[:5] for suffix, names in entry["sampleDomains"].items()}
# one line per TLD keeps diffs readable
lines = (json.dumps(tld) + ":" + json.dumps(entry, ensure_ascii=False, separators=(",", ":"))
         for tld, entry in tlds.items())
with open(target, "w", encoding="utf-8") as f:
    f.write("{\n" + ",\n".join(lines) + "\n}\n")
EOF
psl_version=$(dpkg-query -W -f='${Version}' publicsuffix 2>/dev/null || echo unknown)
iso_version=$(dpkg-query -W -f='${Version}' iso-codes 2>/dev/null || echo unknown)
words_version=$(dpkg-query -W -f='${Version}' wamerican 2>/dev/null || echo unknown)
echo "data/: publicsuffix $psl_version, iso-codes $iso_version, wamerican $words_version, whoisserver-world $WHOISSERVER_WORLD_VERSION"
