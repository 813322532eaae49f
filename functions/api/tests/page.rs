//! The browser page as `GET /` serves it (in-process, on the in-memory
//! ports): its choices of conflict policy, export format and CSV dialect are
//! exactly the contract's names, in the contract's order, the default
//! selected; and its Content-Security-Policy hashes the script and style of
//! the text actually served.

use std::sync::Arc;

use api::App;
use base64::Engine;
use lambda_http::http::Method;
use lambda_http::{Body, Request};
use sha2::{Digest, Sha256};
use xlport_adapters::Config;
use xlport_contract::{ConflictPolicy, CsvDialectName, ExportFormat};
use xlport_core::Datasets;
use xlport_core::ports::memory::{InMemory, MemoryJobStore, MemoryObjectStore, MemoryQueue};

/// The page and its Content-Security-Policy.
async fn served_page() -> (String, String) {
    let app: App<InMemory> = App {
        jobs: MemoryJobStore::new(),
        objects: MemoryObjectStore::new(),
        queue: MemoryQueue::new(),
        config: Arc::new(Config::from_lookup(|_| None).expect("config")),
        datasets: Arc::new(Datasets::builtin().expect("datasets")),
    };
    let req: Request = lambda_http::http::Request::builder()
        .method(Method::GET)
        .uri("/")
        .body(Body::Empty)
        .expect("request");
    let resp = app.handle(req).await;
    assert_eq!(resp.status(), 200);
    let csp = resp.headers()["content-security-policy"]
        .to_str()
        .expect("csp")
        .to_string();
    let Body::Text(page) = resp.into_body() else {
        panic!("the page is text");
    };
    (page, csp)
}

/// The `(value, selected)` of each `<option>` of `<select id="{id}" …>`.
fn options(page: &str, id: &str) -> Vec<(String, bool)> {
    let open = format!("<select id=\"{id}\"");
    let (_, rest) = page.split_once(&open).expect("the select");
    let (select, _) = rest.split_once("</select>").expect("its end");
    select
        .split("<option ")
        .skip(1)
        .map(|option| {
            let (attrs, _) = option.split_once('>').expect("the option's tag");
            let value = attrs
                .strip_prefix("value=\"")
                .and_then(|v| v.split_once('"'))
                .map(|(v, _)| v.to_string())
                .expect("value first");
            (value, attrs.split_whitespace().any(|a| a == "selected"))
        })
        .collect()
}

/// `names`, the one equal to `default` selected.
fn expected(names: &[&str], default: &str) -> Vec<(String, bool)> {
    names
        .iter()
        .map(|n| (n.to_string(), *n == default))
        .collect()
}

#[tokio::test]
async fn the_page_offers_exactly_the_contract_s_names() {
    let (page, _) = served_page().await;
    assert_eq!(
        options(&page, "import-policy"),
        expected(&ConflictPolicy::NAMES, ConflictPolicy::default().as_str())
    );
    assert_eq!(
        options(&page, "export-format"),
        expected(&ExportFormat::NAMES, ExportFormat::default().as_str())
    );
    assert_eq!(
        options(&page, "export-csv-dialect"),
        expected(&CsvDialectName::NAMES, CsvDialectName::default().as_str())
    );
    // Only the CSV format sends a dialect (the API refuses `csv` options on
    // an xlsx export), and the page's script asks the option, not the name.
    assert_eq!(
        page.matches("<option value=\"csv\" data-csv-dialect>")
            .count(),
        1
    );
    assert_eq!(page.matches("data-csv-dialect>").count(), 1);
    assert!(!page.contains("<!-- xlport:"), "a marker left unfilled");
}

#[tokio::test]
async fn the_policy_hashes_the_script_and_style_as_served() {
    let (page, csp) = served_page().await;
    let hash = |open: &str, close: &str| {
        let (_, rest) = page.split_once(open).expect("opening tag");
        let (body, _) = rest.split_once(close).expect("closing tag");
        base64::engine::general_purpose::STANDARD.encode(Sha256::digest(body.as_bytes()))
    };
    let script = hash("<script>", "</script>");
    let style = hash("<style>", "</style>");
    assert!(
        csp.contains(&format!("script-src 'sha256-{script}'")),
        "{csp}"
    );
    assert!(
        csp.contains(&format!("style-src 'sha256-{style}'")),
        "{csp}"
    );
}
