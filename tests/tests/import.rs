//! Imports against the real stack: files in S3 (LocalStack), the import
//! function on real S3 events, Postgres tables read back. In-process tests
//! get a fresh database each; the end-to-end ones go through the API, curl,
//! S3 notifications, SQS and the mapping.

use std::time::Duration;

use reqwest::Method;
use rust_xlsxwriter::{ExcelDateTime, Format, Workbook};
use serde_json::{Value, json};
use uuid::Uuid;
use xlport_adapters::Deps;
use xlport_adapters::pgcopy::CopyConnection;
use xlport_core::job::{Job, NewJob, UploadOutcome, keys};
use xlport_core::ports::{JobStore, ObjectStore};
use xlport_core::{JobKind, JobState};
use xlport_tests::{
    Stack, big_csv, curl_upload, deliver, deps_with_fresh_db, download, import_bytes,
    libreoffice_resave, openpyxl_sheets, put_object, snapshot,
};

const SPEC_TXT: &str = "CPF                PRIVATE     INCOMPLETO  DATA DA ÚLTIMA COMPRA TICKET MÉDIO          TICKET DA ÚLTIMA COMPRA LOJA MAIS FREQUÊNTE     LOJA DA ÚLTIMA COMPRA\n\
990.999.999-66     0           0           2013-05-22            399,00                399,00                  79.379.491/0008-50      79.379.491/0008-50\n\
041.091.641-25     0           0           NULL                  NULL                  NULL                    NULL                    NULL\n";

fn upsert() -> Value {
    json!({"conflict_policy": "upsert", "dry_run": false})
}

async fn table(
    deps: &Deps,
) -> Vec<(
    String,
    bool,
    bool,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    bool,
    Option<bool>,
)> {
    sqlx::query_as(
        "select cpf, private, incompleto, data_ultima_compra::text, ticket_medio::text, ticket_ultima_compra::text, \
         loja_mais_frequente, cpf_valido, loja_mais_frequente_valida from user_purchase order by cpf",
    )
    .fetch_all(&deps.jobs.pool)
    .await
    .unwrap()
}

fn count(job: &Job, name: &str) -> u64 {
    job.counts[name].as_u64().unwrap_or(0)
}

#[tokio::test]
async fn the_original_text_format_loads_as_the_spec_says() {
    let (deps, _db) = deps_with_fresh_db().await;
    let job = import_bytes(&deps, SPEC_TXT.as_bytes(), "base.txt", upsert()).await;
    assert_eq!(job.state, JobState::Succeeded, "{:?}", job.error);
    assert_eq!(count(&job, "rows_read"), 2);
    assert_eq!(count(&job, "inserted"), 2);
    assert_eq!(count(&job, "rejected"), 0);
    assert_eq!(
        count(&job, "invalid_cpf"),
        1,
        "990.999.999-66 has wrong check digits"
    );
    let rows = table(&deps).await;
    assert_eq!(rows.len(), 2);
    let r = &rows[1];
    assert_eq!(r.0, "99099999966");
    assert_eq!(r.3.as_deref(), Some("2013-05-22"));
    assert_eq!(r.4.as_deref(), Some("399.00"));
    assert_eq!(r.6.as_deref(), Some("79379491000850"));
    assert!(!r.7, "cpf_valido false, row kept");
    assert_eq!(r.8, Some(true));
    assert_eq!(rows[0].0, "04109164125");
    assert!(rows[0].7);
    assert_eq!(rows[0].3, None);
    assert_eq!(rows[0].8, None, "validity NULL when the CNPJ is NULL");
}

/// Issue #20: an import right after a failed COPY, on the same single
/// connection, loads every row.
#[tokio::test]
async fn an_import_right_after_a_failed_copy_succeeds() {
    let (deps, _db) = xlport_tests::deps_with_one_connection().await;
    xlport_tests::fail_a_copy(&deps.jobs.pool).await;
    let job = import_bytes(&deps, SPEC_TXT.as_bytes(), "base.txt", upsert()).await;
    assert_eq!(job.state, JobState::Succeeded, "{:?}", job.error);
    assert_eq!(count(&job, "rows_read"), 2);
    assert_eq!(count(&job, "inserted"), 2);
    xlport_tests::fail_a_copy(&deps.jobs.pool).await;
    let n: i64 = sqlx::query_scalar("select count(*) from user_purchase")
        .fetch_one(&deps.jobs.pool)
        .await
        .unwrap();
    assert_eq!(n, 2);
}

#[tokio::test]
async fn csv_with_semicolons_in_windows_1252() {
    let (deps, _db) = deps_with_fresh_db().await;
    let text = "CPF;PRIVATE;INCOMPLETO;DATA DA ÚLTIMA COMPRA;TICKET MÉDIO;TICKET DA ÚLTIMA COMPRA;LOJA MAIS FREQUÊNTE;LOJA DA ÚLTIMA COMPRA\r\n\
041.091.641-25;1;0;22/05/2013;1.234,56;12,5;79.379.491/0008-50;12.ABC.345/01DE-35\r\n\
111.444.777-35;true;FALSE;2013-02-30;1;2;;\r\n\
529.982.247-25;0;0;;;;;\r\n";
    let (bytes, _, _) = encoding_rs::WINDOWS_1252.encode(text);
    let job = import_bytes(&deps, &bytes, "compras.csv", upsert()).await;
    assert_eq!(job.state, JobState::Succeeded, "{:?}", job.error);
    assert_eq!(count(&job, "rows_read"), 3);
    assert_eq!(count(&job, "inserted"), 2);
    assert_eq!(job.counts["rejected_by_reason"]["invalid_date"], 1);
    let rows = table(&deps).await;
    assert_eq!(rows[0].0, "04109164125");
    assert_eq!(rows[0].4.as_deref(), Some("1234.56"));
    assert_eq!(rows[0].5.as_deref(), Some("12.50"));
    assert_eq!(rows[0].3.as_deref(), Some("2013-05-22"));
    // The error report names the row and the reason.
    let report = download(&deps, &keys::error_report(job.id)).await;
    let cells = first_report_row(report);
    assert_eq!(cells["xlport row"], "3");
    assert_eq!(cells["xlport reason"], "invalid_date");
    assert!(cells["xlport detail"].contains("2013-02-30"), "{cells:?}");
}

#[tokio::test]
async fn csv_with_commas_and_a_utf8_bom_and_quotes() {
    let (deps, _db) = deps_with_fresh_db().await;
    let text = "\u{feff}cpf,private,incompleto,\"data da ultima compra\",ticket medio,ticket da ultima compra,loja mais frequente,loja da ultima compra,NOTES\n\
\"041.091.641-25\",0,1,2020-01-31,\"1.234,00\",10.5,,,\"a note, with a comma\nand a newline\"\n\
529.982.247-25,0,1,2020-01-31,5,5,,,,an extra field\n\
111.444.777-35,0,1\n";
    let job = import_bytes(&deps, text.as_bytes(), "x.csv", upsert()).await;
    assert_eq!(job.state, JobState::Succeeded, "{:?}", job.error);
    // The short last row misses only fields that may be empty: read padded.
    assert_eq!(count(&job, "inserted"), 2);
    assert_eq!(job.counts["rejected_by_reason"]["wrong_column_count"], 1);
    let warnings = job.warnings.to_string();
    assert!(
        warnings.contains("NOTES"),
        "unknown column reported: {warnings}"
    );
    let cells = first_report_row(download(&deps, &keys::error_report(job.id)).await);
    assert_eq!(
        cells["xlport row"], "4",
        "the physical line where the record starts"
    );
}

