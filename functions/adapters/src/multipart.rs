//! A multipart upload a worker writes itself (an export, an error report),
//! on any [`ObjectStore`]: a blocking `Write` cuts the bytes into parts and a
//! task uploads them a few at a time, so memory stays flat however large the
//! file (S3 multipart upload: parts of at least 5 MiB but the last, at most
//! 10,000 of them). Nothing is visible at the key until [`MultipartUpload::complete`].

use std::time::Duration;

use bytes::Bytes;
use xlport_core::ports::{ObjectStore, StoreError};

/// A multipart upload in progress on `O`.
#[derive(Clone)]
pub struct MultipartUpload<O> {
    store: O,
    pub key: String,
    pub upload_id: String,
}

/// A completed part: (part number, ETag without quotes).
pub type CompletedPart = (i32, String);

impl<O: ObjectStore + Clone + 'static> MultipartUpload<O> {
    /// Starts a multipart upload to `key` (`CreateMultipartUpload`).
    pub async fn start(
        store: &O,
        key: &str,
        content_type: &str,
        content_disposition: Option<&str>,
    ) -> Result<Self, StoreError> {
        let upload_id = store
            .create_multipart_upload(key, content_type, content_disposition)
            .await?;
        Ok(MultipartUpload {
            store: store.clone(),
            key: key.to_string(),
            upload_id,
        })
    }

    /// Uploads one part, trying again on a failure (three more times, after
    /// 0.4, 0.8 and 1.6 s): a part lost to a dropped connection should not
    /// cost the whole export.
    async fn upload_part(&self, number: i32, body: Bytes) -> Result<CompletedPart, StoreError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self
                .store
                .upload_part(&self.key, &self.upload_id, number, body.clone())
                .await
            {
                Ok(etag) => return Ok((number, etag)),
                // The upload is gone (aborted, completed): no retry brings it back.
                Err(e @ StoreError::NotFound(_)) => return Err(e),
                Err(e) if attempt < 4 => {
                    tracing::warn!(part = number, attempt, error = %e, "part upload failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200 * (1 << attempt))).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Completes the upload from its parts, in any order
    /// (`CompleteMultipartUpload`): the object appears at the key only now.
    pub async fn complete(&self, mut parts: Vec<CompletedPart>) -> Result<(), StoreError> {
        parts.sort_by_key(|(n, _)| *n);
        self.store
            .complete_multipart_upload(&self.key, &self.upload_id, &parts)
            .await
    }

    /// Aborts the upload and frees its parts; an upload already gone is not
    /// an error.
    pub async fn abort(&self) -> Result<(), StoreError> {
        self.store
            .abort_multipart_upload(&self.key, &self.upload_id)
            .await
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
                running.spawn(async move { upload.upload_part(number, Bytes::from(buf)).await });
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
            .map_err(|_| std::io::Error::other("the upload stopped (a part failed)"))
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

#[cfg(test)]
mod tests {
    use std::io::Write;

    use xlport_core::ports::memory::MemoryObjectStore;

    use super::*;

    #[tokio::test]
    async fn parts_are_cut_uploaded_and_completed_in_order() {
        let bucket = MemoryObjectStore::new();
        let upload = MultipartUpload::start(&bucket, "k", "text/csv", None)
            .await
            .unwrap();
        let (mut writer, uploads) = upload.writer(4, 2);
        let data: Vec<u8> = (0..=250u8).collect();
        tokio::task::spawn_blocking(move || {
            writer.write_all(&data).unwrap();
            writer.finish().unwrap();
        })
        .await
        .unwrap();
        let (parts, total) = uploads.await.unwrap().unwrap();
        assert_eq!((parts.len(), total), (63, 251));
        assert!(
            bucket.get("k").is_none(),
            "nothing visible before completion"
        );
        upload.complete(parts).await.unwrap();
        assert_eq!(bucket.get("k").unwrap(), (0..=250u8).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn an_empty_file_is_one_empty_part_and_abort_leaves_nothing() {
        let bucket = MemoryObjectStore::new();
        let upload = MultipartUpload::start(&bucket, "e", "text/csv", None)
            .await
            .unwrap();
        let (writer, uploads) = upload.writer(4, 2);
        tokio::task::spawn_blocking(move || writer.finish().unwrap())
            .await
            .unwrap();
        let (parts, total) = uploads.await.unwrap().unwrap();
        assert_eq!((parts.len(), total), (1, 0));
        upload.abort().await.unwrap();
        upload.abort().await.unwrap();
        assert_eq!(bucket.uploads_in_progress(), 0);
    }
}
