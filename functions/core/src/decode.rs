//! Streaming decoding of an import file already on local disk
//! (shared/spec/user_purchase.md, "File-level rules").
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

use std::cell::Cell as Shared;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::rc::Rc;

use calamine::{
    CellErrorType, Data, DataRef, ExcelDateTime, ExcelDateTimeType, Range, Reader, SheetType, Xlsx,
    XlsxCellReader, XlsxError,
};
use encoding_rs::{CoderResult, Decoder, Encoding};

use crate::cells::Cell;
use crate::dataset::{Dataset, normalize_header};

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

/// How many bytes of the file are looked at to recognise its format.
const SNIFF_BYTES: u64 = 8 * 1024;

/// File-level limits (spec "Limits"); the worker fills them from its config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes one part of an xlsx (a sheet, the shared strings...) may inflate
    /// to, counted on the bytes actually inflated (`XLPORT_MAX_SHEET_INFLATED_BYTES`).
    pub max_sheet_inflated_bytes: u64,
    /// Columns a header row may span (`XLPORT_MAX_COLUMNS`).
    pub max_columns: usize,
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
        Source::Xlsx(x) => x.info,
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
            let mut info = x.info.clone();
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

// ---------------------------------------------------------------------------
// Format detection
// ---------------------------------------------------------------------------

enum Sniffed {
    Empty,
    Zip,
    /// An OLE2 compound document: an Excel 97-2003 workbook, or an
    /// encrypted .xlsx (which Office wraps in one).
    Ole2,
    /// Text, with the encoding its BOM announces, if any.
    Text(Option<TextEncoding>),
}

const OLE2_MAGIC: &[u8] = &[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];

/// Recognises the file from its first bytes: the name and the declared
/// content type can both be wrong, the bytes cannot.
fn sniff(path: &Path) -> Result<Sniffed, DecodeError> {
    let mut head = Vec::new();
    File::open(path)?.take(SNIFF_BYTES).read_to_end(&mut head)?;
    if head.is_empty() {
        return Ok(Sniffed::Empty);
    }
    if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        return Ok(Sniffed::Zip);
    }
    if head.starts_with(OLE2_MAGIC) {
        return Ok(Sniffed::Ole2);
    }
    if let Some(bom) = TextEncoding::from_bom(&head) {
        return Ok(Sniffed::Text(Some(bom)));
    }
    const MAGIC: &[(&[u8], &str)] = &[
        (b"%PDF", "a PDF document"),
        (b"\x89PNG", "a PNG image"),
        (b"GIF87a", "a GIF image"),
        (b"GIF89a", "a GIF image"),
        (b"\xFF\xD8\xFF", "a JPEG image"),
        (b"\x1F\x8B", "a gzip archive"),
        (b"Rar!", "a RAR archive"),
        (b"7z\xBC\xAF\x27\x1C", "a 7-Zip archive"),
        (b"\x09\x08", "a pre-97 binary .xls (BIFF5 or older) file"),
        (b"{\\rtf", "an RTF document"),
    ];
    if let Some((_, what)) = MAGIC.iter().find(|(magic, _)| head.starts_with(magic)) {
        return Err(DecodeError::NotASpreadsheet(format!(
            "it looks like {what}; upload an .xlsx, .csv or .txt file"
        )));
    }
    if head.contains(&0) {
        return Err(DecodeError::NotASpreadsheet(
            "it holds binary data (NUL bytes), not text; upload an .xlsx, .csv or .txt file"
                .to_owned(),
        ));
    }
    Ok(Sniffed::Text(None))
}

// ---------------------------------------------------------------------------
// xlsx
// ---------------------------------------------------------------------------

type Workbook = Xlsx<BufReader<File>>;

struct XlsxSource {
    workbook: Workbook,
    info: FileInfo,
    /// The sheets read, in workbook order: the first whose header holds
    /// every dataset column, then its continuation sheets; each with the
    /// 0-based row index of its header.
    sheets: Vec<(String, u32)>,
    mapping: Mapping,
}

/// A header row as a matching key: (column, normalized text) of every
/// non-blank cell.
fn header_key(headers: &[(usize, String)]) -> HeaderCells {
    headers
        .iter()
        .map(|(c, h)| (*c, normalize_header(h)))
        .filter(|(_, h)| !h.is_empty())
        .collect()
}

/// The table of a workbook: where its rows are and how they map.
struct Table {
    info: FileInfo,
    /// The sheets read, in workbook order: the first whose header holds
    /// every dataset column, then its continuation sheets; each with the
    /// 0-based row index of its header.
    sheets: Vec<(String, u32)>,
    mapping: Mapping,
}

/// Finds the table in a workbook's sheets (`names`, in workbook order), given
/// each sheet's first non-empty row from `header_of`: the first worksheet
/// whose first non-empty row holds every dataset column, and every later
/// worksheet whose first non-empty row is that same header (spec "File-level
/// rules", xlsx: how an export longer than one sheet comes back). Any other
/// worksheet holding a value is named in a warning. `Ok(Err(info))`: the
/// workbook holds no value at all.
fn find_table(
    dataset: &Dataset,
    format: FileFormat,
    names: Vec<String>,
    mut header_of: impl FnMut(&str) -> Result<Option<(u32, HeaderCells)>, DecodeError>,
) -> Result<Result<Table, FileInfo>, DecodeError> {
    let mut first_missing: Option<(Vec<String>, String)> = None;
    /// The table found so far.
    struct Found {
        mapping: Mapping,
        /// Its header, as [`header_key`] matches continuation sheets.
        key: HeaderCells,
        header: Vec<String>,
        sheets: Vec<(String, u32)>,
    }
    let mut found: Option<Found> = None;
    let mut not_read: Vec<String> = Vec::new();
    for sheet in names {
        let Some((header_index, headers)) = header_of(&sheet)? else {
            continue;
        };
        if let Some(found) = found.as_mut() {
            if header_key(&headers) == found.key {
                found.sheets.push((sheet, header_index));
            } else {
                not_read.push(sheet);
            }
            continue;
        }
        match map_headers(dataset, &headers, column_letters) {
            HeaderMatch::Complete(mapping) => {
                found = Some(Found {
                    mapping,
                    key: header_key(&headers),
                    header: dense_header(&headers),
                    sheets: vec![(sheet, header_index)],
                });
            }
            HeaderMatch::Missing(missing) => {
                first_missing.get_or_insert((missing, sheet.clone()));
                not_read.push(sheet);
            }
            HeaderMatch::Duplicate(column, first, second) => {
                return Err(DecodeError::DuplicateColumn {
                    column,
                    first,
                    second,
                    sheet: Some(sheet),
                });
            }
        }
    }
    let Some(Found {
        mapping,
        header,
        sheets,
        ..
    }) = found
    else {
        return match first_missing {
            Some((missing, sheet)) => Err(DecodeError::MissingColumns {
                missing,
                sheet: Some(sheet),
            }),
            None => Ok(Err(FileInfo {
                format,
                encoding: "n/a",
                sheet: None,
                sheets: Vec::new(),
                header: Vec::new(),
                header_row: 0,
                warnings: vec!["the workbook is empty: no worksheet holds any value".to_owned()],
                data_rows: 0,
            })),
        };
    };
    let mut warnings = mapping.warnings.clone();
    if !not_read.is_empty() {
        let list: Vec<String> = not_read
            .iter()
            .map(|s| format!("`{}`", crate::job::clip(s, 80)))
            .collect();
        warnings.push(format!(
            "{} {} not read: {} first row is not the header of sheet `{}`",
            plural(not_read.len() as u64, "sheet", "sheets"),
            listed(&list, 20),
            plural(not_read.len() as u64, "its", "their"),
            crate::job::clip(&sheets[0].0, 80)
        ));
    }
    let info = FileInfo {
        format,
        encoding: "n/a",
        sheet: Some(sheets[0].0.clone()),
        sheets: sheets.iter().map(|(s, _)| s.clone()).collect(),
        header,
        header_row: u64::from(sheets[0].1) + 1,
        warnings,
        data_rows: 0,
    };
    Ok(Ok(Table {
        info,
        sheets,
        mapping,
    }))
}

/// Everything calamine reads and keeps in memory (the shared strings, the
/// styles, the workbook part) and every sheet is first inflated into a
/// counting sink, so a zip bomb fails here, cheaply, instead of while rows
/// are being written.
fn open_xlsx(path: &Path, dataset: &Dataset, limits: &Limits) -> Result<Source, DecodeError> {
    let file = BufReader::new(File::open(path)?);
    let mut workbook: Workbook = Xlsx::new(file).map_err(|e| xlsx_error(e, None))?;
    let names = worksheet_names(workbook.sheets_metadata());
    let table = find_table(dataset, FileFormat::Xlsx, names, |sheet| {
        read_xlsx_header(&mut workbook, sheet, limits)
    })?;
    Ok(match table {
        Err(nothing) => Source::Nothing(nothing),
        Ok(Table {
            info,
            sheets,
            mapping,
        }) => Source::Xlsx(Box::new(XlsxSource {
            workbook,
            info,
            sheets,
            mapping,
        })),
    })
}

fn worksheet_names(sheets: &[calamine::Sheet]) -> Vec<String> {
    sheets
        .iter()
        .filter(|s| s.typ == SheetType::WorkSheet)
        .map(|s| s.name.clone())
        .collect()
}

/// Header cells as (field or column index, text).
type HeaderCells = Vec<(usize, String)>;

/// The first row of `sheet` holding a non-blank cell, as (0-based row index,
/// [(column index, text)]); `None` for an empty sheet.
fn read_xlsx_header(
    workbook: &mut Workbook,
    sheet: &str,
    limits: &Limits,
) -> Result<Option<(u32, HeaderCells)>, DecodeError> {
    let reader = match workbook.worksheet_cells_reader(sheet) {
        Ok(r) => r,
        Err(XlsxError::NotAWorksheet(_)) => return Ok(None),
        Err(e) => return Err(xlsx_error(e, Some(sheet))),
    };
    let mut rows = SheetRows::new(reader, sheet);
    let mut headers: Vec<(usize, String)> = Vec::new();
    loop {
        headers.clear();
        let mut too_wide = None;
        let Some(index) = rows.next_row(|col, value| {
            let cell = to_cell(value);
            if cell.is_blank() {
                return;
            }
            if col >= limits.max_columns {
                too_wide.get_or_insert(col);
            } else {
                headers.push((col, cell.display_text().into_owned()));
            }
        })?
        else {
            return Ok(None);
        };
        if too_wide.is_some() {
            return Err(DecodeError::LimitExceeded(format!(
                "the header row of sheet `{sheet}` spans more than the {}-column limit \
                 (XLPORT_MAX_COLUMNS)",
                limits.max_columns
            )));
        }
        if !headers.is_empty() {
            return Ok(Some((index, headers)));
        }
    }
}

fn stream_xlsx(source: Box<XlsxSource>, emitter: &mut Emitter<'_>) -> Result<(), DecodeError> {
    let mut source = *source;
    let sheets = std::mem::take(&mut source.sheets);
    for (sheet, header_index) in &sheets {
        stream_sheet(&mut source, sheet, *header_index, emitter)?;
    }
    Ok(())
}

/// One sheet's data rows, after its header row.
fn stream_sheet(
    source: &mut XlsxSource,
    sheet: &str,
    header_index: u32,
    emitter: &mut Emitter<'_>,
) -> Result<(), DecodeError> {
    let reader = source
        .workbook
        .worksheet_cells_reader(sheet)
        .map_err(|e| xlsx_error(e, Some(sheet)))?;
    let mut rows = SheetRows::new(reader, sheet);
    let mapping = &source.mapping;
    // Every cell of the row, up to its last: the report keeps cells beyond
    // the header too.
    let mut values: Vec<DataRef<'_>> = Vec::new();
    loop {
        values.clear();
        let Some(index) = rows.next_row(|col, value| {
            if col >= values.len() {
                values.resize(col + 1, DataRef::Empty);
            }
            values[col] = value.clone();
        })?
        else {
            return Ok(());
        };
        if index <= header_index {
            continue;
        }
        let original: Vec<Cell<'_>> = values.iter().map(to_cell).collect();
        emit_sheet_row(emitter, mapping, sheet, index, &original)?;
    }
}

/// Hands over one worksheet row (`original`: its cells by column) unless it
/// is blank; see [`stream_sheet`].
fn emit_sheet_row(
    emitter: &mut Emitter<'_>,
    mapping: &Mapping,
    sheet: &str,
    index: u32,
    original: &[Cell<'_>],
) -> Result<(), DecodeError> {
    let cells: Vec<Cell<'_>> = mapping
        .source
        .iter()
        .map(|&f| original.get(f).copied().unwrap_or(Cell::Empty))
        .collect();
    {
        let mut misaligned = None;
        let mut record = None;
        if cells.iter().all(Cell::is_blank) {
            let sent_back = mapping.record_field.and_then(|f| original.get(f));
            match sent_back {
                // A report row sent back with its cells still empty.
                Some(Cell::Text(text)) if !text.trim().is_empty() => {
                    misaligned = Some(Misaligned::ReportRecord);
                    record = Some(*text);
                }
                _ => {
                    if !original.iter().all(Cell::is_blank) {
                        emitter.ignored_rows += 1;
                    }
                    return Ok(());
                }
            }
        }
        emitter.emit(&Row {
            number: u64::from(index) + 1,
            sheet: Some(sheet),
            cells: &cells,
            original,
            record,
            cell_fields: &mapping.source,
            field_count_error: misaligned,
        })
    }
}

/// Groups the cells calamine streams (in row order) into rows.
struct SheetRows<'a, 's> {
    reader: XlsxCellReader<'a, BufReader<File>>,
    sheet: &'s str,
    /// The first cell of the next row, read while finishing the previous one.
    pending: Option<calamine::Cell<DataRef<'a>>>,
    /// `</sheetData>` was seen: calamine must not be asked again (it would
    /// read on and report an unexpected end of file).
    done: bool,
}

impl<'a, 's> SheetRows<'a, 's> {
    fn new(reader: XlsxCellReader<'a, BufReader<File>>, sheet: &'s str) -> Self {
        Self {
            reader,
            sheet,
            pending: None,
            done: false,
        }
    }

    fn next_cell(&mut self) -> Result<Option<calamine::Cell<DataRef<'a>>>, DecodeError> {
        if self.done {
            return Ok(None);
        }
        match self.reader.next_cell() {
            Ok(Some(c)) => Ok(Some(c)),
            Ok(None) => {
                self.done = true;
                Ok(None)
            }
            Err(e) => Err(xlsx_error(e, Some(self.sheet))),
        }
    }

    /// Hands every cell of the next row to `put` as (column, value) and
    /// returns the row's 0-based index, or `None` after the last row.
    fn next_row(
        &mut self,
        mut put: impl FnMut(usize, &DataRef<'a>),
    ) -> Result<Option<u32>, DecodeError> {
        let first = match self.pending.take() {
            Some(c) => c,
            None => match self.next_cell()? {
                Some(c) => c,
                None => return Ok(None),
            },
        };
        let (row, col) = first.get_position();
        put(col as usize, first.get_value());
        while let Some(cell) = self.next_cell()? {
            let (r, c) = cell.get_position();
            if r != row {
                self.pending = Some(cell);
                break;
            }
            put(c as usize, cell.get_value());
        }
        Ok(Some(row))
    }
}

/// calamine's value as a [`Cell`]. Date serials are moved to the 1900 system
/// (see [`serial_1900`]); durations stay numbers; ISO text dates (`t="d"`,
/// ODS date values) stay text for the date rule to parse.
fn to_cell<'s>(value: &'s DataRef<'_>) -> Cell<'s> {
    match value {
        DataRef::Empty => Cell::Empty,
        DataRef::String(s) | DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => Cell::Text(s),
        DataRef::SharedString(s) => Cell::Text(s),
        DataRef::Float(n) => Cell::Number(*n),
        // Exact for every integer a cell can hold (|n| < 2^53).
        DataRef::Int(n) => Cell::Number(*n as f64),
        DataRef::Bool(b) => Cell::Bool(*b),
        DataRef::DateTime(dt) if dt.is_datetime() => Cell::DateSerial(serial_1900(dt)),
        DataRef::DateTime(dt) => Cell::Number(dt.as_f64()),
        DataRef::Error(e) => Cell::Error(error_text(e)),
    }
}

/// [`to_cell`] for the owned values of the whole-sheet readers.
fn data_cell(value: &Data) -> Cell<'_> {
    match value {
        Data::Empty => Cell::Empty,
        Data::String(s) | Data::DateTimeIso(s) | Data::DurationIso(s) => Cell::Text(s),
        Data::Float(n) => Cell::Number(*n),
        Data::Int(n) => Cell::Number(*n as f64),
        Data::Bool(b) => Cell::Bool(*b),
        Data::DateTime(dt) if dt.is_datetime() => Cell::DateSerial(serial_1900(dt)),
        Data::DateTime(dt) => Cell::Number(dt.as_f64()),
        Data::Error(e) => Cell::Error(error_text(e)),
    }
}

