//! The error report: every rejected row of an import, as the file held it,
//! in a workbook a person can fix and send back (docs/spec/user_purchase.md,
//! "What an import reports"; issue #18).
//!
//! Layout of the `rejected rows` sheet (the header is its first row, frozen):
//!
//! | `xlport reason` | `xlport detail` | (`xlport sheet`) | `xlport row` | the file's own header columns… | `xlport extra 1`… | (`xlport original record`) |
//!
//! - The file's columns keep the file's header text, so the report imports
//!   like the file did; cells keep their types (numbers, dates, booleans),
//!   because a CPF typed as a number is padded where the same text is not.
//! - Fields beyond the header go in `xlport extra N` columns, which the
//!   importer ignores with a warning.
//! - A row whose fields could not be aligned with the header
//!   (`wrong_column_count`) keeps its typed cells empty and its record, as
//!   the file held it, in `xlport original record`: it is rejected again
//!   until a person fills in its cells (see [`crate::decode::Misaligned`]).
//! - The cell that decided each rejection is highlighted; a second sheet says
//!   how to fix and re-upload.
//!
//! The `xlport …` columns are recognised by the importer and never read as
//! data, so sending the report back unchanged rejects the same rows for the
//! same reasons and accepts none.

use std::io::Write;
use std::path::Path;

use rust_xlsxwriter::{Color, Format, FormatPattern, Workbook, Worksheet, XlsxError};
use serde::{Deserialize, Serialize};

use crate::cells::Cell;
use crate::decode::{
    REPORT_DETAIL_HEADER, REPORT_REASON_HEADER, REPORT_RECORD_HEADER, REPORT_ROW_HEADER,
    REPORT_SHEET_HEADER, is_report_header,
};
use crate::export::MAX_DATA_ROWS_PER_SHEET;
use crate::xlsx::{
    MAX_SHEET_XML_BYTES, NUMBER_CELL_XML_BOUND, ROW_XML_BOUND, SheetXmlBudget,
    string_cell_xml_bound,
};

/// Excel's limit on the characters of one cell (Excel specifications and
/// limits: "Total number of characters that a cell can contain: 32,767").
pub const MAX_CELL_CHARS: usize = 32_767;

/// A cell of a rejected row, typed as the file held it. Stored as JSON:
/// `null`, a string, a number, a boolean, `{"date": serial}` (1900 system)
/// or `{"error": "#DIV/0!"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum StoredCell {
    Empty,
    Text(String),
    Number(f64),
    Bool(bool),
    Date { date: f64 },
    Error { error: String },
}

impl StoredCell {
    /// The cell as stored: text longer than a cell holds is cut, with a
    /// visible marker (the rest cannot be shown in any spreadsheet cell).
    pub fn of(cell: &Cell<'_>) -> StoredCell {
        match *cell {
            Cell::Empty => StoredCell::Empty,
            Cell::Text(s) => StoredCell::Text(fit_cell(s)),
            Cell::Number(n) => StoredCell::Number(n),
            Cell::DateSerial(n) => StoredCell::Date { date: n },
            Cell::Bool(b) => StoredCell::Bool(b),
            Cell::Error(e) => StoredCell::Error {
                error: e.to_owned(),
            },
        }
    }

    fn is_empty(&self) -> bool {
        match self {
            StoredCell::Empty => true,
            StoredCell::Text(s) => s.is_empty(),
            _ => false,
        }
    }
}

/// `text` as it fits in one cell: whole, or cut at [`MAX_CELL_CHARS`] with a
/// marker saying how much is missing.
pub fn fit_cell(text: &str) -> String {
    let count = text.chars().count();
    if count <= MAX_CELL_CHARS {
        return text.to_owned();
    }
    // The marker takes well under 64 characters.
    let keep = MAX_CELL_CHARS - 64;
    let mut out: String = text.chars().take(keep).collect();
    out.push_str(&format!(
        " …[cut by xlport: {} more characters]",
        count - keep
    ));
    out
}

