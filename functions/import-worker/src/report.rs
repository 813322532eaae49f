//! The error report: every rejected row of an import, in file order, with its
//! row number and reason, as an .xlsx streamed into S3. Cells are written as
//! text (never formulas), under the dataset's own headers, so a user can fix
//! the rows and upload the report itself again.

use anyhow::Context;
use rust_xlsxwriter::{Format, Workbook};
use xlport_adapters::Deps;
use xlport_adapters::imports::StoredRejection;
use xlport_adapters::s3::attachment_disposition;
use xlport_adapters::worker::ScratchDir;
use xlport_core::Dataset;
use xlport_core::job::keys;

const PAGE: i64 = 5_000;

pub async fn write(deps: &Deps, job: uuid::Uuid, dataset: &Dataset) -> anyhow::Result<()> {
    let key = keys::error_report(job);
    let filename = format!("{job}-errors.xlsx");
    let upload = deps
        .s3
        .start_multipart(
            &key,
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            Some(&attachment_disposition(&filename)),
        )
        .await?;
    let scratch = ScratchDir::create(deps, "report")?;
    let (writer, uploads) = upload.writer(8 * 1024 * 1024, 2);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<StoredRejection>>(2);
    let headers: Vec<String> = dataset.columns.iter().map(|c| c.header.clone()).collect();
    let dir = scratch.0.clone();
    let encoder = tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let mut writer = writer;
        let mut book = Workbook::new();
        book.set_tempdir(&dir)?;
        book.set_zip_compression_level(3);
        let bold = Format::new().set_bold();
        let text = Format::new().set_num_format("@");
        let columns: Vec<String> = ["ROW", "REASON", "DETAIL"]
            .iter()
            .map(|s| s.to_string())
            .chain(headers)
            .collect();
        let mut sheets = 0usize;
        let mut row = 0u32;
        while let Some(page) = rx.blocking_recv() {
            for r in page {
                if sheets == 0 || row == 1_048_575 {
                    let sheet = book.add_worksheet_with_constant_memory()?;
                    sheets += 1;
                    sheet.set_name(if sheets == 1 {
                        "rejected rows".to_string()
                    } else {
                        format!("rejected rows ({sheets})")
                    })?;
                    for (c, h) in columns.iter().enumerate() {
                        sheet.write_string_with_format(0, c as u16, h, &bold)?;
                    }
                    sheet.set_column_width(1, 20)?;
                    sheet.set_column_width(2, 60)?;
                    sheet.set_freeze_panes(1, 0)?;
                    row = 0;
                }
                let sheet = book.worksheet_from_index(sheets - 1)?;
                row += 1;
                sheet.write_number(row, 0, r.row_number as f64)?;
                sheet.write_string(row, 1, &r.reason)?;
                sheet.write_string(row, 2, &r.message)?;
                if let Some(cells) = r.cells.as_array() {
                    for (i, cell) in cells.iter().enumerate() {
                        let value = cell.as_str().unwrap_or_default();
                        if !value.is_empty() {
                            sheet.write_string_with_format(row, 3 + i as u16, value, &text)?;
                        }
                    }
                }
            }
        }
        book.save_to_writer(&mut writer)?;
        writer.finish()?;
        Ok(())
    });
    let mut after = 0i64;
    let fed = async {
        loop {
            let page = deps.db.rejections_page(job, after, PAGE).await?;
            let Some(last) = page.last() else { break };
            after = last.row_number;
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
