#!/usr/bin/env bash
# make demo-poll: the README's incident walkthrough, run as written against loopback:
# moto_server stands in for SQS, the Genesys Cloud simulator for the Genesys API.
# A local HTTP sink (examples/replay-sink.rs) stands in for the consumer the events replay to.
# Fills a dead-letter queue with the sample batch, then runs the walkthrough's commands.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv-tools}
PY="$VENV/bin/python"
COUNT=${COUNT:-60}
export AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true

. tools/demo-common.sh

cargo build --quiet --bin dlq-triage --example genesys-sim --example replay-sink --example cloudwatch-standin
PATH="$PWD/target/debug:$PATH"

MOTO_PORT=$(free_port)
setsid "$VENV/bin/moto_server" -H 127.0.0.1 -p "$MOTO_PORT" >"$work/moto.log" 2>&1 &
pids+=($!)
setsid target/debug/examples/genesys-sim --port 0 >"$work/sim.out" 2>"$work/sim.log" &
pids+=($!)
setsid target/debug/examples/replay-sink --port 0 >"$work/sink.out" 2>"$work/sink.log" &
pids+=($!)
# CloudWatch as EventBridge fills it for the sample's rules (moto's server does not speak
# the SDK's CloudWatch protocol), for summarize's health table.
setsid target/debug/examples/cloudwatch-standin --port 0 --sample-metrics 20 >"$work/cw.out" 2>"$work/cw.log" &
pids+=($!)
await_port "$MOTO_PORT"
for _ in $(seq 1 600); do grep -q listening "$work/sink.out" && break; sleep 0.1; done
for _ in $(seq 1 600); do grep -q listening "$work/sim.out" && break; sleep 0.1; done
for _ in $(seq 1 600); do grep -q listening "$work/cw.out" && break; sleep 0.1; done
export AWS_ENDPOINT_URL_CLOUDWATCH=$(sed -n 's/^listening on //p' "$work/cw.out")
export AWS_ENDPOINT_URL="http://127.0.0.1:$MOTO_PORT"
export GENESYS_API_BASE=$(sed -n 's/^listening on //p' "$work/sim.out")
export GENESYS_CLIENT_ID=demo-client GENESYS_CLIENT_SECRET=demo-secret
QUEUE_URL=$("$PY" tools/fill_queue.py --endpoint "$AWS_ENDPOINT_URL" --queue genesys-eventbridge-dlq --count "$COUNT")
# The API destination the sample's rule to-crm delivers to, limited to 10 calls a second.
AWS_DEFAULT_REGION=us-east-1 "$PY" - <<'PYEOF'
import os, boto3
events = boto3.client("events", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
arn = events.create_connection(Name="crm", AuthorizationType="API_KEY", AuthParameters={
    "ApiKeyAuthParameters": {"ApiKeyName": "x-api-key", "ApiKeyValue": "demo"}})["ConnectionArn"]
events.create_api_destination(Name="crm-webhook", ConnectionArn=arn, HttpMethod="POST",
    InvocationEndpoint="https://crm.example.com/hooks/genesys", InvocationRateLimitPerSecond=10)
PYEOF
cd "$work"

echo "==> 2. read the queue without deleting anything"
( set -x; dlq-triage poll --queue-url "$QUEUE_URL" --out incident --wait-seconds 1 )
echo "==> 3. read the newest report"
report=$(ls -t incident/reports/*.md | head -1)
sed -n '1,/^## Next steps/p' "$report"
echo "==> 4. one answer for the incident, with the targets' health beside it"
( set -x; dlq-triage summarize incident --out incident/summary | sed -n '/^health/,/^page:/p' )
echo "==> 5. drain: delete what is stored"
( set -x; dlq-triage poll --queue-url "$QUEUE_URL" --out incident --delete --wait-seconds 1 )
echo "==> 6. replay one category to the consumer: a dry run, then --execute"
export ENDPOINT="$(sed -n 's/^listening on //p' "$work/sink.out")/hooks/genesys" CRM_TOKEN="Bearer demo-token"
( set -x; dlq-triage replay incident/reports/*.json --category RATE_LIMIT_EXCEEDED \
    --to-url "$ENDPOINT" --header Authorization=CRM_TOKEN )
( set -x; dlq-triage replay incident/reports/*.json --category RATE_LIMIT_EXCEEDED \
    --to-url "$ENDPOINT" --header Authorization=CRM_TOKEN --execute )
echo "==> the consumer received $(grep -c "^POST /hooks/genesys" "$work/sink.out") requests, one per event (each event is dead-lettered $((COUNT / 20)) times; a body without an event id counts as an event of its own):"
grep '^POST' "$work/sink.out" | cut -c1-160 | head -5
echo "==> 7. run it again: the journal sends nothing twice"
( set -x; dlq-triage replay incident/reports/*.json --category RATE_LIMIT_EXCEEDED \
    --to-url "$ENDPOINT" --header Authorization=CRM_TOKEN --execute )
