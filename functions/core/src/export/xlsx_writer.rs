//! The .xlsx export: rust_xlsxwriter's constant-memory worksheets, a new
//! sheet at Excel's row limit or before a sheet's XML could pass
//! [`MAX_SHEET_XML_BYTES`], so every zip entry stays under 4 GiB and the file
//! is a conventional zip without Zip64 records (see [`crate::xlsx`]).

use std::io::Write;
use std::path::Path;

use rust_xlsxwriter::{ExcelDateTime, Format, FormatAlign, Workbook};

use super::mask::{MASK_GROWTH, mask_cnpj, mask_cpf};
use super::{ExportError, MAX_DATA_ROWS_PER_SHEET, OutColumn, out_columns};
use chrono::{Datelike, Timelike};

use crate::cells::{iso_date_fields, timestamp_fields};
use crate::dataset::{ColumnType, Dataset};
use crate::xlsx::{
    MAX_SHEET_XML_BYTES, NUMBER_CELL_XML_BOUND, ROW_XML_BOUND, SheetXmlBudget,
    string_cell_xml_bound,
};

/// A `YYYY-MM-DD` text as an Excel date.
fn iso_date(s: &str) -> Option<ExcelDateTime> {
    let (year, month, day) = iso_date_fields(s)?;
    let num = |field: &str| field.parse::<u16>().ok();
    ExcelDateTime::from_ymd(num(year)?, num(month)? as u8, num(day)? as u8).ok()
}

/// A timestamp as Postgres prints it (`2026-01-02 03:04:05+00`, fractional
/// seconds optional, with or without an offset) as an Excel date-time: the
/// wall-clock time as printed, rounded to the millisecond Excel keeps
/// (docs/spec/datasets.md, "Export"). `None` outside Excel's years
/// 1900..=9999 or for text it is not (`infinity`, a BC date).
fn pg_timestamp(s: &str) -> Option<ExcelDateTime> {
    let (local, _offset) = timestamp_fields(s)?;
    let rounded = local.checked_add_signed(chrono::TimeDelta::microseconds(500))?;
    let year = u16::try_from(rounded.year()).ok().filter(|y| *y >= 1900)?;
    let milli = u16::try_from(rounded.nanosecond() / 1_000_000).ok()?;
    ExcelDateTime::from_ymd(year, rounded.month() as u8, rounded.day() as u8)
        .ok()?
        .and_hms_milli(
            rounded.hour() as u16,
            rounded.minute() as u8,
            rounded.second() as u8,
            milli.min(999),
        )
        .ok()
}

/// The largest integer magnitude written as a numeric cell: Excel keeps 15
/// significant digits, so larger values are written as text, which reads
/// back exactly.
const EXACT_IN_EXCEL: i64 = 999_999_999_999_999;

/// Streams rows into a workbook of constant-memory worksheets.
///
/// A sheet ends at Excel's row limit ([`MAX_DATA_ROWS_PER_SHEET`]) or before
/// its XML could pass [`MAX_SHEET_XML_BYTES`], whichever comes first, and the
/// rows go on in a sheet named `NAME (2)`, `NAME (3)`...: so every zip entry
/// stays under 4 GiB and the file is a conventional zip with no Zip64 records
/// (see [`crate::xlsx`]), which every spreadsheet program opens.
pub struct XlsxExport {
    workbook: Workbook,
    columns: Vec<OutColumn>,
    sheet_name: String,
    header: Format,
    date: Format,
    decimal: Format,
    text: Format,
    integer: Format,
    timestamp: Format,
    sheet_index: usize,
    rows_in_sheet: u32,
    rows: u64,
    fields: usize,
    budget: SheetXmlBudget,
}

impl XlsxExport {
    /// `tmp_dir` holds the library's per-sheet temp files (about 300 MB per
    /// million rows of user_purchase); `compression` is the zip level (1..=9).
    /// Sheets take at most [`MAX_SHEET_XML_BYTES`] of XML each.
    pub fn new(dataset: &Dataset, tmp_dir: &Path, compression: u8) -> Result<Self, ExportError> {
        Self::with_sheet_xml_limit(dataset, tmp_dir, compression, MAX_SHEET_XML_BYTES)
    }

