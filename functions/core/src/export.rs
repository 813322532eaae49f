//! Export encoding: rows as Postgres sends them (`COPY ... TO STDOUT`, text
//! format) in, an .xlsx or .csv byte stream out. The xlsx side uses
//! rust_xlsxwriter's constant-memory worksheets, so memory stays flat however
//! many rows pass through; only the library's temp files grow (in `tmp_dir`).

use std::io::Write;
use std::path::Path;

use chrono::{Datelike, NaiveDate};
use rust_xlsxwriter::{ExcelDateTime, Format, FormatAlign, Workbook, XlsxError};
use serde::{Deserialize, Serialize};

use crate::dataset::{ColumnType, Dataset};
use crate::xlsx::{
    MAX_SHEET_XML_BYTES, NUMBER_CELL_XML_BOUND, ROW_XML_BOUND, SheetXmlBudget,
    string_cell_xml_bound,
};

/// Excel's last row is 1,048,576 (ECMA-376 Part 1, 18.3.1.73: `r` of a `row`
/// is at most 1,048,576 in Excel; LibreOffice 7.4 has the same limit); one is
/// the header.
pub const MAX_DATA_ROWS_PER_SHEET: u32 = 1_048_575;

/// Characters a CPF or CNPJ mask adds to a value: 3 for a CPF, 4 for a CNPJ.
const MASK_GROWTH: u64 = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    Xlsx,
    Csv,
}

impl ExportFormat {
    pub fn extension(self) -> &'static str {
        match self {
            ExportFormat::Xlsx => "xlsx",
            ExportFormat::Csv => "csv",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            ExportFormat::Xlsx => {
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
            }
            ExportFormat::Csv => "text/csv; charset=utf-8",
        }
    }
}

// ---------------------------------------------------------------------------
// Filters

/// A value as an error message shows it: at most 40 characters, so an
/// answer stays small whatever was sent.
fn clip(s: &str) -> String {
    crate::job::clip(s, 40)
}

/// One validated export condition, ready for the store to render as SQL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Condition {
    /// `column = value` on a boolean column (validity flags included).
    Equals { column: String, value: bool },
    /// `column` between `from` and `to`, both inclusive, on a date column.
    DateRange {
        column: String,
        from: Option<NaiveDate>,
        to: Option<NaiveDate>,
    },
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct FilterError(pub String);