/// One rejected row, as the report writes it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportRow<'a> {
    /// The sheet of the file the row was on (workbooks only).
    pub sheet: Option<&'a str>,
    /// The sheet row, or the physical line where the text record starts.
    pub row_number: u64,
    /// Reason code (`invalid_date`...).
    pub reason: &'a str,
    /// The message for a person.
    pub message: &'a str,
    /// Every field of the row as the file held it, by field index.
    pub cells: &'a [StoredCell],
    /// The field whose cell decided the rejection (highlighted).
    pub failed_field: Option<usize>,
    /// Set for rows whose fields could not be aligned with the header: the
    /// record as the file held it. Its typed cells are left empty.
    pub record: Option<&'a str>,
}

/// The shape of a report, known before its first row.
#[derive(Debug, Clone, Default)]
pub struct ReportLayout {
    /// The file's header, by field index (`""` where a header cell is blank).
    pub header: Vec<String>,
    /// Whether the file was a workbook (rows then carry their sheet).
    pub workbook: bool,
    /// The most fields any rejected row holds (its extra columns).
    pub max_fields: usize,
    /// Whether any row keeps only its original record.
    pub has_records: bool,
}

/// Streams a report workbook: constant-memory sheets in `tmp_dir`, zipped
/// into the writer given to [`ReportWriter::finish`].
pub struct ReportWriter {
    workbook: Workbook,
    layout: ReportLayout,
    /// The file's fields shown, by field index (report columns of the file
    /// skip the `xlport …` columns of a report sent back: they are made anew).
    shown_fields: Vec<usize>,
    /// Report columns before the file's own.
    lead: u16,
    bold: Format,
    text: Format,
    date: Format,
    highlight: Format,
    highlight_date: Format,
    rows_in_sheet: u32,
    sheets: usize,
    rows: u64,
    /// Bytes of XML the current sheet can take: a sheet ends before a zip
    /// entry could need Zip64 (see [`crate::xlsx`]).
    budget: SheetXmlBudget,
}

impl ReportWriter {
    /// `tmp_dir` holds the library's per-sheet temp files.
    pub fn new(layout: ReportLayout, tmp_dir: &Path) -> Result<Self, XlsxError> {
        Self::with_sheet_xml_limit(layout, tmp_dir, MAX_SHEET_XML_BYTES)
    }

    /// As [`ReportWriter::new`], with sheets of at most `max_sheet_xml_bytes`
    /// of XML (tests set it small to see the split).
    pub fn with_sheet_xml_limit(
        layout: ReportLayout,
        tmp_dir: &Path,
        max_sheet_xml_bytes: u64,
    ) -> Result<Self, XlsxError> {
        let mut workbook = Workbook::new();
        workbook.set_tempdir(tmp_dir)?;
        workbook.set_zip_compression_level(3);
        let shown_fields = (0..layout.header.len().max(layout.max_fields))
            .filter(|&f| layout.header.get(f).is_none_or(|h| !is_report_header(h)))
            .collect();
        let yellow = Color::RGB(0xFFEB9C);
        let mut writer = ReportWriter {
            workbook,
            lead: if layout.workbook { 4 } else { 3 },
            layout,
            shown_fields,
            bold: Format::new().set_bold(),
            text: Format::new().set_num_format("@"),
            date: Format::new().set_num_format("yyyy-mm-dd"),
            highlight: Format::new()
                .set_pattern(FormatPattern::Solid)
                .set_background_color(yellow),
            highlight_date: Format::new()
                .set_num_format("yyyy-mm-dd")
                .set_pattern(FormatPattern::Solid)
                .set_background_color(yellow),
            rows_in_sheet: 0,
            sheets: 0,
            rows: 0,
            budget: SheetXmlBudget::new(max_sheet_xml_bytes),
        };
        writer.add_sheet()?;
        Ok(writer)
    }