/// A date cell's serial in the 1900 system: a 1904-system workbook's serials
/// (the `date1904` flag, ECMA-376 Part 1 §18.2.28; BIFF8's `1904` record)
/// count from 1904-01-01, 1462 days later. calamine keeps the flag in each
/// value without exposing it, so it is read by comparison.
fn serial_1900(dt: &ExcelDateTime) -> f64 {
    let v = dt.as_f64();
    if *dt == ExcelDateTime::new(v, ExcelDateTimeType::DateTime, true) {
        v + 1462.0
    } else {
        v
    }
}

/// Excel's own spelling of an error value (what the cell shows).
fn error_text(e: &CellErrorType) -> &'static str {
    match e {
        CellErrorType::Div0 => "#DIV/0!",
        CellErrorType::NA => "#N/A",
        CellErrorType::Name => "#NAME?",
        CellErrorType::Null => "#NULL!",
        CellErrorType::Num => "#NUM!",
        CellErrorType::Ref => "#REF!",
        CellErrorType::Value => "#VALUE!",
        CellErrorType::GettingData => "#GETTING_DATA",
    }
}

/// A calamine error as something the user can act on.
fn xlsx_error(e: XlsxError, sheet: Option<&str>) -> DecodeError {
    let place = sheet.map_or_else(String::new, |s| format!(" (sheet `{s}`)"));
    match e {
        XlsxError::Password => DecodeError::NotASpreadsheet(
            "the workbook is encrypted (password-protected); save it without a password".to_owned(),
        ),
        XlsxError::Zip(z) => DecodeError::Corrupt(format!(
            "the file is truncated or not a valid .xlsx: {z}{place}"
        )),
        XlsxError::CellError(value) => DecodeError::Corrupt(format!(
            "a cell holds the error value `{value}`, which the xlsx reader does not \
             support{place}; replace the formulas showing it with values and upload again"
        )),
        other => DecodeError::Corrupt(format!("the file is not a valid .xlsx: {other}{place}")),
    }
}

/// `0` → `A`, `26` → `AA`: how Excel names a column, for warnings.
fn column_letters(index: usize) -> String {
    let mut n = index + 1;
    let mut out = Vec::new();
    while n > 0 {
        let rem = (n - 1) % 26;
        out.push(b'A' + rem as u8);
        n = (n - 1) / 26;
    }
    out.reverse();
    format!("column {}", String::from_utf8_lossy(&out))
}

/// Inflates every part of the zip into a counting sink: a part inflating
/// past the limit fails the file (the sizes in the zip directory are declared
/// by whoever wrote the file, so only the inflated count is trusted). Every
/// part, not just the sheets, because the relationships can point a sheet at
/// any part name, and calamine keeps the shared strings and styles in memory.
/// Also recognises zips that are other documents.
fn guard_zip(path: &Path, limits: &Limits) -> Result<ZipKind, DecodeError> {
    let file = BufReader::new(File::open(path)?);
    let mut zip = zip::ZipArchive::new(file).map_err(|e| {
        DecodeError::Corrupt(format!("the file is truncated or not a valid .xlsx: {e}"))
    })?;
    let mut names = Vec::with_capacity(zip.len());
    for name in zip.file_names() {
        let name =
            name.map_err(|e| DecodeError::Corrupt(format!("the file is not a valid .xlsx: {e}")))?;
        names.push(name.to_ascii_lowercase());
    }
    let kind = zip_kind(&mut zip, &names)?;
    // Formats read a sheet at a time, whole, get a tighter bound.
    let limit = match kind {
        ZipKind::Xlsx => limits.max_sheet_inflated_bytes,
        ZipKind::Xlsb | ZipKind::Ods => limits
            .max_sheet_inflated_bytes
            .min(MAX_WHOLE_SHEET_INFLATED_BYTES),
    };
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).map_err(|e| {
            DecodeError::Corrupt(format!("the file is truncated or not a valid .xlsx: {e}"))
        })?;
        if entry.is_dir() {
            continue;
        }
        let name = entry
            .name()
            .map(|n| n.into_owned())
            .unwrap_or_else(|_| format!("#{i}"));
        let mut sink = CountingSink::new(name.to_ascii_lowercase().ends_with("sharedstrings.xml"));
        let inflated = io::copy(&mut (&mut entry).take(limit.saturating_add(1)), &mut sink)
            .map_err(|e| {
                DecodeError::Corrupt(format!(
                    "the file is truncated or not a valid .xlsx: part `{name}`: {e}"
                ))
            })?;
        if inflated > limit {
            let why = if kind == ZipKind::Xlsx {
                "(XLPORT_MAX_SHEET_INFLATED_BYTES)"
            } else {
                "(.xlsb and .ods sheets are read whole; save a file this large as .xlsx)"
            };
            return Err(DecodeError::LimitExceeded(format!(
                "part `{name}` of the workbook inflates past the {limit}-byte limit {why}"
            )));
        }
        sink.check_shared_strings(&name)?;
    }
    Ok(kind)
}

/// Which workbook a zip is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ZipKind {
    Xlsx,
    Xlsb,
    Ods,
}

/// The bytes one part of an `.xlsb` or `.ods` may inflate to: calamine reads
/// such a sheet whole into memory (about 10 times its XML), where `.xlsx`
/// sheets stream.
pub const MAX_WHOLE_SHEET_INFLATED_BYTES: u64 = 128 * 1024 * 1024;

/// Tells an xlsx from the other zips: `.xlsb` and `.ods` are read too; Word
/// and PowerPoint documents and plain archives are named instead of
/// reported as a broken .xlsx.
fn zip_kind<R: Read + Seek>(
    zip: &mut zip::ZipArchive<R>,
    names: &[String],
) -> Result<ZipKind, DecodeError> {
    let has = |n: &str| names.iter().any(|x| x == n);
    let has_prefix = |p: &str| names.iter().any(|x| x.starts_with(p));
    if has("xl/workbook.bin") {
        return Ok(ZipKind::Xlsb);
    }
    if has("mimetype") {
        let mut mime = Vec::new();
        if let Ok(entry) = zip.by_name("mimetype") {
            let _ = entry.take(200).read_to_end(&mut mime);
        }
        if mime.starts_with(b"application/vnd.oasis.opendocument.spreadsheet") {
            return Ok(ZipKind::Ods);
        }
        if mime.starts_with(b"application/vnd.oasis.opendocument") {
            return Err(DecodeError::NotASpreadsheet(
                "it is an OpenDocument file that is not a spreadsheet".to_owned(),
            ));
        }
    }
    let what = if !has_prefix("xl/") && has_prefix("word/") {
        Some("a Word document")
    } else if !has_prefix("xl/") && has_prefix("ppt/") {
        Some("a PowerPoint presentation")
    } else if !has("[content_types].xml") {
        Some("a zip archive, not an .xlsx workbook")
    } else {
        None
    };
    match what {
        Some(what) => Err(DecodeError::NotASpreadsheet(format!("it is {what}"))),
        None => Ok(ZipKind::Xlsx),
    }
}

// ---------------------------------------------------------------------------
// .xls, .xlsb, .ods: each sheet read whole
// ---------------------------------------------------------------------------

type WholeBook = calamine::Sheets<BufReader<File>>;

struct WholeSource {
    book: WholeBook,
    table: Table,
}

/// `.xls` (BIFF8), `.xlsb` and `.ods` through calamine, under the same rules
/// as `.xlsx`: the header, continuation sheets, dates from the cell's format,
/// the 1904 flag. calamine reads these a sheet at a time, whole; memory is
/// bounded by the format (65,536 × 256 cells in BIFF8) or by
/// [`MAX_WHOLE_SHEET_INFLATED_BYTES`].
fn open_whole(
    path: &Path,
    dataset: &Dataset,
    limits: &Limits,
    format: FileFormat,
) -> Result<Source, DecodeError> {
    let file = BufReader::new(File::open(path)?);
    let opened = match format {
        FileFormat::Xls => calamine::Xls::new(file)
            .map(calamine::Sheets::Xls)
            .map_err(calamine::Error::Xls),
        FileFormat::Xlsb => calamine::Xlsb::new(file)
            .map(calamine::Sheets::Xlsb)
            .map_err(calamine::Error::Xlsb),
        _ => calamine::Ods::new(file)
            .map(calamine::Sheets::Ods)
            .map_err(calamine::Error::Ods),
    };
    let mut book = opened.map_err(|e| whole_error(e, format, None))?;
    let names = worksheet_names(book.sheets_metadata());
    let table = find_table(dataset, format, names, |sheet| {
        whole_header(&mut book, format, sheet, limits)
    })?;
    Ok(match table {
        Err(nothing) => Source::Nothing(nothing),
        Ok(table) => Source::Whole(Box::new(WholeSource { book, table })),
    })
}

fn whole_range(
    book: &mut WholeBook,
    format: FileFormat,
    sheet: &str,
) -> Result<Range<Data>, DecodeError> {
    book.worksheet_range(sheet)
        .map_err(|e| whole_error(e, format, Some(sheet)))
}

/// The first row of `sheet` holding a non-blank cell (see `read_xlsx_header`).
fn whole_header(
    book: &mut WholeBook,
    format: FileFormat,
    sheet: &str,
    limits: &Limits,
) -> Result<Option<(u32, HeaderCells)>, DecodeError> {
    let range = whole_range(book, format, sheet)?;
    let Some((first_row, first_col)) = range.start() else {
        return Ok(None);
    };
    for (i, row) in range.rows().enumerate() {
        let headers: HeaderCells = row
            .iter()
            .enumerate()
            .filter_map(|(j, v)| {
                let cell = data_cell(v);
                (!cell.is_blank())
                    .then(|| (first_col as usize + j, cell.display_text().into_owned()))
            })
            .collect();
        if headers.iter().any(|(c, _)| *c >= limits.max_columns) {
            return Err(DecodeError::LimitExceeded(format!(
                "the header row of sheet `{sheet}` spans more than the {}-column limit \
                 (XLPORT_MAX_COLUMNS)",
                limits.max_columns
            )));
        }
        if !headers.is_empty() {
            return Ok(Some((first_row + i as u32, headers)));
        }
    }
    Ok(None)
}

fn stream_whole(source: WholeSource, emitter: &mut Emitter<'_>) -> Result<(), DecodeError> {
    let WholeSource { mut book, table } = source;
    let format = table.info.format;
    for (sheet, header_index) in &table.sheets {
        let range = whole_range(&mut book, format, sheet)?;
        let Some((first_row, first_col)) = range.start() else {
            continue;
        };
        let lead = first_col as usize;
        let mut original: Vec<Cell<'_>> = Vec::new();
        for (i, row) in range.rows().enumerate() {
            let index = first_row + i as u32;
            if index <= *header_index {
                continue;
            }
            original.clear();
            original.resize(lead, Cell::Empty);
            original.extend(row.iter().map(data_cell));
            // A range is a rectangle: drop the padding right of the row's last cell.
            let used = original
                .iter()
                .rposition(|c| *c != Cell::Empty)
                .map_or(0, |p| p + 1);
            original.truncate(used);
            emit_sheet_row(emitter, &table.mapping, sheet, index, &original)?;
        }
    }
    Ok(())
}

/// A calamine error of a whole-sheet format as something a person can act on.
fn whole_error(e: calamine::Error, format: FileFormat, sheet: Option<&str>) -> DecodeError {
    use calamine::{Error, OdsError, XlsError, XlsbError};
    let place = sheet.map_or_else(String::new, |s| format!(" (sheet `{s}`)"));
    match e {
        Error::Xls(XlsError::Password)
        | Error::Xlsb(XlsbError::Password)
        | Error::Ods(OdsError::Password) => DecodeError::NotASpreadsheet(format!(
            "the workbook is encrypted (password-protected); save it without a password{place}"
        )),
        // An OLE2 file that holds no Excel 97-2003 workbook: Office wraps an
        // encrypted .xlsx in one.
        Error::Xls(XlsError::Cfb(_)) if format == FileFormat::Xls => DecodeError::NotASpreadsheet(
            "it is an OLE2 compound document without an Excel 97-2003 workbook in it: most \
             likely an encrypted (password-protected) .xlsx; save it as .xlsx without a password"
                .to_owned(),
        ),
        other => DecodeError::Corrupt(format!(
            "the file is not a valid .{}: {other}{place}",
            format.name()
        )),
    }
}

/// Counts inflated bytes; for the shared strings part, also counts the `<si>`
/// elements and keeps the start of the part, so a table whose `uniqueCount`
/// claims billions of strings is refused before calamine reserves room for
/// them.
struct CountingSink {
    scan: Option<SstScan>,
}

struct SstScan {
    head: Vec<u8>,
    window: u32,
    elements: u64,
}

const SST_HEAD_BYTES: usize = 64 * 1024;

impl CountingSink {
    fn new(shared_strings: bool) -> Self {
        Self {
            scan: shared_strings.then(|| SstScan {
                head: Vec::new(),
                window: 0,
                elements: 0,
            }),
        }
    }

    fn check_shared_strings(&self, name: &str) -> Result<(), DecodeError> {
        let Some(scan) = &self.scan else {
            return Ok(());
        };
        let Some(declared) = declared_unique_count(&scan.head) else {
            return Ok(());
        };
        // Writers may miscount a little; only a claim that would make the
        // reader reserve a lot more than the part holds is refused.
        if declared > scan.elements.max(1 << 20) {
            return Err(DecodeError::Corrupt(format!(
                "the file is not a valid .xlsx: part `{name}` declares {declared} strings \
                 but holds {}",
                scan.elements
            )));
        }
        Ok(())
    }
}