/// Parses the `filter` of an export request:
/// `{"private": true, "cpf_valido": false, "data_ultima_compra": {"from": "2020-01-01", "to": "2020-12-31"}}`.
/// Only columns declared `filterable` and the validity flags can be used.
pub fn parse_filter(
    dataset: &Dataset,
    filter: &serde_json::Value,
) -> Result<Vec<Condition>, FilterError> {
    let map = match filter {
        serde_json::Value::Null => return Ok(Vec::new()),
        serde_json::Value::Object(m) => m,
        _ => return Err(FilterError("`filter` must be a JSON object".into())),
    };
    let allowed = || {
        let mut names: Vec<String> = dataset
            .columns
            .iter()
            .filter(|c| c.filterable)
            .map(|c| c.name.clone())
            .collect();
        names.extend(dataset.validity_columns().map(|(_, n, _)| n.to_string()));
        names.join(", ")
    };
    let mut out = Vec::with_capacity(map.len());
    for (name, value) in map {
        let is_flag = dataset.validity_columns().any(|(_, n, _)| n == name);
        let column = dataset.column(name).filter(|c| c.filterable);
        let kind = match (is_flag, column) {
            (true, _) => ColumnType::Boolean,
            (false, Some(c)) => c.kind,
            (false, None) => {
                return Err(FilterError(format!(
                    "unknown filter `{}`; filters for {}: {}",
                    clip(name),
                    dataset.name,
                    allowed()
                )));
            }
        };
        match kind {
            ColumnType::Boolean => {
                let v = value.as_bool().ok_or_else(|| {
                    FilterError(format!("filter `{name}` takes true or false, not {value}"))
                })?;
                out.push(Condition::Equals {
                    column: name.clone(),
                    value: v,
                });
            }
            ColumnType::Date => {
                let range = value.as_object().ok_or_else(|| {
                    FilterError(format!(
                        "filter `{name}` takes {{\"from\": \"YYYY-MM-DD\", \"to\": \"YYYY-MM-DD\"}}"
                    ))
                })?;
                let date = |key: &str| -> Result<Option<NaiveDate>, FilterError> {
                    match range.get(key) {
                        None | Some(serde_json::Value::Null) => Ok(None),
                        Some(serde_json::Value::String(s)) => {
                            let d = NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| {
                                FilterError(format!(
                                    "filter `{name}.{key}`: `{}` is not a date (YYYY-MM-DD)",
                                    clip(s)
                                ))
                            })?;
                            // Postgres has no year 0, and spreadsheets stop at 9999.
                            if !(1..=9999).contains(&d.year()) {
                                return Err(FilterError(format!(
                                    "filter `{name}.{key}`: `{}` is outside the years 0001 to 9999",
                                    clip(s)
                                )));
                            }
                            Ok(Some(d))
                        }
                        Some(other) => Err(FilterError(format!(
                            "filter `{name}.{key}`: {} is not a date (YYYY-MM-DD)",
                            clip(&other.to_string())
                        ))),
                    }
                };
                if let Some(k) = range.keys().find(|k| *k != "from" && *k != "to") {
                    return Err(FilterError(format!(
                        "filter `{name}`: unknown key `{k}` (use from, to)"
                    )));
                }
                let (from, to) = (date("from")?, date("to")?);
                if let (Some(f), Some(t)) = (from, to)
                    && f > t
                {
                    return Err(FilterError(format!(
                        "filter `{name}`: from {f} is after to {t}"
                    )));
                }
                out.push(Condition::DateRange {
                    column: name.clone(),
                    from,
                    to,
                });
            }
            other => {
                return Err(FilterError(format!(
                    "filter `{name}`: {other:?} columns cannot be filtered"
                )));
            }
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// COPY text format

/// Splits one line of `COPY ... TO STDOUT` text format (without its newline)
/// into fields, undoing the backslash escapes; `None` is SQL NULL (`\N`).
pub fn split_copy_line<'a>(line: &'a str, out: &mut Vec<Option<std::borrow::Cow<'a, str>>>) {
    use std::borrow::Cow;
    out.clear();
    // Escapes and NULLs (`\N`) all start with a backslash: most lines have
    // none, and their fields are plain slices.
    if !line.contains('\\') {
        out.extend(line.split('\t').map(|f| Some(Cow::Borrowed(f))));
        return;
    }
    for raw in line.split('\t') {
        if raw == "\\N" {
            out.push(None);
        } else if !raw.contains('\\') {
            out.push(Some(Cow::Borrowed(raw)));
        } else {
            let mut s = String::with_capacity(raw.len());
            let mut chars = raw.chars();
            while let Some(c) = chars.next() {
                if c != '\\' {
                    s.push(c);
                    continue;
                }
                match chars.next() {
                    Some('t') => s.push('\t'),
                    Some('n') => s.push('\n'),
                    Some('r') => s.push('\r'),
                    Some('b') => s.push('\u{8}'),
                    Some('f') => s.push('\u{c}'),
                    Some('v') => s.push('\u{b}'),
                    Some(other) => s.push(other),
                    None => s.push('\\'),
                }
            }
            out.push(Some(Cow::Owned(s)));
        }
    }
}

// ---------------------------------------------------------------------------
// Masks

/// `99099999966` -> `990.999.999-66`; anything not 11 ASCII characters is returned as is.
pub fn mask_cpf(cpf: &str) -> Masked<'_> {
    Masked::new(cpf, 11, &[(3, b'.'), (6, b'.'), (9, b'-')])
}

/// `79379491000850` -> `79.379.491/0008-50` (alphanumeric CNPJs alike).
pub fn mask_cnpj(cnpj: &str) -> Masked<'_> {
    Masked::new(cnpj, 14, &[(2, b'.'), (5, b'.'), (8, b'/'), (12, b'-')])
}

/// The longest masked value: a CNPJ's 14 characters and 4 separators.
const MASKED_LEN: usize = 18;

/// A masked CPF or CNPJ, built on the stack: an export masks three cells a
/// row, and a formatted heap string for each was a measurable share of the
/// encoder's time. Derefs to `str`.
#[derive(Debug, Clone, Copy)]
pub enum Masked<'a> {
    Masked {
        buf: [u8; MASKED_LEN],
        len: u8,
    },
    /// Not the expected length (or not ASCII): shown as stored.
    AsIs(&'a str),
}