    fn column_headers(&self) -> Vec<String> {
        let mut headers = vec![
            REPORT_REASON_HEADER.to_owned(),
            REPORT_DETAIL_HEADER.to_owned(),
        ];
        if self.layout.workbook {
            headers.push(REPORT_SHEET_HEADER.to_owned());
        }
        headers.push(REPORT_ROW_HEADER.to_owned());
        let mut extra = 0;
        for &f in &self.shown_fields {
            match self.layout.header.get(f) {
                Some(h) => headers.push(h.clone()),
                None => {
                    extra += 1;
                    headers.push(format!("xlport extra {extra}"));
                }
            }
        }
        if self.layout.has_records {
            headers.push(REPORT_RECORD_HEADER.to_owned());
        }
        headers
    }

    fn add_sheet(&mut self) -> Result<(), XlsxError> {
        self.sheets += 1;
        let name = if self.sheets == 1 {
            "rejected rows".to_owned()
        } else {
            format!("rejected rows ({})", self.sheets)
        };
        let headers = self.column_headers();
        let bold = self.bold.clone();
        let sheet = self.workbook.add_worksheet_with_constant_memory()?;
        sheet.set_name(name)?;
        for (c, h) in headers.iter().enumerate() {
            sheet.write_string_with_format(0, c as u16, h, &bold)?;
        }
        sheet.set_column_width(0, 20)?;
        sheet.set_column_width(1, 60)?;
        sheet.set_freeze_panes(1, 0)?;
        self.rows_in_sheet = 0;
        self.budget.start_sheet(headers.len());
        self.budget.add(
            ROW_XML_BOUND
                + headers
                    .iter()
                    .map(|h| string_cell_xml_bound(h))
                    .sum::<u64>(),
        );
        Ok(())
    }

    /// Bytes of XML `row` can take, at most.
    fn row_xml_bound(&self, row: &ReportRow<'_>) -> u64 {
        let cell = |c: &StoredCell| match c {
            StoredCell::Empty => 0,
            StoredCell::Text(s) => string_cell_xml_bound(s),
            StoredCell::Error { error } => string_cell_xml_bound(error),
            _ => NUMBER_CELL_XML_BOUND,
        };
        // The row number, and the blank but highlighted cell of a failed
        // field that was empty (`<c r=".." s=".."/>`), are number-sized.
        ROW_XML_BOUND
            + string_cell_xml_bound(row.reason)
            + string_cell_xml_bound(row.message)
            + row.sheet.map_or(0, string_cell_xml_bound)
            + 2 * NUMBER_CELL_XML_BOUND
            + row.record.map_or(0, string_cell_xml_bound)
            + row.cells.iter().map(cell).sum::<u64>()
    }

