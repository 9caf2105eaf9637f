//! The SQS stand-in of tests/support answers the AWS SDK as SQS does: the calls a drain
//! makes, receipt handles going stale, and the faults it injects.

use std::time::Duration;

use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry,
};
use dlq_triage_test_support::sqs::{Queue, mixed_dead_letters};
use dlq_triage_test_support::sqs_standin::{Counters, Faults, SqsStandIn};

async fn receive(queue: &Queue, max: i32, visibility: i32) -> Vec<aws_sdk_sqs::types::Message> {
    queue
        .client
        .receive_message()
        .queue_url(&queue.url)
        .max_number_of_messages(max)
        .visibility_timeout(visibility)
        .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
        .message_attribute_names("All")
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default()
}

async fn delete(
    queue: &Queue,
    handles: &[&str],
) -> aws_sdk_sqs::operation::delete_message_batch::DeleteMessageBatchOutput {
    let mut request = queue.client.delete_message_batch().queue_url(&queue.url);
    for (i, h) in handles.iter().enumerate() {
        request = request.entries(
            DeleteMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .receipt_handle(*h)
                .build()
                .unwrap(),
        );
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn messages_go_round_with_their_attributes_and_handles_go_stale() {
    let sqs = SqsStandIn::start(Duration::ZERO).await;
    let queue = sqs.queue("dlq").await;
    let letters = mixed_dead_letters();
    let ids = queue.send(&letters[..3], None).await;
    assert_eq!(sqs.depth(&queue.url), (3, 0));
    assert_eq!(queue.depth().await, (3, 0), "GetQueueAttributes");

    let got = receive(&queue, 10, 30).await;
    assert_eq!(got.len(), 3);
    assert_eq!(got[0].message_id(), Some(ids[0].as_str()));
    assert_eq!(got[0].body(), Some(letters[0].body.as_str()), "byte-exact");
    let attributes = got[0].message_attributes().unwrap();
    for (k, v) in &letters[0].attributes {
        assert_eq!(attributes[k].string_value(), Some(v.as_str()), "{k}");
    }
    let system = got[0].attributes().unwrap();
    assert_eq!(
        system[&aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount],
        "1"
    );
    assert_eq!(sqs.depth(&queue.url), (0, 3));
    assert!(receive(&queue, 10, 30).await.is_empty(), "all in flight");

    // Released at once, then received again: a new handle, and the old one is stale.
    let old = got[0].receipt_handle().unwrap().to_owned();
    let released = queue
        .client
        .change_message_visibility_batch()
        .queue_url(&queue.url)
        .entries(
            ChangeMessageVisibilityBatchRequestEntry::builder()
                .id("0")
                .receipt_handle(&old)
                .visibility_timeout(0)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert!(released.failed().is_empty());
    let again = receive(&queue, 10, 30).await;
    assert_eq!(again.len(), 1);
    let system = again[0].attributes().unwrap();
    assert_eq!(
        system[&aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount],
        "2"
    );
    let new = again[0].receipt_handle().unwrap();
    assert_ne!(new, old);

    // As SQS documents: the stale handle "succeeds" and deletes nothing.
    let out = delete(&queue, &[&old]).await;
    assert!(out.failed().is_empty());
    assert_eq!(sqs.remaining(&queue.url).len(), 3);
    assert_eq!(Counters::get(&sqs.counters().stale_deletes), 1);
    let out = delete(&queue, &[new, "not-a-handle"]).await;
    assert_eq!(out.successful().len(), 1);
    assert_eq!(out.failed()[0].code(), "ReceiptHandleIsInvalid");
    assert_eq!(sqs.remaining(&queue.url).len(), 2);
    // Deleting again with the handle that deleted it is fine.
    assert!(delete(&queue, &[new]).await.failed().is_empty());
}

#[tokio::test]
async fn a_lapsed_visibility_timeout_hands_the_message_out_again() {
    let sqs = SqsStandIn::start(Duration::ZERO).await;
    let queue = sqs.queue("dlq").await;
    queue.send(&mixed_dead_letters()[..1], None).await;
    let first = receive(&queue, 1, 1).await;
    assert_eq!(first.len(), 1);
    // Long polling waits for it to come back.
    let second = queue
        .client
        .receive_message()
        .queue_url(&queue.url)
        .wait_time_seconds(5)
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default();
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].message_id(), first[0].message_id());
}

#[tokio::test]
async fn throttling_is_retried_by_the_sdk_and_a_dropped_answer_too() {
    let sqs = SqsStandIn::start(Duration::ZERO).await;
    let queue = sqs.queue("dlq").await;
    queue.send(&mixed_dead_letters(), None).await;
    sqs.set_faults(Faults {
        throttle: 0.2,
        drop: 0.1,
        ..Faults::default()
    });
    let sdk = sqs.sdk().await;
    let client = aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::config::Builder::from(&sdk)
            .retry_config(
                aws_sdk_sqs::config::retry::RetryConfig::standard()
                    .with_max_attempts(10)
                    .with_initial_backoff(Duration::from_millis(10)),
            )
            .build(),
    );
    // Faults are random: call until both kinds were injected (a few dozen calls, nearly
    // always), every call going through in the end.
    let c = sqs.counters();
    let mut succeeded = 0;
    while succeeded < 20 || Counters::get(&c.throttled) == 0 || Counters::get(&c.dropped) == 0 {
        assert!(succeeded < 2_000, "no fault of one kind in 2,000 calls");
        client
            .get_queue_attributes()
            .queue_url(&queue.url)
            .send()
            .await
            .expect("retried until it went through");
        succeeded += 1;
    }
    assert!(Counters::get(&c.calls) > succeeded);
}