impl<'a> Masked<'a> {
    /// `value` of `len` ASCII characters, with `separator` inserted before
    /// each `(index, separator)`.
    fn new(value: &'a str, len: usize, separators: &[(usize, u8)]) -> Self {
        let bytes = value.as_bytes();
        if bytes.len() != len || !value.is_ascii() || len + separators.len() > MASKED_LEN {
            return Masked::AsIs(value);
        }
        let mut buf = [0u8; MASKED_LEN];
        let (mut from, mut at) = (0, 0);
        for &(cut, separator) in separators {
            buf[at..at + cut - from].copy_from_slice(&bytes[from..cut]);
            at += cut - from;
            buf[at] = separator;
            at += 1;
            from = cut;
        }
        buf[at..at + len - from].copy_from_slice(&bytes[from..]);
        Masked::Masked {
            buf,
            len: (at + len - from) as u8,
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            // ASCII in, ASCII separators: always UTF-8.
            Masked::Masked { buf, len } => {
                std::str::from_utf8(&buf[..usize::from(*len)]).unwrap_or_default()
            }
            Masked::AsIs(s) => s,
        }
    }
}

impl std::ops::Deref for Masked<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl std::fmt::Display for Masked<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for Masked<'_> {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

// ---------------------------------------------------------------------------
// Writers

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("xlsx writer: {0}")]
    Xlsx(#[from] XlsxError),
    #[error("output: {0}")]
    Io(#[from] std::io::Error),
    #[error("row {row}: expected {expected} fields from the database, got {got}")]
    Shape {
        row: u64,
        expected: usize,
        got: usize,
    },
}

/// What an encoder needs to know about each exported column.
#[derive(Debug, Clone)]
struct OutColumn {
    header: String,
    kind: ColumnType,
    width: f64,
}

fn out_columns(dataset: &Dataset) -> Vec<OutColumn> {
    let mut cols: Vec<OutColumn> = dataset
        .columns
        .iter()
        .map(|c| OutColumn {
            header: c.header.clone(),
            kind: c.kind,
            width: c.width.unwrap_or(14.0),
        })
        .collect();
    cols.extend(dataset.validity_columns().map(|(_, _, header)| OutColumn {
        header: header.to_string(),
        kind: ColumnType::Boolean,
        width: (header.chars().count() as f64 + 2.0).max(10.0),
    }));
    cols
}

/// A `YYYY-MM-DD` text as an Excel date.
fn iso_date(s: &str) -> Option<ExcelDateTime> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<u16>().ok();
    ExcelDateTime::from_ymd(num(0..4)?, num(5..7)? as u8, num(8..10)? as u8).ok()
}

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
                ColumnType::Cpf | ColumnType::Cnpj => Some(&self.text),
                ColumnType::Date => Some(&self.date),
                ColumnType::Decimal => Some(&self.decimal),
                ColumnType::Boolean | ColumnType::Text => None,
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
                ColumnType::Date | ColumnType::Decimal => {
                    string_cell_xml_bound(v).max(NUMBER_CELL_XML_BOUND)
                }
                ColumnType::Text => string_cell_xml_bound(v),
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
                ColumnType::Text => sheet.write_string(row, c, v.as_ref())?,
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

/// Streams rows into CSV (UTF-8 with BOM, comma-separated, the same masks and
/// headers as the xlsx).
pub struct CsvExport<W: Write> {
    out: csv::Writer<W>,
    dialect: &'static CsvDialect,
    kinds: Vec<ColumnType>,
    rows: u64,
    record: Vec<String>,
}

/// How a CSV export writes its cells: separator, decimal mark, dates, line
/// ends. Dialects are data: a locale is one more entry of [`CSV_DIALECTS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CsvDialect {
    /// The name clients ask for (`csv: {"dialect": NAME}`).
    pub name: &'static str,
    /// What it suits, for people.
    pub description: &'static str,
    pub delimiter: u8,
    /// `,` as the decimal mark (`399,00`).
    pub decimal_comma: bool,
    /// Dates as `DD/MM/YYYY` instead of ISO `YYYY-MM-DD`.
    pub day_month_year: bool,
    /// CRLF line ends (RFC 4180 §2); LF otherwise.
    pub crlf: bool,
}