fn xlsx_fixture(rows: &[(Option<f64>, &str)]) -> Vec<u8> {
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    let headers = [
        "CPF",
        "PRIVATE",
        "INCOMPLETO",
        "DATA DA ÚLTIMA COMPRA",
        "TICKET MÉDIO",
        "TICKET DA ÚLTIMA COMPRA",
        "LOJA MAIS FREQUENTE",
        "LOJA DA ÚLTIMA COMPRA",
    ];
    for (c, h) in headers.iter().enumerate() {
        sheet.write_string(0, c as u16, *h).unwrap();
    }
    let date = Format::new().set_num_format("dd/mm/yyyy");
    for (i, (num_cpf, text_cpf)) in rows.iter().enumerate() {
        let r = i as u32 + 1;
        match num_cpf {
            Some(n) => sheet.write_number(r, 0, *n).unwrap(),
            None => sheet.write_string(r, 0, *text_cpf).unwrap(),
        };
        sheet.write_number(r, 1, 0).unwrap();
        sheet.write_boolean(r, 2, true).unwrap();
        sheet
            .write_datetime_with_format(r, 3, ExcelDateTime::from_ymd(2021, 3, 4).unwrap(), &date)
            .unwrap();
        sheet.write_number(r, 4, 705.69).unwrap();
        sheet.write_string(r, 5, "1.234,56").unwrap();
        sheet.write_number(r, 6, 79379491000850.0).unwrap();
    }
    book.save_to_buffer().unwrap()
}

#[tokio::test]
async fn xlsx_with_numeric_cpfs_dates_and_decimals() {
    let (deps, _db) = deps_with_fresh_db().await;
    let bytes = xlsx_fixture(&[
        (Some(4109164125.0), ""),
        (None, "529.982.247-25"),
        (None, "=1+1"),
    ]);
    let job = import_bytes(&deps, &bytes, "planilha.xlsx", upsert()).await;
    assert_eq!(job.state, JobState::Succeeded, "{:?}", job.error);
    assert_eq!(count(&job, "inserted"), 2);
    assert_eq!(job.counts["rejected_by_reason"]["malformed_cpf"], 1);
    let rows = table(&deps).await;
    assert_eq!(rows[0].0, "04109164125", "numeric CPF padded to 11 digits");
    assert_eq!(rows[0].3.as_deref(), Some("2021-03-04"));
    assert_eq!(rows[0].4.as_deref(), Some("705.69"));
    assert_eq!(rows[0].5.as_deref(), Some("1234.56"));
    // The report holds the text `=1+1` as text, never as a formula.
    let cells = first_report_row(download(&deps, &keys::error_report(job.id)).await);
    assert_eq!(cells["CPF"], "=1+1");
}

#[tokio::test]
async fn an_xlsx_written_by_openpyxl_imports() {
    let (deps, _db) = deps_with_fresh_db().await;
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/openpyxl_user_purchase.xlsx"
    );
    let bytes = std::fs::read(path).unwrap();
    let job = import_bytes(&deps, &bytes, "openpyxl.xlsx", upsert()).await;
    assert_eq!(job.state, JobState::Succeeded, "{:?}", job.error);
    assert!(count(&job, "inserted") > 0, "{}", job.counts);
    assert_eq!(
        count(&job, "rows_read"),
        count(&job, "inserted") + count(&job, "updated") + count(&job, "rejected")
    );
}

fn dup_csv() -> String {
    "CPF;PRIVATE;INCOMPLETO;DATA DA ÚLTIMA COMPRA;TICKET MÉDIO;TICKET DA ÚLTIMA COMPRA;LOJA MAIS FREQUÊNTE;LOJA DA ÚLTIMA COMPRA\n\
041.091.641-25;0;0;;1;;;\n\
529.982.247-25;0;0;;2;;;\n\
041.091.641-25;0;0;;3;;;\n\
111.444.777-35;0;0;;4;;;\n"
        .to_string()
}

async fn seed_existing(deps: &Deps) {
    sqlx::query(
        "insert into user_purchase (cpf, private, incompleto, ticket_medio, cpf_valido) values ('11144477735', true, true, 99, true)",
    )
    .execute(&deps.jobs.pool)
    .await
    .unwrap();
}