    /// Appends one rejected row (in file order).
    pub fn write_row(&mut self, row: &ReportRow<'_>) -> Result<(), XlsxError> {
        let bytes = self.row_xml_bound(row);
        if self.rows_in_sheet == MAX_DATA_ROWS_PER_SHEET
            || (self.rows_in_sheet > 0 && !self.budget.fits(bytes))
        {
            self.add_sheet()?;
        }
        self.budget.add(bytes);
        self.rows_in_sheet += 1;
        self.rows += 1;
        let r = self.rows_in_sheet;
        let lead = self.lead;
        let record_column = lead + self.shown_fields.len() as u16;
        let (text, date) = (self.text.clone(), self.date.clone());
        let (highlight, highlight_date) = (self.highlight.clone(), self.highlight_date.clone());
        let shown = self.shown_fields.clone();
        let has_records = self.layout.has_records;
        let workbook = self.layout.workbook;
        let sheet: &mut Worksheet = self.workbook.worksheet_from_index(self.sheets - 1)?;
        sheet.write_string(r, 0, row.reason)?;
        sheet.write_string(r, 1, fit_cell(row.message))?;
        let mut c = 2;
        if workbook {
            sheet.write_string_with_format(r, c, row.sheet.unwrap_or_default(), &text)?;
            c += 1;
        }
        sheet.write_number(r, c, row.row_number as f64)?;
        match row.record {
            Some(record) => {
                // Typed cells stay empty: the row cannot pass until a person
                // fills them in.
                if has_records {
                    sheet.write_string_with_format(
                        r,
                        record_column,
                        fit_cell(record),
                        &highlight,
                    )?;
                }
            }
            None => {
                for (i, &f) in shown.iter().enumerate() {
                    let Some(cell) = row.cells.get(f) else {
                        continue;
                    };
                    let col = lead + i as u16;
                    let hot = row.failed_field == Some(f);
                    write_cell(
                        sheet,
                        r,
                        col,
                        cell,
                        hot,
                        &text,
                        &date,
                        &highlight,
                        &highlight_date,
                    )?;
                }
            }
        }
        Ok(())
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Adds the how-to sheet and zips the workbook into `out`.
    pub fn finish<W: Write + Send>(mut self, out: W) -> Result<(), XlsxError> {
        let help = self.workbook.add_worksheet();
        help.set_name("how to fix")?;
        help.set_column_width(0, 110)?;
        let lines = [
            "Each row of the sheet `rejected rows` is a row of your file that was not imported, as your file held it.",
            "`xlport reason` and `xlport detail` say why; `xlport row` (and `xlport sheet`) say where it was in your file.",
            "The highlighted cell is the one that caused the rejection. Correct it (and any other wrong cell) in place.",
            "A row with `xlport original record` could not be aligned with the header: its cells are empty on purpose.",
            "Copy the values of its record into the columns, then clear nothing else: the record column is ignored once the cells are filled.",
            "Columns `xlport extra N` hold fields that were beyond your file's header; they are not imported.",
            "When done, upload this workbook (or just its first sheet, saved as CSV) as a new import of the same dataset.",
            "The `xlport …` columns are recognised and ignored; rows left unchanged are rejected again for the same reason.",
        ];
        let bold = Format::new().set_bold();
        help.write_string_with_format(0, 0, "How to fix and re-upload these rows", &bold)?;
        for (i, line) in lines.iter().enumerate() {
            help.write_string(i as u32 + 2, 0, *line)?;
        }
        self.workbook.save_to_writer(out)
    }
}

#[allow(clippy::too_many_arguments)]
fn write_cell(
    sheet: &mut Worksheet,
    r: u32,
    c: u16,
    cell: &StoredCell,
    hot: bool,
    text: &Format,
    date: &Format,
    highlight: &Format,
    highlight_date: &Format,
) -> Result<(), XlsxError> {
    // Text cells are strings, never formulas: `=1+1` stays text.
    match (cell, hot) {
        (StoredCell::Empty, false) => {}
        (StoredCell::Empty, true) => {
            sheet.write_blank(r, c, highlight)?;
        }
        (StoredCell::Text(s), false) => {
            sheet.write_string_with_format(r, c, s, text)?;
        }
        (StoredCell::Text(s), true) => {
            sheet.write_string_with_format(r, c, s, &highlight.clone().set_num_format("@"))?;
        }
        (StoredCell::Error { error }, hot) => {
            let f = if hot { highlight } else { text };
            sheet.write_string_with_format(r, c, error, f)?;
        }
        (StoredCell::Number(n), false) => {
            sheet.write_number(r, c, *n)?;
        }
        (StoredCell::Number(n), true) => {
            sheet.write_number_with_format(r, c, *n, highlight)?;
        }
        (StoredCell::Bool(b), false) => {
            sheet.write_boolean(r, c, *b)?;
        }
        (StoredCell::Bool(b), true) => {
            sheet.write_boolean_with_format(r, c, *b, highlight)?;
        }
        (StoredCell::Date { date: serial }, hot) => {
            let f = if hot { highlight_date } else { date };
            sheet.write_number_with_format(r, c, *serial, f)?;
        }
    }
    Ok(())
}

/// The fields of a stored row up to its last non-empty one (what
/// [`ReportLayout::max_fields`] is the maximum of).
pub fn last_field(cells: &[StoredCell]) -> usize {
    cells
        .iter()
        .rposition(|c| !c.is_empty())
        .map_or(0, |i| i + 1)
}

#[cfg(test)]
mod tests {
    //! The report's invariant, as a kind (issue #18): importing the report of
    //! an import again, unchanged, rejects exactly the same rows for the same
    //! reasons and accepts none; once a person fixes a row's cells, it imports.

    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicU64, Ordering};

