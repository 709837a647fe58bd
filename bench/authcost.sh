#!/usr/bin/env bash
# Measures what access control and auditing cost (issue 5): the same reads
# and searches with wrk against
#   - a build from before bearer tokens were enforced (commit 2728927),
#     which answers without a token: the unauthenticated figure;
#   - the current build with a system/*.rs Backend Services token;
#   - the current build with a patient/*.rs token of one patient, from a
#     standalone launch (bench/login).
# Both builds serve copies of one imported SQLite database.
#
#   bench/authcost.sh DATA_DIR PATIENT_ID
#
# DATA_DIR holds a database loaded by `smartfhir import` (e.g. synthea-120);
# PATIENT_ID is one of its patients. DURATION (10s) and CONNS (32) as in
# bench/run.sh; SERVE_FLAGS are added to the current build's serve command
# (e.g. "--read-cache-mb 0").
set -euo pipefail
cd "$(dirname "$0")/.."
data=$1 patient=$2
duration=${DURATION:-10s}
conns=${CONNS:-32}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

git worktree add -q --detach "$work/old" 2728927
(cd "$work/old" && go build -o "$work/old-smartfhir" ./cmd/smartfhir)
git worktree remove --force "$work/old"
go build -o "$work/smartfhir" ./cmd/smartfhir
go build -o "$work/login" ./bench/login

# The old build does not know the migrations added since: give it a copy
# without them.
cp -r "$data" "$work/old-data"
sqlite3 "$work/old-data/smartfhir.db" "DROP TABLE IF EXISTS audit_events; DROP TABLE IF EXISTS audit_patients;
DELETE FROM schema_migrations WHERE version > 4;"
cp -r "$data" "$work/new-data"

wait_up() { for _ in $(seq 1 100); do curl -sf "$1/healthz" >/dev/null && return; sleep 0.2; done; echo "server at $1 did not start" >&2; exit 1; }
old=http://127.0.0.1:18402 new=http://127.0.0.1:18401
"$work/old-smartfhir" serve --addr 127.0.0.1:18402 --base-url $old --data-dir "$work/old-data" --log-level error &
"$work/smartfhir" serve --addr 127.0.0.1:18401 --base-url $new --data-dir "$work/new-data" --log-level error ${SERVE_FLAGS:-} &
wait_up $old; wait_up $new

cli() { "$work/smartfhir" "$@" --data-dir "$work/new-data" --base-url $new; }
field() { sed -E "s/.*\"$1\": *\"([^\"]+)\".*/\\1/" <<<"$2"; }
creds=$(cli clients add --name bench --type confidential-symmetric --scopes "system/*.rs" --approve --json | tr -d '\n')
system=$(curl -sf -u "$(field client_id "$creds"):$(field client_secret "$creds")" -d grant_type=client_credentials \
	-d 'scope=system/*.rs' $new/oauth/token | sed -E 's/.*"access_token": *"([^"]+)".*/\1/')
cli users add --username benchpat --password 'bench password' --role patient --fhir-user "Patient/$patient" >/dev/null
creds=$(cli clients add --name bench-app --type confidential-symmetric --redirect-uri http://127.0.0.1:9/cb \
	--scopes "launch/patient patient/*.rs" --approve --json | tr -d '\n')
pat=$("$work/login" -base $new -redirect http://127.0.0.1:9/cb -client-id "$(field client_id "$creds")" \
	-client-secret "$(field client_secret "$creds")" -user benchpat -password 'bench password' -scope "launch/patient patient/*.rs")

# run prints the req/s, p50 and p99 of one wrk run.
run() { # base token path
	local auth=()
	[ -n "$2" ] && auth=(-H "Authorization: Bearer $2")
	local code; code=$(curl -s -o /dev/null -w '%{http_code}' "${auth[@]}" "$1/fhir/$3")
	[ "$code" = 200 ] || { echo "GET $3 = $code" >&2; exit 1; }
	wrk -t2 -c"$conns" -d"$duration" --latency "${auth[@]}" "$1/fhir/$3" |
		awk '/Requests\/sec/ {rps=$2} / 50%/ {p50=$2} / 99%/ {p99=$2} END {print rps, p50, p99}'
}
# The machine's speed drifts between runs: the three variants run in
# turn, ROUNDS times (3), and the median round of each is reported.
rounds=${ROUNDS:-3}
for path in "Patient/$patient" "Observation?patient=$patient&category=laboratory"; do
	echo "## GET $path ($rounds rounds of $duration, median by req/s)"
	declare -A results=()
	for r in $(seq 1 "$rounds"); do
		results[old]+="$(run $old "" "$path")"$'\n'
		results[system]+="$(run $new "$system" "$path")"$'\n'
		results[patient]+="$(run $new "$pat" "$path")"$'\n'
	done
	for v in old system patient; do
		case $v in old) name="unauthenticated (2728927)";; system) name="system/*.rs token";; patient) name="patient/*.rs token";; esac
		printf '%-28s' "$name"
		printf '%s' "${results[$v]}" | sed '/^$/d' | sort -n | awk -v n="$rounds" 'NR == int((n + 1) / 2) {printf "%10s req/s  p50 %8s  p99 %8s\n", $1, $2, $3}'
	done
	unset results
done
