#!/usr/bin/env bash
# make demo: the Lambda end to end on this machine, nothing but loopback.
#
# Starts moto_server (S3 + Secrets Manager) and the Genesys Cloud simulator, creates the
# bucket and the Genesys secret, runs the function under cargo-lambda's Runtime API
# emulator, invokes it with a batch (`cargo lambda invoke --data-file`), prints the batch
# response, the report's headline and incidents and the S3 keys written, then audits a bus
# with planted faults (`dlq-triage doctor`, tools/demo-doctor.sh), and stops everything it
# started.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv-tools}
BATCH=${BATCH:-events/sqs-mixed-batch.json}
BUCKET=demo-reports
PY="$VENV/bin/python"
export AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true

. tools/demo-common.sh

echo "==> building the function and the Genesys simulator"
cargo build --quiet --bin dlq-triage-lambda --bin dlq-triage --example genesys-sim

MOTO_PORT=$(free_port)
setsid "$VENV/bin/moto_server" -H 127.0.0.1 -p "$MOTO_PORT" >"$work/moto.log" 2>&1 &
pids+=($!)
setsid target/debug/examples/genesys-sim --port 0 --latency-ms 50 >"$work/sim.out" 2>"$work/sim.log" &
pids+=($!)
LAMBDA_PORT=$(free_port)
setsid "$VENV/bin/cargo-lambda" lambda watch --only-lambda-apis --invoke-address 127.0.0.1 --invoke-port "$LAMBDA_PORT" >"$work/watch.log" 2>&1 &
pids+=($!)

await_port "$MOTO_PORT"
for _ in $(seq 1 600); do grep -q listening "$work/sim.out" && break; sleep 0.1; done
SIM_URL=$(sed -n 's/^listening on //p' "$work/sim.out")
await_port "$LAMBDA_PORT"
echo "==> moto on :$MOTO_PORT, Genesys simulator at $SIM_URL, Runtime API on :$LAMBDA_PORT"

"$PY" - "$MOTO_PORT" "$SIM_URL" "$BUCKET" <<'PY'
import json, sys, boto3
port, sim, bucket = sys.argv[1:]
kw = dict(endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1")
boto3.client("s3", **kw).create_bucket(Bucket=bucket)
boto3.client("secretsmanager", **kw).create_secret(
    Name="genesys/demo", SecretString=json.dumps({"clientId": "demo-client", "clientSecret": "demo-secret", "apiBase": sim}))
PY

env -i PATH="$PATH" HOME="$HOME" \
  AWS_LAMBDA_RUNTIME_API="http://127.0.0.1:$LAMBDA_PORT/.rt" AWS_LAMBDA_FUNCTION_NAME=_ \
  AWS_LAMBDA_FUNCTION_MEMORY_SIZE=512 AWS_LAMBDA_FUNCTION_VERSION=1 \
  AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true \
  AWS_ENDPOINT_URL="http://127.0.0.1:$MOTO_PORT" \
  REPORT_BUCKET="$BUCKET" GENESYS_SECRET_ID=genesys/demo RUST_LOG=warn \
  setsid target/debug/dlq-triage-lambda >"$work/function.log" 2>&1 &
fpid=$!
pids+=($fpid)

echo "==> cargo lambda invoke --data-file $BATCH"
started=$(date +%s%N)
"$VENV/bin/cargo-lambda" lambda invoke --invoke-address 127.0.0.1 --invoke-port "$LAMBDA_PORT" --data-file "$BATCH" >"$work/response.json"
elapsed_ms=$(( ($(date +%s%N) - started) / 1000000 ))
if [ "$(wc -c <"$work/response.json")" -gt 2000 ]; then
  echo "batch response: $(head -c 300 "$work/response.json")… ($(grep -o itemIdentifier "$work/response.json" | wc -l) failures)"
else
  echo "batch response: $(cat "$work/response.json")"
fi
echo "invocation: ${elapsed_ms} ms wall; function peak RSS $(awk '/VmHWM/ {print $2, $3}' "/proc/$fpid/status" 2>/dev/null || echo unknown)"

"$PY" - "$MOTO_PORT" "$BUCKET" <<'PY'
import sys, boto3
port, bucket = sys.argv[1:]
s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1")
keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket) for o in page.get("Contents", [])]
md_key = next(k for k in keys if k.endswith(".md"))
md = s3.get_object(Bucket=bucket, Key=md_key)["Body"].read().decode()
lines = md.splitlines()
print("\n==> report s3://%s/%s" % (bucket, md_key))
print(next(l for l in lines if l.startswith("**")))
start = lines.index("## Incidents")
end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("## "))
print("\n".join(lines[start:end]).rstrip())
page_key = next(k for k in keys if k.endswith(".html"))
page = s3.get_object(Bucket=bucket, Key=page_key)
print("\n==> page s3://%s/%s (%s, %d bytes): open it in a browser" % (bucket, page_key, page["ContentType"], page["ContentLength"]))
print("\n==> %d S3 keys written" % len(keys))
for k in keys[:40]:
    print("  s3://%s/%s" % (bucket, k))
if len(keys) > 40:
    print("  … and %d more" % (len(keys) - 40))
PY
echo
echo "==> Genesys simulator: $(curl -s "$SIM_URL/sim/stats")"

MOTO_PORT="$MOTO_PORT" VENV="$VENV" tools/demo-doctor.sh
