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
use xlport_core::export::MAX_DATA_ROWS_PER_SHEET;
use xlport_core::job::keys;
use xlport_core::xlsx::{
    MAX_SHEET_XML_BYTES, NUMBER_CELL_XML_BOUND, ROW_XML_BOUND, SheetXmlBudget,
    string_cell_xml_bound,
};

const PAGE: i64 = 5_000;

/// The report workbook, row by row: a sheet `rejected rows` of the columns
/// ROW, REASON, DETAIL and the dataset's headers, and further sheets
/// `rejected rows (2)`... when one reaches Excel's row limit or could pass
/// `max_sheet_xml_bytes` of XML (so no zip entry needs Zip64: see
/// `xlport_core::xlsx`). Cells are text, never formulas.
pub(crate) struct ReportBook {
    book: Workbook,
    columns: Vec<String>,
    bold: Format,
    text: Format,
    sheets: usize,
    row: u32,
    budget: SheetXmlBudget,
}

impl ReportBook {
    /// `headers` are the dataset's; `dir` holds the library's temp files.
    pub(crate) fn new(
        headers: Vec<String>,
        dir: &std::path::Path,
        max_sheet_xml_bytes: u64,
    ) -> anyhow::Result<Self> {
        let mut book = Workbook::new();
        book.set_tempdir(dir)?;
        book.set_zip_compression_level(3);
        Ok(ReportBook {
            book,
            columns: ["ROW", "REASON", "DETAIL"]
                .iter()
                .map(|s| s.to_string())
                .chain(headers)
                .collect(),
            bold: Format::new().set_bold(),
            text: Format::new().set_num_format("@"),
            sheets: 0,
            row: 0,
            budget: SheetXmlBudget::new(max_sheet_xml_bytes),
        })
    }

    fn add_sheet(&mut self) -> anyhow::Result<()> {
        let sheet = self.book.add_worksheet_with_constant_memory()?;
        self.sheets += 1;
        sheet.set_name(if self.sheets == 1 {
            "rejected rows".to_string()
        } else {
            format!("rejected rows ({})", self.sheets)
        })?;
        for (c, h) in self.columns.iter().enumerate() {
            sheet.write_string_with_format(0, c as u16, h, &self.bold)?;
        }
        sheet.set_column_width(1, 20)?;
        sheet.set_column_width(2, 60)?;
        sheet.set_freeze_panes(1, 0)?;
        self.row = 0;
        self.budget.start_sheet(self.columns.len());
        self.budget.add(
            ROW_XML_BOUND
                + self
                    .columns
                    .iter()
                    .map(|h| string_cell_xml_bound(h))
                    .sum::<u64>(),
        );
        Ok(())
    }

    /// Appends one rejected row.
    pub(crate) fn push(&mut self, r: &StoredRejection) -> anyhow::Result<()> {
        let cells: &[serde_json::Value] = r.cells.as_array().map_or(&[], Vec::as_slice);
        let bytes = ROW_XML_BOUND
            + NUMBER_CELL_XML_BOUND
            + string_cell_xml_bound(&r.reason)
            + string_cell_xml_bound(&r.message)
            + cells
                .iter()
                .filter_map(|c| c.as_str())
                .map(string_cell_xml_bound)
                .sum::<u64>();
        if self.sheets == 0
            || self.row == MAX_DATA_ROWS_PER_SHEET
            || (self.row > 0 && !self.budget.fits(bytes))
        {
            self.add_sheet()?;
        }
        self.budget.add(bytes);
        let sheet = self.book.worksheet_from_index(self.sheets - 1)?;
        self.row += 1;
        let row = self.row;
        sheet.write_number(row, 0, r.row_number as f64)?;
        sheet.write_string(row, 1, &r.reason)?;
        sheet.write_string(row, 2, &r.message)?;
        for (i, cell) in cells.iter().enumerate() {
            let value = cell.as_str().unwrap_or_default();
            if !value.is_empty() {
                sheet.write_string_with_format(row, 3 + i as u16, value, &self.text)?;
            }
        }
        Ok(())
    }

