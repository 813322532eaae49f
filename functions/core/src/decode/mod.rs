//! Streaming decoding of an import file already on local disk
//! (docs/spec/user_purchase.md, "File-level rules").
//!
//! The worker spools the uploaded object to a temp file, calls [`inspect`] to
//! fail fast (not a spreadsheet, missing columns, a limit) before it writes
//! anything, then [`decode_file`], which hands every data row to a visitor as
//! [`Cell`]s in dataset column order. Every decision about what a cell means
//! lives in [`crate::cells`]; this module only finds the rows.
//!
//! Memory stays bounded whatever the file size: xlsx sheets are read with
//! calamine's streaming cell reader (one row held at a time, never
//! `worksheet_range`), text is transcoded and parsed record by record, and the
//! few things that could make a small file expensive (inflated sizes, a shared
//! strings table that lies about its size, one endless text record) are
//! checked against limits first.
//!
//! The entry points and the types they share live here, with the dispatcher
//! (`open`) that picks a reader by what the bytes are; one module per job
//! behind it:
//! - `sniff`: format detection from the first bytes, and the zip guards run
//!   before any workbook is opened;
//! - `xlsx`: `.xlsx`, streamed cell by cell;
//! - `workbook`: `.xls`, `.xlsb` and `.ods`, each sheet read whole;
//! - `sheet`: what the workbook readers share: the table across sheets, a
//!   sheet row handed over, calamine's values as cells;
//! - `header`: header mapping, all formats;
//! - `encoding`: text encodings;
//! - `text`: delimited and whitespace text, header and rows.

use std::fmt::Write as _;
use std::io;
use std::path::Path;

use crate::cells::Cell;
use crate::dataset::{Dataset, normalize_header};

use sniff::{Sniffed, ZipKind, guard_zip, sniff};
use text::{TextSource, open_text, stream_text};
use workbook::{WholeSource, open_whole, stream_whole};
use xlsx::{XlsxSource, open_xlsx, stream_xlsx};

mod encoding;
mod header;
mod sheet;
mod sniff;
mod text;
mod workbook;
mod xlsx;

#[cfg(test)]
mod properties;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;

pub use sniff::MAX_WHOLE_SHEET_INFLATED_BYTES;

/// The longest text record (one CSV record, one whitespace-format line) read
/// into memory. A record is at most a few hundred bytes per column; a longer
/// one is a file without line breaks or an unclosed quote swallowing the rest
/// of the file, and reading it whole would make memory grow with the file.
pub const MAX_TEXT_RECORD_BYTES: u64 = 16 * 1024 * 1024;

/// The characters of one header field kept in [`FileInfo::header`].
pub const MAX_HEADER_CHARS: usize = 255;

/// The header's fields by index, blank where there is none, each bounded.
fn dense_header(headers: &[(usize, String)]) -> Vec<String> {
    let width = headers.iter().map(|(i, _)| i + 1).max().unwrap_or(0);
    let mut dense = vec![String::new(); width];
    for (i, h) in headers {
        dense[*i] = h.chars().take(MAX_HEADER_CHARS).collect();
    }
    dense
}

/// File-level limits (spec "Limits"); the worker fills them from its config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes one part of an xlsx (a sheet, the shared strings...) may inflate
    /// to, counted on the bytes actually inflated (`XLPORT_MAX_SHEET_INFLATED_BYTES`).
    pub max_sheet_inflated_bytes: u64,
    /// Columns a header row may span (`XLPORT_MAX_COLUMNS`).
    pub max_columns: usize,
}

impl Limits {
    /// A header wider than [`max_columns`](Limits::max_columns): `what` (the
    /// header and its width) then `more than the N-column limit
    /// (XLPORT_MAX_COLUMNS)`.
    pub(super) fn too_wide(&self, what: std::fmt::Arguments<'_>) -> DecodeError {
        DecodeError::LimitExceeded(format!(
            "{what} more than the {}-column limit (XLPORT_MAX_COLUMNS)",
            self.max_columns
        ))
    }
}

impl Default for Limits {
    /// The spec's defaults: 1 GiB per sheet, 16,384 columns.
    fn default() -> Self {
        Self {
            max_sheet_inflated_bytes: 1024 * 1024 * 1024,
            max_columns: 16_384,
        }
    }
}