    /// As [`XlsxExport::new`], with sheets of at most `max_sheet_xml_bytes`
    /// bytes of XML (an upper bound, counted as rows are written; a single
    /// row larger than that still goes into a sheet of its own). Production
    /// uses [`MAX_SHEET_XML_BYTES`]; tests set it small to see the split.
    pub fn with_sheet_xml_limit(
        dataset: &Dataset,
        tmp_dir: &Path,
        compression: u8,
        max_sheet_xml_bytes: u64,
    ) -> Result<Self, ExportError> {
        let mut workbook = Workbook::new();
        workbook.set_tempdir(tmp_dir)?;
        workbook.set_zip_compression_level(compression.clamp(1, 9));
        // No `use_zip_large_file`: that writes every entry as Zip64, which
        // LibreOffice cannot open. Sheets are split before 4 GiB instead.
        let columns = out_columns(dataset);
        let mut export = XlsxExport {
            workbook,
            sheet_name: dataset
                .sheet_name
                .clone()
                .unwrap_or_else(|| dataset.name.clone()),
            fields: columns.len(),
            columns,
            header: Format::new()
                .set_bold()
                .set_align(FormatAlign::Center)
                .set_background_color(0xD9E1F2),
            date: Format::new().set_num_format("yyyy-mm-dd"),
            decimal: Format::new().set_num_format("#,##0.00"),
            text: Format::new().set_num_format("@"),
            integer: Format::new().set_num_format("0"),
            timestamp: Format::new().set_num_format("yyyy-mm-dd hh:mm:ss"),
            sheet_index: 0,
            rows_in_sheet: 0,
            rows: 0,
            budget: SheetXmlBudget::new(max_sheet_xml_bytes),
        };
        export.add_sheet()?;
        Ok(export)
    }

    fn add_sheet(&mut self) -> Result<(), ExportError> {
        let number = self.workbook.worksheets().len() + 1;
        let name = if number == 1 {
            self.sheet_name.clone()
        } else {
            format!("{} ({number})", self.sheet_name)
        };
        let sheet = self.workbook.add_worksheet_with_constant_memory()?;
        sheet.set_name(truncate_sheet_name(&name))?;
        for (i, c) in self.columns.iter().enumerate() {
            let col = i as u16;
            sheet.set_column_width(col, c.width)?;
            // Cells are written without a format of their own and take their
            // column's: the library looks a column format up by number, but
            // hashes a whole Format for every cell written with one.
            let format = match c.kind {
                ColumnType::Cpf | ColumnType::Cnpj | ColumnType::Uuid => Some(&self.text),
                ColumnType::Date => Some(&self.date),
                ColumnType::Decimal => Some(&self.decimal),
                ColumnType::Integer => Some(&self.integer),
                ColumnType::Timestamp => Some(&self.timestamp),
                ColumnType::Boolean
                | ColumnType::Text
                | ColumnType::Float
                | ColumnType::Enum
                | ColumnType::Json => None,
            };
            if let Some(format) = format {
                sheet.set_column_format(col, format)?;
            }
            sheet.write_string_with_format(0, col, &c.header, &self.header)?;
        }
        sheet.set_freeze_panes(1, 0)?;
        self.sheet_index = number - 1;
        self.rows_in_sheet = 0;
        self.budget.start_sheet(self.columns.len());
        let header = ROW_XML_BOUND
            + self
                .columns
                .iter()
                .map(|c| string_cell_xml_bound(&c.header))
                .sum::<u64>();
        self.budget.add(header);
        Ok(())
    }

