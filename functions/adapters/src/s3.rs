//! The object store port on S3.

use std::time::Duration;

use aws_sdk_s3::presigning::{PresignedRequest as SdkPresigned, PresigningConfig};
use xlport_core::ports::{ObjectMeta, ObjectStore, PresignedRequest, StoreError};

use crate::aws::error_chain;

#[derive(Clone)]
pub struct S3Store {
    pub client: aws_sdk_s3::Client,
    pub bucket: String,
}

fn other(e: impl std::error::Error + 'static) -> StoreError {
    StoreError::Other(error_chain(&e))
}

fn presign_config(expires: Duration) -> Result<PresigningConfig, StoreError> {
    PresigningConfig::expires_in(expires).map_err(other)
}

fn to_port(method: &'static str, p: SdkPresigned) -> PresignedRequest {
    PresignedRequest {
        method,
        url: p.uri().to_string(),
        headers: p
            .headers()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

/// `attachment; filename="..."` with a plain-ASCII fallback and the UTF-8 name (RFC 6266).
pub fn attachment_disposition(filename: &str) -> String {
    let ascii: String = filename
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = filename
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

impl S3Store {
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
        }
    }

    /// Checks the bucket is reachable (for /health).
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.client
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .map(|_| ())
            .map_err(other)
    }
}

impl ObjectStore for S3Store {
    async fn presign_put(
        &self,
        key: &str,
        expires: Duration,
    ) -> Result<PresignedRequest, StoreError> {
        let p = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(presign_config(expires)?)
            .await
            .map_err(other)?;
        Ok(to_port("PUT", p))
    }

    async fn presign_get(
        &self,
        key: &str,
        download_filename: &str,
        expires: Duration,
    ) -> Result<PresignedRequest, StoreError> {
        let p = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .response_content_disposition(attachment_disposition(download_filename))
            .presigned(presign_config(expires)?)
            .await
            .map_err(other)?;
        Ok(to_port("GET", p))
    }

    async fn head(&self, key: &str) -> Result<ObjectMeta, StoreError> {
        let out = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| {
                if e.as_service_error().is_some_and(|s| s.is_not_found()) {
                    StoreError::NotFound(key.to_string())
                } else {
                    other(e)
                }
            })?;
        Ok(ObjectMeta {
            size: out.content_length().unwrap_or(0).max(0) as u64,
            etag: out
                .e_tag()
                .unwrap_or_default()
                .trim_matches('"')
                .to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disposition_is_safe_and_keeps_the_utf8_name() {
        assert_eq!(
            attachment_disposition("user_purchase.xlsx"),
            "attachment; filename=\"user_purchase.xlsx\"; filename*=UTF-8''user_purchase.xlsx"
        );
        let d = attachment_disposition("a\"b é.csv");
        assert!(d.starts_with("attachment; filename=\"a_b _.csv\""), "{d}");
        assert!(d.ends_with("a%22b%20%C3%A9.csv"), "{d}");
    }
}
