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

    /// Checks the queue answers (for /health).
    pub async fn ping(&self, queue_url: &str) -> Result<(), StoreError> {
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
}