/// What the bytes turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    Xlsx,
    /// Excel 97-2003 (BIFF8), read whole through calamine.
    Xls,
    /// Excel binary workbook, read whole through calamine.
    Xlsb,
    /// OpenDocument spreadsheet, read whole through calamine.
    Ods,
    /// CSV-like text; `delimiter` is `\t`, `;` or `,`.
    Delimited {
        delimiter: u8,
    },
    /// The original format: fields separated by runs of spaces or tabs.
    Whitespace,
    /// Nothing to read: a zero-byte file or only blank lines (a succeeded
    /// import of zero rows, with a warning).
    Empty,
}

impl FileFormat {
    /// Whether the file is a workbook (rows then live on sheets).
    pub fn is_workbook(self) -> bool {
        matches!(self, Self::Xlsx | Self::Xls | Self::Xlsb | Self::Ods)
    }

    /// A short name for people: `xlsx`, `xls`, `csv (delimiter ';')`...
    pub fn name(self) -> String {
        match self {
            Self::Xlsx => "xlsx".into(),
            Self::Xls => "xls".into(),
            Self::Xlsb => "xlsb".into(),
            Self::Ods => "ods".into(),
            Self::Delimited { delimiter } => format!("csv (delimiter {:?})", delimiter as char),
            Self::Whitespace => "text (whitespace-separated)".into(),
            Self::Empty => "empty".into(),
        }
    }
}

/// What was found before the first data row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    pub format: FileFormat,
    /// `utf-8`, `utf-8 (BOM)`, `utf-16le (BOM)`, `utf-16be (BOM)`,
    /// `windows-1252`, or `n/a` for xlsx and zero-byte files.
    pub encoding: &'static str,
    /// The (first) worksheet read (workbooks only).
    pub sheet: Option<String>,
    /// Every worksheet read, in order: the first, then its continuation
    /// sheets (workbooks only).
    pub sheets: Vec<String>,
    /// The header's sheet row (1-based) or physical line; 0 when there is none.
    pub header_row: u64,
    /// The header's fields by field index (`""` where a cell is blank), each
    /// cut to [`MAX_HEADER_CHARS`] characters: the error report repeats it.
    pub header: Vec<String>,
    /// For the user: columns ignored, duplicate headers, an empty file...
    pub warnings: Vec<String>,
    /// Data rows counted (see [`decode_file`]), including those skipped by
    /// `skip_rows`; always 0 from [`inspect`].
    pub data_rows: u64,
}

/// One data row as read.
#[derive(Debug, Clone, Copy)]
pub struct Row<'a> {
    /// The sheet row number (1-based, as Excel shows it) or the physical line
    /// where a text record starts (the header's line counts).
    pub number: u64,
    /// The worksheet the row is on (workbooks only: a table can run on over
    /// continuation sheets).
    pub sheet: Option<&'a str>,
    /// One cell per dataset column, in dataset column order; `Empty` where the
    /// file has nothing.
    pub cells: &'a [Cell<'a>],
    /// Every field of the row as in the file, for the error report: every
    /// cell of the row up to its last one (workbooks) or every field (text),
    /// including those beyond the header.
    pub original: &'a [Cell<'a>],
    /// Text only: the record as the file held it (separators and quotes
    /// included, line ending and leading blank lines excluded).
    pub record: Option<&'a str>,
    /// For each dataset column, the index in `original` of its field.
    pub cell_fields: &'a [usize],
    /// Set when the row's fields cannot be aligned with the header; the
    /// caller rejects it (`wrong_column_count`) before looking at any cell.
    pub field_count_error: Option<Misaligned>,
}

/// Why a row's fields cannot be aligned with the header (spec "Cell rules",
/// `wrong_column_count`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Misaligned {
    /// A text row with more or fewer fields than the header (beyond what the
    /// spreadsheet habits allow), or an unclosed quote.
    Count { found: usize, expected: usize },
    /// A row of an xlport error report that holds only its original record
    /// (column [`REPORT_RECORD_HEADER`]): nobody filled in its cells yet.
    ReportRecord,
}

/// The error report's own columns (see `crate::report`): recognised in a
/// file sent back and never read as data.
pub const REPORT_REASON_HEADER: &str = "xlport reason";
pub const REPORT_DETAIL_HEADER: &str = "xlport detail";
pub const REPORT_SHEET_HEADER: &str = "xlport sheet";
pub const REPORT_ROW_HEADER: &str = "xlport row";
/// The record of a row whose fields could not be aligned with the header,
/// as the file held it.
pub const REPORT_RECORD_HEADER: &str = "xlport original record";