impl Write for CountingSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(scan) = &mut self.scan {
            if scan.head.len() < SST_HEAD_BYTES {
                let take = buf.len().min(SST_HEAD_BYTES - scan.head.len());
                scan.head.extend_from_slice(&buf[..take]);
            }
            for &b in buf {
                scan.window = (scan.window << 8) | u32::from(b);
                let [w3, w2, w1, w0] = scan.window.to_be_bytes();
                if (w3 == b'<' || w3 == b':')
                    && w2 == b's'
                    && w1 == b'i'
                    && matches!(w0, b'>' | b'/' | b' ' | b'\t' | b'\r' | b'\n')
                {
                    scan.elements += 1;
                }
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The `uniqueCount` attribute of the `<sst>` element, if any.
fn declared_unique_count(head: &[u8]) -> Option<u64> {
    let at = find(head, b"uniqueCount")?;
    let rest = &head[at + b"uniqueCount".len()..];
    let rest = rest.strip_prefix(b"=")?;
    let rest = rest
        .strip_prefix(b"\"")
        .or_else(|| rest.strip_prefix(b"'"))?;
    let digits: Vec<u8> = rest
        .iter()
        .copied()
        .take_while(u8::is_ascii_digit)
        .take(20)
        .collect();
    std::str::from_utf8(&digits).ok()?.parse().ok()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

// ---------------------------------------------------------------------------
// Header mapping (all formats)
// ---------------------------------------------------------------------------

/// Where each dataset column is read from.
#[derive(Debug, Clone)]
struct Mapping {
    /// For each dataset column, the index of its field.
    source: Vec<usize>,
    /// Fields a delimited row needs to hold every column that cannot be
    /// null: a shorter row misses a required value.
    required_width: usize,
    /// The field of the error report's original-record column, when the
    /// file is a report sent back.
    record_field: Option<usize>,
    warnings: Vec<String>,
}

enum HeaderMatch {
    Complete(Mapping),
    /// The headers (as the dataset spells them) of the columns not found.
    Missing(Vec<String>),
    /// A dataset column named twice: (its header, first place, second place).
    Duplicate(String, String, String),
}

#[derive(Debug, Clone, Copy)]
enum Known {
    Column(usize),
    /// An export's check-digit flag column, or one of the error report's
    /// own columns: recognised and ignored silently.
    Validity,
    /// The error report's original-record column.
    Record,
}

/// Every header the dataset knows, normalized, including validity headers.
fn known_headers(dataset: &Dataset) -> BTreeMap<String, Known> {
    let mut known = BTreeMap::new();
    for (_, _, header) in dataset.validity_columns() {
        known.insert(normalize_header(header), Known::Validity);
    }
    for header in [
        REPORT_REASON_HEADER,
        REPORT_DETAIL_HEADER,
        REPORT_SHEET_HEADER,
        REPORT_ROW_HEADER,
    ] {
        known.insert(normalize_header(header), Known::Validity);
    }
    known.insert(normalize_header(REPORT_RECORD_HEADER), Known::Record);
    for (i, column) in dataset.columns.iter().enumerate() {
        for header in column.headers() {
            known.insert(normalize_header(header), Known::Column(i));
        }
    }
    known
}

/// Maps header fields (field index, text) to dataset columns. Unknown
/// headers are warned about (repeated unknown headers are just ignored); a
/// dataset column named twice, under any of its spellings, is
/// [`HeaderMatch::Duplicate`]; blank header cells are ignored.
fn map_headers(
    dataset: &Dataset,
    headers: &[(usize, String)],
    describe: fn(usize) -> String,
) -> HeaderMatch {
    let known = known_headers(dataset);
    let mut source: Vec<Option<usize>> = vec![None; dataset.columns.len()];
    let mut warnings = Vec::new();
    let mut unknown = Vec::new();
    let mut record_field = None;
    for (field, text) in headers {
        let key = normalize_header(text);
        if key.is_empty() {
            continue;
        }
        match known.get(&key) {
            Some(Known::Column(c)) => match source[*c] {
                None => source[*c] = Some(*field),
                Some(first) => {
                    return HeaderMatch::Duplicate(
                        dataset.columns[*c].header.clone(),
                        describe(first),
                        describe(*field),
                    );
                }
            },
            Some(Known::Validity) => {}
            Some(Known::Record) => {
                record_field.get_or_insert(*field);
            }
            // Each name clipped: a hostile header of megabytes must not
            // become a warning of megabytes (issue #15).
            None => unknown.push(format!(
                "`{}` ({})",
                crate::job::clip(text.trim(), 80),
                describe(*field)
            )),
        }
    }
    let missing: Vec<String> = dataset
        .columns
        .iter()
        .zip(&source)
        .filter(|(_, s)| s.is_none())
        .map(|(c, _)| c.header.clone())
        .collect();
    if !missing.is_empty() {
        return HeaderMatch::Missing(missing);
    }
    if !unknown.is_empty() {
        warnings.insert(
            0,
            format!(
                "ignored {} not in dataset `{}`: {}",
                if unknown.len() == 1 {
                    "a column"
                } else {
                    "columns"
                },
                dataset.name,
                listed(&unknown, 20)
            ),
        );
    }
    let source: Vec<usize> = source.into_iter().flatten().collect();
    let required_width = source
        .iter()
        .zip(&dataset.columns)
        .filter(|(_, c)| !c.nullable)
        .map(|(&f, _)| f + 1)
        .max()
        .unwrap_or(0);
    HeaderMatch::Complete(Mapping {
        source,
        required_width,
        record_field,
        warnings,
    })
}

fn field_number(index: usize) -> String {
    format!("field {}", index + 1)
}

// ---------------------------------------------------------------------------
// Text: encodings
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TextEncoding {
    Utf8Bom,
    Utf8,
    Utf16Le,
    Utf16Be,
    Windows1252,
}

impl TextEncoding {
    fn from_bom(head: &[u8]) -> Option<Self> {
        if head.starts_with(b"\xEF\xBB\xBF") {
            Some(Self::Utf8Bom)
        } else if head.starts_with(b"\xFF\xFE") {
            Some(Self::Utf16Le)
        } else if head.starts_with(b"\xFE\xFF") {
            Some(Self::Utf16Be)
        } else {
            None
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Utf8Bom => "utf-8 (BOM)",
            Self::Utf8 => "utf-8",
            Self::Utf16Le => "utf-16le (BOM)",
            Self::Utf16Be => "utf-16be (BOM)",
            Self::Windows1252 => "windows-1252",
        }
    }

    /// The file as a stream of UTF-8 bytes, BOM removed.
    fn reader(self, path: &Path) -> io::Result<Box<dyn Read>> {
        let mut file = File::open(path)?;
        let transcode = |encoding: &'static Encoding, file: File| -> Box<dyn Read> {
            Box::new(Transcoder::new(
                file,
                encoding.new_decoder_with_bom_removal(),
            ))
        };
        Ok(match self {
            Self::Utf8 => Box::new(file),
            Self::Utf8Bom => {
                file.seek(SeekFrom::Start(3))?;
                Box::new(file)
            }
            Self::Utf16Le => transcode(encoding_rs::UTF_16LE, file),
            Self::Utf16Be => transcode(encoding_rs::UTF_16BE, file),
            Self::Windows1252 => transcode(encoding_rs::WINDOWS_1252, file),
        })
    }
}

/// Strict UTF-8 over the whole file, read in chunks (a sequence cut by a
/// chunk boundary is carried over): one byte that is not UTF-8 anywhere makes
/// the file Windows-1252, as the spec orders.
fn is_utf8(path: &Path) -> io::Result<bool> {
    let mut file = File::open(path)?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut carry = 0;
    loop {
        let n = match file.read(&mut buf[carry..]) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if n == 0 {
            return Ok(carry == 0);
        }
        let len = carry + n;
        match std::str::from_utf8(&buf[..len]) {
            Ok(_) => carry = 0,
            Err(e) if e.error_len().is_some() => return Ok(false),
            Err(e) => {
                let valid = e.valid_up_to();
                buf.copy_within(valid..len, 0);
                carry = len - valid;
            }
        }
    }
}

/// Streams any encoding_rs encoding to UTF-8 with bounded buffers (the
/// decoder keeps state across chunk boundaries, so a UTF-16 pair cut in two
/// is decoded whole).
struct Transcoder<R> {
    inner: R,
    decoder: Decoder,
    input: Vec<u8>,
    in_pos: usize,
    in_len: usize,
    eof: bool,
    output: Vec<u8>,
    out_pos: usize,
    out_len: usize,
    done: bool,
}

impl<R: Read> Transcoder<R> {
    fn new(inner: R, decoder: Decoder) -> Self {
        Self {
            inner,
            decoder,
            input: vec![0; 16 * 1024],
            in_pos: 0,
            in_len: 0,
            eof: false,
            output: vec![0; 64 * 1024],
            out_pos: 0,
            out_len: 0,
            done: false,
        }
    }

    fn fill(&mut self) -> io::Result<()> {
        while !self.done {
            if self.in_pos == self.in_len && !self.eof {
                let n = loop {
                    match self.inner.read(&mut self.input) {
                        Ok(n) => break n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                };
                self.in_pos = 0;
                self.in_len = n;
                self.eof = n == 0;
            }
            let (result, read, written, _) = self.decoder.decode_to_utf8(
                &self.input[self.in_pos..self.in_len],
                &mut self.output,
                self.eof,
            );
            self.in_pos += read;
            self.out_pos = 0;
            self.out_len = written;
            if self.eof && result == CoderResult::InputEmpty {
                self.done = true;
            }
            if written > 0 {
                break;
            }
        }
        Ok(())
    }
}

impl<R: Read> Read for Transcoder<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.out_pos == self.out_len {
            self.out_pos = 0;
            self.out_len = 0;
            self.fill()?;
        }
        let n = out.len().min(self.out_len - self.out_pos);
        out[..n].copy_from_slice(&self.output[self.out_pos..self.out_pos + n]);
        self.out_pos += n;
        Ok(n)
    }
}

/// Bytes read since the current record started, shared between the reader
/// (which counts) and the loop (which resets at each record): one record
/// longer than [`MAX_TEXT_RECORD_BYTES`] fails the read instead of growing
/// memory with the file.
#[derive(Clone)]
struct RecordBudget(Rc<Shared<u64>>);

impl RecordBudget {
    fn reset(&self) {
        self.0.set(0);
    }

    fn exceeded(&self) -> bool {
        self.0.get() > MAX_TEXT_RECORD_BYTES
    }

    fn error(line: u64) -> DecodeError {
        DecodeError::LimitExceeded(format!(
            "the text record starting at line {line} is longer than {MAX_TEXT_RECORD_BYTES} \
             bytes (a file without line breaks, or an unclosed quote)"
        ))
    }
}

struct Budgeted<R> {
    inner: R,
    budget: RecordBudget,
}

impl<R: Read> Read for Budgeted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.budget.exceeded() {
            return Err(io::Error::other("text record too long"));
        }
        let n = self.inner.read(buf)?;
        self.budget.0.set(self.budget.0.get() + n as u64);
        Ok(n)
    }
}

// ---------------------------------------------------------------------------
// Text: header and rows
// ---------------------------------------------------------------------------

type TextReader = BufReader<Budgeted<Box<dyn Read>>>;

struct TextSource {
    info: FileInfo,
    reader: TextReader,
    budget: RecordBudget,
    mapping: Mapping,
    /// Fields in the header.
    header_fields: usize,
}

/// A line is blank when it holds nothing but whitespace, delimiters and
/// quotes: Excel saves empty rows of a wider sheet as `;;;;;;;`.
fn is_blank_line(line: &str) -> bool {
    line.chars()
        .all(|c| c.is_whitespace() || matches!(c, ',' | ';' | '"'))
}

/// Reads one physical line (without its terminator) into `buf`; `false` at
/// the end of the file. A line ends at LF, CRLF or a lone CR (classic Mac),
/// in any mix (spec "File-level rules", line endings).
fn read_line(
    reader: &mut TextReader,
    budget: &RecordBudget,
    buf: &mut Vec<u8>,
    line_no: u64,
) -> Result<bool, DecodeError> {
    buf.clear();
    budget.reset();
    let fill = |reader: &mut TextReader| -> Result<usize, DecodeError> {
        match reader.fill_buf() {
            Ok(available) => Ok(available.len()),
            Err(_) if budget.exceeded() => Err(RecordBudget::error(line_no)),
            Err(e) => Err(DecodeError::Io(e)),
        }
    };
    loop {
        if fill(reader)? == 0 {
            return Ok(!buf.is_empty());
        }
        let available = reader.buffer();
        match available.iter().position(|&b| b == b'\n' || b == b'\r') {
            Some(end) => {
                let cr = available[end] == b'\r';
                buf.extend_from_slice(&available[..end]);
                reader.consume(end + 1);
                // The LF of a CRLF may come in the next buffer.
                if cr && fill(reader)? > 0 && reader.buffer()[0] == b'\n' {
                    reader.consume(1);
                }
                return Ok(true);
            }
            None => {
                let n = available.len();
                buf.extend_from_slice(available);
                reader.consume(n);
            }
        }
    }
}

fn line_text(buf: &[u8], line_no: u64) -> Result<&str, DecodeError> {
    std::str::from_utf8(buf)
        .map_err(|_| DecodeError::Corrupt(format!("line {line_no} is not valid text")))
}

fn open_text(
    path: &Path,
    bom: Option<TextEncoding>,
    dataset: &Dataset,
    limits: &Limits,
) -> Result<Source, DecodeError> {
    let encoding = match bom {
        Some(e) => e,
        None if is_utf8(path)? => TextEncoding::Utf8,
        None => TextEncoding::Windows1252,
    };
    let budget = RecordBudget(Rc::new(Shared::new(0)));
    let mut reader = BufReader::with_capacity(
        64 * 1024,
        Budgeted {
            inner: encoding.reader(path)?,
            budget: budget.clone(),
        },
    );
    let mut buf = Vec::new();
    let mut line_no = 0u64;
    let header = loop {
        line_no += 1;
        if !read_line(&mut reader, &budget, &mut buf, line_no)? {
            return Ok(Source::Nothing(FileInfo {
                format: FileFormat::Empty,
                encoding: encoding.name(),
                sheet: None,
                sheets: Vec::new(),
                header: Vec::new(),
                header_row: 0,
                warnings: vec!["the file is empty (only blank lines)".to_owned()],
                data_rows: 0,
            }));
        }
        let text = line_text(&buf, line_no)?;
        if !is_blank_line(text) {
            break text.to_owned();
        }
    };
    let (format, headers) = match delimiter_of(&header) {
        Some(delimiter) => (
            FileFormat::Delimited { delimiter },
            split_delimited(&header, delimiter)
                .into_iter()
                .enumerate()
                .collect::<Vec<_>>(),
        ),
        None => (FileFormat::Whitespace, whitespace_headers(dataset, &header)),
    };
    if headers.len() > limits.max_columns {
        return Err(DecodeError::LimitExceeded(format!(
            "the header at line {line_no} has {} columns, more than the {}-column limit \
             (XLPORT_MAX_COLUMNS)",
            headers.len(),
            limits.max_columns
        )));
    }
    let mapping = match map_headers(dataset, &headers, field_number) {
        HeaderMatch::Complete(m) => m,
        HeaderMatch::Missing(missing) => {
            return Err(DecodeError::MissingColumns {
                missing,
                sheet: None,
            });
        }
        HeaderMatch::Duplicate(column, first, second) => {
            return Err(DecodeError::DuplicateColumn {
                column,
                first,
                second,
                sheet: None,
            });
        }
    };
    Ok(Source::Text(TextSource {
        info: FileInfo {
            format,
            encoding: encoding.name(),
            sheet: None,
            sheets: Vec::new(),
            header: dense_header(&headers),
            header_row: line_no,
            warnings: mapping.warnings.clone(),
            data_rows: 0,
        },
        reader,
        budget,
        mapping,
        header_fields: headers.len(),
    }))
}

