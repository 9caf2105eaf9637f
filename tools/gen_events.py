#!/usr/bin/env python3
"""Regenerates events/*.json: realistic EventBridge DLQ batches built from the message shapes
described in docs/contract.md. Deterministic: same output every run.

    python3 tools/gen_events.py
    python3 tools/gen_events.py --synthetic 1000 300 > /tmp/batch.json   # N records, M conversations
"""
import hashlib
import json
import pathlib

ORG = "cf6cb7d5-d0ea-45b5-b0cf-73ad5f5b8721"
SOURCE = f"aws.partner/genesys.com/cloud/{ORG}/prod-events"
ACCOUNT = "111122223333"
REGION = "us-east-1"
BUS = f"aws.partner/genesys.com/cloud/{ORG}/prod-events"
QUEUE_ARN = f"arn:aws:sqs:{REGION}:{ACCOUNT}:genesys-eventbridge-dlq"
CRM = f"arn:aws:events:{REGION}:{ACCOUNT}:api-destination/crm-webhook/7e08279e-244f-4443-a5f4-b9c262da4d81"
WFM = f"arn:aws:events:{REGION}:{ACCOUNT}:api-destination/wfm-ingest/0b7c7a51-5f0e-4a52-9d0e-3f1f0a2b4c99"
LAMBDA = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:transcript-indexer-401"
QUEUE_TARGET = f"arn:aws:sqs:{REGION}:{ACCOUNT}:analytics-feed"
BUS_TARGET = f"arn:aws:events:eu-west-1:444455556666:event-bus/central-contact-events"


def rule(name):
    return f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{BUS}/{name}"


def uid(seed):
    h = hashlib.sha256(seed.encode()).hexdigest()
    return f"{h[0:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"


CONV = [uid(f"conversation-{i}") for i in range(8)]
QUEUE = uid("queue-billing")
USER = uid("user-agent-7")


def genesys(topic_pattern, concrete, body, minute):
    return {
        "version": "0",
        "id": uid(f"event-{concrete}-{minute}"),
        "detail-type": topic_pattern,
        "source": SOURCE,
        "account": ACCOUNT,
        "time": f"2026-11-28T09:{minute:02d}:03Z",
        "region": REGION,
        "resources": [],
        "detail": {
            "topicName": concrete,
            "version": "2",
            "eventBody": body,
            "metadata": {"CorrelationId": uid(f"corr-{concrete}-{minute}")},
            "timestamp": f"2026-11-28T09:{minute:02d}:02.887Z",
        },
    }


def detail_event(conv, suffix, minute, media="VOICE"):
    return genesys(
        f"v2.detail.events.conversation.{{id}}.{suffix}",
        f"v2.detail.events.conversation.{conv}.{suffix}",
        {
            "eventTime": 1795856582887 + minute * 60000,
            "conversationId": conv,
            "participantId": uid(f"p-{conv}"),
            "sessionId": uid(f"s-{conv}"),
            "mediaType": media,
            "direction": "INBOUND",
            "ani": "tel:+15555550520",
            "dnis": "tel:+15555550000",
            "divisionId": uid("division-home"),
        },
        minute,
    )


def transcription(conv, minute):
    return genesys(
        "v2.conversations.{id}.transcription",
        f"v2.conversations.{conv}.transcription",
        {
            "eventTime": f"2026-11-28T09:{minute:02d}:02.128Z",
            "organizationId": ORG,
            "conversationId": conv,
            "communicationId": uid(f"comm-{conv}"),
            "transcripts": [{"utteranceId": uid(f"u-{conv}"), "channel": "EXTERNAL", "alternatives": [{"transcript": "I would like to check my balance", "confidence": 0.93}]}],
            "status": {"offsetMs": 278620, "status": "SESSION_ONGOING"},
        },
        minute,
    )


def analytics_metrics(conv, minute):
    return genesys(
        "v2.analytics.conversation.{id}.metrics",
        f"v2.analytics.conversation.{conv}.metrics",
        {"conversationId": conv, "metrics": [{"name": "tHandle", "value": 320541}]},
        minute,
    )


def queue_conversation(conv, minute):
    return genesys(
        "v2.routing.queues.{id}.conversations",
        f"v2.routing.queues.{QUEUE}.conversations",
        {"id": conv, "name": "Billing inbound", "participants": [{"id": uid(f"qp-{conv}"), "purpose": "customer"}], "divisions": [{"division": {"id": uid("division-home")}}]},
        minute,
    )


def user_conversation(conv, minute):
    return genesys(
        "v2.users.{id}.conversations",
        f"v2.users.{USER}.conversations",
        {"id": conv, "participants": [{"id": uid(f"up-{conv}"), "purpose": "agent", "userId": USER}]},
        minute,
    )