    use proptest::prelude::*;
    use rust_xlsxwriter::{ExcelDateTime, Formula};

    use super::*;
    use crate::Datasets;
    use crate::dataset::Dataset;
    use crate::decode::{self, FileInfo, Limits};
    use crate::import::{ConflictPolicy, PartBuilder, RejectedRow};

    fn ds() -> Dataset {
        Datasets::builtin()
            .unwrap()
            .get("user_purchase")
            .unwrap()
            .clone()
    }

    struct Tmp(PathBuf);

    impl Tmp {
        fn with(name: &str, bytes: &[u8]) -> Tmp {
            static NEXT: AtomicU64 = AtomicU64::new(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let path = std::env::temp_dir()
                .join(format!("xlport-report-{}-{n}-{name}", std::process::id()));
            std::fs::write(&path, bytes).unwrap();
            Tmp(path)
        }
    }

    impl Drop for Tmp {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    /// What an import of `path` rejects (in file order) and how many rows it accepts.
    fn import(path: &Path) -> (FileInfo, Vec<RejectedRow>, u64) {
        let dataset = ds();
        let mut builder = PartBuilder::new(&dataset, 7, ConflictPolicy::Upsert, 0, 0);
        let mut parts = Vec::new();
        let info = decode::decode_file(path, &dataset, &Limits::default(), 0, &mut |row| {
            parts.extend(builder.push(row));
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        parts.extend(builder.finish());
        let valid = parts.iter().map(|p| p.valid_rows).sum();
        let rejected = parts.into_iter().flat_map(|p| p.rejected).collect();
        (info, rejected, valid)
    }

    /// The report of an import, as bytes.
    fn report(info: &FileInfo, rejected: &[RejectedRow]) -> Vec<u8> {
        let layout = ReportLayout {
            header: info.header.clone(),
            workbook: info.format.is_workbook(),
            max_fields: rejected.iter().map(|r| r.cells.len()).max().unwrap_or(0),
            has_records: rejected.iter().any(|r| r.record.is_some()),
        };
        let dir = std::env::temp_dir();
        let mut writer = ReportWriter::new(layout, &dir).unwrap();
        for r in rejected {
            writer
                .write_row(&ReportRow {
                    sheet: r.sheet.as_deref(),
                    row_number: r.row_number,
                    reason: r.reason.as_str(),
                    message: &r.message,
                    cells: &r.cells,
                    failed_field: r.failed_field,
                    record: r.record.as_deref(),
                })
                .unwrap();
        }
        let mut out = Vec::new();
        writer.finish(&mut out).unwrap();
        out
    }

    /// Imports `bytes`, then its report unchanged: the same reasons, in the
    /// same order, and nothing accepted. Returns the report.
    fn assert_invariant(name: &str, bytes: &[u8]) -> Vec<u8> {
        let file = Tmp::with(name, bytes);
        let (info, rejected, _) = import(&file.0);
        assert!(
            !rejected.is_empty(),
            "{name}: the fixture should reject rows"
        );
        let bytes = report(&info, &rejected);
        let sent_back = Tmp::with("report.xlsx", &bytes);
        let (again_info, again, accepted) = import(&sent_back.0);
        assert_eq!(accepted, 0, "{name}: the unchanged report accepted rows");
        let reasons = |rows: &[RejectedRow]| rows.iter().map(|r| r.reason).collect::<Vec<_>>();
        assert_eq!(reasons(&again), reasons(&rejected), "{name}");
        // The report's own columns are recognised, not warned about.
        assert!(
            again_info
                .warnings
                .iter()
                .all(|w| !w.contains("xlport reason")),
            "{name}: {:?}",
            again_info.warnings
        );
        // And the report of the report is the report again.
        let third = report(&again_info, &again);
        let third_file = Tmp::with("report2.xlsx", &third);
        let (_, thrice, accepted) = import(&third_file.0);
        assert_eq!(accepted, 0, "{name}");
        assert_eq!(reasons(&thrice), reasons(&rejected), "{name}");
        bytes
    }

    const HEADER: &str = "CPF;PRIVATE;INCOMPLETO;DATA DA ÚLTIMA COMPRA;TICKET MÉDIO;\
                          TICKET DA ÚLTIMA COMPRA;LOJA MAIS FREQUÊNTE;LOJA DA ÚLTIMA COMPRA";

    #[test]
    fn text_files_report_round_trips() {
        let csv = format!(
            "{HEADER};NOTES\r\n\
             041.091.641-25;0;0;2013-02-30;399,00;;;;a note\r\n\
             12.3;0;0;;;;;\r\n\
             ;0;0;;;;;;\r\n\
             990.999.999-66;2;0;;;;;\r\n\
             990.999.999-66;0;0;;R$ 10;;;\r\n\
             990.999.999-66;0;0;;;;79.379.491/0008;\r\n\
             990.999.999-66;0;0;;;;;;keep;extra;fields\r\n\
             990.999.999-66;0\r\n\
             041.091.641-25;0;0;;\"=1+1\";;;;\"quoted;with\nnewline\"\r\n\
             041.091.641-25;1;1;22/05/2013;1.234,56;;;\r\n"
        );
        assert_invariant("rejects.csv", csv.as_bytes());
        let whitespace = "CPF PRIVATE INCOMPLETO DATA DA ÚLTIMA COMPRA TICKET MÉDIO \
                          TICKET DA ÚLTIMA COMPRA LOJA MAIS FREQUÊNTE LOJA DA ÚLTIMA COMPRA\n\
                          990.999.999-66 0 0 2013-05-22 399,00 399,00 79.379.491/0008-50 79.379.491/0008-50 extra\n\
                          990.999.999-66 0 0 2013-05-22 399,00 399,00 79.379.491/0008-50\n\
                          041.091.641-25 x 0 NULL NULL NULL NULL NULL\n\
                          041.091.641-25 0 0 NULL NULL NULL NULL NULL\n";
        assert_invariant("rejects.txt", whitespace.as_bytes());
    }

    #[test]
    fn workbook_report_round_trips_with_types_and_sheets() {
        let mut wb = Workbook::new();
        let date = Format::new().set_num_format("dd/mm/yyyy");
        for sheet_name in ["Dados", "Dados (2)"] {
            let ws = wb.add_worksheet();
            ws.set_name(sheet_name).unwrap();
            for (c, h) in HEADER.split(';').enumerate() {
                ws.write_string(0, c as u16, h).unwrap();
            }
            // A numeric CPF padded to 11 digits: valid, but a bad flag.
            ws.write_number(1, 0, 4109164125.0).unwrap();
            ws.write_number(1, 1, 7).unwrap();
            ws.write_boolean(1, 2, true).unwrap();
            ws.write_datetime_with_format(
                1,
                3,
                ExcelDateTime::from_ymd(2021, 3, 4).unwrap(),
                &date,
            )
            .unwrap();
            ws.write_number(1, 4, 705.69).unwrap();
            // A bare number in the date column; a cell beyond the header.
            ws.write_string(2, 0, "990.999.999-66").unwrap();
            ws.write_number(2, 1, 0).unwrap();
            ws.write_boolean(2, 2, false).unwrap();
            ws.write_number(2, 3, 41416).unwrap();
            ws.write_string(2, 10, "beyond").unwrap();
            // A cached error in a typed column; a formula-like text.
            ws.write_string(3, 0, "=1+1").unwrap();
            ws.write_number(3, 1, 0).unwrap();
            ws.write_number(3, 2, 0).unwrap();
            ws.write_formula(3, 4, Formula::new("=1/0").set_result("#DIV/0!"))
                .unwrap();
            // A valid row.
            ws.write_string(4, 0, "041.091.641-25").unwrap();
            ws.write_number(4, 1, 1).unwrap();
            ws.write_number(4, 2, 0).unwrap();
        }
        let bytes = wb.save_to_buffer().unwrap();
        let report_bytes = assert_invariant("typed.xlsx", &bytes);

        // The report keeps the sheet and types: the numeric CPF is a number.
        use calamine::{Data, Reader, Xlsx};
        let mut book = Xlsx::new(std::io::Cursor::new(report_bytes)).unwrap();
        let range = book.worksheet_range("rejected rows").unwrap();
        let header: Vec<String> = range
            .rows()
            .next()
            .unwrap()
            .iter()
            .map(|c| c.to_string())
            .collect();
        assert_eq!(
            header[..5],
            [
                "xlport reason",
                "xlport detail",
                "xlport sheet",
                "xlport row",
                "CPF"
            ]
        );
        assert_eq!(header.last().map(String::as_str), Some("xlport extra 3"));
        let first: Vec<&Data> = range.rows().nth(1).unwrap().iter().collect();
        assert_eq!(first[0].to_string(), "invalid_flag");
        assert_eq!(first[2].to_string(), "Dados");
        assert_eq!(*first[4], Data::Float(4109164125.0));
        assert!(book.sheet_names().contains(&"how to fix".to_owned()));
    }

    #[test]
    fn every_committed_fixture_round_trips() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if !matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("xlsx" | "csv" | "txt" | "xls" | "ods" | "xlsb")
            ) {
                continue;
            }
            let bytes = std::fs::read(&path).unwrap();
            let tmp = Tmp::with("fixture", &bytes);
            let (_, rejected, _) = import(&tmp.0);
            if !rejected.is_empty() {
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                assert_invariant(&name, &bytes);
                seen += 1;
            }
        }
        assert!(
            seen >= 1,
            "no fixture with rejected rows in {}",
            dir.display()
        );
    }

