#!/usr/bin/env bash
# make demo-redrive: an incident resolves and redrives itself, on loopback: moto for S3,
# SQS, EventBridge and Secrets Manager (an API destination whose connection holds an API
# key), dynalite for DynamoDB, the CloudWatch stand-in, and a sink as the CRM endpoint.
# Dead letters of a rate-limited webhook are drained with `poll`; a minute of quiet
# (INCIDENT_QUIET_MINUTES=1) later the sweep resolves the incident and `redrive run` (what
# the function's minute schedule does with REDRIVE=auto) sends each event back once, the
# canary first, at half the API destination's limit, with the key from the connection.
# About two minutes.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv-tools}
PY="$VENV/bin/python"
export AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
export INCIDENT_TABLE=incidents NOTIFY_EVENT_BUS=triage-notices INCIDENT_QUIET_MINUTES=1
export REDRIVE=auto REPORT_BUCKET=demo-reports

. tools/demo-common.sh

cargo build --quiet --bin dlq-triage --example replay-sink --example cloudwatch-standin
PATH="$PWD/target/debug:$PATH"

MOTO_PORT=$(free_port)
DYNALITE_PORT=$(free_port)
SINK_PORT=$(free_port)
CW_PORT=$(free_port)
setsid "$VENV/bin/moto_server" -H 127.0.0.1 -p "$MOTO_PORT" >"$work/moto.log" 2>&1 &
pids+=($!)
setsid node tools/dynalite/node_modules/dynalite/cli.js --port "$DYNALITE_PORT" >"$work/dynalite.log" 2>&1 &
pids+=($!)
setsid target/debug/examples/replay-sink --port "$SINK_PORT" >"$work/sink.log" 2>&1 &
pids+=($!)
setsid target/debug/examples/cloudwatch-standin --port "$CW_PORT" >"$work/cloudwatch.log" 2>&1 &
pids+=($!)
for port in "$MOTO_PORT" "$DYNALITE_PORT" "$SINK_PORT" "$CW_PORT"; do await_port "$port"; done
export AWS_ENDPOINT_URL="http://127.0.0.1:$MOTO_PORT"
export AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$DYNALITE_PORT"
export AWS_ENDPOINT_URL_CLOUDWATCH="http://127.0.0.1:$CW_PORT"

# The bucket, the bus (its incident events go to a queue), the table; then the CRM webhook:
# a connection with an API key, an API destination at 10/s to the sink, a rule; a queue
# for the redrive events; 40 dead letters of the webhook answering 429 in the DLQ.
"$PY" tools/demo_incidents_setup.py >/dev/null
read -r QUEUE_URL REDRIVES < <(SINK="http://127.0.0.1:$SINK_PORT" "$PY" - <<'PY'
import json, os, time, uuid
import boto3
events, sqs = boto3.client("events"), boto3.client("sqs")
conn = events.create_connection(Name="crm", AuthorizationType="API_KEY", AuthParameters={
    "ApiKeyAuthParameters": {"ApiKeyName": "x-api-key", "ApiKeyValue": "demo-key"}})["ConnectionArn"]
api = events.create_api_destination(Name="crm-webhook", ConnectionArn=conn, HttpMethod="POST",
    InvocationEndpoint=os.environ["SINK"] + "/hook", InvocationRateLimitPerSecond=10)["ApiDestinationArn"]
rule = events.put_rule(Name="to-crm", EventPattern=json.dumps({"source": [{"prefix": "aws.partner/"}]}))["RuleArn"]
events.put_targets(Rule="to-crm", Targets=[{"Id": "crm", "Arn": api}])
channel = sqs.create_queue(QueueName="redrive-channel")["QueueUrl"]
channel_arn = sqs.get_queue_attributes(QueueUrl=channel, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
bus = os.environ["NOTIFY_EVENT_BUS"]
events.put_rule(Name="redrives-to-channel", EventBusName=bus,
    EventPattern=json.dumps({"source": ["genesys-dlq-triage"], "detail-type": ["DLQ Triage Redrive"]}))
events.put_targets(Rule="redrives-to-channel", EventBusName=bus, Targets=[{"Id": "c", "Arn": channel_arn}])
dlq = sqs.create_queue(QueueName="genesys-eventbridge-dlq")["QueueUrl"]
now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
attr = lambda v: {"DataType": "String", "StringValue": v}
for i in range(40):
    body = {"version": "0", "id": str(uuid.uuid4()), "detail-type": "v2.conversations.{id}.transcription",
            "source": "aws.partner/genesys.com/cloud/demo/prod-events", "account": "111122223333",
            "time": now, "region": "us-east-1", "resources": [], "detail": {"n": i}}
    sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps(body), MessageAttributes={
        "RULE_ARN": attr(rule), "TARGET_ARN": attr(api), "ERROR_CODE": attr("SDK_CLIENT_ERROR"),
        "ERROR_MESSAGE": attr("Unable to invoke ApiDestination endpoint: The endpoint responded with a 429 Too Many Requests.")})
print(dlq, channel)
PY
)
show_redrives() {
  "$PY" - "$REDRIVES" <<'PY'
import json, sys, boto3
sqs = boto3.client("sqs")
while True:
    got = sqs.receive_message(QueueUrl=sys.argv[1], MaxNumberOfMessages=10).get("Messages", [])
    if not got:
        break
    for m in got:
        d = json.loads(m["Body"])["detail"]
        print(f"    event: DLQ Triage Redrive {d['phase']:<8} count {d['count']} sent {d['sent']} failedAgain {d['failedAgain']} gaveUp {d['gaveUp']} skippedTooOld {d['skippedTooOld']} at {d['ratePerSecond']}/s")
        sqs.delete_message(QueueUrl=sys.argv[1], ReceiptHandle=m["ReceiptHandle"])
PY
}

echo "==> 1. drain the dead-letter queue: a RATE_LIMIT_EXCEEDED incident opens"
( set -x; dlq-triage poll --queue-url "$QUEUE_URL" --bucket demo-reports --delete --no-correlate --wait-seconds 1 | tail -2 )
KEY=$(dlq-triage incidents --json | "$PY" -c 'import json,sys; print(json.load(sys.stdin)[0]["incidentKey"])')
echo "==> 2. a minute of quiet: the sweep resolves it"
sleep 61
( set -x; dlq-triage incidents sweep | tail -1 )
echo "==> 3. the redrive (the function runs this every minute with REDRIVE=auto): the health"
echo "    gate, the canary, then every event once at half the limit of 10/s"
( set -x; dlq-triage redrive run --seconds 15 )
show_redrives
( set -x; dlq-triage redrive status "$KEY" )
echo "    the incident's listing shows its redrive too:"
( set -x; dlq-triage incidents --state resolved | grep -E "redrive|$KEY" )
echo "==> 4. what the CRM endpoint received: each event once"
grep -c "POST /hook" "$work/sink.log" | sed 's/^/    requests: /'
grep -m 2 "POST /hook" "$work/sink.log" | cut -c1-160 | sed 's/^/    /'
