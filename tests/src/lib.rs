//! Test harness for the end-to-end tests. They run against the real local
//! stack that `scripts/test` starts: LocalStack S3/SQS, Postgres, the
//! functions under `cargo lambda watch` and the local event-source mapping.
//! Nothing is mocked; tests isolate themselves by API key and job id, and
//! in-process tests get a fresh database each.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use aws_lambda_events::event::sqs::SqsEvent;
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::migrate::MigrateDatabase;
use uuid::Uuid;
use xlport_adapters::postgres::{self, PgStore};
use xlport_adapters::{Config, Deps};
use xlport_core::JobState;
use xlport_core::job::{Job, NewJob};
use xlport_core::ports::JobStore;

/// The headers of `user_purchase`'s columns, as the spec and the export
/// spell them.
pub const USER_PURCHASE_HEADERS: [&str; 8] = [
    "CPF",
    "PRIVATE",
    "INCOMPLETO",
    "DATA DA ÚLTIMA COMPRA",
    "TICKET MÉDIO",
    "TICKET DA ÚLTIMA COMPRA",
    "LOJA MAIS FREQUÊNTE",
    "LOJA DA ÚLTIMA COMPRA",
];

/// An export's header: the columns, then the check-digit flags.
pub const USER_PURCHASE_EXPORT_HEADERS: [&str; 11] = [
    "CPF",
    "PRIVATE",
    "INCOMPLETO",
    "DATA DA ÚLTIMA COMPRA",
    "TICKET MÉDIO",
    "TICKET DA ÚLTIMA COMPRA",
    "LOJA MAIS FREQUÊNTE",
    "LOJA DA ÚLTIMA COMPRA",
    "CPF VÁLIDO",
    "LOJA MAIS FREQUÊNTE VÁLIDA",
    "LOJA DA ÚLTIMA COMPRA VÁLIDA",
];

/// The test stack's function environment, as scripts/test wrote it.
pub fn stack_env() -> HashMap<String, String> {
    let file = std::env::var("XLPORT_TEST_ENV_FILE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            let home = std::env::var("XLPORT_HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|_| {
                    let base = std::env::var("XDG_CACHE_HOME")
                        .map(PathBuf::from)
                        .unwrap_or_else(|_| {
                            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache")
                        });
                    base.join("xlport")
                });
            home.join("test.env")
        });
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| {
        panic!(
            "cannot read the test stack's environment {}: {e}. Run the tests with scripts/test, \
             which starts the stack.",
            file.display()
        )
    });
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

pub fn stack_config() -> Config {
    let env = stack_env();
    Config::from_lookup(|k| env.get(k).cloned()).expect("test stack config")
}

/// The shared stack: API behind cargo lambda watch, plus direct clients.
pub struct Stack {
    pub api: String,
    pub http: reqwest::Client,
    pub deps: Deps,
}

impl Stack {
    pub async fn connect() -> Stack {
        let api = std::env::var("XLPORT_TEST_API")
            .unwrap_or_else(|_| "http://127.0.0.1:9100/lambda-url/api".to_string());
        let deps = Deps::from_config(stack_config()).await.expect("deps");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .expect("http client");
        let health = http.get(format!("{api}/health")).send().await;
        match health {
            Ok(r) if r.status().is_success() => {}
            other => {
                panic!("the test stack's API at {api} is not healthy ({other:?}); run scripts/test")
            }
        }
        Stack { api, http, deps }
    }