    #[test]
    fn a_fixed_row_imports() {
        let csv =
            format!("{HEADER}\n041.091.641-25;0;0;2013-02-30;;;;\n990.999.999-66;0;0;;;;;;x\n");
        let file = Tmp::with("fix.csv", csv.as_bytes());
        let (info, rejected, _) = import(&file.0);
        assert_eq!(rejected.len(), 2);
        // A person fixes the date, and types the misaligned row's cells in.
        let mut fixed = rejected.clone();
        fixed[0].cells[3] = StoredCell::Text("2013-02-28".into());
        fixed[1].record = None;
        fixed[1].cells = ["990.999.999-66", "0", "0"]
            .iter()
            .map(|s| StoredCell::Text((*s).into()))
            .collect();
        let layout_report = report(&info, &fixed);
        let sent = Tmp::with("fixed.xlsx", &layout_report);
        let (_, again, accepted) = import(&sent.0);
        assert!(again.is_empty(), "{again:?}");
        assert_eq!(accepted, 2);
    }

    #[test]
    fn the_report_is_a_conventional_zip_and_splits_by_bytes() {
        use crate::xlsx::check_conventional_zip;
        let long = "long & <escaped> \"text\" _x0041_ ".repeat(60);
        let cells: Vec<StoredCell> = ["=1+1", "+A1", "@SUM(1)", "-2+3", long.as_str()]
            .iter()
            .map(|s| StoredCell::Text((*s).into()))
            .collect();
        let write = |limit: u64, rows: usize| {
            let layout = ReportLayout {
                header: vec!["A".into(), "B".into(), "C".into(), "D".into(), "E".into()],
                ..ReportLayout::default()
            };
            let mut w =
                ReportWriter::with_sheet_xml_limit(layout, &std::env::temp_dir(), limit).unwrap();
            for i in 0..rows {
                w.write_row(&ReportRow {
                    sheet: None,
                    row_number: i as u64 + 2,
                    reason: "malformed_cpf",
                    message: "CPF `=1+1` & <more>",
                    cells: &cells,
                    failed_field: Some(0),
                    record: None,
                })
                .unwrap();
            }
            let mut out = Vec::new();
            w.finish(&mut out).unwrap();
            out
        };
        let one = write(MAX_SHEET_XML_BYTES, 50);
        let zip = check_conventional_zip(&one).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(zip.with_data_descriptor, zip.names.len());
        let limit = 128 * 1024;
        let split = write(limit, 200);
        let zip = check_conventional_zip(&split).unwrap_or_else(|e| panic!("{e}"));
        assert!(zip.largest_uncompressed <= limit, "{zip:?}");
        use calamine::{Reader, Xlsx};
        let mut book = Xlsx::new(std::io::Cursor::new(split)).unwrap();
        let names = book.sheet_names();
        assert!(names.len() >= 4, "{names:?}");
        assert_eq!(names[1], "rejected rows (2)");
        let mut rows = 0;
        for name in names.iter().filter(|n| n.starts_with("rejected rows")) {
            let range = book.worksheet_range(name).unwrap();
            assert_eq!(range.get((0, 0)).unwrap().to_string(), "xlport reason");
            for r in range.rows().skip(1) {
                assert_eq!(r[3].to_string(), "=1+1", "text, never a formula");
                rows += 1;
            }
        }
        assert_eq!(rows, 200, "every row once");
    }

