#!/usr/bin/env bash
# make demo-incidents: incidents that open, update and resolve once (each transition put
# through the item's outbox), acknowledged and silenced by hand, on loopback: moto for
# S3, SQS and EventBridge, dynalite for DynamoDB (AWS_ENDPOINT_URL_DYNAMODB). A rule on
# the notification bus forwards the incident events to a queue, which the demo prints.
# With INCIDENT_UPDATE_MINUTES=1 and INCIDENT_QUIET_MINUTES=1 it takes about two minutes:
# the update interval and the quiet period are real time.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv-tools}
PY="$VENV/bin/python"
export AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
export INCIDENT_TABLE=incidents NOTIFY_EVENT_BUS=triage-notices
export INCIDENT_UPDATE_MINUTES=1 INCIDENT_QUIET_MINUTES=1

. tools/demo-common.sh

cargo build --quiet --bin dlq-triage
PATH="$PWD/target/debug:$PATH"

MOTO_PORT=$(free_port)
DYNALITE_PORT=$(free_port)
setsid "$VENV/bin/moto_server" -H 127.0.0.1 -p "$MOTO_PORT" >"$work/moto.log" 2>&1 &
pids+=($!)
setsid node tools/dynalite/node_modules/dynalite/cli.js --port "$DYNALITE_PORT" >"$work/dynalite.log" 2>&1 &
pids+=($!)
await_port "$MOTO_PORT"
await_port "$DYNALITE_PORT"
export AWS_ENDPOINT_URL="http://127.0.0.1:$MOTO_PORT"
export AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$DYNALITE_PORT"

# The bucket, the bus with a rule to a queue, and the table as template.yaml declares it.
CHANNEL=$("$PY" tools/demo_incidents_setup.py)
QUEUE_URL=$("$PY" tools/fill_queue.py --endpoint "$AWS_ENDPOINT_URL" --queue genesys-eventbridge-dlq --count 20)
show_events() { "$PY" tools/demo_incidents_setup.py --print "$CHANNEL"; }

echo "==> 1. drain the queue: the batch's incidents open (one event each)"
( set -x; dlq-triage poll --queue-url "$QUEUE_URL" --bucket demo-reports --delete --no-correlate --wait-seconds 1 | tail -3 )
show_events
echo "==> 2. the same failures a minute later: each incident is updated once"
sleep 61
"$PY" tools/fill_queue.py --endpoint "$AWS_ENDPOINT_URL" --queue genesys-eventbridge-dlq --count 20 >/dev/null
( set -x; dlq-triage poll --queue-url "$QUEUE_URL" --bucket demo-reports --delete --no-correlate --wait-seconds 1 | tail -3 )
show_events
echo "==> 3. the table; the first incident acknowledged, the second silenced for an hour"
( set -x; dlq-triage incidents )
KEYS=$(dlq-triage incidents --json | "$PY" -c 'import json,sys; print(" ".join(i["incidentKey"] for i in json.load(sys.stdin)[:2]))')
read -r FIRST SECOND <<<"$KEYS"
( set -x; dlq-triage incidents ack "$FIRST"; dlq-triage incidents silence "$SECOND" --for 1h )
echo "==> 4. quiet for a minute: the sweep (what the function's schedule runs) resolves them;"
echo "    the silenced one's resolution is held in its outbox"
sleep 61
( set -x; dlq-triage incidents sweep | tail -1 )
show_events
( set -x; dlq-triage incidents --state all --json | "$PY" -c 'import json,sys; [print(i["incidentKey"], i["state"], "acknowledged" if i["acknowledged"] else "", "silenced until " + i["silencedUntil"] if i["silencedUntil"] else "", "unannounced:", i["unannounced"]) for i in json.load(sys.stdin)]' )