    /// Bytes of XML the row of `fields` can take, at most, whatever cell
    /// types they are written as (masks add up to [`MASK_GROWTH`] characters).
    fn row_xml_bound(&self, fields: &[Option<std::borrow::Cow<'_, str>>]) -> u64 {
        let mut bytes = ROW_XML_BOUND;
        for (field, col) in fields.iter().zip(&self.columns) {
            let Some(v) = field else { continue };
            bytes += match col.kind {
                ColumnType::Boolean => NUMBER_CELL_XML_BOUND,
                ColumnType::Cpf | ColumnType::Cnpj => string_cell_xml_bound(v) + MASK_GROWTH,
                // Written as a number when it parses, as text otherwise.
                ColumnType::Date
                | ColumnType::Decimal
                | ColumnType::Integer
                | ColumnType::Float
                | ColumnType::Timestamp => string_cell_xml_bound(v).max(NUMBER_CELL_XML_BOUND),
                ColumnType::Text | ColumnType::Uuid | ColumnType::Enum | ColumnType::Json => {
                    string_cell_xml_bound(v)
                }
            };
        }
        bytes
    }

    /// Writes one row of COPY text fields (stored columns, then validity flags).
    pub fn write_row(
        &mut self,
        fields: &[Option<std::borrow::Cow<'_, str>>],
    ) -> Result<(), ExportError> {
        if fields.len() != self.fields {
            return Err(ExportError::Shape {
                row: self.rows + 1,
                expected: self.fields,
                got: fields.len(),
            });
        }
        let row_bytes = self.row_xml_bound(fields);
        if self.rows_in_sheet == MAX_DATA_ROWS_PER_SHEET
            || (self.rows_in_sheet > 0 && !self.budget.fits(row_bytes))
        {
            self.add_sheet()?;
        }
        self.budget.add(row_bytes);
        let row = self.rows_in_sheet + 1;
        // Field-by-field borrows: the sheet from the workbook, formats beside it.
        let sheet = self.workbook.worksheet_from_index(self.sheet_index)?;
        for (i, (field, col)) in fields.iter().zip(&self.columns).enumerate() {
            let Some(v) = field else { continue };
            let c = i as u16;
            match col.kind {
                ColumnType::Cpf => sheet.write_string(row, c, mask_cpf(v).as_str())?,
                ColumnType::Cnpj => sheet.write_string(row, c, mask_cnpj(v).as_str())?,
                ColumnType::Boolean => sheet.write_boolean(row, c, v == "t")?,
                ColumnType::Date => match iso_date(v) {
                    Some(d) => sheet.write_datetime(row, c, &d)?,
                    None => sheet.write_string(row, c, v.as_ref())?,
                },
                ColumnType::Decimal => match v.parse::<f64>() {
                    Ok(n) => sheet.write_number(row, c, n)?,
                    Err(_) => sheet.write_string(row, c, v.as_ref())?,
                },
                ColumnType::Integer => match v.parse::<i64>() {
                    Ok(n) if (-EXACT_IN_EXCEL..=EXACT_IN_EXCEL).contains(&n) => {
                        sheet.write_number(row, c, n as f64)?
                    }
                    _ => sheet.write_string(row, c, v.as_ref())?,
                },
                ColumnType::Float => match v.parse::<f64>() {
                    Ok(x) if x.is_finite() => sheet.write_number(row, c, x)?,
                    _ => sheet.write_string(row, c, v.as_ref())?,
                },
                ColumnType::Timestamp => match pg_timestamp(v) {
                    Some(t) => sheet.write_datetime(row, c, &t)?,
                    None => sheet.write_string(row, c, v.as_ref())?,
                },
                ColumnType::Text | ColumnType::Uuid | ColumnType::Enum | ColumnType::Json => {
                    sheet.write_string(row, c, v.as_ref())?
                }
            };
        }
        self.rows_in_sheet += 1;
        self.rows += 1;
        Ok(())
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    pub fn sheets(&self) -> usize {
        self.sheet_index + 1
    }

    /// Zips the workbook into `out`. Compression happens here, as the bytes leave.
    pub fn finish<W: Write + Send>(mut self, out: W) -> Result<(), ExportError> {
        self.workbook.save_to_writer(out)?;
        Ok(())
    }
}

fn truncate_sheet_name(name: &str) -> String {
    name.chars()
        .filter(|c| !matches!(c, '[' | ']' | ':' | '*' | '?' | '/' | '\\'))
        .take(31)
        .collect()
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;
    use crate::Datasets;
    use crate::export::test_support::{TYPED_ROWS, row, typed, up};

    /// A dataset of `n` text columns `c01..`, keyed by the first.
    fn text_dataset(n: usize) -> Dataset {
        let mut toml = String::from(
            "[[dataset]]\nname = \"wide\"\ntable = \"wide\"\nkey = \"c01\"\nsheet_name = \"wide\"\n",
        );
        for i in 1..=n {
            toml.push_str(&format!(
                "[[dataset.column]]\nname = \"c{i:02}\"\nheader = \"C{i:02}\"\ntype = \"text\"\nnullable = {}\n",
                i > 1
            ));
        }
        Datasets::parse(&toml, "test")
            .unwrap()
            .get("wide")
            .unwrap()
            .clone()
    }

    /// The uncompressed size of each worksheet part, in sheet order.
    fn sheet_part_sizes(xlsx: &[u8]) -> Vec<u64> {
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(xlsx)).unwrap();
        let mut sizes = Vec::new();
        for n in 1.. {
            match zip.by_name(&format!("xl/worksheets/sheet{n}.xml")) {
                Ok(f) => sizes.push(f.size()),
                Err(_) => break,
            }
        }
        sizes
    }

    fn user_purchase_line(i: u64) -> String {
        format!(
            "{:011}\tf\tt\t2013-05-{:02}\t{i}.50\t-1.50\t79379491000850\t\\N\tf\tt\t\\N",
            10_000_000_000u64 + i,
            1 + i % 28
        )
    }

    #[test]
    fn an_xlsx_export_is_a_conventional_zip() {
        let dir = std::env::temp_dir();
        let mut x = XlsxExport::new(&up(), &dir, 6).unwrap();
        for i in 0..500 {
            x.write_row(&row(&user_purchase_line(i))).unwrap();
        }
        assert_eq!(x.sheets(), 1);
        let mut out = Vec::new();
        x.finish(&mut out).unwrap();
        let zip = crate::xlsx::check_conventional_zip(&out).unwrap_or_else(|e| panic!("{e}"));
        assert!(zip.names.iter().any(|n| n == "xl/worksheets/sheet1.xml"));
        // Written as a stream (into an S3 multipart upload): every entry has
        // its sizes in a data descriptor.
        assert_eq!(zip.with_data_descriptor, zip.names.len());
    }

    #[test]
    fn a_wide_export_starts_a_new_sheet_before_the_byte_limit() {
        let limit = 256 * 1024;
        let d = text_dataset(30);
        let dir = std::env::temp_dir();
        let mut x = XlsxExport::with_sheet_xml_limit(&d, &dir, 1, limit).unwrap();
        // 30 cells of ~400 bytes, some of them escaped: ~12 KB a row, so the
        // byte limit, not the row limit, ends each sheet.
        let rows = 100u64;
        let mut want = Vec::new();
        for i in 0..rows {
            let cells: Vec<String> = (0..30)
                .map(|c| match c {
                    0 => format!("key {i:04}"),
                    1 => "=1+1 & <b> \"q\" _x0041_ ".repeat(10),
                    _ => format!("{c}:{i}:").repeat(50),
                })
                .collect();
            let fields: Vec<Option<Cow<'_, str>>> = cells
                .iter()
                .map(|c| Some(Cow::Borrowed(c.as_str())))
                .collect();
            x.write_row(&fields).unwrap();
            want.push(cells);
        }
        let sheets = x.sheets();
        assert!(sheets >= 4, "{sheets} sheets");
        let mut out = Vec::new();
        x.finish(&mut out).unwrap();
        crate::xlsx::check_conventional_zip(&out).unwrap_or_else(|e| panic!("{e}"));
        let sizes = sheet_part_sizes(&out);
        assert_eq!(sizes.len(), sheets);
        for (n, size) in sizes.iter().enumerate() {
            assert!(*size <= limit, "sheet {} has {size} bytes of XML", n + 1);
        }
        // Full sheets: the split wastes less than a row or two of the budget.
        assert!(sizes[0] > limit / 2, "{sizes:?}");

        // Every row once, in order, under the header of each sheet.
        let mut book =
            calamine::open_workbook_from_rs::<calamine::Xlsx<_>, _>(std::io::Cursor::new(out))
                .unwrap();
        use calamine::Reader;
        let names = book.sheet_names();
        assert_eq!(names[0], "wide");
        assert_eq!(names[1], "wide (2)");
        let mut got = Vec::new();
        for name in names {
            let range = book.worksheet_range(&name).unwrap();
            let mut it = range.rows();
            assert_eq!(it.next().unwrap()[0].to_string(), "C01");
            got.extend(it.map(|r| r.iter().map(|c| c.to_string()).collect::<Vec<_>>()));
        }
        assert_eq!(got, want);
    }

    #[test]
    fn the_sheet_xml_bound_holds_for_text_that_escapes() {
        let d = text_dataset(6);
        let dir = std::env::temp_dir();
        let mut x = XlsxExport::new(&d, &dir, 1).unwrap();
        // Each of these grows when rust_xlsxwriter escapes it: control
        // characters to _xHHHH_ (7x), literal _xHHHH_ gets _x005F, & < >,
        // U+FFFE, white space at the ends (xml:space), long numbers.
        let nasty = [
            "\u{1}\u{2}\u{1f}\u{b}".repeat(200),
            "_x0041__xFFFF_".repeat(100),
            "&&<<>>\"'".repeat(100),
            "\u{fffe}\u{ffff}".repeat(100),
            " padded ".to_string(),
            "-2.2250738585072014e-308".to_string(),
        ];
        let fields: Vec<Option<Cow<'_, str>>> = nasty
            .iter()
            .map(|c| Some(Cow::Borrowed(c.as_str())))
            .collect();
        for _ in 0..50 {
            x.write_row(&fields).unwrap();
        }
        let bound = x.budget.used();
        let mut out = Vec::new();
        x.finish(&mut out).unwrap();
        let actual = sheet_part_sizes(&out)[0];
        assert!(actual <= bound, "{actual} bytes of XML, bounded by {bound}");

        // Plain user_purchase rows: the bound is not far off, so sheets are
        // not split much earlier than they need.
        let mut x = XlsxExport::new(&up(), &dir, 1).unwrap();
        for i in 0..2_000 {
            x.write_row(&row(&user_purchase_line(i))).unwrap();
        }
        let bound = x.budget.used();
        let mut out = Vec::new();
        x.finish(&mut out).unwrap();
        let actual = sheet_part_sizes(&out)[0];
        assert!(actual <= bound, "{actual} bytes of XML, bounded by {bound}");
        assert!(
            bound < 4 * actual,
            "{actual} bytes of XML, bounded by {bound}"
        );
    }

    #[test]
    fn typed_columns_are_numbers_date_times_and_text() {
        use calamine::{Data, Reader};

        use crate::cells::{Cell, TimestampRule, parse_timestamp};
        let dir = std::env::temp_dir();
        let mut x = XlsxExport::new(&typed(), &dir, 1).unwrap();
        for line in TYPED_ROWS {
            x.write_row(&row(line)).unwrap();
        }
        let mut out = Vec::new();
        x.finish(&mut out).unwrap();
        let styles = {
            let mut zip = zip::ZipArchive::new(std::io::Cursor::new(&out)).unwrap();
            let mut text = String::new();
            std::io::Read::read_to_string(&mut zip.by_name("xl/styles.xml").unwrap(), &mut text)
                .unwrap();
            text
        };
        assert!(
            styles.contains(r#"formatCode="yyyy-mm-dd hh:mm:ss""#),
            "{styles}"
        );
        let mut book =
            calamine::open_workbook_from_rs::<calamine::Xlsx<_>, _>(std::io::Cursor::new(out))
                .unwrap();
        let range = book.worksheet_range("typed").unwrap();
        let rows: Vec<&[Data]> = range.rows().collect();
        // A date-time cell, read back by the import's rule.
        let at = |cell: &Data| match cell {
            Data::DateTime(d) => {
                parse_timestamp(&Cell::DateSerial(d.as_f64()), TimestampRule::default())
                    .map(|t| t.to_string())
                    .ok()
            }
            _ => None,
        };
        let text = |s: &str| Data::String(s.into());
        assert_eq!(rows[1][1], Data::Float(42.0));
        assert_eq!(rows[1][2], Data::Float(-1.5));
        assert_eq!(
            at(&rows[1][3]).as_deref(),
            Some("2026-01-02 03:04:05.500000+00:00")
        );
        assert_eq!(rows[1][4], text("0f8fad5b-d9cb-469f-a165-70867728950e"));
        assert_eq!(rows[1][5], text("Em Trânsito"));
        assert_eq!(rows[1][6], text("{\"a\": 1}"));
        // Beyond Excel's 15 digits an integer is text, which reads back exactly;
        // a timestamp keeps the wall-clock time Postgres printed.
        assert_eq!(rows[2][1], text("9223372036854775807"));
        assert_eq!(rows[2][2], Data::Float(1e20));
        assert_eq!(
            at(&rows[2][3]).as_deref(),
            Some("2026-01-02 03:04:05+00:00")
        );
        assert_eq!(rows[2][6], text("[1]"));
        // What a file never brings, written as Postgres printed it.
        assert_eq!(rows[3][1], Data::Empty);
        assert_eq!(rows[3][2], text("NaN"));
        assert_eq!(rows[3][3], text("infinity"));
    }

    #[test]
    fn postgres_timestamps_become_excel_date_times_to_the_millisecond() {
        let serial = |s: &str| pg_timestamp(s).map(|d| d.to_excel());
        let day = 46024.0; // 2026-01-02
        assert_eq!(serial("2026-01-02 00:00:00+00"), Some(day));
        assert_eq!(serial("2026-01-02 12:00:00"), Some(day + 0.5));
        assert_eq!(serial("2026-01-02 12:00:00.0004-03"), Some(day + 0.5));
        assert_eq!(
            serial("2026-01-02 23:59:59.9996+05:30"),
            Some(day + 1.0),
            "rounded to the millisecond, into the next day"
        );
        assert_eq!(serial("1899-12-31 00:00:00+00"), None);
        assert_eq!(serial("infinity"), None);
        assert_eq!(serial("2026-01-02 03:04:05 BC"), None);
    }

    #[test]
    fn xlsx_export_rejects_rows_of_the_wrong_shape() {
        let d = up();
        let dir = std::env::temp_dir();
        let mut x = XlsxExport::new(&d, &dir, 1).unwrap();
        let err = x.write_row(&row("1\t2")).unwrap_err();
        assert!(err.to_string().contains("expected 11 fields"), "{err}");
    }
}