    /// Zips the workbook into `out` (a report with no rows still has its
    /// header sheet).
    pub(crate) fn finish<W: std::io::Write + Send>(mut self, out: W) -> anyhow::Result<()> {
        if self.sheets == 0 {
            self.add_sheet()?;
        }
        self.book.save_to_writer(out)?;
        Ok(())
    }
}

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
        let mut book = ReportBook::new(headers, &dir, MAX_SHEET_XML_BYTES)?;
        while let Some(page) = rx.blocking_recv() {
            for r in &page {
                book.push(r)?;
            }
        }
        book.finish(&mut writer)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use calamine::{Reader, Xlsx};
    use xlport_core::xlsx::check_conventional_zip;

    /// Rejected rows with formula-like, long and escaped cells.
    fn rejections(n: i64) -> Vec<StoredRejection> {
        (0..n)
            .map(|i| StoredRejection {
                row_number: i + 2,
                reason: "malformed_cpf".into(),
                message: format!("CPF `=1+1` on row {} & <more>", i + 2),
                cells: serde_json::json!([
                    "=1+1",
                    "+A1",
                    "@SUM(1)",
                    "-2+3",
                    format!("{i}: {}", "long & <escaped> \"text\" _x0041_ ".repeat(60)),
                    "",
                ]),
            })
            .collect()
    }

    fn headers() -> Vec<String> {
        ["CPF", "PRIVATE", "INCOMPLETO", "DATA", "TICKET", "LOJA"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    fn write(rows: &[StoredRejection], limit: u64) -> Vec<u8> {
        let mut book = ReportBook::new(headers(), &std::env::temp_dir(), limit).unwrap();
        for r in rows {
            book.push(r).unwrap();
        }
        let mut out = Vec::new();
        book.finish(&mut out).unwrap();
        out
    }

    /// Every sheet's rows, header first, as text.
    fn read(bytes: Vec<u8>) -> Vec<(String, Vec<Vec<String>>)> {
        let mut book = Xlsx::new(std::io::Cursor::new(bytes)).unwrap();
        book.sheet_names()
            .into_iter()
            .map(|name| {
                let range = book.worksheet_range(&name).unwrap();
                let rows = range
                    .rows()
                    .map(|r| r.iter().map(|c| c.to_string()).collect())
                    .collect();
                (name, rows)
            })
            .collect()
    }

    fn want(r: &StoredRejection) -> Vec<String> {
        let mut row = vec![
            r.row_number.to_string(),
            r.reason.clone(),
            r.message.clone(),
        ];
        row.extend(
            r.cells
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_str().unwrap().to_string()),
        );
        row
    }

    #[test]
    fn the_error_report_is_a_conventional_zip() {
        let rows = rejections(50);
        let bytes = write(&rows, MAX_SHEET_XML_BYTES);
        let zip = check_conventional_zip(&bytes).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(zip.with_data_descriptor, zip.names.len());
        let sheets = read(bytes);
        assert_eq!(sheets.len(), 1);
        assert_eq!(sheets[0].0, "rejected rows");
        assert_eq!(
            sheets[0].1[0],
            [
                "ROW",
                "REASON",
                "DETAIL",
                "CPF",
                "PRIVATE",
                "INCOMPLETO",
                "DATA",
                "TICKET",
                "LOJA"
            ]
        );
        for (got, r) in sheets[0].1[1..].iter().zip(&rows) {
            assert_eq!(*got, want(r), "text cells, never formulas");
        }
    }

    #[test]
    fn the_error_report_starts_a_new_sheet_before_the_byte_limit() {
        let rows = rejections(200);
        let limit = 128 * 1024;
        let bytes = write(&rows, limit);
        let zip = check_conventional_zip(&bytes).unwrap_or_else(|e| panic!("{e}"));
        assert!(zip.largest_uncompressed <= limit, "{zip:?}");
        let sheets = read(bytes);
        assert!(sheets.len() >= 3, "{} sheets", sheets.len());
        assert_eq!(sheets[1].0, "rejected rows (2)");
        let got: Vec<Vec<String>> = sheets
            .iter()
            .flat_map(|(_, rows)| {
                assert_eq!(rows[0][0], "ROW");
                rows[1..].to_vec()
            })
            .collect();
        let want: Vec<Vec<String>> = rows.iter().map(want).collect();
        assert_eq!(got, want, "every row once, in order");
    }
}