def attr(value):
    return {"stringValue": value, "stringListValues": [], "binaryListValues": [], "dataType": "String"}


def record(n, body, rule_name, target, code, message, retries, exhausted="MaximumRetryAttempts", receive=1):
    attrs = {"RULE_ARN": attr(rule(rule_name)), "TARGET_ARN": attr(target)}
    if code is not None:
        attrs["ERROR_CODE"] = attr(code)
    if message is not None:
        attrs["ERROR_MESSAGE"] = attr(message)
    if exhausted:
        attrs["EXHAUSTED_RETRY_CONDITION"] = attr(exhausted)
    attrs["RETRY_ATTEMPTS"] = attr(str(retries))
    text = body if isinstance(body, str) else json.dumps(body, separators=(",", ":"))
    sent = 1795856700000 + n * 61000
    return {
        "messageId": uid(f"message-{n}"),
        "receiptHandle": "AQEB" + hashlib.sha256(f"rh-{n}".encode()).hexdigest(),
        "body": text,
        "attributes": {
            "ApproximateReceiveCount": str(receive),
            "SentTimestamp": str(sent),
            "SenderId": "AIDAIENQZJOLO23YVJ4VO",
            "ApproximateFirstReceiveTimestamp": str(sent + 7),
        },
        "messageAttributes": attrs,
        "md5OfBody": hashlib.md5(text.encode()).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": QUEUE_ARN,
        "awsRegion": REGION,
    }


APIDEST = "Unable to invoke ApiDestination endpoint: "
SOCKET = APIDEST + "Timeout calling endpoint for API Destination: socket closed."

