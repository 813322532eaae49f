//! The object store port on S3.

use std::time::Duration;

use aws_sdk_s3::presigning::{PresignedRequest as SdkPresigned, PresigningConfig};
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use xlport_core::ports::{ObjectMeta, ObjectStore, PresignedRequest, StoreError, UploadedPart};

use crate::aws::error_chain;

#[derive(Clone)]
pub struct S3Store {
    pub client: aws_sdk_s3::Client,
    pub bucket: String,
}

fn other(e: impl std::error::Error + 'static) -> StoreError {
    StoreError::Other(error_chain(&e))
}

/// A call on a multipart upload that failed: [`StoreError::NotFound`] when
/// the upload is gone (completed or aborted: S3 answers 404
/// `NoSuchUpload`), [`StoreError::Other`] otherwise.
fn upload_error<E>(
    e: aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
    key: &str,
) -> StoreError
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let gone = e.as_service_error().and_then(|s| s.code()) == Some("NoSuchUpload")
        || e.raw_response().is_some_and(|r| r.status().as_u16() == 404);
    if gone {
        StoreError::NotFound(format!("multipart upload of {key}"))
    } else {
        other(e)
    }
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
}

impl ObjectStore for S3Store {
    async fn presign_put(
        &self,
        key: &str,
        content_length: u64,
        expires: Duration,
    ) -> Result<PresignedRequest, StoreError> {
        let length = i64::try_from(content_length)
            .map_err(|_| StoreError::Other(format!("{content_length} bytes is no object size")))?;
        let p = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_length(length)
            .if_none_match("*")
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

    /// A file xlport refused, or whose import ended before it arrived, does
    /// not stay in the bucket (issue #15).
    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(other)?;
        Ok(())
    }

    async fn create_multipart_upload(
        &self,
        key: &str,
        content_type: &str,
        content_disposition: Option<&str>,
    ) -> Result<String, StoreError> {
        let out = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .set_content_disposition(content_disposition.map(str::to_string))
            .send()
            .await
            .map_err(other)?;
        Ok(out
            .upload_id()
            .ok_or_else(|| StoreError::Other("S3 returned no upload id".into()))?
            .to_string())
    }

    async fn presign_upload_part(
        &self,
        key: &str,
        upload_id: &str,
        part_number: i32,
        expires: Duration,
    ) -> Result<String, StoreError> {
        let p = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .part_number(part_number)
            .presigned(presign_config(expires)?)
            .await
            .map_err(other)?;
        Ok(p.uri().to_string())
    }

    async fn list_parts(
        &self,
        key: &str,
        upload_id: &str,
    ) -> Result<Vec<UploadedPart>, StoreError> {
        let mut out = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let page = self
                .client
                .list_parts()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(upload_id)
                .set_part_number_marker(marker.clone())
                .send()
                .await
                .map_err(|e| upload_error(e, key))?;
            for p in page.parts() {
                out.push(UploadedPart {
                    part_number: p.part_number().unwrap_or(0),
                    etag: p.e_tag().unwrap_or_default().trim_matches('"').to_string(),
                    size: p.size().unwrap_or(0),
                });
            }
            if page.is_truncated() == Some(true) {
                marker = page.next_part_number_marker().map(str::to_string);
            } else {
                return Ok(out);
            }
        }
    }

    async fn complete_multipart_upload(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[(i32, String)],
    ) -> Result<(), StoreError> {
        let mut parts: Vec<CompletedPart> = parts
            .iter()
            .map(|(n, etag)| {
                CompletedPart::builder()
                    .part_number(*n)
                    .e_tag(format!("\"{}\"", etag.trim_matches('"')))
                    .build()
            })
            .collect();
        parts.sort_by_key(|p| p.part_number());
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map(|_| ())
            .map_err(other)
    }

    /// An upload already gone (`NoSuchUpload`: completed, or aborted
    /// before) is not an error.
    async fn abort_multipart_upload(&self, key: &str, upload_id: &str) -> Result<(), StoreError> {
        match self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_upload()) => Ok(()),
            Err(e) => Err(other(e)),
        }
    }

    async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        part_number: i32,
        body: bytes::Bytes,
    ) -> Result<String, StoreError> {
        let out = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .part_number(part_number)
            .body(body.into())
            .send()
            .await
            .map_err(|e| upload_error(e, key))?;
        Ok(out
            .e_tag()
            .unwrap_or_default()
            .trim_matches('"')
            .to_string())
    }

    async fn download_to(
        &self,
        key: &str,
        if_match: Option<&str>,
        path: &std::path::Path,
        mut on_progress: impl FnMut(u64) + Send,
    ) -> Result<u64, StoreError> {
        use tokio::io::AsyncWriteExt;
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .set_if_match(if_match.map(|etag| format!("\"{}\"", etag.trim_matches('"'))))
            .send()
            .await
            .map_err(|e| {
                if e.as_service_error().is_some_and(|s| s.is_no_such_key()) {
                    StoreError::NotFound(key.to_string())
                } else if e.raw_response().map(|r| r.status().as_u16()) == Some(412) {
                    StoreError::Changed(key.to_string())
                } else {
                    other(e)
                }
            })?;
        let mut body = out.body;
        let file = tokio::fs::File::create(path)
            .await
            .map_err(|e| StoreError::Other(format!("creating {}: {e}", path.display())))?;
        let mut file = tokio::io::BufWriter::with_capacity(1 << 20, file);
        let mut total = 0u64;
        while let Some(chunk) = body
            .try_next()
            .await
            .map_err(|e| StoreError::Other(format!("reading s3://{}/{key}: {e}", self.bucket)))?
        {
            file.write_all(&chunk)
                .await
                .map_err(|e| StoreError::Other(format!("writing {}: {e}", path.display())))?;
            total += chunk.len() as u64;
            on_progress(total);
        }
        file.flush()
            .await
            .map_err(|e| StoreError::Other(format!("writing {}: {e}", path.display())))?;
        Ok(total)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.client
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .map(|_| ())
            .map_err(other)
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
