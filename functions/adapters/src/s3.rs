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
                .map_err(|e| {
                    if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) {
                        StoreError::NotFound(format!("multipart upload of {key}"))
                    } else {
                        other(e)
                    }
                })?;
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
        let parts = parts
            .iter()
            .map(|(n, etag)| {
                CompletedPart::builder()
                    .part_number(*n)
                    .e_tag(format!("\"{}\"", etag.trim_matches('"')))
                    .build()
            })
            .collect();
        self.multipart(key, upload_id).complete(parts).await
    }

    async fn abort_multipart_upload(&self, key: &str, upload_id: &str) -> Result<(), StoreError> {
        self.multipart(key, upload_id).abort().await
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

// ---------------------------------------------------------------------------
// Streaming multipart upload

/// An S3 multipart upload in progress.
#[derive(Clone)]
pub struct MultipartUpload {
    client: aws_sdk_s3::Client,
    pub bucket: String,
    pub key: String,
    pub upload_id: String,
}

impl S3Store {
    /// Starts a multipart upload the worker itself writes to (see
    /// [`MultipartUpload::writer`]).
    pub async fn start_multipart(
        &self,
        key: &str,
        content_type: &str,
        content_disposition: Option<&str>,
    ) -> Result<MultipartUpload, StoreError> {
        let upload_id = self
            .create_multipart_upload(key, content_type, content_disposition)
            .await?;
        Ok(self.multipart(key, &upload_id))
    }

    /// An upload started earlier (by a client, or a dead attempt).
    pub fn multipart(&self, key: &str, upload_id: &str) -> MultipartUpload {
        MultipartUpload {
            client: self.client.clone(),
            bucket: self.bucket.clone(),
            key: key.to_string(),
            upload_id: upload_id.to_string(),
        }
    }
}

impl S3Store {
    /// Streams an object into a local file (the worker's spool); returns its
    /// size. `on_progress` sees the bytes written so far. Memory stays at one
    /// chunk whatever the object's size.
    ///
    /// `if_match`: the ETag (without quotes) of the version that was checked;
    /// S3 refuses the read with 412 when the key now holds another version
    /// (`GetObject` `If-Match`), which is [`StoreError::Changed`]. So a job
    /// reads exactly the bytes whose size and ETag it recorded, even if the
    /// presigned PUT was used again (issue #15).
    ///
    /// Errors: [`StoreError::NotFound`] (no such key), [`StoreError::Changed`],
    /// [`StoreError::Other`] (anything else, including a failed local write).
    pub async fn download_to(
        &self,
        key: &str,
        if_match: Option<&str>,
        path: &std::path::Path,
        mut on_progress: impl FnMut(u64),
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
}

impl MultipartUpload {
    async fn upload_part(&self, number: i32, body: Vec<u8>) -> Result<CompletedPart, StoreError> {
        let mut attempt = 0;
        let body = bytes::Bytes::from(body);
        loop {
            attempt += 1;
            let result = self
                .client
                .upload_part()
                .bucket(&self.bucket)
                .key(&self.key)
                .upload_id(&self.upload_id)
                .part_number(number)
                .body(body.clone().into())
                .send()
                .await;
            match result {
                Ok(out) => {
                    return Ok(CompletedPart::builder()
                        .part_number(number)
                        .set_e_tag(out.e_tag().map(str::to_string))
                        .build());
                }
                Err(e) if attempt < 4 => {
                    tracing::warn!(part = number, attempt, error = %error_chain(&e), "part upload failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200 * (1 << attempt))).await;
                }
                Err(e) => return Err(other(e)),
            }
        }
    }

    pub async fn complete(&self, mut parts: Vec<CompletedPart>) -> Result<(), StoreError> {
        parts.sort_by_key(|p| p.part_number());
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
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

    /// Aborts the upload and frees its parts; an upload already gone
    /// (`NoSuchUpload`: completed, or aborted before) is not an error.
    pub async fn abort(&self) -> Result<(), StoreError> {
        match self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_upload()) => Ok(()),
            Err(e) => Err(other(e)),
        }
    }

    /// A blocking `Write` that cuts what it is given into parts of
    /// `part_size` bytes, and the task that uploads them, at most `in_flight`
    /// at once. Memory is bounded by about `(in_flight + 2) * part_size`.
    /// Await the task after dropping (or finishing) the writer; it returns
    /// the completed parts and the total bytes.
    pub fn writer(&self, part_size: usize, in_flight: usize) -> (PartWriter, PartUploads) {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(1);
        let upload = self.clone();
        let task = tokio::spawn(async move {
            let mut running = tokio::task::JoinSet::new();
            let mut parts = Vec::new();
            let mut number = 0i32;
            let mut total = 0u64;
            while let Some(buf) = rx.recv().await {
                while running.len() >= in_flight.max(1) {
                    if let Some(done) = running.join_next().await {
                        parts.push(done.map_err(|e| StoreError::Other(e.to_string()))??);
                    }
                }
                number += 1;
                total += buf.len() as u64;
                let upload = upload.clone();
                running.spawn(async move { upload.upload_part(number, buf).await });
            }
            while let Some(done) = running.join_next().await {
                parts.push(done.map_err(|e| StoreError::Other(e.to_string()))??);
            }
            Ok((parts, total))
        });
        (
            PartWriter {
                buf: Vec::with_capacity(part_size),
                part_size,
                tx,
                sent_any: false,
            },
            task,
        )
    }
}

/// The task uploading a [`PartWriter`]'s parts: the completed parts and total bytes.
pub type PartUploads = tokio::task::JoinHandle<Result<(Vec<CompletedPart>, u64), StoreError>>;

/// See [`MultipartUpload::writer`]. Used from a blocking thread (the xlsx
/// writer's); it blocks while the uploads catch up, which is the back-pressure
/// that keeps memory flat.
pub struct PartWriter {
    buf: Vec<u8>,
    part_size: usize,
    tx: tokio::sync::mpsc::Sender<Vec<u8>>,
    sent_any: bool,
}

impl PartWriter {
    fn send_buf(&mut self) -> std::io::Result<()> {
        let full = std::mem::replace(&mut self.buf, Vec::with_capacity(self.part_size));
        self.sent_any = true;
        self.tx
            .blocking_send(full)
            .map_err(|_| std::io::Error::other("the S3 upload stopped (a part failed)"))
    }

    /// Sends the last part (S3 allows the last, or only, part to be small).
    pub fn finish(mut self) -> std::io::Result<()> {
        if !self.buf.is_empty() || !self.sent_any {
            self.send_buf()?;
        }
        Ok(())
    }
}

impl std::io::Write for PartWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let room = self.part_size - self.buf.len();
        let n = room.min(data.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() >= self.part_size {
            self.send_buf()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