/// Whether `header` is one of the error report's own columns.
pub fn is_report_header(header: &str) -> bool {
    let key = normalize_header(header);
    [
        REPORT_REASON_HEADER,
        REPORT_DETAIL_HEADER,
        REPORT_SHEET_HEADER,
        REPORT_ROW_HEADER,
        REPORT_RECORD_HEADER,
    ]
    .iter()
    .any(|h| normalize_header(h) == key)
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Not something xlport reads (a PDF, an image, an .xls...); says what it
    /// looks like and what to do.
    #[error("the file is not a spreadsheet xlport can read: {0}")]
    NotASpreadsheet(String),
    /// A spreadsheet or text file that is damaged; says what is wrong.
    #[error("{0}")]
    Corrupt(String),
    /// Required columns absent from the header: their headers as the dataset
    /// spells them, and the sheet looked at (xlsx).
    #[error("{}", missing_columns_message(missing, sheet.as_deref()))]
    MissingColumns {
        missing: Vec<String>,
        sheet: Option<String>,
    },
    /// A column the dataset reads appears twice in the header: which copy
    /// holds the data cannot be known.
    #[error(
        "the column `{column}` appears more than once in the header ({first} and {second}{}); \
         keep one and upload again",
        sheet.as_deref().map(|s| format!(", sheet `{s}`")).unwrap_or_default()
    )]
    DuplicateColumn {
        column: String,
        first: String,
        second: String,
        sheet: Option<String>,
    },
    /// Content after the header, but no data row in it: says what was found.
    #[error("{0}")]
    NoDataRows(String),
    /// A limit was passed; names the limit and its value.
    #[error("{0}")]
    LimitExceeded(String),
    #[error("cannot read the file: {0}")]
    Io(#[from] io::Error),
    /// The visitor's own error, passed through unchanged.
    #[error("{0}")]
    Visitor(String),
}

fn missing_columns_message(missing: &[String], sheet: Option<&str>) -> String {
    let mut out = String::from("missing required columns: ");
    for (i, m) in missing.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "`{m}`");
    }
    if let Some(sheet) = sheet {
        let _ = write!(
            out,
            " (in the first row of sheet `{sheet}` that is not empty)"
        );
    }
    out
}

/// Detects the format, finds the header and maps it to the dataset's columns,
/// checking the limits, without handing over any data row: the check the
/// worker runs before it writes anything. It reads the whole file once,
/// sequentially and in bounded memory (text: the strict UTF-8 check; xlsx:
/// inflating every part to count its bytes), but parses no data row.
pub fn inspect(path: &Path, dataset: &Dataset, limits: &Limits) -> Result<FileInfo, DecodeError> {
    Ok(match open(path, dataset, limits)? {
        Source::Nothing(info) => info,
        Source::Xlsx(x) => x.table.info,
        Source::Whole(w) => w.table.info,
        Source::Text(t) => t.info,
    })
}