    #[test]
    fn too_long_text_is_cut_with_a_marker() {
        let long = "x".repeat(40_000);
        let cut = fit_cell(&long);
        assert!(cut.chars().count() <= MAX_CELL_CHARS);
        assert!(
            cut.ends_with("more characters]"),
            "{}",
            &cut[cut.len() - 60..]
        );
        assert_eq!(fit_cell("short"), "short");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Any delimited file of junk and near-valid rows.
        #[test]
        fn generated_csv_reports_round_trip(rows in prop::collection::vec(
            prop::collection::vec(
                prop_oneof![
                    Just("041.091.641-25".to_owned()),
                    Just("990.999.999-66".to_owned()),
                    Just("0".to_owned()),
                    Just("1".to_owned()),
                    Just(String::new()),
                    Just("NULL".to_owned()),
                    Just("22/05/2013".to_owned()),
                    Just("2013-02-30".to_owned()),
                    Just("1.234,56".to_owned()),
                    Just("79.379.491/0008-50".to_owned()),
                    Just("\"a;b\"".to_owned()),
                    Just("=1+1".to_owned()),
                    "[a-z0-9 .,/-]{0,12}",
                ],
                1..12,
            ),
            1..25,
        )) {
            let mut csv = String::from(HEADER);
            for row in &rows {
                csv.push('\n');
                csv.push_str(&row.join(";"));
            }
            let file = Tmp::with("gen.csv", csv.as_bytes());
            let (info, rejected, _) = import(&file.0);
            prop_assume!(!rejected.is_empty());
            let bytes = report(&info, &rejected);
            let sent = Tmp::with("gen-report.xlsx", &bytes);
            let (_, again, accepted) = import(&sent.0);
            prop_assert_eq!(accepted, 0);
            let reasons = |rows: &[RejectedRow]| rows.iter().map(|r| r.reason).collect::<Vec<_>>();
            prop_assert_eq!(reasons(&again), reasons(&rejected));
        }
    }
}