/// The delimiter of a header line: the one among tab, `;` and `,` giving the
/// most fields (ties in that order); `None` when none splits it.
fn delimiter_of(header: &str) -> Option<u8> {
    let mut best: Option<(u8, usize)> = None;
    for d in [b'\t', b';', b','] {
        let n = split_delimited(header, d).len();
        if n > 1 && best.is_none_or(|(_, m)| n > m) {
            best = Some((d, n));
        }
    }
    best.map(|(d, _)| d)
}

/// One line's fields under CSV quoting rules.
fn split_delimited(line: &str, delimiter: u8) -> Vec<String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(line.as_bytes());
    let mut record = csv::StringRecord::new();
    match reader.read_record(&mut record) {
        Ok(true) => record.iter().map(str::to_owned).collect(),
        _ => vec![line.to_owned()],
    }
}

/// The whitespace format's header: known header phrases matched greedily,
/// longest first, over the header's words (names contain spaces and
/// neighbours may be one space apart, so the words alone cannot say where a
/// name ends). A word that starts no known phrase is one unknown column.
fn whitespace_headers(dataset: &Dataset, header: &str) -> Vec<(usize, String)> {
    let known = known_headers(dataset);
    let longest = dataset
        .columns
        .iter()
        .flat_map(|c| c.headers())
        .chain(dataset.validity_columns().map(|(_, _, h)| h))
        .map(|h| h.split_whitespace().count())
        .max()
        .unwrap_or(1);
    let words: Vec<&str> = header.split_whitespace().collect();
    let mut fields = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let end = (i + longest).min(words.len());
        let matched = (i + 1..=end)
            .rev()
            .find(|&j| known.contains_key(&normalize_header(&words[i..j].concat())));
        let j = matched.unwrap_or(i + 1);
        fields.push((fields.len(), words[i..j].join(" ")));
        i = j;
    }
    fields
}

/// Splits a whitespace-format data line on runs of spaces or tabs.
fn split_whitespace_fields(line: &str) -> impl Iterator<Item = &str> {
    line.split([' ', '\t']).filter(|f| !f.is_empty())
}

fn stream_text(source: TextSource, emitter: &mut Emitter<'_>) -> Result<(), DecodeError> {
    match source.info.format {
        FileFormat::Delimited { delimiter } => stream_delimited(source, delimiter, emitter),
        _ => stream_whitespace(source, emitter),
    }
}

/// How a text format treats a row whose field count differs from the header's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FieldCount {
    /// The whitespace format: any other count is `wrong_column_count`.
    Strict,
    /// Delimited text (spec "Cell rules", `wrong_column_count`): a short row
    /// whose missing trailing fields are all nullable columns is read with
    /// them empty, a long row whose extra fields are all empty without them.
    SpreadsheetHabits,
    /// The fields cannot be aligned with the header whatever their count
    /// (an unclosed quote swallowed the lines after it).
    Unaligned,
}

/// Builds the row for `fields` and hands it over unless it is blank.
/// `record` is the row's text as the file held it (its fields, separators
/// and quotes), for the error report.
fn emit_fields(
    emitter: &mut Emitter<'_>,
    mapping: &Mapping,
    header_fields: usize,
    count_rule: FieldCount,
    number: u64,
    fields: &[&str],
    record: &str,
) -> Result<(), DecodeError> {
    if fields.iter().all(|f| f.trim().is_empty()) {
        return Ok(());
    }
    let mut fields = fields;
    let mut field_count_error = None;
    let misaligned = Misaligned::Count {
        found: fields.len(),
        expected: header_fields,
    };
    if count_rule == FieldCount::Unaligned {
        field_count_error = Some(misaligned);
    } else if fields.len() != header_fields {
        let habit = count_rule == FieldCount::SpreadsheetHabits;
        if habit && fields.len() < header_fields && fields.len() >= mapping.required_width {
            emitter.padded_rows += 1;
        } else if habit
            && fields.len() > header_fields
            && fields[header_fields..].iter().all(|f| f.trim().is_empty())
        {
            emitter.trimmed_rows += 1;
            fields = &fields[..header_fields];
        } else {
            field_count_error = Some(misaligned);
        }
    }
    let cells: Vec<Cell<'_>> = mapping
        .source
        .iter()
        .map(|&f| fields.get(f).map_or(Cell::Empty, |s| Cell::Text(s)))
        .collect();
    let mut record = record;
    if field_count_error.is_none() && cells.iter().all(Cell::is_blank) {
        match mapping.record_field.and_then(|f| fields.get(f)) {
            // A report row sent back with its cells still empty.
            Some(sent_back) if !sent_back.trim().is_empty() => {
                field_count_error = Some(Misaligned::ReportRecord);
                record = sent_back;
            }
            _ => {
                // Values only in columns the dataset does not read.
                emitter.ignored_rows += 1;
                return Ok(());
            }
        }
    }
    let original: Vec<Cell<'_>> = fields.iter().map(|s| Cell::Text(s)).collect();
    emitter.emit(&Row {
        number,
        sheet: None,
        cells: &cells,
        original: &original,
        record: Some(record),
        cell_fields: &mapping.source,
        field_count_error,
    })
}

/// Delimited records, read with `csv-core` (RFC 4180 quoting; CR, LF and
/// CRLF all end a record outside quotes, and a quoted field may hold any of
/// them), each with the physical line where it starts and its text as the
/// file held it.
struct DelimitedRecords {
    core: csv_core::Reader,
    reader: TextReader,
    budget: RecordBudget,
    /// The physical line of the next unread byte (1-based).
    line: u64,
    /// The last byte consumed was a CR: an LF right after it ends no line.
    after_cr: bool,
    /// The current record's bytes as read (leading blank lines included).
    raw: Vec<u8>,
    /// Its fields, unquoted, back to back; `ends` closes each.
    out: Vec<u8>,
    ends: Vec<usize>,
}

/// One record of [`DelimitedRecords`].
struct Record<'r> {
    /// The physical line where the record starts.
    line: u64,
    fields: Vec<&'r str>,
    /// The record's text without leading blank lines and line ending.
    text: &'r str,
    /// A quoted field ran over a line end to the end of the file: its quote
    /// was never closed, and the record swallowed the lines after it.
    unclosed_quote: bool,
}

impl DelimitedRecords {
    fn new(reader: TextReader, budget: RecordBudget, delimiter: u8, first_line: u64) -> Self {
        DelimitedRecords {
            core: csv_core::ReaderBuilder::new()
                .delimiter(delimiter)
                .terminator(csv_core::Terminator::CRLF)
                .build(),
            reader,
            budget,
            line: first_line,
            after_cr: false,
            raw: Vec::new(),
            out: vec![0; 1024],
            ends: vec![0; 64],
        }
    }

    /// Advances the line count over one byte.
    fn count(line: &mut u64, after_cr: &mut bool, b: u8) {
        match b {
            b'\r' => {
                *line += 1;
                *after_cr = true;
            }
            b'\n' => {
                if !*after_cr {
                    *line += 1;
                }
                *after_cr = false;
            }
            _ => *after_cr = false,
        }
    }

    fn next(&mut self) -> Result<Option<Record<'_>>, DecodeError> {
        use csv_core::ReadRecordResult as R;
        self.raw.clear();
        self.budget.reset();
        let (mut out_len, mut ends_len) = (0, 0);
        let at_eof = loop {
            let input = match self.reader.fill_buf() {
                Ok(input) => input,
                Err(_) if self.budget.exceeded() => return Err(RecordBudget::error(self.line)),
                Err(e) => return Err(DecodeError::Io(e)),
            };
            let (result, nin, nout, nend) =
                self.core
                    .read_record(input, &mut self.out[out_len..], &mut self.ends[ends_len..]);
            let eof = input.is_empty();
            self.raw.extend_from_slice(&input[..nin]);
            self.reader.consume(nin);
            out_len += nout;
            ends_len += nend;
            match result {
                R::InputEmpty => {}
                R::OutputFull => self.out.resize(self.out.len() * 2, 0),
                R::OutputEndsFull => self.ends.resize(self.ends.len() * 2, 0),
                R::Record => break eof,
                R::End => return Ok(None),
            }
        };
        // Line numbers: blank lines before the record, then its own lines.
        let (mut line, mut after_cr) = (self.line, self.after_cr);
        let body = self
            .raw
            .iter()
            .position(|&b| b != b'\r' && b != b'\n')
            .unwrap_or(self.raw.len());
        for &b in &self.raw[..body] {
            Self::count(&mut line, &mut after_cr, b);
        }
        let start = line;
        for &b in &self.raw[body..] {
            Self::count(&mut line, &mut after_cr, b);
        }
        (self.line, self.after_cr) = (line, after_cr);

        let invalid = || DecodeError::Corrupt(format!("line {start} is not valid text"));
        let text = std::str::from_utf8(&self.raw[body..])
            .map_err(|_| invalid())?
            .trim_end_matches(['\r', '\n']);
        let values = std::str::from_utf8(&self.out[..out_len]).map_err(|_| invalid())?;
        let mut fields = Vec::with_capacity(ends_len);
        let mut from = 0;
        for &end in &self.ends[..ends_len] {
            fields.push(values.get(from..end).ok_or_else(invalid)?);
            from = end;
        }
        let unclosed_quote = at_eof && fields.iter().any(|f| f.contains(['\r', '\n']));
        Ok(Some(Record {
            line: start,
            fields,
            text,
            unclosed_quote,
        }))
    }
}

fn stream_delimited(
    source: TextSource,
    delimiter: u8,
    emitter: &mut Emitter<'_>,
) -> Result<(), DecodeError> {
    let TextSource {
        info,
        reader,
        budget,
        mapping,
        header_fields,
    } = source;
    let mut records = DelimitedRecords::new(reader, budget, delimiter, info.header_row + 1);
    while let Some(record) = records.next()? {
        let rule = if record.unclosed_quote {
            FieldCount::Unaligned
        } else {
            FieldCount::SpreadsheetHabits
        };
        emit_fields(
            emitter,
            &mapping,
            header_fields,
            rule,
            record.line,
            &record.fields,
            record.text,
        )?;
    }
    Ok(())
}