    /// A new API key of its own, so the test sees only its own jobs.
    pub async fn new_key(&self) -> String {
        self.deps
            .jobs
            .create_api_key("e2e test")
            .await
            .expect("create api key")
            .1
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        // GETs cargo lambda loses (see is_emulator_error) are asked again.
        let get = method == reqwest::Method::GET;
        let attempts = if get { 3 } else { 1 };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let retry = attempt < attempts;
            let mut req = self
                .http
                .request(method.clone(), format!("{}{path}", self.api));
            if let Some(k) = key {
                req = req.bearer_auth(k);
            }
            if let Some(b) = &body {
                req = req.json(b);
            }
            if get {
                req = req.timeout(Duration::from_secs(20));
            }
            let resp = match req.send().await {
                Ok(resp) => resp,
                Err(e) if retry && e.is_timeout() => {
                    eprintln!("GET {path} hung in cargo lambda watch; asking again");
                    continue;
                }
                Err(e) => panic!("API request {path}: {e}"),
            };
            let status = resp.status().as_u16();
            let text = resp.text().await.expect("API body");
            let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
            if retry && is_emulator_error(status, &json) {
                eprintln!("cargo lambda answered GET {path} with its own 500; asking again");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            return (status, json);
        }
    }

    /// Polls GET /jobs/{id} until the job has succeeded or failed, or fails
    /// after `timeout`; the job as it ended.
    pub async fn wait_finished(&self, key: &str, id: &str, timeout: Duration) -> Value {
        self.wait_job(key, id, timeout, |j| {
            matches!(
                job_view(j).map(|j| j.state),
                Some(JobState::Succeeded | JobState::Failed)
            )
        })
        .await
    }

