//! Dead-letter queues in moto, filled with messages that carry EventBridge's attributes.

use aws_sdk_sqs::types::{MessageAttributeValue, QueueAttributeName, SendMessageBatchRequestEntry};

/// A message as EventBridge dead-letters it: the event body and its String attributes.
#[derive(Debug, Clone)]
pub struct DeadLetterMessage {
    /// The body (the original event), byte for byte.
    pub body: String,
    /// `RULE_ARN`, `TARGET_ARN`, `ERROR_CODE`, … as EventBridge sets them.
    pub attributes: Vec<(String, String)>,
}

/// The messages of `events/sqs-mixed-batch.json` (every category, every body shape), as
/// EventBridge would have put them in the queue.
pub fn mixed_dead_letters() -> Vec<DeadLetterMessage> {
    let event: serde_json::Value =
        serde_json::from_slice(&crate::fixtures::event_bytes("sqs-mixed-batch.json")).unwrap();
    event["Records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| DeadLetterMessage {
            body: r["body"].as_str().unwrap().to_owned(),
            attributes: r["messageAttributes"]
                .as_object()
                .unwrap()
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), v["stringValue"].as_str()?.to_owned())))
                .collect(),
        })
        .collect()
}

/// A queue in moto.
pub struct Queue {
    /// The SDK client.
    pub client: aws_sdk_sqs::Client,
    /// The queue URL.
    pub url: String,
}

impl Queue {
    /// Creates a queue named `name` (FIFO when it ends in `.fifo`, content-based
    /// deduplication off).
    pub async fn create(sdk: &aws_config::SdkConfig, name: &str) -> Queue {
        let client = aws_sdk_sqs::Client::new(sdk);
        let mut request = client.create_queue().queue_name(name);
        if name.ends_with(".fifo") {
            request = request.attributes(QueueAttributeName::FifoQueue, "true");
        }
        let url = request.send().await.unwrap().queue_url.unwrap();
        Queue { client, url }
    }

    /// Sends `messages` (with a group id each on a FIFO queue: `groups[i]`), 10 per call;
    /// returns the message ids SQS assigned, in order.
    pub async fn send(
        &self,
        messages: &[DeadLetterMessage],
        groups: Option<&[&str]>,
    ) -> Vec<String> {
        let mut ids = Vec::with_capacity(messages.len());
        for (c, chunk) in messages.chunks(10).enumerate() {
            let mut request = self.client.send_message_batch().queue_url(&self.url);
            for (j, m) in chunk.iter().enumerate() {
                let i = c * 10 + j;
                let mut entry = SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(&m.body);
                for (k, v) in &m.attributes {
                    entry = entry.message_attributes(
                        k,
                        MessageAttributeValue::builder()
                            .data_type("String")
                            .string_value(v)
                            .build()
                            .unwrap(),
                    );
                }
                if let Some(groups) = groups {
                    entry = entry
                        .message_group_id(groups[i])
                        .message_deduplication_id(i.to_string());
                }
                request = request.entries(entry.build().unwrap());
            }
            let out = request.send().await.unwrap();
            assert!(out.failed().is_empty(), "{:?}", out.failed());
            let mut sent: Vec<_> = out.successful().to_vec();
            sent.sort_by_key(|s| s.id().parse::<usize>().unwrap());
            ids.extend(sent.iter().map(|s| s.message_id().to_owned()));
        }
        ids
    }

    /// The queue's ARN.
    pub async fn arn(&self) -> String {
        self.client
            .get_queue_attributes()
            .queue_url(&self.url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .expect("GetQueueAttributes")
            .attributes()
            .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
            .expect("the queue's ARN")
            .clone()
    }

    /// Up to ten messages received now.
    async fn receive(&self) -> Vec<aws_sdk_sqs::types::Message> {
        self.client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(10)
            .send()
            .await
            .expect("ReceiveMessage")
            .messages
            .unwrap_or_default()
    }

    /// The bodies of up to ten messages received now.
    pub async fn bodies(&self) -> Vec<String> {
        self.receive()
            .await
            .iter()
            .map(|m| m.body().unwrap_or_default().to_owned())
            .collect()
    }

    /// Every message's body, received and deleted until the queue answers empty.
    pub async fn drain_bodies(&self) -> Vec<String> {
        let mut bodies = Vec::new();
        loop {
            let got = self.receive().await;
            if got.is_empty() {
                return bodies;
            }
            for m in &got {
                bodies.push(m.body().unwrap_or_default().to_owned());
                self.client
                    .delete_message()
                    .queue_url(&self.url)
                    .receipt_handle(m.receipt_handle().unwrap_or_default())
                    .send()
                    .await
                    .expect("DeleteMessage");
            }
        }
    }

    /// (`ApproximateNumberOfMessages`, `ApproximateNumberOfMessagesNotVisible`).
    pub async fn depth(&self) -> (u64, u64) {
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(&self.url)
            .attribute_names(QueueAttributeName::All)
            .send()
            .await
            .unwrap();
        let get = |n: QueueAttributeName| {
            out.attributes()
                .and_then(|a| a.get(&n))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        (
            get(QueueAttributeName::ApproximateNumberOfMessages),
            get(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        )
    }
}
