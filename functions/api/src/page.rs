//! The browser page and the security headers of every response (issue #15).
//!
//! The page is one static HTML file with one inline `<script>` and one inline
//! `<style>`; its Content-Security-Policy allows exactly those two (by their
//! SHA-256, CSP Level 3 §7.3 hash-source), the API itself (`connect-src
//! 'self'`) and the bucket's origin the presigned URLs point at (uploads are
//! XHR PUTs straight to S3), and nothing else: no other script, no frames, no
//! form posts, no embedding in another site's frame.

use std::sync::OnceLock;

use base64::Engine;
use lambda_http::http::{HeaderMap, HeaderValue};
use lambda_http::{Body, Response};
use sha2::{Digest, Sha256};
use xlport_adapters::Config;

/// The browser page: export button, chunked parallel upload, jobs list.
pub const PAGE: &str = include_str!("page.html");

/// Headers every response carries: no MIME sniffing (`X-Content-Type-Options`),
/// nothing cached by the browser or a proxy (the jobs, URLs and keys they
/// carry are private and short-lived), no referrer sent with a link.
pub fn common_headers(headers: &mut HeaderMap) {
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers
        .entry("cache-control")
        .or_insert(HeaderValue::from_static("no-store"));
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
}

/// The page with its Content-Security-Policy and frame protection.
pub fn response(config: &Config) -> Response<Body> {
    let mut resp = Response::new(Body::Text(PAGE.to_string()));
    let headers = resp.headers_mut();
    headers.insert(
        "content-type",
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    if let Ok(csp) = HeaderValue::from_str(&content_security_policy(config)) {
        headers.insert("content-security-policy", csp);
    }
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    resp
}

/// `Content-Security-Policy` for [`PAGE`] served by a stack with `config`.
pub fn content_security_policy(config: &Config) -> String {
    static HASHES: OnceLock<(String, String)> = OnceLock::new();
    let (script, style) = HASHES.get_or_init(|| {
        (
            inline_hash(PAGE, "<script>", "</script>"),
            inline_hash(PAGE, "<style>", "</style>"),
        )
    });
    format!(
        "default-src 'none'; script-src '{script}'; style-src '{style}'; \
         connect-src 'self' {s3}; img-src data:; base-uri 'none'; form-action 'none'; \
         frame-ancestors 'none'",
        s3 = bucket_origins(config)
    )
}

/// `sha256-…` of the text between the first `open` and the next `close`.
fn inline_hash(page: &str, open: &str, close: &str) -> String {
    let body = page
        .split_once(open)
        .and_then(|(_, rest)| rest.split_once(close))
        .map_or("", |(body, _)| body);
    let digest = Sha256::digest(body.as_bytes());
    format!(
        "sha256-{}",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// Where the presigned URLs point: the configured endpoint (LocalStack,
/// path-style), else S3's regional endpoints, virtual-hosted and path-style
/// (AWS S3 User Guide, "Virtual hosting of buckets").
fn bucket_origins(config: &Config) -> String {
    match &config.aws_endpoint_url {
        Some(endpoint) => origin_of(endpoint),
        None => format!(
            "https://{bucket}.s3.{region}.amazonaws.com https://s3.{region}.amazonaws.com",
            bucket = config.bucket,
            region = config.region
        ),
    }
}

/// `scheme://host[:port]` of a URL.
fn origin_of(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("http", url));
    let host = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    format!("{scheme}://{host}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hashes_cover_the_page_s_inline_script_and_style() {
        let script = inline_hash(PAGE, "<script>", "</script>");
        let style = inline_hash(PAGE, "<style>", "</style>");
        assert!(
            script.starts_with("sha256-") && script.len() == 7 + 44,
            "{script}"
        );
        assert_ne!(script, style);
        // One of each: a second block would be refused by the policy.
        assert_eq!(PAGE.matches("<script").count(), 1);
        assert_eq!(PAGE.matches("<style").count(), 1);
        assert!(
            !PAGE.contains(" onclick="),
            "inline handlers are refused by the CSP"
        );
        // The known digest of a known text, so the encoding is the CSP one.
        assert_eq!(
            inline_hash("<script>alert(1)</script>", "<script>", "</script>"),
            "sha256-bhHHL3z2vDgxUt0W3dWQOrprscmda2Y5pLsLg4GF+pI="
        );
    }

    #[test]
    fn origins() {
        assert_eq!(origin_of("http://127.0.0.1:4566"), "http://127.0.0.1:4566");
        assert_eq!(
            origin_of("http://localhost:4566/x?y"),
            "http://localhost:4566"
        );
        assert_eq!(
            origin_of("https://s3.amazonaws.com/"),
            "https://s3.amazonaws.com"
        );
    }
}
