#!/usr/bin/env bash
# The `doctor` step of make demo: `dlq-triage doctor` against moto with a few planted
# faults on one bus (a target without a dead-letter queue, a DLQ whose policy names another
# rule and keeps 4 days, a DLQ encrypted with a key EventBridge may not use, a function
# target without a permission or an on-failure destination) beside a correct rule, then
# doctor.json and doctor.html. Run by tools/demo.sh with its moto (MOTO_PORT set), or alone
# (starts its own).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv-tools}
PY="$VENV/bin/python"
BUS=genesys-demo
export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-demo} AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-demo}
export AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true

if [ -z "${MOTO_PORT:-}" ]; then
  . tools/demo-common.sh
  cargo build --quiet --bin dlq-triage
  MOTO_PORT=$(free_port)
  setsid "$VENV/bin/moto_server" -H 127.0.0.1 -p "$MOTO_PORT" >"$work/moto.log" 2>&1 &
  pids+=($!)
  await_port "$MOTO_PORT"
fi
OUT=${DOCTOR_OUT:-$(mktemp -d)}

"$PY" - "$MOTO_PORT" "$BUS" <<'PY'
import io, json, sys, zipfile, boto3
port, bus = sys.argv[1:]
kw = dict(endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1")
events, sqs, kms = (boto3.client(s, **kw) for s in ("events", "sqs", "kms"))
iam, lam = boto3.client("iam", **kw), boto3.client("lambda", **kw)
account = "123456789012"
events.create_event_bus(Name=bus)
rule_arn = lambda name: f"arn:aws:events:us-east-1:{account}:rule/{bus}/{name}"
def queue(name, policy_for=None, **attrs):
    if policy_for:
        attrs["Policy"] = json.dumps({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"},
            "Action": "sqs:SendMessage", "Resource": f"arn:aws:sqs:us-east-1:{account}:{name}",
            "Condition": {"ArnLike": {"aws:SourceArn": policy_for}}}]})
    sqs.create_queue(QueueName=name, Attributes={k: str(v) for k, v in attrs.items()})
    return f"arn:aws:sqs:us-east-1:{account}:{name}"
def rule(name, target):
    events.put_rule(Name=name, EventBusName=bus, EventPattern=json.dumps(
        {"detail-type": ["v2.detail.events.conversation.{id}.customer.end"]}))
    events.put_targets(Rule=name, EventBusName=bus, Targets=[target])
every_rule = f"arn:aws:events:us-east-1:{account}:rule/*"
crm = queue("crm-in", every_rule)
dlq = queue("genesys-dlq", every_rule, MessageRetentionPeriod=1209600)
rule("to-crm", {"Id": "crm", "Arn": crm, "DeadLetterConfig": {"Arn": dlq}})
rule("no-dlq", {"Id": "crm", "Arn": crm})
closed = queue("closed-dlq", rule_arn("some-other-rule"), MessageRetentionPeriod=345600)
rule("closed", {"Id": "crm", "Arn": crm, "DeadLetterConfig": {"Arn": closed}})
key = kms.create_key(Policy=json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
    "Action": "kms:*", "Resource": "*"}]}))["KeyMetadata"]["KeyId"]
encrypted = queue("encrypted-dlq", every_rule, MessageRetentionPeriod=1209600, KmsMasterKeyId=key)
rule("encrypted", {"Id": "crm", "Arn": crm, "DeadLetterConfig": {"Arn": encrypted}})
role = iam.create_role(RoleName="crm-sync", AssumeRolePolicyDocument=json.dumps({
    "Version": "2012-10-17", "Statement": [{"Effect": "Allow",
    "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}))["Role"]["Arn"]
buf = io.BytesIO()
zipfile.ZipFile(buf, "w").close()
fn = lam.create_function(FunctionName="crm-sync", Runtime="provided.al2023", Handler="bootstrap",
    Role=role, Code={"ZipFile": buf.getvalue()})["FunctionArn"]
rule("to-function", {"Id": "fn", "Arn": fn, "DeadLetterConfig": {"Arn": dlq}})
PY

echo
echo "==> dlq-triage doctor --bus $BUS --out $OUT (planted: no DLQ, a closed DLQ, a key EventBridge may not use, a function without permission or on-failure destination)"
set +e
AWS_ENDPOINT_URL="http://127.0.0.1:$MOTO_PORT" target/debug/dlq-triage doctor --bus "$BUS" --out "$OUT"
status=$?
set -e
echo "exit status $status (0 fine, 1 warnings, 2 events are being lost)"
[ "$status" = 2 ] || { echo "demo-doctor: expected exit status 2" >&2; exit 1; }
[ -n "${DOCTOR_OUT:-}" ] || rm -rf "$OUT"