/// The CSV dialects exports can be written in; the first is the default.
/// Every one is UTF-8 with a BOM (so Excel reads the accents) and reads back
/// into the same table (xlport's import takes `;`, decimal commas and
/// `DD/MM/YYYY`).
pub const CSV_DIALECTS: &[CsvDialect] = &[
    CsvDialect {
        name: "rfc4180",
        description: "`,` between fields, `.` as decimal mark, ISO dates: scripts and US-locale tools",
        delimiter: b',',
        decimal_comma: false,
        day_month_year: false,
        crlf: false,
    },
    CsvDialect {
        name: "excel-br",
        description: "`;` between fields, `,` as decimal mark, DD/MM/YYYY dates, CRLF: Excel and \
                      LibreOffice in Brazilian Portuguese",
        delimiter: b';',
        decimal_comma: true,
        day_month_year: true,
        crlf: true,
    },
];

impl CsvDialect {
    /// The dialect called `name`; the error lists the known ones.
    pub fn named(name: &str) -> Result<&'static CsvDialect, String> {
        CSV_DIALECTS.iter().find(|d| d.name == name).ok_or_else(|| {
            let names: Vec<&str> = CSV_DIALECTS.iter().map(|d| d.name).collect();
            format!(
                "unknown CSV dialect `{}`: use {}",
                name.chars().take(40).collect::<String>(),
                names.join(" or ")
            )
        })
    }

    /// The default dialect (today's RFC 4180 export).
    pub fn default_dialect() -> &'static CsvDialect {
        &CSV_DIALECTS[0]
    }

    /// A Postgres decimal (`-1234.50`) in this dialect.
    fn decimal<'v>(&self, v: &'v str) -> std::borrow::Cow<'v, str> {
        if self.decimal_comma {
            std::borrow::Cow::Owned(v.replacen('.', ",", 1))
        } else {
            std::borrow::Cow::Borrowed(v)
        }
    }

    /// A Postgres date (`2013-05-22`) in this dialect.
    fn date<'v>(&self, v: &'v str) -> std::borrow::Cow<'v, str> {
        let b = v.as_bytes();
        if self.day_month_year && b.len() == 10 && b[4] == b'-' && b[7] == b'-' {
            std::borrow::Cow::Owned(format!("{}/{}/{}", &v[8..10], &v[5..7], &v[0..4]))
        } else {
            std::borrow::Cow::Borrowed(v)
        }
    }
}

/// A cell a spreadsheet would run as a formula gets a leading `'` (OWASP CSV
/// injection); plain numbers, negative ones included, are left alone.
pub fn neutralise_formula(value: &str) -> std::borrow::Cow<'_, str> {
    let risky = value.starts_with(['=', '+', '-', '@', '\t', '\r', '|']);
    if risky && value.parse::<f64>().is_err() {
        std::borrow::Cow::Owned(format!("'{value}"))
    } else {
        std::borrow::Cow::Borrowed(value)
    }
}

impl<W: Write> CsvExport<W> {
    /// A CSV export in the default dialect ([`CsvDialect::default_dialect`]).
    pub fn new(dataset: &Dataset, out: W) -> Result<Self, ExportError> {
        Self::with_dialect(dataset, out, CsvDialect::default_dialect())
    }

    /// A CSV export in `dialect`: a UTF-8 BOM, the header, then the rows.
    pub fn with_dialect(
        dataset: &Dataset,
        mut out: W,
        dialect: &'static CsvDialect,
    ) -> Result<Self, ExportError> {
        out.write_all("\u{feff}".as_bytes())?;
        let columns = out_columns(dataset);
        let mut writer = csv::WriterBuilder::new()
            .delimiter(dialect.delimiter)
            .terminator(if dialect.crlf {
                csv::Terminator::CRLF
            } else {
                csv::Terminator::Any(b'\n')
            })
            .from_writer(out);
        writer
            .write_record(columns.iter().map(|c| c.header.as_str()))
            .map_err(csv_io)?;
        Ok(CsvExport {
            out: writer,
            dialect,
            kinds: columns.iter().map(|c| c.kind).collect(),
            rows: 0,
            record: Vec::new(),
        })
    }

