//! The queue port on SQS.

use xlport_core::ports::{JobQueue, StoreError};

use crate::aws::error_chain;

#[derive(Clone)]
pub struct SqsQueue {
    pub client: aws_sdk_sqs::Client,
    /// The URLs of the queues whose records this deployment handles, to
    /// find a record's queue from its `eventSourceARN`.
    queue_urls: Vec<String>,
}

impl SqsQueue {
    /// `queue_urls`: the queues records come from (see [`JobQueue::retry_in`]).
    pub fn new(client: aws_sdk_sqs::Client, queue_urls: Vec<String>) -> Self {
        Self { client, queue_urls }
    }

    /// The URL of the queue whose ARN is `arn`: the queue name is the last
    /// part of both.
    pub fn queue_url_of_arn(&self, arn: &str) -> Option<&str> {
        let name = arn.rsplit(':').next()?;
        self.queue_urls
            .iter()
            .find(|url| url.rsplit('/').next() == Some(name))
            .map(String::as_str)
    }

    /// Makes a received message visible again `after` from now
    /// (`ChangeMessageVisibility`; SQS caps it at 12 hours).
    pub async fn set_visibility(
        &self,
        queue_url: &str,
        receipt_handle: &str,
        after: std::time::Duration,
    ) -> Result<(), StoreError> {
        let secs = after.as_secs().min(12 * 60 * 60) as i32;
        self.client
            .change_message_visibility()
            .queue_url(queue_url)
            .receipt_handle(receipt_handle)
            .visibility_timeout(secs)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| StoreError::Other(error_chain(&e)))
    }
}

impl JobQueue for SqsQueue {
    async fn send(&self, queue: &str, body: String) -> Result<(), StoreError> {
        self.client
            .send_message()
            .queue_url(queue)
            .message_body(body)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| StoreError::Other(error_chain(&e)))
    }

    async fn retry_in(&self, source_arn: &str, receipt_handle: &str, after: std::time::Duration) {
        let Some(queue_url) = self.queue_url_of_arn(source_arn) else {
            tracing::warn!(
                source_arn,
                "a record from a queue this deployment does not know"
            );
            return;
        };
        if let Err(e) = self.set_visibility(queue_url, receipt_handle, after).await {
            tracing::warn!(error = %e, "could not shorten the message's visibility");
        }
    }

    async fn ping(&self, queue_url: &str) -> Result<(), StoreError> {
        self.client
            .get_queue_attributes()
            .queue_url(queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| StoreError::Other(error_chain(&e)))
    }
}
