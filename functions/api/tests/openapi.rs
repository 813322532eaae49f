//! The OpenAPI document (`docs/openapi.json`) is what [`api::openapi`]
//! generates from the contract's types, and it, the router's route table
//! ([`api::ROUTES`]) and docs/api.md's route table list the same routes.
//! After changing a type or a route, `XLPORT_BLESS=1 cargo test -p api
//! --test openapi` rewrites the file; review its diff like code.

use std::collections::BTreeSet;
use std::path::PathBuf;

fn docs(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs")
        .join(name)
}

/// `(METHOD, /path)` of every operation in the generated document.
fn documented() -> BTreeSet<(String, String)> {
    let doc = serde_json::to_value(api::openapi::document()).expect("the document as JSON");
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("a path item").keys() {
            if [
                "get", "put", "post", "delete", "patch", "head", "options", "trace",
            ]
            .contains(&method.as_str())
            {
                out.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    out
}

#[test]
fn the_checked_in_document_is_the_generated_one() {
    let generated = api::openapi::document_text().expect("the document as JSON");
    let path = docs("openapi.json");
    if std::env::var_os("XLPORT_BLESS").is_some() {
        std::fs::write(&path, &generated).expect("writing docs/openapi.json");
        return;
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "docs/openapi.json is not what the contract and the routes generate; \
         run `XLPORT_BLESS=1 cargo test -p api --test openapi` and review the diff"
    );
    let doc: serde_json::Value = serde_json::from_str(&generated).expect("JSON");
    assert_eq!(doc["openapi"], "3.1.0");
}

#[test]
fn the_document_has_every_route_the_router_serves_and_no_other() {
    let served: BTreeSet<(String, String)> = api::ROUTES
        .iter()
        .map(|r| (r.method.to_string(), r.path.to_string()))
        .collect();
    assert_eq!(served.len(), api::ROUTES.len(), "a route listed twice");
    assert_eq!(documented(), served);
}

#[test]
fn every_documented_route_is_in_the_route_table_of_docs_api_md() {
    let text = std::fs::read_to_string(docs("api.md")).expect("docs/api.md");
    // Rows of the table under "## Routes": | `GET /jobs/{id}` | ... |
    let in_md: BTreeSet<(String, String)> = text
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split_once('`').map(|(route, _)| route))
        .filter_map(|route| route.split_once(' '))
        .map(|(method, path)| (method.to_string(), path.to_string()))
        .collect();
    let missing: Vec<_> = documented().difference(&in_md).cloned().collect();
    assert!(
        missing.is_empty(),
        "routes in docs/openapi.json but not in docs/api.md's route table: {missing:?}"
    );
}
