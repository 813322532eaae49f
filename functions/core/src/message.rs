//! Messages on xlport's own queues and the S3 notifications it receives,
//! reduced to what the workers need.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Body of a message on the `exports` queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportRequested {
    pub job_id: Uuid,
}

/// One object-created record of an S3 event notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectCreated {
    pub bucket: String,
    /// The key, URL-decoded (S3 sends it form-encoded).
    pub key: String,
    pub size: u64,
    pub etag: String,
    pub event_name: String,
}

/// What a message on the `imports` queue turns out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportNotification {
    /// The `s3:TestEvent` S3 sends when a notification is configured.
    TestEvent,
    Objects(Vec<ObjectCreated>),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not an S3 event notification: {0}")]
pub struct NotAnS3Event(pub String);

#[derive(Deserialize)]
struct RawNotification {
    #[serde(rename = "Event")]
    event: Option<String>,
    #[serde(rename = "Records")]
    records: Option<Vec<RawRecord>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRecord {
    event_name: String,
    s3: RawS3,
}

#[derive(Deserialize)]
struct RawS3 {
    bucket: RawBucket,
    object: RawObject,
}

#[derive(Deserialize)]
struct RawBucket {
    name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawObject {
    key: String,
    #[serde(default)]
    size: Option<u64>,
    #[serde(default)]
    e_tag: Option<String>,
}

/// Parses an SQS message body holding an S3 event notification.
pub fn parse_import_notification(body: &str) -> Result<ImportNotification, NotAnS3Event> {
    let raw: RawNotification =
        serde_json::from_str(body).map_err(|e| NotAnS3Event(e.to_string()))?;
    if raw.event.as_deref() == Some("s3:TestEvent") {
        return Ok(ImportNotification::TestEvent);
    }
    let records = raw
        .records
        .ok_or_else(|| NotAnS3Event("no `Records` and not a test event".into()))?;
    let mut out = Vec::with_capacity(records.len());
    for r in records {
        if !r.event_name.starts_with("ObjectCreated:") {
            continue;
        }
        out.push(ObjectCreated {
            bucket: r.s3.bucket.name,
            key: decode_s3_key(&r.s3.object.key)
                .ok_or_else(|| NotAnS3Event(format!("bad key encoding: {}", r.s3.object.key)))?,
            size: r.s3.object.size.unwrap_or(0),
            etag: r
                .s3
                .object
                .e_tag
                .unwrap_or_default()
                .trim_matches('"')
                .to_string(),
            event_name: r.event_name,
        });
    }
    Ok(ImportNotification::Objects(out))
}

/// An S3 `ObjectCreated:Put` event notification for one object, as S3 sends
/// it to the imports queue (AWS S3 docs, "Event message structure", version
/// 2.1): what a stalled import is re-driven with. The key is form-encoded.
pub fn object_created_notification(bucket: &str, key: &str, size: u64, etag: &str) -> String {
    let mut encoded = String::with_capacity(key.len());
    for b in key.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                encoded.push(b as char)
            }
            other => encoded.push_str(&format!("%{other:02X}")),
        }
    }
    serde_json::json!({"Records": [{
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "eventName": "ObjectCreated:Put",
        "s3": {
            "bucket": {"name": bucket},
            "object": {"key": encoded, "size": size, "eTag": etag},
        },
    }]})
    .to_string()
}

/// S3 event keys are `application/x-www-form-urlencoded`: `+` is a space.
pub fn decode_s3_key(key: &str) -> Option<String> {
    let bytes = key.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = key.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_made_notification_parses_back_to_its_object() {
        let body = object_created_notification("b", "imports/j/a b+ç.csv", 12, "e1");
        let ImportNotification::Objects(objects) = parse_import_notification(&body).unwrap() else {
            panic!("not objects");
        };
        assert_eq!(objects[0].key, "imports/j/a b+ç.csv");
        assert_eq!((objects[0].size, objects[0].etag.as_str()), (12, "e1"));
    }

    #[test]
    fn recognises_the_test_event() {
        let body = r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2026-01-01T00:00:00.000Z","Bucket":"b","RequestId":"x","HostId":"y"}"#;
        assert_eq!(
            parse_import_notification(body),
            Ok(ImportNotification::TestEvent)
        );
    }

    #[test]
    fn parses_object_created_records() {
        let body = r#"{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","eventName":"ObjectCreated:Put",
          "s3":{"bucket":{"name":"xlport"},"object":{"key":"imports/abc/my+file%C3%A9.csv","size":42,"eTag":"\"d41d8\""}}},
          {"eventName":"ObjectRemoved:Delete","s3":{"bucket":{"name":"xlport"},"object":{"key":"x"}}}]}"#;
        let ImportNotification::Objects(objs) = parse_import_notification(body).unwrap() else {
            panic!("expected objects")
        };
        assert_eq!(objs.len(), 1);
        assert_eq!(objs[0].key, "imports/abc/my fileé.csv");
        assert_eq!(objs[0].size, 42);
        assert_eq!(objs[0].etag, "d41d8");
        assert_eq!(objs[0].bucket, "xlport");
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(parse_import_notification("hello").is_err());
        assert!(parse_import_notification("{}").is_err());
        assert_eq!(decode_s3_key("%zz"), None);
    }
}