records = [
    # RATE_LIMIT_EXCEEDED: the CRM webhook throttles end-of-call events.
    record(1, detail_event(CONV[0], "customer.end", 1), "to-crm", CRM, "UNKNOWN", APIDEST + "Endpoint returned HTTP 429 Too Many Requests.", 185),
    record(2, detail_event(CONV[1], "customer.end", 2), "to-crm", CRM, "UNKNOWN", APIDEST + "Endpoint returned HTTP 429 Too Many Requests.", 185),
    record(3, detail_event(CONV[2], "acd.start", 3), "to-crm", CRM, "THROTTLING", "Rate exceeded", 185),
    # AUTHENTICATION_REJECTED: the WFM connection's OAuth client was rotated.
    record(4, queue_conversation(CONV[3], 4), "to-wfm", WFM, "ERROR_FROM_TARGET", APIDEST + "Request failed with status code 401 Unauthorized", 0, exhausted=None),
    record(5, user_conversation(CONV[4], 5), "to-wfm", WFM, "ERROR_FROM_TARGET", APIDEST + "Request failed with status code 401 Unauthorized", 0, exhausted=None),
    # ENDPOINT_UNREACHABLE: the real-world socket timeout (ERROR_CODE=UNKNOWN).
    record(6, transcription(CONV[5], 6), "to-crm", CRM, "UNKNOWN", SOCKET, 129, exhausted="MaximumEventAgeInSeconds"),
    record(7, transcription(CONV[5], 7), "to-crm", CRM, "UNKNOWN", SOCKET, 131, exhausted="MaximumEventAgeInSeconds", receive=2),
    record(8, detail_event(CONV[0], "acd.end", 8), "to-crm", CRM, "SDK_CLIENT_ERROR", APIDEST + "API destination endpoint cannot be reached.", 185),
    record(9, detail_event(CONV[6], "customer.start", 9, media="MESSAGE"), "to-crm", CRM, "TIMEOUT", "Request to target timed out", 185),
    # PAYLOAD_MALFORMED: the input transformer produced invalid JSON; a corrupt body.
    record(10, analytics_metrics(CONV[1], 10), "to-analytics-queue", QUEUE_TARGET, "INVALID_JSON", "The target rejected the input: not valid JSON", 0, exhausted=None),
    record(11, "this is not JSON {", "to-analytics-queue", QUEUE_TARGET, None, None, 0, exhausted=None),
    # PERMISSION_DENIED: the rule's role lost lambda:InvokeFunction.
    record(12, transcription(CONV[7], 12), "to-indexer", LAMBDA, "NO_PERMISSIONS", f"User: arn:aws:sts::{ACCOUNT}:assumed-role/genesys-rule-role/events is not authorized to perform: lambda:InvokeFunction on resource: {LAMBDA}", 0, exhausted=None),
    # TARGET_NOT_FOUND: the analytics queue was deleted.
    record(13, detail_event(CONV[2], "customer.end", 13), "to-analytics-queue", QUEUE_TARGET, "NO_RESOURCE", f"Target {QUEUE_TARGET} does not exist", 0, exhausted=None),
    # TARGET_ERROR: the indexer Lambda throws; the WFM endpoint answers 500.
    record(14, transcription(CONV[3], 14), "to-indexer", LAMBDA, "ERROR_FROM_TARGET", "Lambda function returned an error: TypeError: Cannot read properties of undefined (reading 'transcripts')", 2),
    record(15, detail_event(CONV[4], "user.end", 15), "to-wfm", WFM, "ERROR_FROM_TARGET", APIDEST + "Endpoint responded with status 500", 185),
    # ROUTING_REJECTED: forwarding to the central bus tried a third hop.
    record(16, detail_event(CONV[6], "acw", 16), "to-central-bus", BUS_TARGET, "THIRD_ACCOUNT_HOP_DETECTED", "Event already crossed two accounts", 0, exhausted=None),
    # UNKNOWN: an EventBridge internal error with nothing to go on.
    record(17, {"version": "0", "id": uid("sched"), "detail-type": "Scheduled Event", "source": "aws.events", "account": ACCOUNT, "time": "2026-11-28T09:17:00Z", "region": REGION, "resources": [], "detail": {}}, "nightly", QUEUE_TARGET, "INTERNAL_ERROR", "An internal error occurred", 3),
    # The original polling tool's flat shape.
    record(18, {"interactionId": CONV[7], "eventType": "v2.detail.events.conversation.{id}.customer.end", "timestamp": "2026-11-28T09:18:00.000Z", "detail": {"queueId": QUEUE}}, "to-crm", CRM, "UNKNOWN", APIDEST + "Endpoint returned HTTP 429 Too Many Requests.", 185),
    # A Custom Event Bus failure summary (no attributes of its own are needed).
    record(19, {"version": "1.0", "busArn": f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/contact-center", "subscriberArn": f"arn:aws:events:{REGION}:{ACCOUNT}:subscriber/contact-center/crm", "targetArn": CRM, "errorCode": "ACCESS_DENIED", "errorMessage": "Access denied to target", "exhaustedRetryCondition": "MaximumEventAgeInSeconds", "retryAttempts": 4, "failedMessages": [{"eventId": uid("ev19"), "eventGroupId": None, "deduplicationId": None, "timestamp": "2026-11-28T09:19:00Z", "targetRequestId": uid("tr19")}]}, "to-crm", CRM, None, None, 4),
    # JSON that is not an event, with a 413 from the endpoint.
    record(20, [1, 2, 3], "to-wfm", WFM, "ERROR_FROM_TARGET", APIDEST + "HTTP/1.1 413 Payload Too Large", 0, exhausted=None),
]

def synthetic(n, conversations):
    """n records over `conversations` distinct conversations, cycling through the samples."""
    convs = [uid(f"synthetic-conversation-{i}") for i in range(conversations)]
    samples = records[:10]
    batch = []
    for i in range(n):
        r = json.loads(json.dumps(samples[i % len(samples)]))
        body = json.loads(r["body"])
        conv = convs[i % conversations]
        body["detail"]["eventBody"]["conversationId"] = conv
        body["detail"]["topicName"] = body["detail"]["topicName"].split(".")[0] + ".synthetic"
        r["body"] = json.dumps(body, separators=(",", ":"))
        r["messageId"] = uid(f"synthetic-message-{i}")
        batch.append(r)
    return {"Records": batch}


import sys

if len(sys.argv) == 4 and sys.argv[1] == "--synthetic":
    json.dump(synthetic(int(sys.argv[2]), int(sys.argv[3])), sys.stdout)
    sys.exit(0)

out = pathlib.Path(__file__).resolve().parent.parent / "events"
out.mkdir(exist_ok=True)
(out / "sqs-mixed-batch.json").write_text(json.dumps({"Records": records}, indent=2) + "\n")
(out / "sqs-single.json").write_text(json.dumps({"Records": [records[5]]}, indent=2) + "\n")


def cli_shape(r):
    attrs = {k: {"StringValue": v["stringValue"], "DataType": "String"} for k, v in r["messageAttributes"].items()}
    return {"MessageId": r["messageId"], "ReceiptHandle": r["receiptHandle"], "MD5OfBody": r["md5OfBody"], "Body": r["body"], "Attributes": r["attributes"], "MessageAttributes": attrs}


(out / "receive-message.json").write_text(json.dumps({"Messages": [cli_shape(r) for r in records[:5]]}, indent=2) + "\n")
print("wrote", ", ".join(p.name for p in sorted(out.glob("*.json"))))