    /// Polls GET /jobs/{id} until `done` holds, or fails after `timeout`.
    pub async fn wait_job(
        &self,
        key: &str,
        id: &str,
        timeout: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let start = Instant::now();
        loop {
            let (status, job) = self
                .call(
                    reqwest::Method::GET,
                    &format!("/jobs/{id}"),
                    Some(key),
                    None,
                )
                .await;
            assert_eq!(status, 200, "GET /jobs/{id}: {job}");
            if done(&job) {
                return job;
            }
            if start.elapsed() > timeout {
                panic!("job {id} did not reach the expected state in {timeout:?}; last: {job:#}");
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

/// `job` (an answer of the API) read into the contract's type, as the CLI
/// reads it; `None` when it is not a job.
pub fn job_view(job: &Value) -> Option<xlport_contract::JobView> {
    xlport_contract::JobView::deserialize(job).ok()
}

/// A 500 that cargo lambda watch made itself (RFC 7807 problem details): now
/// and then its runtime API refuses a function's response ("Lambda Runtime
/// API returned non-200 response" in the function's log) and the client gets
/// this, or nothing at all. The API's own errors are `{"error", "code"}`.
pub fn is_emulator_error(status: u16, body: &Value) -> bool {
    status == 500 && body["type"] == "https://httpstatuses.com/500" && body.get("error").is_none()
}

/// Uploads a file to a presigned URL with plain curl, as a user would.
pub fn curl_upload(url: &str, file: &std::path::Path) -> anyhow::Result<()> {
    curl_put(url, &[], file)
}

/// `curl -T file` to a single-PUT upload plan (`{"url", "headers"}` of
/// POST /imports), sending its signed headers as the API says to
/// (`If-None-Match: *`; curl sets Content-Length from the file itself).
pub fn curl_upload_plan(upload: &Value, file: &std::path::Path) -> anyhow::Result<()> {
    let xlport_contract::Upload::Single(put) =
        xlport_contract::Upload::deserialize(upload).context("upload: not an upload plan")?
    else {
        bail!("upload: not a single PUT: {upload}");
    };
    let headers: Vec<(String, String)> = put
        .headers
        .into_iter()
        .filter(|(k, _)| {
            !k.eq_ignore_ascii_case("content-length") && !k.eq_ignore_ascii_case("host")
        })
        .collect();
    curl_put(&put.url, &headers, file)
}

fn curl_put(url: &str, headers: &[(String, String)], file: &std::path::Path) -> anyhow::Result<()> {
    let mut curl = std::process::Command::new("curl");
    curl.args(["-sS", "--fail-with-body", "-T"])
        .arg(file)
        .arg(url);
    for (k, v) in headers {
        curl.arg("-H").arg(format!("{k}: {v}"));
    }
    let out = curl.output().context("running curl")?;
    if !out.status.success() {
        bail!(
            "curl upload failed: {} {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// A database of its own, migrated, for tests that must own the tables.
pub struct FreshDb {
    pub url: String,
    pub store: PgStore,
}

pub async fn fresh_database() -> FreshDb {
    let base = stack_config().database_url;
    let (server, _) = base.rsplit_once('/').expect("database url has a name");
    let url = format!("{server}/xlport_t_{}", Uuid::new_v4().simple());
    sqlx::Postgres::create_database(&url)
        .await
        .expect("create test database");
    let mut config = stack_config();
    config.database_url = url.clone();
    let pool = postgres::connect(&config).await.expect("connect");
    postgres::migrate(&pool).await.expect("migrate");
    FreshDb {
        url,
        store: PgStore::new(pool),
    }
}

/// Deps for an in-process function run: the test stack's S3 and SQS with a
/// fresh database.
pub async fn deps_with_fresh_db() -> (Deps, FreshDb) {
    let db = fresh_database().await;
    let mut config = stack_config();
    config.database_url = db.url.clone();
    let deps = Deps::from_config(config).await.expect("deps");
    (deps, db)
}

/// Deps like [`deps_with_fresh_db`]'s, on a pool of one connection: whatever a
/// test does to a connection, the next query gets the same one.
pub async fn deps_with_one_connection() -> (Deps, FreshDb) {
    let (mut deps, db) = deps_with_fresh_db().await;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(60))
        .connect(&db.url)
        .await
        .expect("a pool of one");
    deps.jobs = PgStore::new(pool);
    (deps, db)
}

/// A `COPY … TO STDOUT` that Postgres refuses at its start (year 0 is no
/// date it can hold): the failure that once left connections out of step.
pub async fn fail_a_copy(pool: &sqlx::PgPool) {
    let (tx, _rx) = tokio::sync::mpsc::channel(1);
    let copy = xlport_adapters::pgcopy::CopyConnection::acquire(pool)
        .await
        .expect("connection")
        .copy_out("copy (select date '0000-01-01') to stdout", 1024, &tx)
        .await;
    assert!(copy.is_err(), "the COPY should fail");
}

/// A new import job into `dataset`, awaiting the upload of `filename` of
/// `size` bytes: its id and the object key it waits for.
pub async fn new_import_job(
    deps: &Deps,
    dataset: &str,
    filename: &str,
    size: usize,
    options: Value,
) -> (Uuid, String) {
    let (owner, _) = deps.jobs.create_api_key("import test").await.unwrap();
    let id = Uuid::new_v4();
    let new = NewJob::import(
        id,
        owner,
        dataset,
        filename,
        Some(size as i64),
        options,
        None,
    );
    let key = new.object_key.clone().unwrap_or_default();
    deps.jobs.create_job(new).await.unwrap();
    (id, key)
}

/// A new queued export of `dataset` in `format` with `filter`.
pub async fn new_export_job_of(deps: &Deps, dataset: &str, format: &str, filter: Value) -> Uuid {
    let (owner, _) = deps.jobs.create_api_key("export test").await.unwrap();
    let id = Uuid::new_v4();
    deps.jobs
        .create_job(NewJob::export(
            id,
            owner,
            dataset,
            format,
            Some(format!("test-export.{format}")),
            json!({ "filter": filter }),
        ))
        .await
        .unwrap();
    id
}

/// The SQS event that asks the export worker for `job`.
pub fn export_message(job: Uuid) -> SqsEvent {
    serde_json::from_value(json!({"Records": [{
        "messageId": Uuid::new_v4().to_string(),
        "body": json!({"job_id": job}).to_string(),
        "eventSource": "aws:sqs",
    }]}))
    .unwrap()
}

/// The event a mapping would hand a function for `message`, received from
/// the queue called `queue` (its receipt handle included, so a worker can
/// change its visibility).
pub fn event_of(message: &aws_sdk_sqs::types::Message, queue: &str) -> SqsEvent {
    serde_json::from_value(json!({"Records": [{
        "messageId": message.message_id(),
        "receiptHandle": message.receipt_handle(),
        "body": message.body(),
        "attributes": {"ApproximateReceiveCount": "1"},
        "eventSource": "aws:sqs",
        "eventSourceARN": format!("arn:aws:sqs:us-east-1:000000000000:{queue}"),
    }]}))
    .unwrap()
}

/// An import of `bytes` into `user_purchase` (see [`import_bytes_into`]).
pub async fn import_bytes(deps: &Deps, bytes: &[u8], filename: &str, options: Value) -> Job {
    import_bytes_into(deps, "user_purchase", bytes, filename, options).await
}

/// `deps` with a queue of their own (created in LocalStack, visibility
/// timeout `visibility_secs`) in place of the imports or exports queue:
/// what a test receives from there, no worker of the stack takes.
/// Returns the queue's name and URL.
pub async fn with_private_queue(
    deps: &mut Deps,
    exports: bool,
    visibility_secs: u32,
) -> (String, String) {
    use aws_sdk_sqs::types::QueueAttributeName;
    let name = format!("xlport-test-private-{}", random_u32());
    let url = deps
        .queue
        .client
        .create_queue()
        .queue_name(&name)
        .attributes(
            QueueAttributeName::VisibilityTimeout,
            visibility_secs.to_string(),
        )
        .send()
        .await
        .expect("create queue")
        .queue_url()
        .expect("queue url")
        .to_string();
    let mut config = (*deps.config).clone();
    if exports {
        config.exports_queue_url = url.clone();
    } else {
        config.imports_queue_url = url.clone();
    }
    // The queue finds a record's queue URL among the configured ones.
    deps.queue = xlport_adapters::sqs::SqsQueue::new(
        deps.queue.client.clone(),
        vec![
            config.imports_queue_url.clone(),
            config.exports_queue_url.clone(),
        ],
    );
    deps.config = std::sync::Arc::new(config);
    (name, url)
}

/// Every row of `table` reduced to (rows, md5 of [`snapshot`]'s text): what
/// a round trip of a big table must leave unchanged, without holding it.
pub async fn table_checksum(deps: &Deps, table: &str, key: &str) -> (i64, String) {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select count(*), coalesce(md5(string_agg((to_jsonb(t) - 'last_job_id' - 'updated_at')::text, \
                '|' order by {key})), '') \
         from {table} t"
    )))
    .fetch_one(&deps.jobs.pool)
    .await
    .expect("checksum")
}

pub fn md5_hex(bytes: &[u8]) -> String {
    // S3's ETag of a single-part upload; computed by the system tool to keep
    // the test free of a hashing dependency of its own.
    let mut child = std::process::Command::new("md5sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("md5sum");
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(bytes)
        .expect("write");
    let out = child.wait_with_output().expect("md5sum output");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// An object's bytes, straight from the bucket.
pub async fn download(deps: &Deps, key: &str) -> Vec<u8> {
    let obj = deps
        .objects
        .client
        .get_object()
        .bucket(&deps.config.bucket)
        .key(key)
        .send()
        .await
        .expect("get object");
    obj.body
        .collect()
        .await
        .expect("object body")
        .into_bytes()
        .to_vec()
}

/// A random number, for keys and seeds no other test run uses.
pub fn random_u32() -> u32 {
    Uuid::new_v4().as_u128() as u32
}

/// A `;`-separated CSV in the original columns, `rows` long: every 7th row
/// repeats an earlier CPF and every 11th has a malformed one.
pub fn big_csv(rows: u64) -> String {
    let mut text = String::from(
        "CPF;PRIVATE;INCOMPLETO;DATA DA ÚLTIMA COMPRA;TICKET MÉDIO;TICKET DA ÚLTIMA COMPRA;LOJA MAIS FREQUÊNTE;LOJA DA ÚLTIMA COMPRA\n",
    );
    for i in 0..rows {
        let n = if i % 7 == 6 { i - 3 } else { i };
        let cpf = if i % 11 == 10 {
            "12.3".to_string()
        } else {
            format!("{:011}", 10_000_000_000u64 + n)
        };
        text.push_str(&format!(
            "{cpf};0;1;2020-01-{:02};{},50;;;\n",
            1 + i % 28,
            i
        ));
    }
    text
}

/// Puts `bytes` in the bucket as an import of a new job into `dataset`, and
/// delivers the S3 event to the import function in-process, as the mapping
/// would. Returns the job as it ended.
pub async fn import_bytes_into(
    deps: &Deps,
    dataset: &str,
    bytes: &[u8],
    filename: &str,
    options: Value,
) -> Job {
    let (id, key) = new_import_job(deps, dataset, filename, bytes.len(), options).await;
    let etag = put_object(deps, &key, bytes).await;
    deliver(deps, &key, bytes.len(), &etag).await;
    deps.jobs.job(id).await.unwrap().unwrap()
}

/// Puts `bytes` at `key` in the test bucket (as any S3 client would, not
/// through a presigned URL); returns the ETag without quotes.
pub async fn put_object(deps: &Deps, key: &str, bytes: &[u8]) -> String {
    let put = deps
        .objects
        .client
        .put_object()
        .bucket(&deps.config.bucket)
        .key(key)
        .body(bytes.to_vec().into())
        .send()
        .await
        .expect("put object");
    put.e_tag().expect("an ETag").trim_matches('"').to_string()
}

/// An S3 `ObjectCreated:Put` notification inside an SQS message, as the
/// local event-source mapping hands it to the import function.
pub fn s3_event(bucket: &str, key: &str, size: usize, etag: &str) -> SqsEvent {
    let body = json!({"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": bucket}, "object": {"key": key, "size": size, "eTag": etag}}}]});
    serde_json::from_value(json!({"Records": [{"messageId": Uuid::new_v4().to_string(), "body": body.to_string(), "eventSource": "aws:sqs"}]})).unwrap()
}

/// Delivers the event of an uploaded object to the import function
/// in-process; returns how many messages it failed.
pub async fn deliver(deps: &Deps, key: &str, size: usize, etag: &str) -> usize {
    let r = import_worker::handle_batch(deps, s3_event(&deps.config.bucket, key, size, etag)).await;
    r.batch_item_failures.len()
}

/// Every row of `table`, each as its JSON text without the bookkeeping
/// columns (`last_job_id`, `updated_at`), in key order: what an import must
/// leave unchanged.
pub async fn snapshot(deps: &Deps, table: &str, key: &str) -> Vec<String> {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "select (to_jsonb(t) - 'last_job_id' - 'updated_at')::text from {table} t order by {key}"
    )))
    .fetch_all(&deps.jobs.pool)
    .await
    .unwrap()
}

