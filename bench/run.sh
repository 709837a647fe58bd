#!/usr/bin/env bash
# Runs the load scenarios of docs/benchmarks.md against a freshly built
# server on SQLite and, when SMARTFHIR_TEST_POSTGRES is set, on PostgreSQL.
# Every request goes to 127.0.0.1 only.
#
#   bench/run.sh            # all scenarios, 10 s each, 32 connections
#   DURATION=5s bench/run.sh read
set -euo pipefail
cd "$(dirname "$0")/.."
scenarios=("${@:-read create update history}")
duration=${DURATION:-10s}
conns=${CONNS:-32}
port=${PORT:-18080}
bin=$(mktemp -d)/smartfhir
go build -o "$bin" ./cmd/smartfhir
go build -o "${bin%/*}/loadgen" ./bench/loadgen
go build -o "${bin%/*}/login" ./bench/login

# The server of the backend being measured; killed however the script ends.
server=
trap '[ -n "$server" ] && kill $server 2>/dev/null || true' EXIT

run_backend() {
	local name=$1; shift
	local dir; dir=$(mktemp -d)
	"$bin" serve --addr "127.0.0.1:$port" --base-url "http://127.0.0.1:$port" --data-dir "$dir" --log-level error "$@" &
	server=$!
	for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.2; done
	# The FHIR API needs a bearer token: a backend client with full access,
	# by client_credentials (5 minutes; one per scenario).
	local creds id secret
	creds=$("$bin" clients add --name bench --type confidential-symmetric --scopes "system/*.cruds" --approve --json \
		--data-dir "$dir" --base-url "http://127.0.0.1:$port" "$@" | tr -d '\n')
	id=$(sed -E 's/.*"client_id": *"([^"]+)".*/\1/' <<<"$creds")
	secret=$(sed -E 's/.*"client_secret": *"([^"]+)".*/\1/' <<<"$creds")
	token() {
		curl -sf -u "$id:$secret" -d grant_type=client_credentials -d 'scope=system/*.cruds' \
			"http://127.0.0.1:$port/oauth/token" | sed -E 's/.*"access_token": *"([^"]+)".*/\1/'
	}
	echo "## $name"
	for s in ${scenarios[@]}; do
		"${bin%/*}/loadgen" -base "http://127.0.0.1:$port/fhir" -scenario "$s" -c "$conns" -d "$duration" -token "$(token)"
	done
	if command -v wrk >/dev/null && [[ " ${scenarios[*]} " == *" read "* ]]; then
		local tok; tok=$(token)
		id=$(curl -sf -X POST -H 'Content-Type: application/fhir+json' -H "Authorization: Bearer $tok" \
			--data '{"resourceType":"Patient","name":[{"family":"Wrk"}]}' "http://127.0.0.1:$port/fhir/Patient" | sed -E 's/.*"id":"([^"]+)".*/\1/')
		echo "wrk read (c=$conns, 2 threads), system/*.cruds token:"
		wrk -t2 -c"$conns" -d"$duration" --latency -H "Authorization: Bearer $tok" "http://127.0.0.1:$port/fhir/Patient/$id" | grep -E 'Requests/sec|50%|99%'
		# The same read with a patient's token from a standalone launch: the
		# policy check of the patient compartment on every read.
		"$bin" users add --username benchpat --password 'bench password' --role patient --fhir-user "Patient/$id" \
			--data-dir "$dir" --base-url "http://127.0.0.1:$port" "$@" >/dev/null
		creds=$("$bin" clients add --name bench-app --type confidential-symmetric --redirect-uri http://127.0.0.1:9/cb \
			--scopes "launch/patient patient/*.rs" --approve --json --data-dir "$dir" --base-url "http://127.0.0.1:$port" "$@" | tr -d '\n')
		local ptok
		ptok=$("${bin%/*}/login" -base "http://127.0.0.1:$port" -redirect http://127.0.0.1:9/cb \
			-client-id "$(sed -E 's/.*"client_id": *"([^"]+)".*/\1/' <<<"$creds")" \
			-client-secret "$(sed -E 's/.*"client_secret": *"([^"]+)".*/\1/' <<<"$creds")" \
			-user benchpat -password 'bench password' -scope "launch/patient patient/*.rs")
		echo "wrk read (c=$conns, 2 threads), patient/*.rs token of that patient:"
		wrk -t2 -c"$conns" -d"$duration" --latency -H "Authorization: Bearer $ptok" "http://127.0.0.1:$port/fhir/Patient/$id" | grep -E 'Requests/sec|50%|99%'
	fi
	kill $server; wait $server 2>/dev/null || true
	rm -rf "$dir"
}

run_backend sqlite
if [ -n "${SMARTFHIR_TEST_POSTGRES:-}" ]; then
	db=bench_$$
	psql "$SMARTFHIR_TEST_POSTGRES" -qc "CREATE SCHEMA $db"
	run_backend postgres --db "${SMARTFHIR_TEST_POSTGRES}&search_path=$db"
	psql "$SMARTFHIR_TEST_POSTGRES" -qc "DROP SCHEMA $db CASCADE"
fi
