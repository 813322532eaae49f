//! The error report: every rejected row of an import, in file order, as the
//! file held it, laid out by `xlport_core::report` and streamed into S3. The
//! rows are paged out of `job_rejections`, so memory stays flat.

use anyhow::Context;
use xlport_adapters::Deps;
use xlport_adapters::multipart::MultipartUpload;
use xlport_adapters::s3::attachment_disposition;
use xlport_adapters::worker::ScratchDir;
use xlport_core::job::keys;
use xlport_core::ports::{ImportTarget, Ports, StoredRejection};
use xlport_core::report::{ReportLayout, ReportRow, ReportWriter, StoredCell};

const PAGE: i64 = 5_000;

/// Writes `reports/{job}/errors.xlsx`. `workbook`: whether the imported file
/// was a workbook (rows then carry their sheet).
pub async fn write<P: Ports>(
    deps: &Deps<P>,
    job: uuid::Uuid,
    workbook: bool,
) -> anyhow::Result<()> {
    let key = keys::error_report(job);
    let filename = format!("{job}-errors.xlsx");
    let shape = deps.tables.report_shape(job).await?;
    let layout = ReportLayout {
        header: shape.header,
        workbook,
        max_fields: shape.max_fields,
        has_records: shape.has_records,
    };
    let upload = MultipartUpload::start(
        &deps.objects,
        &key,
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        Some(&attachment_disposition(&filename)),
    )
    .await?;
    let scratch = ScratchDir::create(deps, "report")?;
    let (writer, uploads) = upload.writer(8 * 1024 * 1024, 2);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<StoredRejection>>(2);
    let dir = scratch.0.clone();
    let encoder = tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let mut writer = writer;
        let mut report = ReportWriter::new(layout, &dir)?;
        while let Some(page) = rx.blocking_recv() {
            for r in page {
                // Rows stored before cells were typed hold strings: still cells.
                let cells: Vec<StoredCell> = serde_json::from_value(r.cells).unwrap_or_default();
                report.write_row(&ReportRow {
                    sheet: r.sheet.as_deref(),
                    row_number: r.row_number.max(0) as u64,
                    reason: &r.reason,
                    message: &r.message,
                    cells: &cells,
                    failed_field: r.failed_field.and_then(|f| usize::try_from(f).ok()),
                    record: r.record.as_deref(),
                })?;
            }
        }
        report.finish(&mut writer)?;
        writer.finish()?;
        Ok(())
    });
    let mut after = -1i64;
    let fed = async {
        loop {
            let page = deps.tables.rejections_page(job, after, PAGE).await?;
            let Some(last) = page.last() else { break };
            after = last.ord;
            let full = page.len() as i64 == PAGE;
            if tx.send(page).await.is_err() {
                break;
            }
            if !full {
                break;
            }
        }
        Ok::<_, anyhow::Error>(())
    }
    .await;
    drop(tx);
    let encoded = encoder.await.context("report thread panicked")?;
    let uploaded = uploads.await.context("upload task panicked")?;
    let outcome = fed.and(encoded).and_then(|()| Ok(uploaded?));
    match outcome {
        Ok((parts, _)) => upload.complete(parts).await?,
        Err(e) => {
            upload.abort().await.ok();
            return Err(e);
        }
    }
    drop(scratch);
    Ok(())
}
