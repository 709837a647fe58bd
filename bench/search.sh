#!/usr/bin/env bash
# Runs the four searches of issue 3 against a loaded database: each one
# for every patient in turn (the first 1,000; loadgen -scenario urls), with a system/*.rs
# Backend Services token, every request authenticated and audited.
#
#   bench/search.sh --data-dir DIR            # SQLite, loaded by `smartfhir import`
#   bench/search.sh --db postgres://…         # PostgreSQL
#
# The flags are passed to `smartfhir serve` and the CLI as they are.
# DURATION (8s), CONNS (32) and PORT (18501) as in bench/run.sh; WARMUP
# (3s; 0 for none) runs each search unmeasured first, since a server just
# started — PostgreSQL after an import above all — answers its first
# seconds at half its rate; SEARCHES
# picks some of obs, name, cond, enc (all by default; name one twice to
# run it twice, the second on a warm server); PATIENTS (1000) takes the
# first N patients only; SMARTFHIR_BIN serves with a binary built before
# instead of the working tree.
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${DURATION:-8s}
conns=${CONNS:-32}
port=${PORT:-18501}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
if [ -n "${SMARTFHIR_BIN:-}" ]; then cp "$SMARTFHIR_BIN" "$work/smartfhir"; else go build -o "$work/smartfhir" ./cmd/smartfhir; fi
go build -o "$work/loadgen" ./bench/loadgen

base=http://127.0.0.1:$port
"$work/smartfhir" serve --addr "127.0.0.1:$port" --base-url "$base" --log-level error "$@" &
for _ in $(seq 1 600); do curl -sf "$base/healthz" >/dev/null && break; sleep 0.2; done
curl -sf "$base/healthz" >/dev/null || { echo "the server did not start" >&2; exit 1; }

field() { sed -E "s/.*\"$1\": *\"([^\"]+)\".*/\\1/" <<<"$2"; }
creds=$("$work/smartfhir" clients add --name bench-search --type confidential-symmetric --scopes "system/*.rs" \
	--approve --json --base-url "$base" "$@" | tr -d '\n')
token=$(curl -sf -u "$(field client_id "$creds"):$(field client_secret "$creds")" -d grant_type=client_credentials \
	-d 'scope=system/*.rs' "$base/oauth/token" | sed -E 's/.*"access_token": *"([^"]+)".*/\1/')
get() { curl -sf -H "Authorization: Bearer $token" "$base/fhir/$1"; }

# The patients and the first three letters of their family names.
get 'Patient?_count=1000&_elements=id' | grep -o '"resourceType":"Patient","id":"[^"]*"' |
	sed -E 's/.*"id":"([^"]*)"/\1/' | sed -n "1,${PATIENTS:-1000}p" >"$work/patients"
get "Patient?_count=${PATIENTS:-1000}&_elements=name" | grep -o '"family":"[^"]*"' |
	sed -E 's/"family":"(...).*/\1/' | sort -u >"$work/names"
[ -s "$work/patients" ] || { echo "no patients in this database" >&2; exit 1; }
echo "$(wc -l <"$work/patients") patients, $(wc -l <"$work/names") name prefixes"

sed 's|.*|Observation?patient=&\&category=laboratory|' "$work/patients" >"$work/obs"
sed 's|.*|Patient?name=&|' "$work/names" >"$work/name"
sed 's|.*|Condition?patient=&|' "$work/patients" >"$work/cond"
sed 's|.*|Encounter?patient=&\&date=ge2015-01-01|' "$work/patients" >"$work/enc"
for s in ${SEARCHES:-obs name cond enc}; do
	echo "$(head -1 "$work/$s" | sed -E 's/=[^&]*/={…}/g'):"
	if [ "${WARMUP:-3s}" != 0 ]; then
		"$work/loadgen" -base "$base/fhir" -scenario urls -urls "$work/$s" -c "$conns" -d "${WARMUP:-3s}" -token "$token" >/dev/null
	fi
	"$work/loadgen" -base "$base/fhir" -scenario urls -urls "$work/$s" -c "$conns" -d "$duration" -token "$token"
done
