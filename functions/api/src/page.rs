//! The browser page and the security headers of every response (issue #15).
//!
//! The page is one HTML file, `web/page.html` (next to its browser tests in
//! `web/tests`), embedded at compile time, with one inline `<script>` and one
//! inline `<style>`; its Content-Security-Policy allows exactly those two (by
//! their SHA-256, CSP Level 3 §7.3 hash-source, of the text as served), the
//! API itself (`connect-src 'self'`) and the bucket's origin the presigned
//! URLs point at (uploads are XHR PUTs straight to S3), and nothing else: no
//! other script, no frames, no form posts, no embedding in another site's
//! frame.
//!
//! The page does not write the names of the conflict policies, export formats
//! and CSV dialects: each of its `<!-- xlport:… -->` markers becomes the
//! `<option>`s of one of the contract's sets ([`ConflictPolicy::NAMES`]...),
//! in the contract's order, its default selected.

use std::sync::{LazyLock, OnceLock};

use base64::Engine;
use lambda_http::http::{HeaderMap, HeaderValue};
use lambda_http::{Body, Response};
use sha2::{Digest, Sha256};
use xlport_adapters::Config;
use xlport_contract::{ConflictPolicy, CsvDialectName, ExportFormat};

/// The page as written, its name lists still markers.
const TEMPLATE: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../web/page.html"));

/// The browser page as served (export button, chunked parallel upload, jobs
/// list): [`TEMPLATE`] with its name lists filled in.
pub static PAGE: LazyLock<String> = LazyLock::new(|| render(TEMPLATE));

/// The markers of `web/page.html` and the `<option>`s each becomes. The
/// labels are the page's; a new name in the contract fails to compile here
/// until it has one.
fn name_lists() -> [(&'static str, Vec<String>); 3] {
    use {ConflictPolicy as P, CsvDialectName as D, ExportFormat as F};
    [
        (
            "<!-- xlport:export-formats -->",
            // The format whose request takes `csv` options says so.
            options(&F::ALL, F::as_str, |f| match f {
                F::Xlsx => ("Excel (.xlsx)", ""),
                F::Csv => ("CSV (.csv)", " data-csv-dialect"),
            }),
        ),
        (
            "<!-- xlport:csv-dialects -->",
            options(&D::ALL, D::as_str, |d| match d {
                D::Rfc4180 => ("rfc4180: comma, decimal point, ISO dates", ""),
                D::ExcelBr => (
                    "excel-br: semicolon, decimal comma, DD/MM/YYYY (Excel/LibreOffice pt-BR)",
                    "",
                ),
            }),
        ),
        (
            "<!-- xlport:conflict-policies -->",
            options(&P::ALL, P::as_str, |p| match p {
                P::Upsert => ("update it (upsert)", ""),
                P::Skip => ("keep the existing row (skip)", ""),
                P::Reject => ("reject the new row", ""),
            }),
        ),
    ]
}

/// One `<option>` for each of `all`, valued its wire `name`, the default
/// selected, with the (label, attributes) `choice` gives it. Labels and
/// attributes are the page's own text (no `<`, `&` or `"`); attributes start
/// with a space when there are any.
fn options<T: Copy + PartialEq + Default>(
    all: &[T],
    name: fn(T) -> &'static str,
    choice: fn(T) -> (&'static str, &'static str),
) -> Vec<String> {
    all.iter()
        .map(|&v| {
            let selected = if v == T::default() { " selected" } else { "" };
            let (label, attrs) = choice(v);
            format!(
                "<option value=\"{}\"{selected}{attrs}>{label}</option>",
                name(v)
            )
        })
        .collect()
}

/// `template` with each marker replaced by its options, one a line at the
/// marker's indentation. A marker the template lacks is a bug the tests catch
/// (the list would be missing from the page).
fn render(template: &str) -> String {
    let mut page = template.to_string();
    for (marker, options) in name_lists() {
        let Some(at) = page.find(marker) else {
            continue;
        };
        let line_start = page[..at].rfind('\n').map_or(0, |i| i + 1);
        let indent = format!("\n{}", &page[line_start..at]);
        page.replace_range(at..at + marker.len(), &options.join(&indent));
    }
    page
}

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
    let mut resp = Response::new(Body::Text(PAGE.clone()));
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
            inline_hash(&PAGE, "<script>", "</script>"),
            inline_hash(&PAGE, "<style>", "</style>"),
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
    fn every_marker_of_the_page_is_filled_once() {
        for (marker, options) in name_lists() {
            assert_eq!(TEMPLATE.matches(marker).count(), 1, "{marker}");
            assert!(!PAGE.contains(marker), "{marker}");
            for option in options {
                assert_eq!(PAGE.matches(&option).count(), 1, "{option}");
            }
        }
        assert!(!PAGE.contains("<!-- xlport:"));
        // Each option on its own line, at the marker's indentation.
        assert_eq!(
            render("<select>\n    <!-- xlport:conflict-policies -->\n</select>"),
            "<select>\n    <option value=\"upsert\" selected>update it (upsert)</option>\n    \
             <option value=\"skip\">keep the existing row (skip)</option>\n    \
             <option value=\"reject\">reject the new row</option>\n</select>"
        );
    }

    #[test]
    fn the_hashes_cover_the_page_s_inline_script_and_style() {
        let page: &str = &PAGE;
        let script = inline_hash(page, "<script>", "</script>");
        let style = inline_hash(page, "<style>", "</style>");
        assert!(
            script.starts_with("sha256-") && script.len() == 7 + 44,
            "{script}"
        );
        assert_ne!(script, style);
        // One of each: a second block would be refused by the policy.
        assert_eq!(page.matches("<script").count(), 1);
        assert_eq!(page.matches("<style").count(), 1);
        assert!(
            !page.contains(" onclick="),
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