/// Detects the format from the bytes, finds the header, maps the columns,
/// then calls `visit` once per data row in file order.
///
/// Rows whose mapped cells are all blank (see [`Cell::is_blank`]) are neither
/// counted nor visited, unless a text row has a wrong field count and some
/// field that is not blank: such rows are counted and visited with
/// `field_count_error` set. A text row whose every field is blank is skipped
/// whatever its field count (Excel writes blank rows as `;;;;;;;`).
///
/// `skip_rows`: how many leading counted rows to pass over without calling
/// `visit` (resuming after committed parts).
///
/// Runs every check [`inspect`] runs, so it is safe on its own.
pub fn decode_file(
    path: &Path,
    dataset: &Dataset,
    limits: &Limits,
    skip_rows: u64,
    visit: &mut dyn FnMut(&Row<'_>) -> Result<(), String>,
) -> Result<FileInfo, DecodeError> {
    let mut emitter = Emitter {
        visit,
        skip: skip_rows,
        counted: 0,
        padded_rows: 0,
        trimmed_rows: 0,
        ignored_rows: 0,
    };
    let mut info = match open(path, dataset, limits)? {
        Source::Nothing(info) => return Ok(info),
        Source::Xlsx(x) => {
            let mut info = x.table.info.clone();
            stream_xlsx(x, &mut emitter)?;
            info.data_rows = emitter.counted;
            info
        }
        Source::Whole(w) => {
            let mut info = w.table.info.clone();
            stream_whole(*w, &mut emitter)?;
            info.data_rows = emitter.counted;
            info
        }
        Source::Text(t) => {
            let mut info = t.info.clone();
            stream_text(t, &mut emitter)?;
            info.data_rows = emitter.counted;
            info
        }
    };
    // Never a silent empty success (spec "File-level rules"): content after
    // the header that yields no row is a failure that says what was found.
    if info.data_rows == 0 && emitter.ignored_rows > 0 {
        return Err(DecodeError::NoDataRows(format!(
            "{} {} after the header {} values only in columns that are not read, and none \
             in the dataset's columns: check that the data sits under the header's columns",
            emitter.ignored_rows,
            plural(emitter.ignored_rows, "row", "rows"),
            plural(emitter.ignored_rows, "holds", "hold"),
        )));
    }
    if emitter.padded_rows > 0 {
        info.warnings.push(format!(
            "{} {} fewer fields than the header; their missing trailing fields were read as empty",
            emitter.padded_rows,
            plural(emitter.padded_rows, "row had", "rows had"),
        ));
    }
    if emitter.trimmed_rows > 0 {
        info.warnings.push(format!(
            "{} {} empty fields beyond the header; they were ignored",
            emitter.trimmed_rows,
            plural(emitter.trimmed_rows, "row had", "rows had"),
        ));
    }
    if info.data_rows == 0 {
        info.warnings
            .push("the file has a header but no data rows".to_owned());
    }
    Ok(info)
}

/// The first `max` items joined with ", ", then "and N more": a list a
/// warning echoes stays short whatever the file holds.
fn listed(items: &[String], max: usize) -> String {
    if items.len() <= max {
        return items.join(", ");
    }
    format!(
        "{}, and {} more",
        items[..max].join(", "),
        items.len() - max
    )
}

fn plural<'w>(n: u64, one: &'w str, many: &'w str) -> &'w str {
    if n == 1 { one } else { many }
}

/// Counts rows the way the caller does and passes over the first `skip`.
struct Emitter<'v> {
    visit: &'v mut dyn FnMut(&Row<'_>) -> Result<(), String>,
    skip: u64,
    counted: u64,
    /// Delimited rows shorter than the header, read with the missing
    /// trailing (nullable) fields empty.
    padded_rows: u64,
    /// Delimited rows longer than the header whose extra fields were empty.
    trimmed_rows: u64,
    /// Rows holding values only in columns the dataset does not read.
    ignored_rows: u64,
}

impl Emitter<'_> {
    fn emit(&mut self, row: &Row<'_>) -> Result<(), DecodeError> {
        self.counted += 1;
        if self.counted <= self.skip {
            return Ok(());
        }
        (self.visit)(row).map_err(DecodeError::Visitor)
    }
}

/// A file opened, recognised and its header mapped.
enum Source {
    /// Nothing to read (zero bytes, blank lines, an empty workbook).
    Nothing(FileInfo),
    /// Boxed: calamine's workbook is large next to the other variants.
    Xlsx(Box<XlsxSource>),
    /// `.xls`, `.xlsb`, `.ods`: each sheet read whole.
    Whole(Box<WholeSource>),
    Text(TextSource),
}

fn open(path: &Path, dataset: &Dataset, limits: &Limits) -> Result<Source, DecodeError> {
    match sniff(path)? {
        Sniffed::Empty => Ok(Source::Nothing(FileInfo {
            format: FileFormat::Empty,
            encoding: "n/a",
            sheet: None,
            sheets: Vec::new(),
            header: Vec::new(),
            header_row: 0,
            warnings: vec!["the file is empty".to_owned()],
            data_rows: 0,
        })),
        Sniffed::Zip => match guard_zip(path, limits)? {
            ZipKind::Xlsx => open_xlsx(path, dataset, limits),
            ZipKind::Xlsb => open_whole(path, dataset, limits, FileFormat::Xlsb),
            ZipKind::Ods => open_whole(path, dataset, limits, FileFormat::Ods),
        },
        Sniffed::Ole2 => open_whole(path, dataset, limits, FileFormat::Xls),
        Sniffed::Text(bom) => open_text(path, bom, dataset, limits),
    }
}