async fn tickets(deps: &Deps) -> Vec<(String, String)> {
    sqlx::query_as("select cpf, ticket_medio::text from user_purchase order by cpf")
        .fetch_all(&deps.jobs.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn upsert_last_occurrence_wins_and_existing_rows_are_updated() {
    let (deps, _db) = deps_with_fresh_db().await;
    seed_existing(&deps).await;
    let job = import_bytes(&deps, dup_csv().as_bytes(), "d.csv", upsert()).await;
    assert_eq!((count(&job, "inserted"), count(&job, "updated")), (2, 2));
    assert_eq!(
        tickets(&deps).await,
        [
            ("04109164125".into(), "3.00".into()),
            ("11144477735".into(), "4.00".into()),
            ("52998224725".into(), "2.00".into())
        ]
    );
}

/// A key inserted by another transaction while a part loads: the part's plain
/// COPY waits for it, meets it, and the part falls back to the merge, with
/// the counts and table of a merge.
#[tokio::test]
async fn a_key_inserted_concurrently_falls_back_to_the_merge() {
    use xlport_core::cells::Cell;
    use xlport_core::import::{ConflictPolicy, PartBuilder};
    let (deps, _db) = deps_with_fresh_db().await;
    let dataset = xlport_core::Datasets::builtin()
        .unwrap()
        .get("user_purchase")
        .cloned()
        .unwrap();
    let mut builder = PartBuilder::new(&dataset, 100, ConflictPolicy::Upsert, 0, 0);
    for (i, cpf) in ["041.091.641-25", "529.982.247-25", "111.444.777-35"]
        .into_iter()
        .enumerate()
    {
        let cells = [
            Cell::Text(cpf),
            Cell::Text("0"),
            Cell::Text("0"),
            Cell::Empty,
            Cell::Text("7"),
            Cell::Empty,
            Cell::Empty,
            Cell::Empty,
        ];
        let row = xlport_core::decode::Row {
            number: i as u64 + 2,
            sheet: None,
            cells: &cells,
            original: &cells,
            record: None,
            cell_fields: &[0, 1, 2, 3, 4, 5, 6, 7],
            field_count_error: None,
        };
        assert!(builder.push(&row).is_none());
    }
    let part = builder.finish().unwrap();
    assert_eq!(part.valid_rows, 3);

    let mut other = deps.jobs.pool.begin().await.unwrap();
    sqlx::query(
        "insert into user_purchase (cpf, private, incompleto, ticket_medio, cpf_valido) \
         values ('52998224725', true, true, 99, true)",
    )
    .execute(&mut *other)
    .await
    .unwrap();
    let loader = {
        let (pool, dataset) = (deps.jobs.pool.clone(), dataset.clone());
        tokio::spawn(async move {
            let mut conn = CopyConnection::acquire(&pool).await.unwrap();
            let mut tx = conn.begin().await.unwrap();
            let (counts, _) = xlport_adapters::imports::merge_part(
                &mut tx,
                &dataset,
                Uuid::new_v4(),
                ConflictPolicy::Upsert,
                &part,
                &mut xlport_adapters::imports::DirectCopy::default(),
            )
            .await
            .unwrap();
            tx.commit().await.unwrap();
            conn.release().await;
            counts
        })
    };
    // The loader does not see the uncommitted key, so its COPY waits on it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    other.commit().await.unwrap();
    let counts = loader.await.unwrap();
    assert_eq!((counts.inserted, counts.updated), (2, 1), "{counts:?}");
    assert_eq!(
        tickets(&deps).await,
        [
            ("04109164125".into(), "7.00".into()),
            ("11144477735".into(), "7.00".into()),
            ("52998224725".into(), "7.00".into())
        ]
    );
}

#[tokio::test]
async fn skip_keeps_existing_rows_and_first_occurrences() {
    let (deps, _db) = deps_with_fresh_db().await;
    seed_existing(&deps).await;
    let job = import_bytes(
        &deps,
        dup_csv().as_bytes(),
        "d.csv",
        json!({"conflict_policy": "skip"}),
    )
    .await;
    assert_eq!((count(&job, "inserted"), count(&job, "skipped")), (2, 2));
    assert_eq!(
        tickets(&deps).await,
        [
            ("04109164125".into(), "1.00".into()),
            ("11144477735".into(), "99.00".into()),
            ("52998224725".into(), "2.00".into())
        ]
    );
}

#[tokio::test]
async fn reject_rejects_later_duplicates_and_existing_keys() {
    let (deps, _db) = deps_with_fresh_db().await;
    seed_existing(&deps).await;
    let job = import_bytes(
        &deps,
        dup_csv().as_bytes(),
        "d.csv",
        json!({"conflict_policy": "reject"}),
    )
    .await;
    assert_eq!(count(&job, "inserted"), 2);
    assert_eq!(job.counts["rejected_by_reason"]["duplicate_key"], 2);
    assert_eq!(
        tickets(&deps).await[1],
        ("11144477735".into(), "99.00".into())
    );
    let report = download(&deps, &keys::error_report(job.id)).await;
    let rows = report_rows(report);
    assert_eq!(
        rows.iter()
            .map(|r| r["xlport row"].clone())
            .collect::<Vec<_>>(),
        ["4", "5"]
    );
}

#[tokio::test]
async fn a_dry_run_counts_the_same_and_writes_nothing() {
    let (deps, _db) = deps_with_fresh_db().await;
    seed_existing(&deps).await;
    let job = import_bytes(
        &deps,
        dup_csv().as_bytes(),
        "d.csv",
        json!({"conflict_policy": "upsert", "dry_run": true}),
    )
    .await;
    assert_eq!(job.state, JobState::Succeeded, "{:?}", job.error);
    assert_eq!((count(&job, "inserted"), count(&job, "updated")), (2, 2));
    assert_eq!(
        tickets(&deps).await,
        [("11144477735".into(), "99.00".into())]
    );
}

#[tokio::test]
async fn the_same_event_twice_loads_once() {
    let (deps, _db) = deps_with_fresh_db().await;
    let job = import_bytes(&deps, SPEC_TXT.as_bytes(), "base.txt", upsert()).await;
    let key = job.object_key.clone().unwrap();
    let failures = deliver(&deps, &key, SPEC_TXT.len(), job.etag.as_deref().unwrap()).await;
    assert_eq!(
        failures, 0,
        "a duplicate event of a finished import is dropped"
    );
    let again = deps.jobs.job(job.id).await.unwrap().unwrap();
    assert_eq!(again.attempts, 1);
    assert_eq!(again.counts, job.counts);
    assert_eq!(table(&deps).await.len(), 2);
}

/// A worker killed mid-file: the redelivered event resumes after the last
/// committed part, and the table and counts are those of one clean run.
#[tokio::test]
async fn a_worker_killed_mid_file_resumes_after_the_last_committed_part() {
    let text = big_csv(30_000);
    let (clean_deps, _clean_db) = deps_with_fresh_db().await;
    let mut cfg = (*clean_deps.config).clone();
    cfg.import_part_rows = 1_000;
    let clean_deps = Deps {
        config: std::sync::Arc::new(cfg.clone()),
        ..clean_deps
    };
    let clean = import_bytes(&clean_deps, text.as_bytes(), "big.csv", upsert()).await;
    assert_eq!(clean.state, JobState::Succeeded, "{:?}", clean.error);

    let (deps, _db) = deps_with_fresh_db().await;
    let deps = Deps {
        config: std::sync::Arc::new(Config {
            database_url: deps.config.database_url.clone(),
            ..cfg
        }),
        ..deps
    };
    let (owner, _) = deps.jobs.create_api_key("kill test").await.unwrap();
    let id = Uuid::new_v4();
    let key = keys::import(id, "big.csv");
    deps.jobs
        .create_job(NewJob {
            id,
            owner,
            kind: JobKind::Import,
            dataset: "user_purchase".into(),
            state: JobState::AwaitingUpload,
            format: None,
            options: upsert(),
            filename: Some("big.csv".into()),
            object_key: Some(key.clone()),
            declared_size: Some(text.len() as i64),
            upload_id: None,
        })
        .await
        .unwrap();
    let etag = put_object(&deps, &key, text.as_bytes()).await;

    // Kill the worker once a few parts are committed. It runs with its own
    // connection pool, as a separate process would, so its dropped
    // connections die with it.
    let doomed = Deps::from_config((*deps.config).clone()).await.unwrap();
    let running = {
        let (doomed, key, etag, size) = (doomed.clone(), key.clone(), etag.clone(), text.len());
        tokio::spawn(async move { deliver(&doomed, &key, size, &etag).await })
    };
    loop {
        let job = deps.jobs.job(id).await.unwrap().unwrap();
        if job.parts_done >= 3 {
            break;
        }
        assert!(
            !job.state.is_terminal(),
            "finished before it could be killed: {:?}",
            job.counts
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    running.abort();
    let _ = running.await;
    doomed.jobs.pool.close().await;
    let killed = deps.jobs.job(id).await.unwrap().unwrap();
    assert_eq!(killed.state, JobState::Running);
    assert!(
        killed.parts_done >= 3 && killed.parts_done < 30,
        "{}",
        killed.parts_done
    );
    // Time passes: the dead worker's lease runs out.
    sqlx::query("update jobs set lease_until = now() - interval '1 second' where id = $1")
        .bind(id)
        .execute(&deps.jobs.pool)
        .await
        .unwrap();
    assert!(matches!(
        deps.jobs
            .record_upload(id, &key, text.len() as i64, &etag)
            .await
            .unwrap(),
        UploadOutcome::AlreadyRecorded(_)
    ));
    assert_eq!(deliver(&deps, &key, text.len(), &etag).await, 0);
    let resumed = deps.jobs.job(id).await.unwrap().unwrap();
    assert_eq!(resumed.state, JobState::Succeeded, "{:?}", resumed.error);
    assert_eq!(resumed.attempts, 2);
    let mut a = resumed.counts.clone();
    let mut b = clean.counts.clone();
    for c in [&mut a, &mut b] {
        let c = c.as_object_mut().unwrap();
        c.remove("duration_ms");
        c.remove("error_report_key");
    }
    assert_eq!(a, b, "counts of the resumed run equal a clean run's");
    assert_eq!(table(&deps).await, table(&clean_deps).await);
    let parts = deps.jobs.job_parts(id).await.unwrap();
    assert_eq!(parts.len(), 30);
    assert_eq!(
        parts.iter().map(|p| p.rows_read as u64).sum::<u64>(),
        30_000
    );
    // Every rejected row is in the report once.
    let report = report_rows(download(&deps, &keys::error_report(id)).await);
    assert_eq!(
        report.len() as u64,
        resumed.counts["rejected"].as_u64().unwrap()
    );
}

use xlport_adapters::Config;

#[tokio::test]
async fn files_that_cannot_be_imported_fail_with_a_reason_and_write_nothing() {
    let (deps, _db) = deps_with_fresh_db().await;
    let cases: [(&[u8], &str, &str); 3] = [
        (
            b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n",
            "a.pdf",
            "not a spreadsheet",
        ),
        (b"CPF;PRIVATE;TICKET MEDIO\n1;2;3\n", "a.csv", "INCOMPLETO"),
        (
            &xlsx_fixture(&[(Some(1.0), "")])[..300],
            "cut.xlsx",
            "truncated",
        ),
    ];
    for (bytes, name, needle) in cases {
        let job = import_bytes(&deps, bytes, name, upsert()).await;
        assert_eq!(job.state, JobState::Failed, "{name}");
        let error = job.error.unwrap_or_default();
        assert!(
            error.to_lowercase().contains(&needle.to_lowercase()),
            "{name}: {error}"
        );
    }
    assert!(table(&deps).await.is_empty());
}

#[tokio::test]
async fn a_header_without_rows_is_a_succeeded_empty_import() {
    let (deps, _db) = deps_with_fresh_db().await;
    let job = import_bytes(
        &deps,
        SPEC_TXT.lines().next().unwrap().as_bytes(),
        "h.txt",
        upsert(),
    )
    .await;
    assert_eq!(job.state, JobState::Succeeded, "{:?}", job.error);
    assert_eq!(count(&job, "rows_read"), 0);
    assert!(
        job.warnings.to_string().contains("no data rows"),
        "{}",
        job.warnings
    );
}

/// The report's rows, each cell by its column's header.
fn report_rows(bytes: Vec<u8>) -> Vec<std::collections::HashMap<String, String>> {
    use calamine::Reader;
    let mut book = calamine::Xlsx::new(std::io::Cursor::new(bytes)).unwrap();
    let range = book.worksheet_range("rejected rows").unwrap();
    let mut rows = range.rows();
    let header: Vec<String> = rows.next().unwrap().iter().map(|c| c.to_string()).collect();
    rows.map(|r| {
        header
            .iter()
            .cloned()
            .zip(r.iter().map(|c| c.to_string()))
            .collect()
    })
    .collect()
}

/// The error report of rows with formula-like cells (`=1+1`, `+A1`,
/// `@SUM(1)`, `-2+3`) and long ones is a conventional zip that openpyxl and
/// LibreOffice open with every cell as text; LibreOffice's re-saved copy,
/// uploaded again, rejects the same rows for the same reasons and leaves the
/// table as it was.
#[tokio::test]
async fn libreoffice_and_openpyxl_open_the_error_report_and_its_resave_imports() {
    let (deps, _db) = deps_with_fresh_db().await;
    let long = "ação & <b> 'x' > y ".repeat(1_500);
    let long = long.trim();
    let mut csv = String::from(
        "CPF;PRIVATE;INCOMPLETO;DATA DA ÚLTIMA COMPRA;TICKET MÉDIO;TICKET DA ÚLTIMA COMPRA;LOJA MAIS FREQUÊNTE;LOJA DA ÚLTIMA COMPRA\n\
         041.091.641-25;0;0;2020-01-31;1,00;;;\n",
    );
    // Each rejected row, as its decoded cells.
    let mut rejected: Vec<Vec<String>> = Vec::new();
    for i in 0..20 {
        let rows = [
            vec!["=1+1", "+A1", "@SUM(1)", "-2+3", long, "", "", ""],
            vec![
                "529.982.247-25",
                "+A1",
                "0",
                "2020-01-31",
                "-2+3",
                "@SUM(1)",
                "=1+1",
                "",
            ],
            vec!["111.444.777-35", "0", "1", long, "", "", "", "=1+1"],
        ];
        for cells in rows {
            let mut cells: Vec<String> = cells.into_iter().map(str::to_string).collect();
            cells[5] = if cells[5].is_empty() {
                format!("he said \"{i}\"")
            } else {
                cells[5].clone()
            };
            let quoted: Vec<String> = cells
                .iter()
                .map(|c| format!("\"{}\"", c.replace('"', "\"\"")))
                .collect();
            csv.push_str(&quoted.join(";"));
            csv.push('\n');
            rejected.push(cells);
        }
    }
    let job = import_bytes(&deps, csv.as_bytes(), "formulas.csv", upsert()).await;
    assert_eq!(job.state, JobState::Succeeded, "{:?}", job.error);
    assert_eq!(count(&job, "inserted"), 1);
    assert_eq!(count(&job, "rejected"), rejected.len() as u64);
    let report = download(&deps, &keys::error_report(job.id)).await;
    xlport_core::xlsx::check_conventional_zip(&report)
        .unwrap_or_else(|e| panic!("not a conventional zip: {e}"));

    // What xlport's own reader sees is the reference: the reason, the
    // detail, the CSV line and the row's cells, as the CSV had them.
    let ours = report_rows(report.clone());
    assert_eq!(ours.len(), rejected.len());
    let headers = xlport_tests::USER_PURCHASE_HEADERS;
    let mut want = vec![
        ["xlport reason", "xlport detail", "xlport row"]
            .iter()
            .chain(&headers)
            .map(|s| s.to_string())
            .collect::<Vec<_>>(),
    ];
    for (i, (row, cells)) in ours.iter().zip(&rejected).enumerate() {
        assert_eq!(row["xlport row"], (i + 3).to_string(), "the CSV line");
        let got: Vec<String> = headers.iter().map(|h| row[*h].clone()).collect();
        assert_eq!(got, cells[..], "row {}", i + 3);
        let mut read: Vec<String> = vec![
            row["xlport reason"].clone(),
            row["xlport detail"].clone(),
            format!("{}.00", i + 3),
        ];
        read.extend(cells.iter().cloned());
        while read.last().is_some_and(String::is_empty) {
            read.pop();
        }
        want.push(read);
    }
    // The data sheet, cell for cell; the how-to sheet follows it.
    let check = |reader: &str, sheets: Vec<(String, Vec<Vec<String>>)>| {
        let names: Vec<&str> = sheets.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["rejected rows", "how to fix"], "{reader}");
        let rows = &sheets[0].1;
        assert_eq!(rows.len(), want.len(), "{reader}");
        for (i, (got, w)) in rows.iter().zip(&want).enumerate() {
            // Compared cell by cell, so a failure names the cell, not the sheet.
            assert_eq!(got.len(), w.len(), "{reader}, row {}", i + 1);
            for (c, (g, w)) in got.iter().zip(w).enumerate() {
                assert!(
                    g == w,
                    "{reader}, row {}, column {}: {:.80} != {:.80}",
                    i + 1,
                    c + 1,
                    g,
                    w
                );
            }
        }
    };
    check("openpyxl", openpyxl_sheets(&report));
    let resaved = libreoffice_resave(&report, Duration::from_secs(180));
    check("LibreOffice", openpyxl_sheets(&resaved));

    // Uploaded again as it is: the same rows fail for the same reasons, the
    // table does not move.
    let before = snapshot(&deps, "user_purchase", "cpf").await;
    let again = import_bytes(&deps, &resaved, "errors-resaved.xlsx", upsert()).await;
    assert_eq!(again.state, JobState::Succeeded, "{:?}", again.error);
    assert_eq!(
        count(&again, "rejected"),
        rejected.len() as u64,
        "{}",
        again.counts
    );
    assert_eq!(count(&again, "inserted") + count(&again, "updated"), 0);
    assert_eq!(snapshot(&deps, "user_purchase", "cpf").await, before);
    let reasons = |rows: &[std::collections::HashMap<String, String>]| {
        rows.iter()
            .map(|r| r["xlport reason"].clone())
            .collect::<Vec<_>>()
    };
    let second = report_rows(download(&deps, &keys::error_report(again.id)).await);
    assert_eq!(reasons(&second), reasons(&ours));
}

fn first_report_row(bytes: Vec<u8>) -> std::collections::HashMap<String, String> {
    report_rows(bytes)
        .into_iter()
        .next()
        .expect("a rejected row")
}

/// End to end: create the import, upload with plain curl through presigned
/// multipart part URLs, complete, and watch it through GET /jobs/{id}.
#[tokio::test]
async fn multipart_upload_with_curl_through_the_api() {
    let stack = Stack::connect().await;
    let key = stack.new_key().await;
    // Over the multipart threshold the test stack uses (XLPORT_MULTIPART_THRESHOLD_BYTES).
    let mut text = big_csv(400_000);
    let threshold = stack.deps.config.multipart_threshold_bytes as usize;
    assert!(text.len() > threshold, "{} <= {threshold}", text.len());
    text.truncate(text.len());
    let dir = std::env::temp_dir().join(format!("xlport-mp-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let (status, job) = stack
        .call(Method::POST, "/imports", Some(&key),
            Some(json!({"dataset": "user_purchase", "filename": "big.csv", "size": text.len(), "dry_run": true})))
        .await;
    assert_eq!(status, 201, "{job}");
    assert_eq!(job["upload"]["type"], "multipart");
    let part_size = job["upload"]["part_size"].as_u64().unwrap() as usize;
    let parts = job["upload"]["parts"].as_array().unwrap().clone();
    assert_eq!(parts.len(), text.len().div_ceil(part_size));
    let id = job["id"].as_str().unwrap().to_string();

    let mut done = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        // Upload all but the last part, then "resume" by asking what is there.
        if i + 1 == parts.len() {
            break;
        }
        let chunk = &text.as_bytes()[i * part_size..((i + 1) * part_size).min(text.len())];
        let file = dir.join(format!("part{i}"));
        std::fs::write(&file, chunk).unwrap();
        curl_upload(p["url"].as_str().unwrap(), &file).unwrap();
        done.push(i + 1);
    }
    let (status, more) = stack
        .call(
            Method::POST,
            &format!("/imports/{id}/parts"),
            Some(&key),
            Some(json!({"part_numbers": [parts.len()]})),
        )
        .await;
    assert_eq!(status, 200, "{more}");
    let uploaded: Vec<u64> = more["uploaded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["part_number"].as_u64().unwrap())
        .collect();
    assert_eq!(uploaded, done.iter().map(|n| *n as u64).collect::<Vec<_>>());
    let last = parts.len() - 1;
    let file = dir.join("last");
    std::fs::write(&file, &text.as_bytes()[last * part_size..]).unwrap();
    curl_upload(more["parts"][0]["url"].as_str().unwrap(), &file).unwrap();
    let (_, more) = stack
        .call(
            Method::POST,
            &format!("/imports/{id}/parts"),
            Some(&key),
            Some(json!({"part_numbers": [1]})),
        )
        .await;
    let etags: Vec<Value> = more["uploaded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| json!({"part_number": p["part_number"], "etag": p["etag"]}))
        .collect();
    let (status, body) = stack
        .call(
            Method::POST,
            &format!("/imports/{id}/complete"),
            Some(&key),
            Some(json!({"parts": etags})),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    let job = stack
        .wait_finished(&key, &id, Duration::from_secs(180))
        .await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["counts"]["rows_read"], 400_000);
    assert_eq!(job["counts"]["dry_run"], true);
    assert_eq!(job["parts"].as_array().unwrap().len(), 40);
    assert!(
        job["error_report_url"]
            .as_str()
            .unwrap()
            .starts_with("http")
    );
    std::fs::remove_dir_all(dir).ok();
}

/// A poison file through the real queue: the job fails with a reason a
/// person can act on, and the message ends in the dead-letter queue.
#[tokio::test]
async fn a_poison_file_fails_its_job_and_its_message_is_dead_lettered() {
    let stack = Stack::connect().await;
    let key = stack.new_key().await;
    let file = std::env::temp_dir().join(format!("xlport-poison-{}.xlsx", Uuid::new_v4()));
    std::fs::write(
        &file,
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1 this is an encrypted workbook",
    )
    .unwrap();
    let size = std::fs::metadata(&file).unwrap().len();
    let (_, job) = stack
        .call(
            Method::POST,
            "/imports",
            Some(&key),
            Some(json!({"dataset": "user_purchase", "filename": "secret.xlsx", "size": size})),
        )
        .await;
    xlport_tests::curl_upload_plan(&job["upload"], &file).unwrap();
    let id = job["id"].as_str().unwrap();
    let object_key = job["object"]["key"].as_str().unwrap().to_string();
    let job = stack
        .wait_job(&key, id, Duration::from_secs(60), |j| {
            j["state"] == "failed"
        })
        .await;
    assert!(
        job["error"].as_str().unwrap().contains("encrypted"),
        "{job}"
    );

    let sqs = &stack.deps.queue.client;
    let dlq = format!("{}-dlq", stack.deps.config.imports_queue_url);
    let start = std::time::Instant::now();
    let mut found = false;
    while !found && start.elapsed() < Duration::from_secs(90) {
        let out = sqs
            .receive_message()
            .queue_url(&dlq)
            .max_number_of_messages(10)
            .wait_time_seconds(2)
            .visibility_timeout(1)
            .send()
            .await
            .unwrap();
        for m in out.messages.unwrap_or_default() {
            if m.body().unwrap_or_default().contains(&object_key) {
                sqs.delete_message()
                    .queue_url(&dlq)
                    .receipt_handle(m.receipt_handle().unwrap())
                    .send()
                    .await
                    .unwrap();
                found = true;
            }
        }
    }
    assert!(found, "the poison file's event reached the DLQ");
    std::fs::remove_file(file).ok();
}

/// Issue #12: two data sheets with the same header and a notes sheet: both
/// data sheets land, the notes sheet is named in a warning, and the report
/// names each rejected row's sheet.
#[tokio::test]
async fn a_three_sheet_workbook_imports_both_data_sheets_and_names_the_third() {
    let (deps, _db) = deps_with_fresh_db().await;
    let mut book = Workbook::new();
    let headers = xlport_tests::USER_PURCHASE_HEADERS;
    for (sheet, cpfs) in [
        ("Janeiro", ["041.091.641-25", "529.982.247-25"]),
        ("Fevereiro", ["111.444.777-35", "not a cpf"]),
    ] {
        let ws = book.add_worksheet();
        ws.set_name(sheet).unwrap();
        for (c, h) in headers.iter().enumerate() {
            ws.write_string(0, c as u16, *h).unwrap();
        }
        for (r, cpf) in cpfs.iter().enumerate() {
            ws.write_string(r as u32 + 1, 0, *cpf).unwrap();
            ws.write_number(r as u32 + 1, 1, 0).unwrap();
            ws.write_number(r as u32 + 1, 2, 1).unwrap();
        }
    }
    book.add_worksheet()
        .set_name("Notas")
        .unwrap()
        .write_string(0, 0, "exportado do sistema antigo")
        .unwrap();
    let bytes = book.save_to_buffer().unwrap();
    let job = import_bytes(&deps, &bytes, "meses.xlsx", upsert()).await;
    assert_eq!(job.state, JobState::Succeeded, "{:?}", job.error);
    assert_eq!(count(&job, "rows_read"), 4);
    assert_eq!(count(&job, "inserted"), 3);
    assert_eq!(count(&job, "rejected"), 1);
    assert_eq!(job.counts["sheets"], json!(["Janeiro", "Fevereiro"]));
    let warnings = job.warnings.to_string();
    assert!(warnings.contains("sheet `Notas` not read"), "{warnings}");
    let report = first_report_row(download(&deps, &keys::error_report(job.id)).await);
    assert_eq!(report["xlport sheet"], "Fevereiro");
    assert_eq!(report["xlport row"], "3");
    assert_eq!(report["CPF"], "not a cpf");
}

/// A file in the original text format, 3,002 rows with 384 to reject: rows
/// of 9 and 7 fields, bad flags, impossible dates, malformed CPFs.
fn seed_format_file() -> String {
    let mut text = String::from(
        "CPF                PRIVATE     INCOMPLETO  DATA DA ÚLTIMA COMPRA TICKET MÉDIO          \
         TICKET DA ÚLTIMA COMPRA LOJA MAIS FREQUÊNTE     LOJA DA ÚLTIMA COMPRA\n",
    );
    for i in 0..3_002u64 {
        let cpf = format!("{:011}", 20_000_000_000u64 + i);
        let line = match i % 30 {
            3 => format!(
                "{cpf} 0 0 2013-05-22 399,00 399,00 79.379.491/0008-50 79.379.491/0008-50 EXTRA"
            ),
            7 => format!("{cpf} 0 0 2013-05-22 399,00 399,00 79.379.491/0008-50"),
            11 => format!("{cpf} 2 0 NULL NULL NULL NULL NULL"),
            19 if i % 60 == 19 => format!("{cpf} 0 0 2013-02-30 NULL NULL NULL NULL"),
            23 if i % 90 == 23 => format!("12.3{i} 0 0 NULL NULL NULL NULL NULL"),
            _ => format!("{cpf} 0 1 2013-05-22 399,00 NULL 79.379.491/0008-50 NULL"),
        };
        text.push_str(&line);
        text.push('\n');
    }
    text
}

/// Issue #18: the report of an import, sent back unchanged, rejects the same
/// rows for the same reasons and accepts none; every field of a long row and
/// the record of a misaligned one are in it.
#[tokio::test]
async fn the_report_sent_back_unchanged_rejects_the_same_rows_and_accepts_none() {
    let (deps, _db) = deps_with_fresh_db().await;
    let file = seed_format_file();
    let job = import_bytes(&deps, file.as_bytes(), "base.txt", upsert()).await;
    assert_eq!(job.state, JobState::Succeeded, "{:?}", job.error);
    let rejected = count(&job, "rejected");
    assert!(rejected > 100, "{:?}", job.counts);
    let report = download(&deps, &keys::error_report(job.id)).await;
    let rows = report_rows(report.clone());
    assert_eq!(rows.len() as u64, rejected);
    let nine = rows
        .iter()
        .find(|r| r["xlport detail"].contains("9 fields"))
        .expect("a row of 9 fields");
    assert!(
        nine["xlport original record"].ends_with("EXTRA"),
        "{nine:?}"
    );
    assert_eq!(nine["CPF"], "", "a misaligned row's cells stay empty");
    eprintln!("report, first rows: {:?}", &rows[..3]);

    let again = import_bytes(
        &deps,
        &report,
        "errors.xlsx",
        json!({"conflict_policy": "upsert", "dry_run": true}),
    )
    .await;
    assert_eq!(again.state, JobState::Succeeded, "{:?}", again.error);
    assert_eq!(count(&again, "rows_read"), rejected);
    assert_eq!(count(&again, "rejected"), rejected, "{:?}", again.counts);
    assert_eq!(count(&again, "inserted") + count(&again, "updated"), 0);
    assert_eq!(
        again.counts["rejected_by_reason"], job.counts["rejected_by_reason"],
        "the same reasons"
    );
    eprintln!(
        "re-imported unchanged: {} read, {} rejected {}",
        count(&again, "rows_read"),
        count(&again, "rejected"),
        again.counts["rejected_by_reason"]
    );
}

/// Issue #19: an S3 event lost on the way (the object is in the bucket, no
/// worker ever heard of it) is noticed by a sweep and sent again; the job
/// then imports and says what happened.
#[tokio::test]
async fn a_swallowed_event_is_redriven_by_the_sweep() {
    let (mut deps, _db) = deps_with_fresh_db().await;
    let (queue_name, queue_url) = xlport_tests::with_private_queue(&mut deps, false, 300).await;

    let (id, key) =
        xlport_tests::new_import_job(&deps, "user_purchase", "base.txt", SPEC_TXT.len(), upsert())
            .await;
    // Not uploaded yet: nothing to send.
    let swept = xlport_adapters::sweep::sweep(&deps, Duration::ZERO)
        .await
        .unwrap();
    assert!(swept.redriven.is_empty(), "{swept:?}");
    assert_eq!(swept.awaiting_upload, 1);
    // Uploaded, and its event lost.
    put_object(&deps, &key, SPEC_TXT.as_bytes()).await;
    let swept = xlport_adapters::sweep::sweep(&deps, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(swept.redriven, [id]);
    let message = deps
        .queue
        .client
        .receive_message()
        .queue_url(&queue_url)
        .wait_time_seconds(5)
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default()
        .into_iter()
        .next()
        .expect("the sweep sent the event again");
    let event = xlport_tests::event_of(&message, &queue_name);
    let response = import_worker::handle_batch(&deps, event).await;
    assert!(response.batch_item_failures.is_empty());
    let job = deps.jobs.job(id).await.unwrap().unwrap();
    assert_eq!(job.state, JobState::Succeeded, "{:?}", job.error);
    assert_eq!(count(&job, "inserted"), 2);
    assert!(
        job.warnings
            .to_string()
            .contains("sent to the workers again"),
        "{}",
        job.warnings
    );
    deps.queue
        .client
        .delete_queue()
        .queue_url(&queue_url)
        .send()
        .await
        .ok();
}

/// Issue #15: hostile upload requests get a 400 that names the problem,
/// small and without internals: a 10 MB filename, a NUL in a name, part
/// numbers out of range or twice.
#[tokio::test]
async fn hostile_upload_requests_get_a_small_clear_400() {
    let stack = Stack::connect().await;
    let key = stack.new_key().await;
    let post = |body: Value| {
        let stack = &stack;
        let key = key.clone();
        async move {
            stack
                .call(Method::POST, "/imports", Some(&key), Some(body))
                .await
        }
    };
    let huge = "a".repeat(10 * 1024 * 1024);
    for (filename, needle) in [
        (huge.as_str(), "at most 255 are accepted"),
        ("a\u{0}b.csv", "control characters"),
    ] {
        let (status, body) =
            post(json!({"dataset": "user_purchase", "filename": filename, "size": 10})).await;
        assert_eq!(status, 400, "{}", body.to_string().len());
        let text = body.to_string();
        assert!(text.len() < 500, "the answer is {} bytes", text.len());
        assert!(text.contains(needle), "{text}");
    }
    // A multipart upload (the test stack's threshold is 8 MiB).
    let (status, job) =
        post(json!({"dataset": "user_purchase", "filename": "big.csv", "size": 20_000_000})).await;
    assert_eq!(status, 201, "{job}");
    let id = job["id"].as_str().unwrap();
    let (status, body) = stack
        .call(
            Method::POST,
            &format!("/imports/{id}/parts"),
            Some(&key),
            Some(json!({"part_numbers": vec![1; 10_000]})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("asked for twice"),
        "{body}"
    );
    for parts in [
        json!([{"part_number": -1, "etag": "x"}]),
        json!([{"part_number": 1, "etag": "x"}, {"part_number": 1, "etag": "y"}]),
        json!([{"part_number": 1, "etag": "not-an-etag"}]),
    ] {
        let (status, body) = stack
            .call(
                Method::POST,
                &format!("/imports/{id}/complete"),
                Some(&key),
                Some(json!({ "parts": parts })),
            )
            .await;
        assert_eq!(status, 400, "{parts} -> {body}");
        let text = body.to_string();
        assert!(
            !text.to_lowercase().contains("request id"),
            "internals: {text}"
        );
        assert!(!text.contains("RequestId"), "internals: {text}");
    }
}

/// Issue #12: an export saved by LibreOffice as Excel 97-2003 (.xls, BIFF8)
/// and as OpenDocument (.ods) imports back into the table unchanged, read
/// through calamine under the same rules (dates from the cell's format,
/// numeric cells).
#[tokio::test]
async fn xls_and_ods_copies_of_an_export_import_back_unchanged() {
    let (deps, _db) = deps_with_fresh_db().await;
    xlport_adapters::postgres::seed_user_purchase(&deps.jobs.pool, 200, 12)
        .await
        .unwrap();
    let before = snapshot(&deps, "user_purchase", "cpf").await;
    let job = xlport_tests::new_export_job_of(&deps, "user_purchase", "xlsx", Value::Null).await;
    let event = xlport_tests::export_message(job);
    export_worker::handle_batch(&deps, event).await;
    let exported = deps.jobs.job(job).await.unwrap().unwrap();
    let xlsx = download(&deps, exported.result_key.as_deref().unwrap()).await;
    for (to, name, format) in [
        ("xls:MS Excel 97", "copy.xls", "xls"),
        ("ods", "copy.ods", "ods"),
    ] {
        let bytes = xlport_tests::libreoffice_convert(
            &xlsx,
            "export.xlsx",
            None,
            to,
            Duration::from_secs(180),
        );
        sqlx::query("truncate user_purchase")
            .execute(&deps.jobs.pool)
            .await
            .unwrap();
        let back = import_bytes(&deps, &bytes, name, upsert()).await;
        assert_eq!(
            back.state,
            JobState::Succeeded,
            "{format}: {:?}",
            back.error
        );
        assert_eq!(back.counts["format"], format);
        assert_eq!(count(&back, "rejected"), 0, "{format}: {}", back.counts);
        assert_eq!(
            snapshot(&deps, "user_purchase", "cpf").await,
            before,
            "{format}: the table changed"
        );
    }
}

/// Issue #15, fault 1: the presigned PUT is used twice, and the second,
/// bigger file lands before the worker reads the first one's event. The job
/// recorded the first file's size and ETag; it must read exactly those bytes
/// (`GetObject` with `If-Match`) or fail, never import the other file.
#[tokio::test]
async fn a_file_swapped_after_its_check_is_refused_not_imported() {
    let (deps, _db) = deps_with_fresh_db().await;
    let small = "CPF;PRIVATE;INCOMPLETO;DATA DA ÚLTIMA COMPRA;TICKET MÉDIO;TICKET DA ÚLTIMA COMPRA;LOJA MAIS FREQUÊNTE;LOJA DA ÚLTIMA COMPRA\n\
                 52998224725;0;1;2020-01-01;10,50;;;\n";
    let big = big_csv(1_000);
    let (id, key) =
        xlport_tests::new_import_job(&deps, "user_purchase", "small.csv", small.len(), json!({}))
            .await;
    let small_etag = put_object(&deps, &key, small.as_bytes()).await;
    put_object(&deps, &key, big.as_bytes()).await;

    // The first PUT's event, read after the second PUT replaced the object.
    // The job fails, and its message goes on to the dead-letter queue, as
    // every failed import's does.
    assert_eq!(deliver(&deps, &key, small.len(), &small_etag).await, 1);
    let job = deps.jobs.job(id).await.unwrap().unwrap();
    assert_eq!(job.state, JobState::Failed, "{job:?}");
    let error = job.error.clone().unwrap_or_default();
    assert!(
        error.contains("was replaced after it was received"),
        "{error}"
    );
    assert_eq!(job.object_size, Some(small.len() as i64));
    let rows: i64 = sqlx::query_scalar("select count(*) from user_purchase")
        .fetch_one(&deps.jobs.pool)
        .await
        .unwrap();
    assert_eq!(rows, 0, "nothing of either file was imported");
}

async fn object_exists(deps: &Deps, key: &str) -> bool {
    use xlport_core::ports::{ObjectStore, StoreError};
    match deps.objects.head(key).await {
        Ok(_) => true,
        Err(StoreError::NotFound(_)) => false,
        Err(e) => panic!("head {key}: {e}"),
    }
}

/// Issue #15, fault 5: an import whose file never arrives does not wait
/// forever. Once its upload URLs have expired (plus a minute), the sweep
/// fails it with a reason and aborts its multipart upload, so no parts stay
/// in the bucket; one whose file did arrive (its event lost) is sent to the
/// workers instead.
#[tokio::test]
async fn imports_whose_upload_never_arrives_expire_and_free_their_parts() {
    let (deps, _db) = deps_with_fresh_db().await;
    let pool = &deps.jobs.pool;
    // A multipart upload with one part in, never completed.
    let (multipart, mp_key) =
        xlport_tests::new_import_job(&deps, "user_purchase", "big.csv", 6 << 20, upsert()).await;
    let mp = deps
        .objects
        .create_multipart_upload(&mp_key, "application/octet-stream", None)
        .await
        .unwrap();
    sqlx::query("update jobs set upload_id = $2 where id = $1")
        .bind(multipart)
        .bind(&mp)
        .execute(pool)
        .await
        .unwrap();
    deps.objects
        .upload_part(&mp_key, &mp, 1, vec![b'x'; 5 << 20].into())
        .await
        .unwrap();
    // A single PUT never sent.
    let (single, _) =
        xlport_tests::new_import_job(&deps, "user_purchase", "small.csv", 10, upsert()).await;
    // A single PUT that arrived, its event lost.
    let (arrived, arrived_key) =
        xlport_tests::new_import_job(&deps, "user_purchase", "base.txt", SPEC_TXT.len(), upsert())
            .await;
    put_object(&deps, &arrived_key, SPEC_TXT.as_bytes()).await;
    // A fresh one, not expired.
    let (fresh, _) =
        xlport_tests::new_import_job(&deps, "user_purchase", "fresh.csv", 10, upsert()).await;

    let ttl = deps.config.upload_url_ttl.as_secs() as f64;
    sqlx::query(
        "update jobs set updated_at = now() - make_interval(secs => $2) where id = any($1)",
    )
    .bind(vec![multipart, single, arrived])
    .bind(ttl + 61.0)
    .execute(pool)
    .await
    .unwrap();
    let swept = xlport_adapters::sweep::sweep(&deps, Duration::from_secs(3600))
        .await
        .unwrap();
    let mut expired = swept.expired.clone();
    expired.sort();
    let mut want = vec![multipart, single];
    want.sort();
    assert_eq!(expired, want, "{swept:?}");
    assert_eq!(swept.redriven, [arrived], "{swept:?}");
    for id in [multipart, single] {
        let job = deps.jobs.job(id).await.unwrap().unwrap();
        assert_eq!(job.state, JobState::Failed);
        let error = job.error.unwrap_or_default();
        assert!(
            error.contains("did not arrive while its upload URLs were valid"),
            "{error}"
        );
    }
    assert_eq!(
        deps.jobs.job(fresh).await.unwrap().unwrap().state,
        JobState::AwaitingUpload
    );
    assert_eq!(
        deps.jobs.job(arrived).await.unwrap().unwrap().state,
        JobState::AwaitingUpload,
        "its event is on the queue again"
    );
    // S3 has freed the parts: the upload is gone.
    let parts = deps.objects.list_parts(&mp_key, &mp).await;
    assert!(
        matches!(parts, Err(xlport_core::ports::StoreError::NotFound(_))),
        "the multipart upload was aborted: {parts:?}"
    );
    // A second sweep changes nothing.
    let again = xlport_adapters::sweep::sweep(&deps, Duration::from_secs(3600))
        .await
        .unwrap();
    assert!(again.expired.is_empty(), "{again:?}");
}

/// Issue #15, fault 5: a file xlport refuses before reading it (bigger than
/// declared) is deleted with its job's failure, and a file that arrives for
/// an import already aborted does not stay in the bucket either.
#[tokio::test]
async fn refused_and_orphaned_uploads_are_deleted() {
    let (deps, _db) = deps_with_fresh_db().await;
    let (refused, key) =
        xlport_tests::new_import_job(&deps, "user_purchase", "base.txt", 10, upsert()).await;
    let etag = put_object(&deps, &key, SPEC_TXT.as_bytes()).await;
    assert_eq!(deliver(&deps, &key, SPEC_TXT.len(), &etag).await, 0);
    let job = deps.jobs.job(refused).await.unwrap().unwrap();
    assert_eq!(job.state, JobState::Failed);
    assert!(
        job.error
            .unwrap_or_default()
            .contains("created for 10 bytes")
    );
    assert!(
        !object_exists(&deps, &key).await,
        "the refused file is deleted"
    );

    let (aborted, key) =
        xlport_tests::new_import_job(&deps, "user_purchase", "base.txt", SPEC_TXT.len(), upsert())
            .await;
    let owner: Uuid = sqlx::query_scalar("select owner_key_id from jobs where id = $1")
        .bind(aborted)
        .fetch_one(&deps.jobs.pool)
        .await
        .unwrap();
    assert!(
        deps.jobs
            .cancel_upload(aborted, xlport_core::job::KeyId(owner))
            .await
            .unwrap()
    );
    let etag = put_object(&deps, &key, SPEC_TXT.as_bytes()).await;
    assert_eq!(deliver(&deps, &key, SPEC_TXT.len(), &etag).await, 0);
    assert_eq!(
        deps.jobs.job(aborted).await.unwrap().unwrap().state,
        JobState::Cancelled
    );
    assert!(
        !object_exists(&deps, &key).await,
        "the late file is deleted"
    );
    let rows: i64 = sqlx::query_scalar("select count(*) from user_purchase")
        .fetch_one(&deps.jobs.pool)
        .await
        .unwrap();
    assert_eq!(rows, 0);
}
