#!/usr/bin/env python3
"""Dev tooling for `make demo-incidents` (the product is Rust).

Without arguments: creates the demo's bucket, the notification bus with a rule forwarding
the incident events to a queue, and the incident table (as template.yaml declares it);
prints the queue's URL. With --print URL: prints and deletes the events in that queue, one
line each (transition, seq, summary).
"""
import argparse
import json
import os
import time

import boto3


def setup():
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="demo-reports")
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName="incident-channel")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events = boto3.client("events")
    bus = os.environ["NOTIFY_EVENT_BUS"]
    events.create_event_bus(Name=bus)
    events.put_rule(
        Name="incidents-to-channel",
        EventBusName=bus,
        EventPattern=json.dumps({"source": ["genesys-dlq-triage"], "detail-type": ["DLQ Triage Incident"]}),
    )
    events.put_targets(Rule="incidents-to-channel", EventBusName=bus, Targets=[{"Id": "channel", "Arn": arn}])
    db = boto3.client("dynamodb", endpoint_url=os.environ["AWS_ENDPOINT_URL_DYNAMODB"])
    db.create_table(
        TableName=os.environ["INCIDENT_TABLE"],
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "incidentKey", "AttributeType": "S"},
            {"AttributeName": "openState", "AttributeType": "S"},
            {"AttributeName": "lastSeen", "AttributeType": "N"},
        ],
        KeySchema=[{"AttributeName": "incidentKey", "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[{
            "IndexName": "open-by-last-seen",
            "KeySchema": [
                {"AttributeName": "openState", "KeyType": "HASH"},
                {"AttributeName": "lastSeen", "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "ALL"},
        }],
    )
    while db.describe_table(TableName=os.environ["INCIDENT_TABLE"])["Table"]["TableStatus"] != "ACTIVE":
        time.sleep(0.05)
    print(url)


def show(url):
    sqs = boto3.client("sqs")
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            return
        for m in got:
            d = json.loads(m["Body"])["detail"]
            print(f"    event: {d['transition']:<9} seq {d['seq']}  {d['dedupKey']}  {d['severity']:<8} {d['summary'][:110]}")
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--print", metavar="URL")
    a = p.parse_args()
    show(a.print) if a.print else setup()
