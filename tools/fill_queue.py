#!/usr/bin/env python3
"""Create an SQS queue and fill it with dead letters as EventBridge writes them.

Dev tooling for `make demo-poll` and `make bench-poll` (the product is Rust). Bodies and
message attributes (RULE_ARN, TARGET_ARN, ERROR_CODE, ERROR_MESSAGE, ...) come from
events/sqs-mixed-batch.json, cycled to COUNT messages. Prints the queue URL.

    tools/fill_queue.py --endpoint http://127.0.0.1:5000 --queue genesys-dlq --count 10000
"""
import argparse
import json
import pathlib

import boto3

ROOT = pathlib.Path(__file__).resolve().parent.parent


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--endpoint", required=True, help="SQS endpoint, e.g. moto on loopback")
    p.add_argument("--queue", required=True, help="queue name (.fifo for a FIFO queue)")
    p.add_argument("--count", type=int, default=20)
    p.add_argument("--region", default="us-east-1")
    a = p.parse_args()
    sqs = boto3.client("sqs", endpoint_url=a.endpoint, region_name=a.region)
    fifo = a.queue.endswith(".fifo")
    url = sqs.create_queue(QueueName=a.queue, Attributes={"FifoQueue": "true"} if fifo else {})["QueueUrl"]
    records = json.loads((ROOT / "events/sqs-mixed-batch.json").read_text())["Records"]
    for start in range(0, a.count, 10):
        entries = []
        for i in range(start, min(a.count, start + 10)):
            r = records[i % len(records)]
            attrs = {
                k: {"DataType": "String", "StringValue": v["stringValue"]}
                for k, v in r["messageAttributes"].items()
                if v.get("stringValue")
            }
            entry = {"Id": str(i), "MessageBody": r["body"], "MessageAttributes": attrs}
            if fifo:
                entry.update(MessageGroupId=f"g{i % 4}", MessageDeduplicationId=str(i))
            entries.append(entry)
        failed = sqs.send_message_batch(QueueUrl=url, Entries=entries).get("Failed")
        if failed:
            raise SystemExit(f"send failed: {failed}")
    print(url)


if __name__ == "__main__":
    main()