// ---------------------------------------------------------------------------
// Other spreadsheet programs

/// The python of the venv `scripts/test` installs openpyxl into.
fn readers_python() -> String {
    std::env::var("XLPORT_READERS_PYTHON").expect(
        "XLPORT_READERS_PYTHON is not set: run the tests through scripts/test, which installs openpyxl",
    )
}

/// Runs the reader script `tests/readers/SCRIPT` with `args` on `xlsx`
/// (written to a temp file); its JSON output.
fn openpyxl(script: &str, xlsx: &[u8], args: &[&str]) -> Value {
    let file = std::env::temp_dir().join(format!("xlport-openpyxl-{}.xlsx", Uuid::new_v4()));
    std::fs::write(&file, xlsx).unwrap();
    let out = std::process::Command::new(readers_python())
        .arg(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("readers")
                .join(script),
        )
        .args(args)
        .arg(&file)
        .output()
        .unwrap();
    std::fs::remove_file(&file).ok();
    assert!(
        out.status.success(),
        "openpyxl could not read the workbook: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Every sheet of the workbook as openpyxl reads it, typed
/// (`tests/readers/openpyxl_cells.py`): `{"sheets": [[name, rows]]}`, a cell
/// `null`, `{"s"}`, `{"n"}`, `{"b"}` or `{"serial"}` (a date or time).
pub fn openpyxl_typed(xlsx: &[u8]) -> Value {
    openpyxl("openpyxl_cells.py", xlsx, &[])
}

/// The workbook as openpyxl reads it: sheet names, the first sheet's frozen
/// panes, number formats and rows (see `tests/readers/openpyxl_rows.py`).
pub fn openpyxl_rows(xlsx: &[u8]) -> Value {
    openpyxl("openpyxl_rows.py", xlsx, &[])
}

/// Every sheet of the workbook as openpyxl reads it (read-only, formulas as
/// their cached values): `(name, rows)`, each cell as text (empty for
/// nothing, true/false, numbers with two decimals, dates as YYYY-MM-DD),
/// without trailing empty cells.
pub fn openpyxl_sheets(xlsx: &[u8]) -> Vec<(String, Vec<Vec<String>>)> {
    let out = openpyxl("openpyxl_rows.py", xlsx, &["--all-sheets"]);
    serde_json::from_value(out["sheets"].clone()).expect("sheets as [name, rows]")
}

/// LibreOffice (`soffice --headless`, Debian's libreoffice-calc-nogui, which
/// `scripts/test` installs) opens `xlsx` and saves it again as xlsx: its bytes.
/// See [`libreoffice_convert`].
pub fn libreoffice_resave(xlsx: &[u8], timeout: Duration) -> Vec<u8> {
    libreoffice_convert(xlsx, "workbook.xlsx", None, "xlsx", timeout)
}

/// LibreOffice opens `bytes` as the file `name` (with the import filter
/// `infilter` when given, e.g. `CSV:59,34,76,1,,1046,false,true` for a `;`
/// UTF-8 CSV read in pt-BR) and saves it as `to` (`xlsx`, `ods`, `xls:MS Excel 97`,
/// as `soffice --convert-to` takes it): its bytes. Each run gets a
/// profile of its own (so runs do not share a lock) and at most `timeout`.
/// Panics with soffice's output when it could not load the file: soffice
/// exits 0 then too, so the output file is what tells.
pub fn libreoffice_convert(
    bytes: &[u8],
    name: &str,
    infilter: Option<&str>,
    to: &str,
    timeout: Duration,
) -> Vec<u8> {
    let extension = to.split(':').next().unwrap_or(to);
    let dir = std::env::temp_dir().join(format!("xlport-soffice-{}", Uuid::new_v4()));
    let (input, out_dir, profile) = (dir.join("in"), dir.join("out"), dir.join("profile"));
    std::fs::create_dir_all(&input).unwrap();
    let file = input.join(name);
    std::fs::write(&file, bytes).unwrap();
    let stem = Path::new(name)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("workbook")
        .to_owned();
    let started = Instant::now();
    let mut command = std::process::Command::new("timeout");
    command
        .args(["--kill-after=10", &format!("{}", timeout.as_secs().max(1))])
        .arg("soffice")
        .arg(format!(
            "-env:UserInstallation=file://{}",
            profile.display()
        ))
        .args(["--headless", "--norestore"]);
    if let Some(filter) = infilter {
        command.arg(format!("--infilter={filter}"));
    }
    let out = command
        .args(["--convert-to", to, "--outdir"])
        .arg(&out_dir)
        .arg(&file)
        .output()
        .expect("soffice (Debian's libreoffice-calc-nogui; scripts/test installs it)");
    let converted = std::fs::read(out_dir.join(format!("{stem}.{extension}")));
    std::fs::remove_dir_all(&dir).ok();
    match converted {
        Ok(xlsx) if out.status.success() => {
            eprintln!(
                "LibreOffice saved {} bytes of {name} as {} bytes of {extension} in {:.1?}",
                bytes.len(),
                xlsx.len(),
                started.elapsed()
            );
            xlsx
        }
        _ => panic!(
            "LibreOffice could not open {name} (exit {:?} after {:.1?}): {} {}",
            out.status.code(),
            started.elapsed(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}