    pub fn write_row(
        &mut self,
        fields: &[Option<std::borrow::Cow<'_, str>>],
    ) -> Result<(), ExportError> {
        if fields.len() != self.kinds.len() {
            return Err(ExportError::Shape {
                row: self.rows + 1,
                expected: self.kinds.len(),
                got: fields.len(),
            });
        }
        self.record.clear();
        for (field, kind) in fields.iter().zip(&self.kinds) {
            let cell = match (field, kind) {
                (None, _) => String::new(),
                (Some(v), ColumnType::Cpf) => mask_cpf(v).to_string(),
                (Some(v), ColumnType::Cnpj) => mask_cnpj(v).to_string(),
                (Some(v), ColumnType::Boolean) => if v == "t" { "1" } else { "0" }.to_string(),
                (Some(v), ColumnType::Decimal) => self.dialect.decimal(v).into_owned(),
                (Some(v), ColumnType::Date) => self.dialect.date(v).into_owned(),
                (Some(v), _) => neutralise_formula(v).into_owned(),
            };
            self.record.push(cell);
        }
        self.out.write_record(&self.record).map_err(csv_io)?;
        self.rows += 1;
        Ok(())
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    pub fn finish(self) -> Result<W, ExportError> {
        self.out
            .into_inner()
            .map_err(|e| ExportError::Io(std::io::Error::other(e.to_string())))
    }
}

fn csv_io(e: csv::Error) -> ExportError {
    ExportError::Io(std::io::Error::other(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Datasets;
    use serde_json::json;
    use std::borrow::Cow;

    fn up() -> Dataset {
        Datasets::builtin()
            .unwrap()
            .get("user_purchase")
            .unwrap()
            .clone()
    }

    #[test]
    fn masks() {
        assert_eq!(mask_cpf("99099999966"), "990.999.999-66");
        assert_eq!(mask_cnpj("79379491000850"), "79.379.491/0008-50");
        assert_eq!(mask_cnpj("12ABC34501DE35"), "12.ABC.345/01DE-35");
        assert_eq!(mask_cpf("123"), "123");
        assert_eq!(mask_cpf("990999999660"), "990999999660");
        assert_eq!(mask_cnpj("7937949100085É"), "7937949100085É");
        assert_eq!(mask_cnpj(""), "");
    }

    #[test]
    fn copy_lines_are_split_and_unescaped() {
        let mut f = Vec::new();
        split_copy_line("a\t\\N\tb\\tc\\\\d\t", &mut f);
        assert_eq!(
            f,
            vec![
                Some(Cow::Borrowed("a")),
                None,
                Some(Cow::Owned("b\tc\\d".to_string())),
                Some(Cow::Borrowed(""))
            ]
        );
        // No backslash anywhere: the fast path, empty fields included.
        split_copy_line("a\t\tc", &mut f);
        assert_eq!(
            f,
            vec![
                Some(Cow::Borrowed("a")),
                Some(Cow::Borrowed("")),
                Some(Cow::Borrowed("c"))
            ]
        );
    }

    #[test]
    fn filters_are_validated_against_the_dataset() {
        let d = up();
        let conds = parse_filter(
            &d,
            &json!({"private": true, "cpf_valido": false, "data_ultima_compra": {"from": "2020-01-01"}}),
        )
        .unwrap();
        assert_eq!(conds.len(), 3);
        assert!(conds.contains(&Condition::DateRange {
            column: "data_ultima_compra".into(),
            from: NaiveDate::from_ymd_opt(2020, 1, 1),
            to: None
        }));
        let err = parse_filter(&d, &json!({"ticket_medio": 3})).unwrap_err();
        assert!(err.0.contains("unknown filter `ticket_medio`"), "{err}");
        assert!(
            err.0.contains("data_ultima_compra"),
            "lists the allowed ones: {err}"
        );
        assert!(parse_filter(&d, &json!({"private": "yes"})).is_err());
        // A date Postgres cannot hold is refused here, not by a failed COPY.
        let e =
            parse_filter(&d, &json!({"data_ultima_compra": {"from": "0000-01-01"}})).unwrap_err();
        assert!(
            e.to_string().contains("outside the years 0001 to 9999"),
            "{e}"
        );
        // An echoed value is bounded.
        let huge = "9".repeat(100_000);
        let e = parse_filter(&d, &json!({"data_ultima_compra": {"from": huge}})).unwrap_err();
        assert!(e.to_string().len() < 200, "{}", e.to_string().len());
        assert!(
            parse_filter(&d, &json!({"data_ultima_compra": {"from": "2020-02-30"}}))
                .unwrap_err()
                .0
                .contains("not a date")
        );
        assert!(
            parse_filter(
                &d,
                &json!({"data_ultima_compra": {"from": "2021-01-01", "to": "2020-01-01"}})
            )
            .is_err()
        );
        assert!(parse_filter(&d, &json!([1])).is_err());
        assert_eq!(parse_filter(&d, &serde_json::Value::Null).unwrap(), vec![]);
    }

    #[test]
    fn formulas_are_neutralised_numbers_are_not() {
        assert_eq!(neutralise_formula("=SUM(A1)"), "'=SUM(A1)");
        assert_eq!(neutralise_formula("@cmd"), "'@cmd");
        assert_eq!(neutralise_formula("-12.50"), "-12.50");
        assert_eq!(neutralise_formula("-1+1"), "'-1+1");
        assert_eq!(neutralise_formula("plain"), "plain");
    }

    fn row(line: &str) -> Vec<Option<Cow<'_, str>>> {
        let mut f = Vec::new();
        split_copy_line(line, &mut f);
        f
    }

    #[test]
    fn csv_export_writes_masks_flags_and_nulls() {
        let d = up();
        let mut csv = CsvExport::new(&d, Vec::new()).unwrap();
        csv.write_row(&row(
            "99099999966\tf\tt\t2013-05-22\t399.00\t-1.50\t79379491000850\t\\N\tf\tt\t\\N",
        ))
        .unwrap();
        let text = String::from_utf8(csv.finish().unwrap()).unwrap();
        let mut lines = text.lines();
        assert!(
            lines
                .next()
                .unwrap()
                .starts_with("\u{feff}CPF,PRIVATE,INCOMPLETO,DATA DA ÚLTIMA COMPRA")
        );
        assert_eq!(
            lines.next().unwrap(),
            "990.999.999-66,0,1,2013-05-22,399.00,-1.50,79.379.491/0008-50,,0,1,"
        );
    }

    #[test]
    fn the_excel_br_dialect_writes_semicolons_decimal_commas_dmy_dates_and_crlf() {
        let d = up();
        let dialect = CsvDialect::named("excel-br").unwrap();
        let mut csv = CsvExport::with_dialect(&d, Vec::new(), dialect).unwrap();
        csv.write_row(&row(
            "99099999966\tf\tt\t2013-05-22\t1234.00\t-1.50\t79379491000850\t\\N\tf\tt\t\\N",
        ))
        .unwrap();
        let text = String::from_utf8(csv.finish().unwrap()).unwrap();
        let lines: Vec<&str> = text.split("\r\n").collect();
        assert_eq!(
            lines[0],
            "\u{feff}CPF;PRIVATE;INCOMPLETO;DATA DA ÚLTIMA COMPRA;TICKET MÉDIO;TICKET DA ÚLTIMA COMPRA;\
             LOJA MAIS FREQUÊNTE;LOJA DA ÚLTIMA COMPRA;CPF VÁLIDO;LOJA MAIS FREQUÊNTE VÁLIDA;\
             LOJA DA ÚLTIMA COMPRA VÁLIDA",
            "one spelling per column"
        );
        assert_eq!(
            lines[1],
            "990.999.999-66;0;1;22/05/2013;1234,00;-1,50;79.379.491/0008-50;;0;1;"
        );
        assert_eq!(lines[2], "", "CRLF after every record");
        assert_eq!(
            CsvDialect::named("excel-xx").unwrap_err(),
            "unknown CSV dialect `excel-xx`: use rfc4180 or excel-br"
        );
        assert_eq!(CsvDialect::default_dialect().name, "rfc4180");
    }

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
    fn xlsx_export_rejects_rows_of_the_wrong_shape() {
        let d = up();
        let dir = std::env::temp_dir();
        let mut x = XlsxExport::new(&d, &dir, 1).unwrap();
        let err = x.write_row(&row("1\t2")).unwrap_err();
        assert!(err.to_string().contains("expected 11 fields"), "{err}");
    }
}