#[tokio::test]
async fn a_failed_entry_and_throttling_name_their_codes() {
    let sqs = SqsStandIn::start(Duration::ZERO).await;
    let queue = sqs.queue("dlq").await;
    queue.send(&mixed_dead_letters()[..5], None).await;
    let got = receive(&queue, 10, 30).await;
    sqs.set_faults(Faults {
        failed_entry: 1.0,
        ..Faults::default()
    });
    let handles: Vec<&str> = got.iter().map(|m| m.receipt_handle().unwrap()).collect();
    let out = delete(&queue, &handles).await;
    assert_eq!(out.failed().len(), 5);
    assert_eq!(out.failed()[0].code(), "InternalError");
    assert!(!out.failed()[0].sender_fault());
    assert_eq!(sqs.remaining(&queue.url).len(), 5, "nothing deleted");
    let again = delete(&queue, &handles[..2]).await;
    assert!(
        again.failed().is_empty(),
        "a failed entry's fault is transient"
    );
    assert_eq!(
        sqs.remaining(&queue.url).len(),
        3,
        "the retried two deleted"
    );

    sqs.set_faults(Faults {
        failed_entry: 1.0,
        entries_keep_failing: true,
        ..Faults::default()
    });
    for _ in 0..2 {
        assert_eq!(delete(&queue, &handles[2..]).await.failed().len(), 3);
    }
    sqs.set_faults(Faults::default());
    assert!(delete(&queue, &handles[2..]).await.failed().is_empty());
    assert!(sqs.remaining(&queue.url).is_empty());

    sqs.set_faults(Faults {
        throttle: 1.0,
        ..Faults::default()
    });
    let client = aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::config::Builder::from(&sqs.sdk().await)
            .retry_config(aws_sdk_sqs::config::retry::RetryConfig::disabled())
            .build(),
    );
    let e = client
        .get_queue_attributes()
        .queue_url(&queue.url)
        .send()
        .await
        .unwrap_err();
    use aws_sdk_sqs::error::ProvideErrorMetadata;
    assert_eq!(e.code(), Some("RequestThrottled"));
    sqs.set_faults(Faults::default());
    let e = client
        .get_queue_attributes()
        .queue_url(format!("{}/000000000000/nope", sqs.endpoint))
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("AWS.SimpleQueueService.NonExistentQueue"));
}
