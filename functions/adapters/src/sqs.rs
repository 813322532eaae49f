//! The queue port on SQS.

use xlport_core::ports::{JobQueue, StoreError};

use crate::aws::error_chain;

#[derive(Clone)]
pub struct SqsQueue {
    pub client: aws_sdk_sqs::Client,
}

impl SqsQueue {
    pub fn new(client: aws_sdk_sqs::Client) -> Self {
        Self { client }
    }
}

impl SqsQueue {
    /// Makes a received message visible again in `after` (SQS
    /// `ChangeMessageVisibility`, at most 12 hours), so a failed record is
    /// retried then. `source_arn` is the record's `eventSourceARN`; a queue
    /// this deployment does not own is left alone. Failures are logged: the
    /// message then comes back after the queue's visibility timeout.
    pub async fn retry_in(
        &self,
        config: &crate::Config,
        source_arn: &str,
        receipt_handle: &str,
        after: std::time::Duration,
    ) {
        let Some(queue_url) = queue_url_of_arn(config, source_arn) else {
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

    /// Makes a received message of `queue_url` visible again `after` from
    /// now (SQS `ChangeMessageVisibility`; capped at SQS's maximum, 12
    /// hours). An error when the receipt handle is no longer valid (the
    /// message was deleted or received again).
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

/// The URL of one of the deployment's queues from an ARN
/// (`arn:aws:sqs:REGION:ACCOUNT:NAME`): the configured queue of that name.
pub fn queue_url_of_arn<'c>(config: &'c crate::Config, arn: &str) -> Option<&'c str> {
    let name = arn.rsplit(':').next()?;
    [&config.imports_queue_url, &config.exports_queue_url]
        .into_iter()
        .find(|url| url.rsplit('/').next() == Some(name))
        .map(String::as_str)
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