fn stream_whitespace(source: TextSource, emitter: &mut Emitter<'_>) -> Result<(), DecodeError> {
    let TextSource {
        info,
        mut reader,
        budget,
        mapping,
        header_fields,
    } = source;
    let mut buf = Vec::new();
    let mut line_no = info.header_row;
    loop {
        line_no += 1;
        if !read_line(&mut reader, &budget, &mut buf, line_no)? {
            return Ok(());
        }
        let text = line_text(&buf, line_no)?;
        let fields: Vec<&str> = split_whitespace_fields(text).collect();
        emit_fields(
            emitter,
            &mapping,
            header_fields,
            FieldCount::Strict,
            line_no,
            &fields,
            text,
        )?;
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicU64, Ordering};

    use rust_xlsxwriter::{ExcelDateTime, Format, Formula, Workbook, Worksheet};

    use super::*;
    use crate::cells::{Reason, RowOutcome, validate_row};

    const HEADERS: [&str; 8] = [
        "CPF",
        "PRIVATE",
        "INCOMPLETO",
        "DATA DA ÚLTIMA COMPRA",
        "TICKET MÉDIO",
        "TICKET DA ÚLTIMA COMPRA",
        "LOJA MAIS FREQUÊNTE",
        "LOJA DA ÚLTIMA COMPRA",
    ];

    fn ds() -> Dataset {
        crate::Datasets::builtin()
            .unwrap()
            .get("user_purchase")
            .unwrap()
            .clone()
    }

    /// A temp file removed when dropped.
    struct Tmp(PathBuf);

    impl Tmp {
        fn new(name: &str) -> Self {
            static NEXT: AtomicU64 = AtomicU64::new(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            Tmp(std::env::temp_dir()
                .join(format!("xlport-decode-{}-{n}-{name}", std::process::id())))
        }

        fn with(name: &str, bytes: &[u8]) -> Self {
            let t = Self::new(name);
            std::fs::write(&t.0, bytes).unwrap();
            t
        }
    }

    impl Drop for Tmp {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    /// A cell as a short string: text as is, `n:`/`d:`/`b:`/`e:` prefixes.
    fn show(c: &Cell<'_>) -> String {
        match c {
            Cell::Empty => String::new(),
            Cell::Text(s) => (*s).to_owned(),
            Cell::Number(n) => format!("n:{n}"),
            Cell::DateSerial(n) => format!("d:{n}"),
            Cell::Bool(b) => format!("b:{b}"),
            Cell::Error(e) => format!("e:{e}"),
        }
    }

    #[derive(Debug, Clone, PartialEq)]
    struct Got {
        number: u64,
        sheet: Option<String>,
        record: Option<String>,
        cells: Vec<String>,
        original: Vec<String>,
        count: Option<(usize, usize)>,
        outcome: RowOutcome,
    }

    fn run_with(
        path: &Path,
        limits: &Limits,
        skip: u64,
    ) -> Result<(FileInfo, Vec<Got>), DecodeError> {
        let dataset = ds();
        let mut rows = Vec::new();
        let info = decode_file(path, &dataset, limits, skip, &mut |row| {
            rows.push(Got {
                number: row.number,
                sheet: row.sheet.map(str::to_owned),
                record: row.record.map(str::to_owned),
                cells: row.cells.iter().map(show).collect(),
                original: row.original.iter().map(show).collect(),
                count: row.field_count_error.map(|m| match m {
                    Misaligned::Count { found, expected } => (found, expected),
                    Misaligned::ReportRecord => (0, 0),
                }),
                outcome: validate_row(&dataset, row.cells),
            });
            Ok(())
        })?;
        Ok((info, rows))
    }

    fn run(path: &Path) -> (FileInfo, Vec<Got>) {
        let (info, rows) = run_with(path, &Limits::default(), 0).unwrap();
        let inspected = inspect(path, &ds(), &Limits::default()).unwrap();
        assert_eq!(inspected.format, info.format);
        assert_eq!(inspected.header_row, info.header_row);
        assert_eq!(inspected.sheet, info.sheet);
        (info, rows)
    }

    fn err(path: &Path) -> DecodeError {
        err_with(path, &Limits::default())
    }

    fn err_with(path: &Path, limits: &Limits) -> DecodeError {
        let e = inspect(path, &ds(), limits).unwrap_err();
        let again = run_with(path, limits, 0).unwrap_err();
        assert_eq!(e.to_string(), again.to_string());
        e
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    fn reason(got: &Got) -> Option<Reason> {
        match &got.outcome {
            RowOutcome::Rejected(r) => Some(r.reason),
            _ => None,
        }
    }

    fn write_headers(ws: &mut Worksheet, row: u32, headers: &[&str]) {
        for (c, h) in headers.iter().enumerate() {
            ws.write_string(row, c as u16, *h).unwrap();
        }
    }

    fn save(wb: &mut Workbook, name: &str) -> Tmp {
        let t = Tmp::new(name);
        wb.save(&t.0).unwrap();
        t
    }

    /// Copies an xlsx, letting `edit` change any part (crafting what
    /// rust_xlsxwriter will not write).
    fn rewrite(src: &Path, name: &str, edit: impl Fn(&str, Vec<u8>) -> Vec<u8>) -> Tmp {
        let out = Tmp::new(name);
        let mut zin = zip::ZipArchive::new(File::open(src).unwrap()).unwrap();
        let mut zout = zip::ZipWriter::new(File::create(&out.0).unwrap());
        for i in 0..zin.len() {
            let mut entry = zin.by_index(i).unwrap();
            let part = entry.name().unwrap().into_owned();
            let mut data = Vec::new();
            entry.read_to_end(&mut data).unwrap();
            let data = edit(&part, data);
            let options = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Deflated);
            zout.start_file(part, options).unwrap();
            zout.write_all(&data).unwrap();
        }
        zout.finish().unwrap();
        out
    }

    fn replace(data: Vec<u8>, from: &str, to: &str) -> Vec<u8> {
        let text = String::from_utf8(data).unwrap();
        assert!(text.contains(from), "{from} not in {text}");
        text.replacen(from, to, 1).into_bytes()
    }

    /// A small rust_xlsxwriter workbook: header on row 1, one valid row.
    fn simple_xlsx(name: &str) -> Tmp {
        let mut wb = Workbook::new();
        let ws = wb.add_worksheet_with_constant_memory().unwrap();
        write_headers(ws, 0, &HEADERS);
        ws.write_string(1, 0, "990.999.999-66").unwrap();
        ws.write_number(1, 1, 0).unwrap();
        ws.write_number(1, 2, 1).unwrap();
        ws.write_string(1, 3, "2013-05-22").unwrap();
        ws.write_number(1, 4, 399).unwrap();
        ws.write_formula(1, 5, Formula::new("=E2*2").set_result("798"))
            .unwrap();
        save(&mut wb, name)
    }

    // -- xlsx -------------------------------------------------------------

    #[test]
    fn xlsx_cells_map_to_dataset_columns_in_any_order() {
        let mut wb = Workbook::new();
        let ws = wb.add_worksheet_with_constant_memory().unwrap();
        ws.set_name("Dados").unwrap();
        // Shuffled, with an unknown column and an export's flag column.
        let headers = [
            "loja da ultima compra",
            "CPF",
            "OBS",
            "private",
            "Incompleto",
            "data da última compra",
            "TICKET  MEDIO",
            "ticket da última compra",
            "CPF VÁLIDO",
            "LOJA MAIS FREQUENTE",
            "LOJA MAIS FREQUENTE VÁLIDA",
        ];
        write_headers(ws, 0, &headers);
        let date = Format::new().set_num_format("dd/mm/yyyy");
        let when = ExcelDateTime::from_ymd(2013, 5, 22).unwrap();
        // Row 2: every kind of cell.
        ws.write_number(1, 0, 79_379_491_000_850.0).unwrap();
        ws.write_number(1, 1, 4_109_164_125.0).unwrap();
        ws.write_string(1, 2, "anything").unwrap();
        ws.write_boolean(1, 3, true).unwrap();
        ws.write_number(1, 4, 0).unwrap();
        ws.write_date_with_format(1, 5, &when, &date).unwrap();
        ws.write_number(1, 6, 705.6900000000002).unwrap();
        ws.write_formula(1, 7, Formula::new("=G2*2").set_result("1411.38"))
            .unwrap();
        ws.write_boolean(1, 8, true).unwrap();
        ws.write_string(1, 9, "79.379.491/0008-50").unwrap();
        ws.write_string(1, 12, "far right, ignored").unwrap();
        // Row 3: cached errors, a bare number in the date column, a formula
        // with a text result.
        ws.write_string(2, 1, "990.999.999-66").unwrap();
        ws.write_formula(2, 3, Formula::new("=1=1").set_result("TRUE"))
            .unwrap();
        ws.write_formula(2, 4, Formula::new("=1/0").set_result("#DIV/0!"))
            .unwrap();
        ws.write_number(2, 5, 41416).unwrap();
        ws.write_formula(2, 6, Formula::new("=NA()").set_result("#N/A"))
            .unwrap();
        ws.write_formula(2, 7, Formula::new("=\"1,5\"").set_result("1,5"))
            .unwrap();
        let file = save(&mut wb, "kinds.xlsx");

        let (info, rows) = run(&file.0);
        assert_eq!(info.format, FileFormat::Xlsx);
        assert_eq!(info.encoding, "n/a");
        assert_eq!(info.sheet.as_deref(), Some("Dados"));
        assert_eq!(info.header_row, 1);
        assert_eq!(info.data_rows, 2);
        assert_eq!(
            info.warnings,
            ["ignored a column not in dataset `user_purchase`: `OBS` (column C)"]
        );
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].number, 2);
        assert_eq!(
            rows[0].cells,
            strings(&[
                "n:4109164125",
                "b:true",
                "n:0",
                "d:41416",
                "n:705.6900000000002",
                "n:1411.38",
                "79.379.491/0008-50",
                "n:79379491000850",
            ])
        );
        // Every cell up to the row's last (M): K and M are not read, but the
        // error report keeps them.
        assert_eq!(rows[0].original.len(), 13);
        assert_eq!(rows[0].original[2], "anything");
        assert_eq!(rows[0].count, None);
        assert!(matches!(rows[0].outcome, RowOutcome::Valid(_)));
        assert_eq!(rows[1].number, 3);
        assert_eq!(
            rows[1].cells,
            strings(&[
                "990.999.999-66",
                "b:true",
                "e:#DIV/0!",
                "n:41416",
                "e:#N/A",
                "1,5",
                "",
                ""
            ])
        );
        assert_eq!(reason(&rows[1]), Some(Reason::InvalidFlag));
    }

    #[test]
    fn xlsx_with_a_shared_strings_table() {
        let mut wb = Workbook::new();
        let ws = wb.add_worksheet();
        write_headers(ws, 0, &HEADERS);
        for r in 1..=3u32 {
            ws.write_string(r, 0, "041.091.641-25").unwrap();
            ws.write_string(r, 1, "0").unwrap();
            ws.write_string(r, 2, "1").unwrap();
            ws.write_string(r, 3, "NULL").unwrap();
            ws.write_string(r, 4, "1.234,56").unwrap();
        }
        let file = save(&mut wb, "sst.xlsx");
        let mut zip = zip::ZipArchive::new(File::open(&file.0).unwrap()).unwrap();
        assert!(zip.by_name("xl/sharedStrings.xml").is_ok());
        let (info, rows) = run(&file.0);
        assert!(info.warnings.is_empty(), "{:?}", info.warnings);
        assert_eq!(rows.len(), 3);
        for (i, row) in rows.iter().enumerate() {
            assert_eq!(row.number, i as u64 + 2);
            assert_eq!(
                row.cells,
                strings(&["041.091.641-25", "0", "1", "NULL", "1.234,56", "", "", ""])
            );
            assert!(matches!(row.outcome, RowOutcome::Valid(_)));
        }
    }

    #[test]
    fn xlsx_1904_dates_are_moved_to_the_1900_system() {
        let mut wb = Workbook::new();
        let ws = wb.add_worksheet_with_constant_memory().unwrap();
        write_headers(ws, 0, &HEADERS);
        ws.write_string(1, 0, "041.091.641-25").unwrap();
        ws.write_number(1, 1, 0).unwrap();
        ws.write_number(1, 2, 0).unwrap();
        let date = Format::new().set_num_format("yyyy-mm-dd");
        // 39954 days after 1904-01-01 is 2013-05-22.
        ws.write_number_with_format(1, 3, 39954, &date).unwrap();
        let plain = save(&mut wb, "1900.xlsx");
        let (_, rows) = run(&plain.0);
        assert_eq!(rows[0].cells[3], "d:39954");

        let mac = rewrite(&plain.0, "1904.xlsx", |part, data| {
            if part == "xl/workbook.xml" {
                replace(data, "<workbookPr", "<workbookPr date1904=\"1\"")
            } else {
                data
            }
        });
        let (_, rows) = run(&mac.0);
        assert_eq!(rows[0].cells[3], "d:41416");
        let RowOutcome::Valid(v) = &rows[0].outcome else {
            panic!("{:?}", rows[0].outcome)
        };
        assert_eq!(v.values[3].as_text(), None);
        assert_eq!(
            format!("{:?}", v.values[3]),
            "Date(2013-05-22)",
            "{:?}",
            v.values
        );
    }

    #[test]
    fn xlsx_header_after_blank_rows_and_blank_rows_skipped() {
        let mut wb = Workbook::new();
        let ws = wb.add_worksheet_with_constant_memory().unwrap();
        // Rows 1-2 hold only blank/whitespace cells.
        ws.write_string(0, 0, "   ").unwrap();
        ws.write_blank(1, 3, &Format::new().set_bold()).unwrap();
        write_headers(ws, 2, &HEADERS);
        ws.write_string(3, 0, "041.091.641-25").unwrap();
        // Row 5 blank in the known columns, content only far right.
        ws.write_string(4, 20, "note").unwrap();
        ws.write_string(6, 0, "NULL").unwrap();
        let file = save(&mut wb, "row3.xlsx");
        let (info, rows) = run(&file.0);
        assert_eq!(info.header_row, 3);
        assert_eq!(info.data_rows, 2);
        assert_eq!(rows.iter().map(|r| r.number).collect::<Vec<_>>(), [4, 7]);
        assert_eq!(reason(&rows[1]), Some(Reason::MissingCpf));
    }

    #[test]
    fn xlsx_second_sheet_chosen_when_the_first_lacks_the_header() {
        let mut wb = Workbook::new();
        let notes = wb.add_worksheet();
        notes.set_name("Notas").unwrap();
        notes.write_string(0, 0, "Relatório de compras").unwrap();
        let empty = wb.add_worksheet();
        empty.set_name("Vazia").unwrap();
        let data = wb.add_worksheet();
        data.set_name("Dados").unwrap();
        write_headers(data, 0, &HEADERS);
        data.write_string(1, 0, "041.091.641-25").unwrap();
        let file = save(&mut wb, "second.xlsx");
        let (info, rows) = run(&file.0);
        assert_eq!(info.sheet.as_deref(), Some("Dados"));
        assert_eq!(rows.len(), 1);
    }

    #[test]
    fn xlsx_missing_columns_name_the_first_non_empty_sheet() {
        let mut wb = Workbook::new();
        wb.add_worksheet().set_name("Vazia").unwrap();
        let a = wb.add_worksheet();
        a.set_name("Primeira").unwrap();
        write_headers(a, 1, &["cpf", "Private", "INCOMPLETO", "OBS"]);
        let b = wb.add_worksheet();
        b.set_name("Segunda").unwrap();
        write_headers(b, 0, &["CPF"]);
        let file = save(&mut wb, "missing.xlsx");
        let e = err(&file.0);
        let DecodeError::MissingColumns { missing, sheet } = &e else {
            panic!("{e:?}")
        };
        assert_eq!(missing, &strings(&HEADERS[3..]));
        assert_eq!(sheet.as_deref(), Some("Primeira"));
        assert_eq!(
            e.to_string(),
            "missing required columns: `DATA DA ÚLTIMA COMPRA`, `TICKET MÉDIO`, \
             `TICKET DA ÚLTIMA COMPRA`, `LOJA MAIS FREQUÊNTE`, `LOJA DA ÚLTIMA COMPRA` \
             (in the first row of sheet `Primeira` that is not empty)"
        );
    }

    #[test]
    fn xlsx_empty_workbook_is_zero_rows_with_a_warning() {
        let mut wb = Workbook::new();
        wb.add_worksheet();
        let file = save(&mut wb, "empty.xlsx");
        let (info, rows) = run(&file.0);
        assert!(rows.is_empty());
        assert_eq!(info.format, FileFormat::Xlsx);
        assert_eq!(info.sheet, None);
        assert!(info.warnings[0].contains("empty"), "{:?}", info.warnings);
    }

    #[test]
    fn xlsx_header_only_warns_no_data_rows() {
        let mut wb = Workbook::new();
        write_headers(wb.add_worksheet(), 0, &HEADERS);
        let file = save(&mut wb, "header-only.xlsx");
        let (info, rows) = run(&file.0);
        assert!(rows.is_empty());
        assert_eq!(info.warnings, ["the file has a header but no data rows"]);
    }

    #[test]
    fn xlsx_duplicate_required_column_fails_naming_it() {
        let mut wb = Workbook::new();
        let ws = wb.add_worksheet();
        let mut headers = HEADERS.to_vec();
        headers.push("cpf");
        write_headers(ws, 0, &headers);
        ws.write_string(1, 0, "first").unwrap();
        ws.write_string(1, 8, "second").unwrap();
        let file = save(&mut wb, "dup.xlsx");
        assert_eq!(
            err(&file.0).to_string(),
            "the column `CPF` appears more than once in the header (column A and column I, \
             sheet `Sheet1`); keep one and upload again"
        );
    }

    #[test]
    fn a_column_under_two_of_its_spellings_is_a_duplicate_and_repeated_unknown_columns_are_not() {
        let text = "CPF;PRIVATE;INCOMPLETO;DATA DA ÚLTIMA COMPRA;TICKET MÉDIO;TICKET DA ÚLTIMA COMPRA;\
                    LOJA MAIS FREQUÊNTE;LOJA DA ÚLTIMA COMPRA;Loja mais frequente\n1;0;0;;;;;;\n";
        let file = Tmp::with("dup.csv", text.as_bytes());
        assert!(
            err(&file.0)
                .to_string()
                .starts_with("the column `LOJA MAIS FREQUÊNTE` appears more than once"),
            "{}",
            err(&file.0)
        );
        let text = format!("{CSV_HEADER};OBS;OBS\n041.091.641-25;0;0;;;;;;a;b\n");
        let file = Tmp::with("obs.csv", text.as_bytes());
        let (_, rows) = run(&file.0);
        assert_eq!(rows.len(), 1);
    }

    #[test]
    fn xlsx_formula_without_cached_value_is_empty() {
        let file = simple_xlsx("formula.xlsx");
        let (_, rows) = run(&file.0);
        assert_eq!(rows[0].cells[5], "n:798");
        let crafted = rewrite(&file.0, "nocache.xlsx", |part, data| {
            if part == "xl/worksheets/sheet1.xml" {
                replace(data, "<v>798</v>", "")
            } else {
                data
            }
        });
        let (_, rows) = run(&crafted.0);
        assert_eq!(rows[0].cells[5], "");
        assert_eq!(rows[0].cells[4], "n:399");
    }

    #[test]
    fn xlsx_unsupported_error_value_is_reported() {
        let mut wb = Workbook::new();
        let ws = wb.add_worksheet_with_constant_memory().unwrap();
        write_headers(ws, 0, &HEADERS);
        ws.write_formula(1, 4, Formula::new("=NA()").set_result("#N/A"))
            .unwrap();
        let file = save(&mut wb, "err.xlsx");
        let spill = rewrite(&file.0, "spill.xlsx", |part, data| {
            if part == "xl/worksheets/sheet1.xml" {
                replace(data, "<v>#N/A</v>", "<v>#SPILL!</v>")
            } else {
                data
            }
        });
        let e = run_with(&spill.0, &Limits::default(), 0).unwrap_err();
        assert!(matches!(e, DecodeError::Corrupt(_)), "{e:?}");
        assert!(e.to_string().contains("#SPILL!"), "{e}");
    }

    #[test]
    fn xlsx_huge_declared_dimension_allocates_nothing() {
        let file = simple_xlsx("dim.xlsx");
        let crafted = rewrite(&file.0, "bigdim.xlsx", |part, data| {
            if part == "xl/worksheets/sheet1.xml" {
                let text = String::from_utf8(data).unwrap();
                let start = text.find("<dimension ref=\"").unwrap() + 16;
                let end = start + text[start..].find('"').unwrap();
                format!("{}A1:XFD1048576{}", &text[..start], &text[end..]).into_bytes()
            } else {
                data
            }
        });
        let started = std::time::Instant::now();
        let (_, rows) = run(&crafted.0);
        assert_eq!(rows.len(), 1);
        assert!(started.elapsed().as_secs() < 5);
    }

    #[test]
    fn xlsx_zip_bomb_fails_on_inflated_bytes() {
        let file = simple_xlsx("bomb-src.xlsx");
        let padding = " ".repeat(5 * 1024 * 1024);
        let bomb = rewrite(&file.0, "bomb.xlsx", |part, data| {
            if part == "xl/worksheets/sheet1.xml" {
                replace(data, "<sheetData>", &format!("{padding}<sheetData>"))
            } else {
                data
            }
        });
        assert!(std::fs::metadata(&bomb.0).unwrap().len() < 100 * 1024);
        let limits = Limits {
            max_sheet_inflated_bytes: 1024 * 1024,
            ..Limits::default()
        };
        let e = err_with(&bomb.0, &limits);
        assert_eq!(
            e.to_string(),
            "part `xl/worksheets/sheet1.xml` of the workbook inflates past the \
             1048576-byte limit (XLPORT_MAX_SHEET_INFLATED_BYTES)"
        );
        // The same file within a larger limit reads fine.
        let (_, rows) = run(&bomb.0);
        assert_eq!(rows.len(), 1);
    }

    #[test]
    fn xlsx_shared_strings_count_that_lies_is_refused() {
        let mut wb = Workbook::new();
        write_headers(wb.add_worksheet(), 0, &HEADERS);
        let file = save(&mut wb, "sst-src.xlsx");
        let liar = rewrite(&file.0, "sst-lie.xlsx", |part, data| {
            if part == "xl/sharedStrings.xml" {
                let text = String::from_utf8(data).unwrap();
                let start = text.find("uniqueCount=\"").unwrap() + 13;
                let end = start + text[start..].find('"').unwrap();
                format!("{}4000000000{}", &text[..start], &text[end..]).into_bytes()
            } else {
                data
            }
        });
        let e = err(&liar.0);
        assert!(matches!(e, DecodeError::Corrupt(_)), "{e:?}");
        assert!(
            e.to_string()
                .contains("declares 4000000000 strings but holds 8"),
            "{e}"
        );
    }

    #[test]
    fn xlsx_too_many_header_columns() {
        let mut wb = Workbook::new();
        let ws = wb.add_worksheet();
        write_headers(ws, 0, &HEADERS);
        ws.write_string(0, 30, "far").unwrap();
        let file = save(&mut wb, "wide.xlsx");
        let limits = Limits {
            max_columns: 20,
            ..Limits::default()
        };
        let e = err_with(&file.0, &limits);
        assert!(matches!(e, DecodeError::LimitExceeded(_)), "{e:?}");
        assert!(
            e.to_string()
                .contains("20-column limit (XLPORT_MAX_COLUMNS)"),
            "{e}"
        );
    }

    #[test]
    fn truncated_xlsx_is_corrupt() {
        let file = simple_xlsx("whole.xlsx");
        let bytes = std::fs::read(&file.0).unwrap();
        let cut = Tmp::with("cut.xlsx", &bytes[..bytes.len() / 2]);
        let e = err(&cut.0);
        assert!(matches!(e, DecodeError::Corrupt(_)), "{e:?}");
        assert!(
            e.to_string()
                .starts_with("the file is truncated or not a valid .xlsx: "),
            "{e}"
        );
        // A damaged byte inside a part (CRC or inflate error).
        let mut flipped = bytes.clone();
        let sheet_at = find(&flipped, b"xl/worksheets/sheet1.xml").unwrap();
        flipped[sheet_at + 40] ^= 0xFF;
        let bad = Tmp::with("flipped.xlsx", &flipped);
        assert!(inspect(&bad.0, &ds(), &Limits::default()).is_err());
    }

    #[test]
    fn other_files_are_not_spreadsheets() {
        let cases: [(&[u8], &str); 6] = [
            (b"%PDF-1.7\n%\xE2\xE3\xCF\xD3\n", "PDF"),
            (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", "PNG"),
            (b"\xFF\xD8\xFF\xE0\0\x10JFIF", "JPEG"),
            (b"GIF89a\x01\0\x01\0", "GIF"),
            (b"CPF;PRIVATE\x00\x01\x02", "binary"),
            (
                b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1\0\0\0\0",
                "most likely an encrypted (password-protected) .xlsx; save it as .xlsx without a password",
            ),
        ];
        for (bytes, what) in cases {
            let file = Tmp::with("x.bin", bytes);
            let e = err(&file.0);
            assert!(matches!(e, DecodeError::NotASpreadsheet(_)), "{e:?}");
            assert!(e.to_string().contains(what), "{e}");
        }
    }

    #[test]
    fn other_zips_are_named() {
        let make = |name: &str, parts: &[(&str, &str)]| {
            let t = Tmp::new(name);
            let mut z = zip::ZipWriter::new(File::create(&t.0).unwrap());
            for (part, text) in parts {
                z.start_file(*part, zip::write::SimpleFileOptions::default())
                    .unwrap();
                z.write_all(text.as_bytes()).unwrap();
            }
            z.finish().unwrap();
            t
        };
        let ods = make(
            "a.ods",
            &[
                ("mimetype", "application/vnd.oasis.opendocument.spreadsheet"),
                ("content.xml", "<x/>"),
            ],
        );
        assert!(err(&ods.0).to_string().contains(".ods"));
        let docx = make(
            "a.docx",
            &[
                ("[Content_Types].xml", "<x/>"),
                ("word/document.xml", "<x/>"),
            ],
        );
        assert!(err(&docx.0).to_string().contains("Word"));
        let plain = make("a.zip", &[("data.csv", "CPF;PRIVATE")]);
        assert!(err(&plain.0).to_string().contains("zip archive"));
    }

    // -- text -------------------------------------------------------------

    const ASCII_HEADER: &str = "CPF,PRIVATE,INCOMPLETO,DATA DA ULTIMA COMPRA,TICKET MEDIO,\
                                TICKET DA ULTIMA COMPRA,LOJA MAIS FREQUENTE,LOJA DA ULTIMA COMPRA";

    const CSV_HEADER: &str = "CPF;PRIVATE;INCOMPLETO;DATA DA ÚLTIMA COMPRA;TICKET MÉDIO;\
                              TICKET DA ÚLTIMA COMPRA;LOJA MAIS FREQUÊNTE;LOJA DA ÚLTIMA COMPRA";

    /// Issue #15: a megabyte-long unknown header, and hundreds of unknown
    /// columns, give a warning of a few kilobytes, not megabytes.
    #[test]
    fn warnings_about_unknown_columns_stay_small() {
        let huge = "X".repeat(1 << 20);
        let many: Vec<String> = (0..300).map(|i| format!("EXTRA {i}")).collect();
        let text = format!(
            "{CSV_HEADER};{huge};{}\n990.999.999-66;0;0;22/05/2013;399,00;399,00;;;a{}\n",
            many.join(";"),
            ";b".repeat(300)
        );
        let file = Tmp::with("wide.csv", text.as_bytes());
        let (info, rows) = run(&file.0);
        assert_eq!(rows.len(), 1);
        assert_eq!(info.warnings.len(), 1, "{:?}", info.warnings.len());
        let warning = &info.warnings[0];
        assert!(warning.len() < 3_000, "{} bytes", warning.len());
        assert!(warning.starts_with("ignored columns not in dataset `user_purchase`: `XXX"));
        assert!(
            warning.contains("…` (field 9)"),
            "the huge name is clipped and marked"
        );
        assert!(warning.ends_with("and 281 more"), "{warning}");
    }

    #[test]
    fn csv_semicolon_windows_1252() {
        let text = format!(
            "{CSV_HEADER};OBSERVAÇÃO\r\n\
             990.999.999-66;0;0;22/05/2013;399,00;399,00;79.379.491/0008-50;79.379.491/0008-50;café\r\n"
        );
        let (bytes, _, _) = encoding_rs::WINDOWS_1252.encode(&text);
        assert!(bytes.contains(&0xC9), "TICKET MÉDIO as 0xC9");
        let file = Tmp::with("1252.csv", &bytes);
        let (info, rows) = run(&file.0);
        assert_eq!(info.format, FileFormat::Delimited { delimiter: b';' });
        assert_eq!(info.encoding, "windows-1252");
        assert_eq!(
            info.warnings,
            ["ignored a column not in dataset `user_purchase`: `OBSERVAÇÃO` (field 9)"]
        );
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].number, 2);
        assert_eq!(rows[0].cells[3], "22/05/2013");
        assert_eq!(rows[0].original[8], "café");
        assert!(matches!(rows[0].outcome, RowOutcome::Valid(_)));
    }

    #[test]
    fn csv_comma_with_utf8_bom() {
        let text = "\u{FEFF}CPF,private,incompleto,Data da Última Compra,Ticket Médio,\
                    Ticket da Última Compra,Loja Mais Frequente,Loja da Última Compra,CPF VÁLIDO\n\
                    041.091.641-25,1,0,2013-05-22,\"1.234,56\",NULL,,,true\n";
        let file = Tmp::with("bom.csv", text.as_bytes());
        let (info, rows) = run(&file.0);
        assert_eq!(info.format, FileFormat::Delimited { delimiter: b',' });
        assert_eq!(info.encoding, "utf-8 (BOM)");
        assert!(info.warnings.is_empty(), "{:?}", info.warnings);
        assert_eq!(
            rows[0].cells,
            strings(&[
                "041.091.641-25",
                "1",
                "0",
                "2013-05-22",
                "1.234,56",
                "NULL",
                "",
                ""
            ])
        );
        assert_eq!(rows[0].original.len(), 9);
    }

    #[test]
    fn tab_separated_utf8() {
        let text = format!(
            "{}\n041.091.641-25\t0\t0\tNULL\tNULL\tNULL\tNULL\tNULL\n",
            HEADERS.join("\t")
        );
        let file = Tmp::with("t.tsv", text.as_bytes());
        let (info, rows) = run(&file.0);
        assert_eq!(info.format, FileFormat::Delimited { delimiter: b'\t' });
        assert_eq!(info.encoding, "utf-8");
        assert!(matches!(rows[0].outcome, RowOutcome::Valid(_)));
    }

    #[test]
    fn delimiter_with_most_fields_wins_ties_in_order() {
        assert_eq!(delimiter_of("a;b;c,d"), Some(b';'));
        assert_eq!(delimiter_of("a;b,c,d"), Some(b','));
        assert_eq!(delimiter_of("a\tb;c"), Some(b'\t'));
        assert_eq!(delimiter_of("\"a;b\",c"), Some(b','));
        assert_eq!(delimiter_of("CPF PRIVATE"), None);
    }

    #[test]
    fn crlf_row_numbers_are_physical_lines() {
        let text = format!(
            "{CSV_HEADER}\r\n041.091.641-25;0;0;;;;;NULL\r\n\r\n529.982.247-25;0;0;;;;;\"x\"\r\n111.444.777-35;0;0;;;;;\r\n"
        );
        let file = Tmp::with("crlf.csv", text.as_bytes());
        let (_, rows) = run(&file.0);
        let numbers: Vec<u64> = rows.iter().map(|r| r.number).collect();
        assert_eq!(numbers, [2, 4, 5]);
        assert!(rows.iter().all(|r| r.count.is_none()));
        assert_eq!(rows[0].cells[7], "NULL");
        assert_eq!(rows[1].cells[7], "x");
    }

    #[test]
    fn csv_quoted_newline_row_numbers_and_field_counts() {
        let text = format!(
            "\n\n{CSV_HEADER}\n\
             041.091.641-25;0;0;NULL;NULL;NULL;NULL;\"multi\nline\nstore\"\n\
             \n\
             ;;;;;;;\n\
             041.091.641-25;0;0;NULL;NULL;NULL;NULL;NULL;extra\n\
             041.091.641-25;0;0\n\
             ;;;;;;;;;\n\
             \"\";\"\"\n\
             041.091.641-25;\"0\";\"say \"\"hi\"\"\";NULL;NULL;NULL;NULL;NULL"
        );
        let file = Tmp::with("q.csv", text.as_bytes());
        let (info, rows) = run(&file.0);
        assert_eq!(info.header_row, 3);
        let numbers: Vec<u64> = rows.iter().map(|r| r.number).collect();
        assert_eq!(numbers, [4, 9, 10, 13]);
        assert_eq!(rows[0].cells[7], "multi\nline\nstore");
        assert_eq!(rows[0].count, None);
        assert_eq!(rows[1].count, Some((9, 8)));
        assert_eq!(rows[1].original.len(), 9);
        // Short, and what it misses may be null: read with those fields empty
        // (spec: spreadsheet programs drop the separators of blank trailing cells).
        assert_eq!(rows[2].count, None);
        assert_eq!(rows[2].cells[3], "");
        assert!(
            info.warnings
                .iter()
                .any(|w| w.starts_with("1 row had fewer fields"))
        );
        assert_eq!(rows[3].cells[2], "say \"hi\"");
        assert_eq!(info.data_rows, 4);
    }

    #[test]
    fn csv_unclosed_quote_reads_to_the_end() {
        let text = format!("{CSV_HEADER}\n041.091.641-25;0;0;\"NULL;NULL;NULL;NULL;NULL\n1;2\n");
        let file = Tmp::with("unclosed.csv", text.as_bytes());
        let (_, rows) = run(&file.0);
        // The quote never closes, so the field runs over a line end to the end
        // of the file: the row cannot be aligned with the header and is
        // rejected, nothing is lost silently (though short rows of nullable
        // fields are otherwise padded).
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].number, 2);
        assert_eq!(rows[0].count, Some((4, 8)));
    }

    #[test]
    fn whitespace_format_spec_example() {
        let text = "CPF                PRIVATE     INCOMPLETO  DATA DA ÚLTIMA COMPRA TICKET MÉDIO          TICKET DA ÚLTIMA COMPRA LOJA MAIS FREQUÊNTE     LOJA DA ÚLTIMA COMPRA\n\
                    990.999.999-66     0           0           2013-05-22            399,00                399,00                  79.379.491/0008-50      79.379.491/0008-50\n\
                    041.091.641-25     0           0           NULL                  NULL                  NULL                    NULL                    NULL\n";
        let file = Tmp::with("spec.txt", text.as_bytes());
        let (info, rows) = run(&file.0);
        assert_eq!(info.format, FileFormat::Whitespace);
        assert_eq!(info.encoding, "utf-8");
        assert_eq!(info.header_row, 1);
        assert!(info.warnings.is_empty(), "{:?}", info.warnings);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].number, 2);
        assert_eq!(
            rows[0].cells,
            strings(&[
                "990.999.999-66",
                "0",
                "0",
                "2013-05-22",
                "399,00",
                "399,00",
                "79.379.491/0008-50",
                "79.379.491/0008-50"
            ])
        );
        let RowOutcome::Valid(first) = &rows[0].outcome else {
            panic!("{:?}", rows[0].outcome)
        };
        assert_eq!(first.invalid_cpf, 1);
        assert_eq!(rows[1].number, 3);
        assert_eq!(rows[1].cells[3..], strings(&["NULL"; 5]));
        assert!(matches!(rows[1].outcome, RowOutcome::Valid(_)));
    }

    #[test]
    fn whitespace_format_phrases_unknown_words_and_counts() {
        let text = "  cpf private incompleto data da ultima compra ticket medio ticket da ultima \
                    compra OBS loja mais frequente loja da ultima compra cpf válido\n\
                    \n\
                    1 0 0 NULL NULL NULL x NULL NULL true\n\
                    \t 1 \t 0 0 NULL NULL NULL NULL NULL\n";
        let file = Tmp::with("ws.txt", text.as_bytes());
        let (info, rows) = run(&file.0);
        assert_eq!(info.format, FileFormat::Whitespace);
        assert_eq!(
            info.warnings,
            ["ignored a column not in dataset `user_purchase`: `OBS` (field 7)"]
        );
        assert_eq!(rows[0].number, 3);
        assert_eq!(rows[0].count, None);
        assert_eq!(rows[0].cells[6], "NULL");
        assert_eq!(rows[1].number, 4);
        assert_eq!(rows[1].count, Some((8, 10)));
    }

    #[test]
    fn whitespace_format_missing_columns() {
        let file = Tmp::with(
            "ws-missing.txt",
            b"CPF PRIVATE INCOMPLETO TICKET\n1 0 0 1\n",
        );
        let e = err(&file.0);
        let DecodeError::MissingColumns { missing, sheet } = e else {
            panic!("{e:?}")
        };
        assert_eq!(missing, strings(&HEADERS[3..]));
        assert_eq!(sheet, None);
    }

    #[test]
    fn utf16_with_bom_is_transcoded() {
        let text = format!("{CSV_HEADER}\r\n041.091.641-25;0;0;NULL;NULL;NULL;NULL;NULL\r\n");
        let mut le = vec![0xFF, 0xFE];
        let mut be = vec![0xFE, 0xFF];
        for unit in text.encode_utf16() {
            le.extend(unit.to_le_bytes());
            be.extend(unit.to_be_bytes());
        }
        for (bytes, name) in [(le, "utf-16le (BOM)"), (be, "utf-16be (BOM)")] {
            let file = Tmp::with("u16.csv", &bytes);
            let (info, rows) = run(&file.0);
            assert_eq!(info.encoding, name);
            assert_eq!(rows.len(), 1);
            assert!(matches!(rows[0].outcome, RowOutcome::Valid(_)));
        }
    }

    #[test]
    fn utf8_is_validated_across_chunks_and_to_the_end() {
        // A two-byte character straddling the 64 KiB read boundary. The
        // header is ASCII so it reads the same in both encodings.
        let mut text = format!("{}\n", ASCII_HEADER.replace(',', ";"));
        let row = "041.091.641-25;0;0;NULL;NULL;NULL;NULL;NULL\n";
        while text.len() < 64 * 1024 - 1 - row.len() {
            text.push_str(row);
        }
        while text.len() < 64 * 1024 - 1 {
            text.push('\n');
        }
        text.push_str("É;0;0;NULL;NULL;NULL;NULL;NULL\n");
        assert!(!text.is_char_boundary(64 * 1024));
        let file = Tmp::with("chunks.csv", text.as_bytes());
        let (info, rows) = run(&file.0);
        assert_eq!(info.encoding, "utf-8");
        assert_eq!(rows.last().unwrap().cells[0], "É");

        // One Windows-1252 byte at the very end makes the whole file 1252.
        let mut bytes = text.into_bytes();
        bytes.extend(b"caf\xE9;0;0;NULL;NULL;NULL;NULL;NULL\n");
        let file = Tmp::with("late1252.csv", &bytes);
        let (info, rows) = run(&file.0);
        assert_eq!(info.encoding, "windows-1252");
        assert_eq!(rows.last().unwrap().cells[0], "café");
        // ...and the UTF-8 "É" now reads as two 1252 characters.
        assert_eq!(rows[rows.len() - 2].cells[0], "Ã‰");
    }

    #[test]
    fn empty_and_blank_files() {
        let file = Tmp::with("zero.csv", b"");
        let (info, rows) = run(&file.0);
        assert_eq!(info.format, FileFormat::Empty);
        assert_eq!(info.warnings, ["the file is empty"]);
        assert!(rows.is_empty());
        let file = Tmp::with("blank.csv", b"\r\n  \n;;;\n");
        let (info, rows) = run(&file.0);
        assert_eq!(info.format, FileFormat::Empty);
        assert!(rows.is_empty());
        let file = Tmp::with("header.csv", format!("{CSV_HEADER}\n\n").as_bytes());
        let (info, rows) = run(&file.0);
        assert!(rows.is_empty());
        assert_eq!(info.warnings, ["the file has a header but no data rows"]);
    }

    #[test]
    fn text_limits() {
        let wide = format!("{CSV_HEADER}{}\n", ";x".repeat(30));
        let file = Tmp::with("wide.csv", wide.as_bytes());
        let limits = Limits {
            max_columns: 20,
            ..Limits::default()
        };
        let e = err_with(&file.0, &limits);
        assert!(
            e.to_string()
                .contains("38 columns, more than the 20-column limit"),
            "{e}"
        );

        // A data record that never ends.
        let mut long = format!("{CSV_HEADER}\n1;\"").into_bytes();
        // The budget is counted on reads, give or take one buffer.
        long.resize(
            long.len() + MAX_TEXT_RECORD_BYTES as usize + (1 << 20),
            b'x',
        );
        let file = Tmp::with("long.csv", &long);
        let Err(e) = run_with(&file.0, &Limits::default(), 0) else {
            panic!("a record longer than the limit was read")
        };
        assert!(matches!(e, DecodeError::LimitExceeded(_)), "{e:?}");
        assert!(e.to_string().contains("starting at line 2"), "{e}");
    }

    #[test]
    fn skip_rows_resumes_after_counted_rows() {
        let text = format!(
            "{CSV_HEADER}\n\
             a;0;0\n\
             \n\
             ;;;;;;;\n\
             b;0;0;;;;;\n\
             c;0;0;;;;;\n\
             ;;;;;;;;x\n\
             d;0;0;;;;;\n"
        );
        let file = Tmp::with("skip.csv", text.as_bytes());
        let (info, all) = run(&file.0);
        assert_eq!(info.data_rows, 5);
        let firsts: Vec<&str> = all.iter().map(|r| r.original[0].as_str()).collect();
        assert_eq!(firsts, ["a", "b", "c", "", "d"]);
        for skip in 0..=6 {
            let (info, rows) = run_with(&file.0, &Limits::default(), skip).unwrap();
            assert_eq!(info.data_rows, 5);
            assert_eq!(rows[..], all[(skip as usize).min(5)..], "skip {skip}");
        }
        // xlsx too.
        let mut wb = Workbook::new();
        let ws = wb.add_worksheet_with_constant_memory().unwrap();
        write_headers(ws, 0, &HEADERS);
        for r in [1u32, 2, 4, 7] {
            ws.write_number(r, 0, f64::from(r)).unwrap();
        }
        let file = save(&mut wb, "skip.xlsx");
        let (_, rows) = run_with(&file.0, &Limits::default(), 2).unwrap();
        assert_eq!(rows.iter().map(|r| r.number).collect::<Vec<_>>(), [5, 8]);
    }

    #[test]
    fn visitor_errors_stop_the_decode() {
        let file = simple_xlsx("visitor.xlsx");
        let mut calls = 0;
        let e = decode_file(&file.0, &ds(), &Limits::default(), 0, &mut |_| {
            calls += 1;
            Err("database is down".to_owned())
        })
        .unwrap_err();
        assert_eq!(calls, 1);
        assert!(matches!(&e, DecodeError::Visitor(m) if m == "database is down"));
    }

    // -- fixtures written by other programs ----------------------------------

    const OPENPYXL: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/openpyxl_user_purchase.xlsx"
    );
    const OPENPYXL_1904: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/openpyxl_1904.xlsx"
    );

    #[test]
    fn openpyxl_fixture() {
        let (info, rows) = run(Path::new(OPENPYXL));
        assert_eq!(info.sheet.as_deref(), Some("Compras"));
        assert_eq!(info.header_row, 3);
        assert_eq!(
            info.warnings,
            ["ignored a column not in dataset `user_purchase`: `OBSERVAÇÃO` (column I)"]
        );
        let numbers: Vec<u64> = rows.iter().map(|r| r.number).collect();
        // Row 9 is empty, row 20 only has an observation.
        assert_eq!(
            numbers,
            [
                4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 21, 22, 23
            ]
        );
        let by_number = |n: u64| rows.iter().find(|r| r.number == n).unwrap();
        let outcome = |n: u64| {
            let row = by_number(n);
            match &row.outcome {
                RowOutcome::Valid(v) => Ok(v.clone()),
                RowOutcome::Rejected(r) => Err(r.reason),
                RowOutcome::Skip => panic!("row {n} skipped"),
            }
        };
        assert_eq!(
            by_number(4).cells,
            strings(&[
                "n:4109164125",
                "n:0",
                "n:1",
                "d:41416",
                "n:399",
                "1.234,56",
                "79.379.491/0008-50",
                "n:79379491000850"
            ])
        );
        let first = outcome(4).unwrap();
        assert_eq!(first.values[0].as_text(), Some("04109164125"));
        assert_eq!(first.values[7].as_text(), Some("79379491000850"));
        assert_eq!(first.invalid_cpf, 0);
        assert_eq!(outcome(5).unwrap().invalid_cpf, 1);
        assert!(outcome(6).is_ok());
        assert_eq!(by_number(7).cells[1..3], strings(&["b:true", "b:false"]));
        assert!(outcome(7).is_ok());
        // openpyxl stores formulas without a cached value.
        assert_eq!(by_number(8).cells[5], "");
        assert!(outcome(8).is_ok());
        assert_eq!(outcome(10).unwrap_err(), Reason::InvalidDate);
        assert_eq!(by_number(11).cells[3], "d:44561.99930555555");
        assert!(outcome(11).is_ok());
        assert!(outcome(12).is_ok(), "{:?}", outcome(12));
        assert_eq!(by_number(13).cells[3..5], strings(&["e:#N/A", "e:#DIV/0!"]));
        assert_eq!(outcome(13).unwrap_err(), Reason::InvalidDate);
        assert_eq!(outcome(14).unwrap_err(), Reason::InvalidFlag);
        assert_eq!(outcome(15).unwrap_err(), Reason::MissingCpf);
        assert_eq!(outcome(16).unwrap_err(), Reason::MalformedCpf);
        assert!(outcome(17).is_ok(), "{:?}", outcome(17));
        assert_eq!(outcome(22).unwrap_err(), Reason::InvalidDecimal);
        assert_eq!(outcome(23).unwrap_err(), Reason::MalformedCpf);
    }

    #[test]
    fn openpyxl_1904_fixture() {
        let (info, rows) = run(Path::new(OPENPYXL_1904));
        assert_eq!(info.sheet.as_deref(), Some("Mac"));
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].cells[3], "d:41416");
        let RowOutcome::Valid(v) = &rows[0].outcome else {
            panic!("{:?}", rows[0].outcome)
        };
        assert_eq!(format!("{:?}", v.values[3]), "Date(2013-05-22)");
    }

    // -- spreadsheet habits and line endings (issue #12) -------------------

    /// Three good rows and a multi-line quoted field, with `end` between
    /// records: the same rows, at the same physical lines, whatever `end` is.
    fn rows_with_line_end(end: &str) -> (FileInfo, Vec<Got>) {
        let text = format!(
            "{CSV_HEADER}{end}\
             041.091.641-25;0;0;2013-05-22;399,00;;;{end}\
             990.999.999-66;1;0;;;;;\"a{end}b\"{end}\
             {end}\
             529.982.247-25;0;1;;;;;"
        );
        let file = Tmp::with("ends.csv", text.as_bytes());
        run(&file.0)
    }

    #[test]
    fn lf_crlf_lone_cr_and_mixed_line_endings_read_the_same_rows() {
        for end in ["\n", "\r\n", "\r"] {
            let (info, rows) = rows_with_line_end(end);
            assert_eq!(info.data_rows, 3, "{end:?}");
            let numbers: Vec<u64> = rows.iter().map(|r| r.number).collect();
            assert_eq!(numbers, [2, 3, 6], "{end:?}");
            assert_eq!(rows[1].cells[7], format!("a{end}b"), "{end:?}");
            assert_eq!(
                rows[1].record.as_deref(),
                Some(format!("990.999.999-66;1;0;;;;;\"a{end}b\"").as_str())
            );
            assert!(rows.iter().all(|r| r.count.is_none()), "{end:?}");
        }
        let mixed = format!(
            "{CSV_HEADER}\r041.091.641-25;0;0;;;;;\r\n990.999.999-66;1;0;;;;;\n\r529.982.247-25;0;1;;;;;\r"
        );
        let file = Tmp::with("mixed.csv", mixed.as_bytes());
        let (_, rows) = run(&file.0);
        let numbers: Vec<u64> = rows.iter().map(|r| r.number).collect();
        assert_eq!(numbers, [2, 3, 5]);
        // The whitespace format too.
        let text = "CPF PRIVATE INCOMPLETO DATA DA ÚLTIMA COMPRA TICKET MÉDIO TICKET DA ÚLTIMA COMPRA \
                    LOJA MAIS FREQUÊNTE LOJA DA ÚLTIMA COMPRA\r\
                    041.091.641-25 0 0 NULL NULL NULL NULL NULL\r\
                    990.999.999-66 0 0 NULL NULL NULL NULL NULL\r";
        let file = Tmp::with("mac.txt", text.as_bytes());
        let (info, rows) = run(&file.0);
        assert_eq!(info.format, FileFormat::Whitespace);
        assert_eq!(rows.iter().map(|r| r.number).collect::<Vec<_>>(), [2, 3]);
    }

    #[test]
    fn a_classic_mac_semicolon_csv_reads_all_its_rows() {
        // The file of the report: 14 good rows between lone CRs, which once
        // "succeeded" with 0 rows.
        let mut text = String::from(CSV_HEADER);
        for i in 0..14 {
            text.push('\r');
            text.push_str(&format!(
                "{:011};0;1;2020-01-{:02};10,50;;;",
                10_000_000_000u64 + i,
                i + 1
            ));
        }
        let file = Tmp::with("mac.csv", text.as_bytes());
        let (info, rows) = run(&file.0);
        assert_eq!(info.data_rows, 14);
        assert!(
            rows.iter()
                .all(|r| matches!(r.outcome, RowOutcome::Valid(_)))
        );
        assert_eq!(rows[13].number, 15);
    }

    #[test]
    fn content_after_the_header_that_yields_no_row_fails_and_says_why() {
        // Values only under a column the dataset does not read.
        let text = format!("{CSV_HEADER};OBS\n;;;;;;;;note one\n;;;;;;;;note two\n");
        let file = Tmp::with("obs-only.csv", text.as_bytes());
        let e = run_with(&file.0, &Limits::default(), 0).unwrap_err();
        assert_eq!(
            e.to_string(),
            "2 rows after the header hold values only in columns that are not read, and none in \
             the dataset's columns: check that the data sits under the header's columns"
        );
        // The same in a workbook.
        let mut wb = Workbook::new();
        let ws = wb.add_worksheet();
        write_headers(ws, 0, &HEADERS);
        ws.write_string(1, 9, "off to the side").unwrap();
        let file = save(&mut wb, "side.xlsx");
        let e = run_with(&file.0, &Limits::default(), 0).unwrap_err();
        assert!(matches!(e, DecodeError::NoDataRows(_)), "{e}");
        // Only blank rows after the header: a succeeded empty import.
        let text = format!("{CSV_HEADER}\n;;;;;;;\n\n");
        let file = Tmp::with("blank.csv", text.as_bytes());
        let (info, rows) = run(&file.0);
        assert!(rows.is_empty());
        assert!(info.warnings.iter().any(|w| w.contains("no data rows")));
    }

    #[test]
    fn short_and_long_delimited_rows_follow_the_spreadsheet_habits() {
        let text = format!(
            "{CSV_HEADER}\n\
             041.091.641-25;0;0\n\
             990.999.999-66;1\n\
             529.982.247-25;0;1;;;;;;;;\n\
             111.444.777-35;0;1;;;;;;x\n"
        );
        let file = Tmp::with("habits.csv", text.as_bytes());
        let (info, rows) = run(&file.0);
        assert_eq!(rows[0].count, None, "nullable fields missing: padded");
        assert_eq!(rows[0].cells[7], "");
        assert_eq!(
            rows[1].count,
            Some((2, 8)),
            "INCOMPLETO missing: it cannot be null"
        );
        assert_eq!(rows[2].count, None, "empty extra fields: trimmed");
        assert_eq!(rows[2].original.len(), 8);
        assert_eq!(rows[3].count, Some((9, 8)), "an extra field with a value");
        assert_eq!(
            info.warnings,
            [
                "1 row had fewer fields than the header; their missing trailing fields were read as empty",
                "1 row had empty fields beyond the header; they were ignored",
            ]
        );
        // The whitespace format stays strict.
        let text = "CPF PRIVATE INCOMPLETO DATA DA ÚLTIMA COMPRA TICKET MÉDIO TICKET DA ÚLTIMA COMPRA \
                    LOJA MAIS FREQUÊNTE LOJA DA ÚLTIMA COMPRA\n041.091.641-25 0 0\n";
        let file = Tmp::with("strict.txt", text.as_bytes());
        let (_, rows) = run(&file.0);
        assert_eq!(rows[0].count, Some((3, 8)));
    }

    #[test]
    fn headers_match_through_invisible_format_characters() {
        let header = "\u{FEFF}C\u{200B}PF;PRI\u{AD}VATE;INCOMPLETO\u{200E};DATA DA ULTIMA COMPRA;\
                      TICKET MEDIO;TICKET DA ULTIMA COMPRA;LOJA MAIS FREQUENTE;\u{2060}LOJA DA ULTIMA COMPRA";
        let text = format!("{header}\n041.091.641-25;0;0;;;;;\n");
        let file = Tmp::with("zwsp.csv", text.as_bytes());
        let (info, rows) = run(&file.0);
        assert!(info.warnings.is_empty(), "{:?}", info.warnings);
        assert_eq!(rows.len(), 1);
    }

    #[test]
    fn utf16_text_with_a_bom_is_excels_unicode_text() {
        let text = format!(
            "{}\r\n990.999.999-66\t0\t0\t22/05/2013\t399,00\t\t\t\r\n",
            CSV_HEADER.replace(';', "\t")
        );
        for (bom, encode, name) in [
            (
                &[0xFF, 0xFE][..],
                u16::to_le_bytes as fn(u16) -> [u8; 2],
                "utf-16le (BOM)",
            ),
            (
                &[0xFE, 0xFF][..],
                u16::to_be_bytes as fn(u16) -> [u8; 2],
                "utf-16be (BOM)",
            ),
        ] {
            let mut bytes = bom.to_vec();
            for unit in text.encode_utf16() {
                bytes.extend_from_slice(&encode(unit));
            }
            let file = Tmp::with("unicode.txt", &bytes);
            let (info, rows) = run(&file.0);
            assert_eq!(info.encoding, name);
            assert_eq!(info.format, FileFormat::Delimited { delimiter: b'\t' });
            assert_eq!(rows.len(), 1);
            assert_eq!(rows[0].cells[4], "399,00");
            assert!(matches!(rows[0].outcome, RowOutcome::Valid(_)));
        }
    }

    /// Two sheets with the same header (an export longer than one sheet),
    /// then a notes sheet and an empty one.
    fn continuation_workbook() -> Tmp {
        let mut wb = Workbook::new();
        for (sheet, first) in [("user_purchase", 0u64), ("user_purchase (2)", 3)] {
            let ws = wb.add_worksheet();
            ws.set_name(sheet).unwrap();
            write_headers(ws, 0, &HEADERS);
            for i in 0..3u32 {
                ws.write_string(
                    i + 1,
                    0,
                    format!("{:011}", 10_000_000_000 + first + u64::from(i)),
                )
                .unwrap();
                ws.write_number(i + 1, 1, 0).unwrap();
                ws.write_number(i + 1, 2, 1).unwrap();
            }
        }
        let notes = wb.add_worksheet();
        notes.set_name("notes").unwrap();
        notes.write_string(0, 0, "exported by someone").unwrap();
        wb.add_worksheet().set_name("empty").unwrap();
        save(&mut wb, "continued.xlsx")
    }

    #[test]
    fn continuation_sheets_with_the_same_header_are_read_as_one_table() {
        let file = continuation_workbook();
        let (info, rows) = run(&file.0);
        assert_eq!(info.sheets, ["user_purchase", "user_purchase (2)"]);
        assert_eq!(info.data_rows, 6);
        assert_eq!(
            info.warnings,
            ["sheet `notes` not read: its first row is not the header of sheet `user_purchase`"]
        );
        let at: Vec<(Option<&str>, u64)> = rows
            .iter()
            .map(|r| (r.sheet.as_deref(), r.number))
            .collect();
        assert_eq!(
            at,
            [
                (Some("user_purchase"), 2),
                (Some("user_purchase"), 3),
                (Some("user_purchase"), 4),
                (Some("user_purchase (2)"), 2),
                (Some("user_purchase (2)"), 3),
                (Some("user_purchase (2)"), 4),
            ]
        );
        // Resuming after 4 counted rows continues on the second sheet.
        let (_, rest) = run_with(&file.0, &Limits::default(), 4).unwrap();
        assert_eq!(rest.len(), 2);
        assert_eq!(rest[0].sheet.as_deref(), Some("user_purchase (2)"));
        assert_eq!(rest[0].cells[0], "10000000004");
    }

    #[test]
    fn a_later_sheet_with_another_header_is_named_not_read() {
        let mut wb = Workbook::new();
        write_headers(wb.add_worksheet(), 0, &HEADERS);
        let other = wb.add_worksheet();
        let mut reordered = HEADERS.to_vec();
        reordered.swap(0, 1);
        write_headers(other, 0, &reordered);
        other.write_string(1, 1, "041.091.641-25").unwrap();
        let file = save(&mut wb, "other.xlsx");
        let (info, _) = run(&file.0);
        assert_eq!(info.sheets, ["Sheet1"]);
        assert_eq!(
            info.warnings[0],
            "sheet `Sheet2` not read: its first row is not the header of sheet `Sheet1`"
        );
    }

    #[test]
    fn ecma_376_escapes_in_shared_and_inline_strings_are_decoded() {
        // Shared strings (the default workbook) and inline strings (constant
        // memory): both are ECMA-376 `ST_Xstring`s (Part 1, §22.9.2.19).
        for (constant_memory, part) in [
            (false, "xl/sharedStrings.xml"),
            (true, "xl/worksheets/sheet1.xml"),
        ] {
            let mut wb = Workbook::new();
            let ws = if constant_memory {
                wb.add_worksheet_with_constant_memory().unwrap()
            } else {
                wb.add_worksheet()
            };
            write_headers(ws, 0, &HEADERS);
            ws.write_string(1, 0, "990.999.999-66").unwrap();
            ws.write_string(1, 7, "PLACEHOLDER").unwrap();
            let file = save(&mut wb, "escapes.xlsx");
            let crafted = rewrite(&file.0, "escaped.xlsx", |name, data| {
                if name == part {
                    replace(data, ">PLACEHOLDER<", ">a_x000D_b _x005F_x000D_ _x0041_<")
                } else {
                    data
                }
            });
            let (_, rows) = run(&crafted.0);
            assert_eq!(rows[0].cells[7], "a\rb _x000D_ A", "{part}");
        }
    }

    // -- other workbook formats (issue #12) ------------------------------

    /// A minimal OpenDocument spreadsheet written by hand (ODF 1.2, part 1,
    /// §9.1 tables): `sheets` of rows of (value-type, value, text) cells.
    /// An ODS cell: (value-type, value, text); an empty type is an empty cell.
    type OdsCell<'a> = (&'a str, &'a str, &'a str);

    fn ods(name: &str, sheets: &[(&str, Vec<Vec<OdsCell<'_>>>)]) -> Tmp {
        use zip::write::SimpleFileOptions;
        let out = Tmp::new(name);
        let mut z = zip::ZipWriter::new(File::create(&out.0).unwrap());
        let stored =
            SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
        z.start_file("mimetype", stored).unwrap();
        z.write_all(b"application/vnd.oasis.opendocument.spreadsheet")
            .unwrap();
        z.start_file("META-INF/manifest.xml", SimpleFileOptions::default())
            .unwrap();
        z.write_all(
            br#"<?xml version="1.0" encoding="UTF-8"?><manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2"><manifest:file-entry manifest:full-path="/" manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/><manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/></manifest:manifest>"#,
        )
        .unwrap();
        let mut content = String::from(
            r#"<?xml version="1.0" encoding="UTF-8"?><office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2"><office:body><office:spreadsheet>"#,
        );
        for (sheet, rows) in sheets {
            content.push_str(&format!(r#"<table:table table:name="{sheet}">"#));
            for row in rows {
                content.push_str("<table:table-row>");
                for (kind, value, text) in row {
                    match *kind {
                        "" => content.push_str("<table:table-cell/>"),
                        "string" => content.push_str(&format!(
                            r#"<table:table-cell office:value-type="string"><text:p>{text}</text:p></table:table-cell>"#
                        )),
                        "date" => content.push_str(&format!(
                            r#"<table:table-cell office:value-type="date" office:date-value="{value}"><text:p>{text}</text:p></table:table-cell>"#
                        )),
                        "boolean" => content.push_str(&format!(
                            r#"<table:table-cell office:value-type="boolean" office:boolean-value="{value}"><text:p>{text}</text:p></table:table-cell>"#
                        )),
                        other => content.push_str(&format!(
                            r#"<table:table-cell office:value-type="{other}" office:value="{value}"><text:p>{text}</text:p></table:table-cell>"#
                        )),
                    }
                }
                content.push_str("</table:table-row>");
            }
            content.push_str("</table:table>");
        }
        content.push_str("</office:spreadsheet></office:body></office:document-content>");
        z.start_file("content.xml", SimpleFileOptions::default())
            .unwrap();
        z.write_all(content.as_bytes()).unwrap();
        z.finish().unwrap();
        out
    }

    #[test]
    fn an_ods_workbook_reads_under_the_same_rules() {
        let header: Vec<(&str, &str, &str)> = HEADERS.iter().map(|h| ("string", "", *h)).collect();
        let data = |cpf: &'static str| {
            vec![
                ("float", cpf, cpf),
                ("float", "0", "0"),
                ("boolean", "true", "TRUE"),
                ("date", "2013-05-22", "22/05/2013"),
                ("float", "399", "399,00"),
                ("string", "", "1.234,56"),
            ]
        };
        let notes = vec![vec![("string", "", "anotações")]];
        let file = ods(
            "book.ods",
            &[
                ("Dados", vec![header.clone(), data("4109164125")]),
                ("Dados 2", vec![header, data("99099999966")]),
                ("Notas", notes),
            ],
        );
        let (info, rows) = run(&file.0);
        assert_eq!(info.format, FileFormat::Ods);
        assert_eq!(info.sheets, ["Dados", "Dados 2"]);
        assert!(
            info.warnings[0].contains("sheet `Notas` not read"),
            "{:?}",
            info.warnings
        );
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].cells[0], "n:4109164125");
        assert_eq!(rows[0].cells[2], "b:true");
        assert_eq!(rows[1].sheet.as_deref(), Some("Dados 2"));
        for row in &rows {
            match &row.outcome {
                RowOutcome::Valid(v) => {
                    let mut line = String::new();
                    v.write_copy_line(&mut line);
                    assert!(line.contains("2013-05-22"), "{line}");
                    assert!(line.contains("399.00\t1234.56"), "{line}");
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(rows[0].sheet.as_deref(), Some("Dados"));
    }

    #[test]
    fn an_ods_with_no_header_names_the_missing_columns_and_other_odf_files_are_refused() {
        let file = ods("nothing.ods", &[("S", vec![vec![("string", "", "CPF")]])]);
        assert!(matches!(err(&file.0), DecodeError::MissingColumns { .. }));
        let file = Tmp::new("text.odt");
        {
            use zip::write::SimpleFileOptions;
            let mut z = zip::ZipWriter::new(File::create(&file.0).unwrap());
            z.start_file("mimetype", SimpleFileOptions::default())
                .unwrap();
            z.write_all(b"application/vnd.oasis.opendocument.text")
                .unwrap();
            z.finish().unwrap();
        }
        assert!(err(&file.0).to_string().contains("not a spreadsheet"));
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    fn ds() -> Dataset {
        crate::Datasets::builtin()
            .unwrap()
            .get("user_purchase")
            .unwrap()
            .clone()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Whatever the bytes, decoding returns (rows or an error), never panics.
        #[test]
        fn arbitrary_bytes_never_panic(
            prefix in prop_oneof![
                Just(Vec::new()),
                Just(b"CPF;PRIVATE;INCOMPLETO;DATA DA ULTIMA COMPRA;TICKET MEDIO;TICKET DA ULTIMA COMPRA;LOJA MAIS FREQUENTE;LOJA DA ULTIMA COMPRA\n".to_vec()),
                Just(b"PK\x03\x04".to_vec()),
                Just(b"\xFF\xFE".to_vec()),
            ],
            body in proptest::collection::vec(any::<u8>(), 0..2048),
        ) {
            let path = std::env::temp_dir().join(format!(
                "xlport-decode-prop-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            let mut bytes = prefix;
            bytes.extend(body);
            std::fs::write(&path, &bytes).unwrap();
            let _ = inspect(&path, &ds(), &Limits::default());
            let _ = decode_file(&path, &ds(), &Limits::default(), 0, &mut |row| {
                assert_eq!(row.cells.len(), 8);
                Ok(())
            });
            let _ = std::fs::remove_file(&path);
        }

        /// CSV written by the csv crate reads back field for field.
        #[test]
        fn csv_round_trips(
            rows in proptest::collection::vec(
                proptest::collection::vec("[ -~\n\u{e9}\u{c9}]{0,12}", 8),
                1..20,
            ),
            delimiter in prop_oneof![Just(b';'), Just(b','), Just(b'\t')],
        ) {
            let path = std::env::temp_dir().join(format!(
                "xlport-decode-csv-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            let headers = ds().columns.iter().map(|c| c.header.clone()).collect::<Vec<_>>();
            let mut w = csv::WriterBuilder::new().delimiter(delimiter).from_path(&path).unwrap();
            w.write_record(&headers).unwrap();
            for r in &rows {
                w.write_record(r).unwrap();
            }
            w.flush().unwrap();
            drop(w);
            let mut got = Vec::new();
            let info = decode_file(&path, &ds(), &Limits::default(), 0, &mut |row| {
                if let Some(counts) = row.field_count_error {
                    return Err(format!("line {}: field counts {counts:?}", row.number));
                }
                got.push(row.cells.iter().map(|c| c.display_text().into_owned()).collect::<Vec<_>>());
                Ok(())
            });
            let _ = std::fs::remove_file(&path);
            let info = info.unwrap();
            prop_assert_eq!(info.format, FileFormat::Delimited { delimiter });
            let want: Vec<Vec<String>> = rows
                .into_iter()
                .filter(|r| !r.iter().all(|f| f.trim().is_empty()))
                .collect();
            prop_assert_eq!(got, want);
        }
    }
}
