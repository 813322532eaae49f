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

use calamine::{CellErrorType, DataRef, Reader, SheetType, Xlsx, XlsxCellReader, XlsxError};
use encoding_rs::{CoderResult, Decoder, Encoding};

use crate::cells::Cell;
use crate::dataset::{Dataset, normalize_header};

/// The longest text record (one CSV record, one whitespace-format line) read
/// into memory. A record is at most a few hundred bytes per column; a longer
/// one is a file without line breaks or an unclosed quote swallowing the rest
/// of the file, and reading it whole would make memory grow with the file.
pub const MAX_TEXT_RECORD_BYTES: u64 = 16 * 1024 * 1024;

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

/// What was found before the first data row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    pub format: FileFormat,
    /// `utf-8`, `utf-8 (BOM)`, `utf-16le (BOM)`, `utf-16be (BOM)`,
    /// `windows-1252`, or `n/a` for xlsx and zero-byte files.
    pub encoding: &'static str,
    /// The worksheet read (xlsx only).
    pub sheet: Option<String>,
    /// The header's sheet row (1-based) or physical line; 0 when there is none.
    pub header_row: u64,
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
    /// One cell per dataset column, in dataset column order; `Empty` where the
    /// file has nothing.
    pub cells: &'a [Cell<'a>],
    /// Every field of the row as in the file, for the error report: up to the
    /// last dataset column (xlsx) or all fields (text).
    pub original: &'a [Cell<'a>],
    /// Text only: `Some((found, expected))` when the row has more or fewer
    /// fields than the header; the caller rejects it (`wrong_column_count`)
    /// before looking at any cell.
    pub field_count_error: Option<(usize, usize)>,
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
    };
    let mut info = match open(path, dataset, limits)? {
        Source::Nothing(info) => return Ok(info),
        Source::Xlsx(x) => {
            let mut info = x.info.clone();
            stream_xlsx(x, &mut emitter)?;
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
    if info.data_rows == 0 {
        info.warnings
            .push("the file has a header but no data rows".to_owned());
    }
    Ok(info)
}

/// Counts rows the way the caller does and passes over the first `skip`.
struct Emitter<'v> {
    visit: &'v mut dyn FnMut(&Row<'_>) -> Result<(), String>,
    skip: u64,
    counted: u64,
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
    Text(TextSource),
}

fn open(path: &Path, dataset: &Dataset, limits: &Limits) -> Result<Source, DecodeError> {
    match sniff(path)? {
        Sniffed::Empty => Ok(Source::Nothing(FileInfo {
            format: FileFormat::Empty,
            encoding: "n/a",
            sheet: None,
            header_row: 0,
            warnings: vec!["the file is empty".to_owned()],
            data_rows: 0,
        })),
        Sniffed::Zip => open_xlsx(path, dataset, limits),
        Sniffed::Text(bom) => open_text(path, bom, dataset, limits),
    }
}

// ---------------------------------------------------------------------------
// Format detection
// ---------------------------------------------------------------------------

enum Sniffed {
    Empty,
    Zip,
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
        return Err(DecodeError::NotASpreadsheet(
            "it is an OLE2 compound document (an encrypted .xlsx or a legacy .xls): \
             encrypted or legacy .xls files are not supported; save as .xlsx without a password"
                .to_owned(),
        ));
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
        (b"\x09\x08", "a legacy binary .xls (BIFF) file"),
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
    /// The chosen sheet's name.
    sheet: String,
    /// 0-based row index of the header.
    header_index: u32,
    mapping: Mapping,
    /// Added to date serials: 1462 in a 1904-system workbook.
    date_offset: f64,
}

/// Everything calamine reads and keeps in memory (the shared strings, the
/// styles, the workbook part) and every sheet is first inflated into a
/// counting sink, so a zip bomb fails here, cheaply, instead of while rows
/// are being written.
fn open_xlsx(path: &Path, dataset: &Dataset, limits: &Limits) -> Result<Source, DecodeError> {
    guard_zip(path, limits)?;
    let file = BufReader::new(File::open(path)?);
    let mut workbook: Workbook = Xlsx::new(file).map_err(|e| xlsx_error(e, None))?;
    // calamine parses `<workbookPr date1904>` itself and exposes it.
    let date_offset = if workbook.has_1904_epoch() {
        1462.0
    } else {
        0.0
    };
    let sheets: Vec<String> = workbook
        .sheets_metadata()
        .iter()
        .filter(|s| s.typ == SheetType::WorkSheet)
        .map(|s| s.name.clone())
        .collect();
    let mut first_missing: Option<(Vec<String>, String)> = None;
    for sheet in sheets {
        let Some((header_index, headers)) = read_xlsx_header(&mut workbook, &sheet, limits)? else {
            continue;
        };
        let mapping = match map_headers(dataset, &headers, column_letters) {
            HeaderMatch::Complete(m) => m,
            HeaderMatch::Missing(missing) => {
                first_missing.get_or_insert((missing, sheet));
                continue;
            }
        };
        let info = FileInfo {
            format: FileFormat::Xlsx,
            encoding: "n/a",
            sheet: Some(sheet.clone()),
            header_row: u64::from(header_index) + 1,
            warnings: mapping.warnings.clone(),
            data_rows: 0,
        };
        return Ok(Source::Xlsx(Box::new(XlsxSource {
            workbook,
            info,
            sheet,
            header_index,
            mapping,
            date_offset,
        })));
    }
    match first_missing {
        Some((missing, sheet)) => Err(DecodeError::MissingColumns {
            missing,
            sheet: Some(sheet),
        }),
        None => Ok(Source::Nothing(FileInfo {
            format: FileFormat::Xlsx,
            encoding: "n/a",
            sheet: None,
            header_row: 0,
            warnings: vec!["the workbook is empty: no worksheet holds any value".to_owned()],
            data_rows: 0,
        })),
    }
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
            let cell = to_cell(value, 0.0);
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
    let sheet = source.sheet.clone();
    let reader = source
        .workbook
        .worksheet_cells_reader(&sheet)
        .map_err(|e| xlsx_error(e, Some(&sheet)))?;
    let mut rows = SheetRows::new(reader, &sheet);
    let width = source.mapping.last_known + 1;
    let mut values: Vec<DataRef<'_>> = vec![DataRef::Empty; width];
    let offset = source.date_offset;
    let mapping = &source.mapping;
    loop {
        values.iter_mut().for_each(|v| *v = DataRef::Empty);
        let Some(index) = rows.next_row(|col, value| {
            if let Some(slot) = values.get_mut(col) {
                *slot = value.clone();
            }
        })?
        else {
            return Ok(());
        };
        if index <= source.header_index {
            continue;
        }
        let cells: Vec<Cell<'_>> = mapping
            .source
            .iter()
            .map(|&f| values.get(f).map_or(Cell::Empty, |v| to_cell(v, offset)))
            .collect();
        if cells.iter().all(Cell::is_blank) {
            continue;
        }
        let original: Vec<Cell<'_>> = values.iter().map(|v| to_cell(v, offset)).collect();
        emitter.emit(&Row {
            number: u64::from(index) + 1,
            cells: &cells,
            original: &original,
            field_count_error: None,
        })?;
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
/// (`offset` is 1462 in a 1904 workbook); durations stay numbers; ISO text
/// dates (`t="d"`) stay text for the date rule to parse.
fn to_cell<'s>(value: &'s DataRef<'_>, offset: f64) -> Cell<'s> {
    match value {
        DataRef::Empty => Cell::Empty,
        DataRef::String(s) | DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => Cell::Text(s),
        DataRef::SharedString(s) => Cell::Text(s),
        DataRef::Float(n) => Cell::Number(*n),
        // Exact for every integer a cell can hold (|n| < 2^53).
        DataRef::Int(n) => Cell::Number(*n as f64),
        DataRef::Bool(b) => Cell::Bool(*b),
        DataRef::DateTime(dt) if dt.is_datetime() => Cell::DateSerial(dt.as_f64() + offset),
        DataRef::DateTime(dt) => Cell::Number(dt.as_f64()),
        DataRef::Error(e) => Cell::Error(error_text(e)),
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
            "the workbook is encrypted: encrypted or legacy .xls files are not supported; \
             save as .xlsx without a password"
                .to_owned(),
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
fn guard_zip(path: &Path, limits: &Limits) -> Result<(), DecodeError> {
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
    reject_other_zips(&mut zip, &names)?;
    let limit = limits.max_sheet_inflated_bytes;
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
            return Err(DecodeError::LimitExceeded(format!(
                "part `{name}` of the workbook inflates past the {limit}-byte limit \
                 (XLPORT_MAX_SHEET_INFLATED_BYTES)"
            )));
        }
        sink.check_shared_strings(&name)?;
    }
    Ok(())
}

/// ODS, XLSB and Office documents are zips too; name them instead of
/// reporting a broken .xlsx.
fn reject_other_zips<R: Read + Seek>(
    zip: &mut zip::ZipArchive<R>,
    names: &[String],
) -> Result<(), DecodeError> {
    let has = |n: &str| names.iter().any(|x| x == n);
    let has_prefix = |p: &str| names.iter().any(|x| x.starts_with(p));
    let what = if has("xl/workbook.bin") {
        Some("an Excel binary workbook (.xlsb); save it as .xlsx")
    } else if has("mimetype") && {
        let mut mime = Vec::new();
        if let Ok(entry) = zip.by_name("mimetype") {
            let _ = entry.take(200).read_to_end(&mut mime);
        }
        mime.starts_with(b"application/vnd.oasis.opendocument")
    } {
        Some("an OpenDocument file (.ods); save it as .xlsx")
    } else if !has_prefix("xl/") && has_prefix("word/") {
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
        None => Ok(()),
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
    /// The highest field index holding a dataset column.
    last_known: usize,
    warnings: Vec<String>,
}

enum HeaderMatch {
    Complete(Mapping),
    /// The headers (as the dataset spells them) of the columns not found.
    Missing(Vec<String>),
}

#[derive(Debug, Clone, Copy)]
enum Known {
    Column(usize),
    /// An export's check-digit flag column: recognised and ignored silently.
    Validity,
}

/// Every header the dataset knows, normalized, including validity headers.
fn known_headers(dataset: &Dataset) -> BTreeMap<String, Known> {
    let mut known = BTreeMap::new();
    for (_, _, header) in dataset.validity_columns() {
        known.insert(normalize_header(header), Known::Validity);
    }
    for (i, column) in dataset.columns.iter().enumerate() {
        for header in column.headers() {
            known.insert(normalize_header(header), Known::Column(i));
        }
    }
    known
}

/// Maps header fields (field index, text) to dataset columns. Unknown
/// headers are warned about; a column named twice is read from its first
/// occurrence, with a warning; blank header cells are ignored.
fn map_headers(
    dataset: &Dataset,
    headers: &[(usize, String)],
    describe: fn(usize) -> String,
) -> HeaderMatch {
    let known = known_headers(dataset);
    let mut source: Vec<Option<usize>> = vec![None; dataset.columns.len()];
    let mut warnings = Vec::new();
    let mut unknown = Vec::new();
    for (field, text) in headers {
        let key = normalize_header(text);
        if key.is_empty() {
            continue;
        }
        match known.get(&key) {
            Some(Known::Column(c)) => match source[*c] {
                None => source[*c] = Some(*field),
                Some(first) => warnings.push(format!(
                    "the column `{}` appears more than once ({} and {}); the first is read",
                    dataset.columns[*c].header,
                    describe(first),
                    describe(*field)
                )),
            },
            Some(Known::Validity) => {}
            None => unknown.push(format!("`{}` ({})", text.trim(), describe(*field))),
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
                unknown.join(", ")
            ),
        );
    }
    let source: Vec<usize> = source.into_iter().flatten().collect();
    let last_known = source.iter().copied().max().unwrap_or(0);
    HeaderMatch::Complete(Mapping {
        source,
        last_known,
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

/// Reads one physical line (without its terminator) into `line`; `false` at
/// the end of the file.
fn read_line(
    reader: &mut TextReader,
    budget: &RecordBudget,
    buf: &mut Vec<u8>,
    line_no: u64,
) -> Result<bool, DecodeError> {
    buf.clear();
    budget.reset();
    match reader.read_until(b'\n', buf) {
        Ok(0) => Ok(false),
        Ok(_) => {
            if buf.last() == Some(&b'\n') {
                buf.pop();
            }
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
            Ok(true)
        }
        Err(_) if budget.exceeded() => Err(RecordBudget::error(line_no)),
        Err(e) => Err(DecodeError::Io(e)),
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
    };
    Ok(Source::Text(TextSource {
        info: FileInfo {
            format,
            encoding: encoding.name(),
            sheet: None,
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

/// Builds the row for `fields` and hands it over unless it is blank.
fn emit_fields(
    emitter: &mut Emitter<'_>,
    mapping: &Mapping,
    header_fields: usize,
    number: u64,
    fields: &[&str],
) -> Result<(), DecodeError> {
    if fields.iter().all(|f| f.trim().is_empty()) {
        return Ok(());
    }
    let cells: Vec<Cell<'_>> = mapping
        .source
        .iter()
        .map(|&f| fields.get(f).map_or(Cell::Empty, |s| Cell::Text(s)))
        .collect();
    let field_count_error =
        (fields.len() != header_fields).then_some((fields.len(), header_fields));
    if field_count_error.is_none() && cells.iter().all(Cell::is_blank) {
        return Ok(());
    }
    let original: Vec<Cell<'_>> = fields.iter().map(|s| Cell::Text(s)).collect();
    emitter.emit(&Row {
        number,
        cells: &cells,
        original: &original,
        field_count_error,
    })
}

fn stream_delimited(
    source: TextSource,
    delimiter: u8,
    emitter: &mut Emitter<'_>,
) -> Result<(), DecodeError> {
    let header_line = source.info.header_row;
    let budget = source.budget;
    // Records end at `\n` only: with the default CRLF-aware terminator the
    // csv crate counts the `\n` of a `\r\n` toward the next record, and row
    // numbers after the first come out one short. A trailing `\r` stays in
    // the last field, where trimming removes it.
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .terminator(csv::Terminator::Any(b'\n'))
        .from_reader(source.reader);
    let mut record = csv::StringRecord::new();
    loop {
        budget.reset();
        // Lines are counted from the csv reader's start, the line after the header.
        let next_line = header_line + reader.position().line();
        match reader.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => return Ok(()),
            Err(_) if budget.exceeded() => return Err(RecordBudget::error(next_line)),
            Err(e) => {
                let line = e.position().map_or(next_line, |p| header_line + p.line());
                return Err(match e.into_kind() {
                    csv::ErrorKind::Io(io) => DecodeError::Io(io),
                    csv::ErrorKind::Utf8 { .. } => {
                        DecodeError::Corrupt(format!("line {line} is not valid text"))
                    }
                    other => DecodeError::Corrupt(format!(
                        "the file cannot be read as delimited text at line {line}: {other:?}"
                    )),
                });
            }
        }
        let number = record
            .position()
            .map_or(next_line, |p| header_line + p.line());
        let mut fields: Vec<&str> = record.iter().collect();
        // The `\r` of a CRLF line end (see the terminator above).
        if let Some(last) = fields.last_mut() {
            *last = last.strip_suffix('\r').unwrap_or(last);
        }
        emit_fields(
            emitter,
            &source.mapping,
            source.header_fields,
            number,
            &fields,
        )?;
    }
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
        emit_fields(emitter, &mapping, header_fields, line_no, &fields)?;
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
                cells: row.cells.iter().map(show).collect(),
                original: row.original.iter().map(show).collect(),
                count: row.field_count_error,
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
        // Up to the last dataset column (J); K and M are not read.
        assert_eq!(rows[0].original.len(), 10);
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
    fn xlsx_duplicate_header_reads_the_first() {
        let mut wb = Workbook::new();
        let ws = wb.add_worksheet();
        let mut headers = HEADERS.to_vec();
        headers.push("cpf");
        write_headers(ws, 0, &headers);
        ws.write_string(1, 0, "first").unwrap();
        ws.write_string(1, 8, "second").unwrap();
        let file = save(&mut wb, "dup.xlsx");
        let (info, rows) = run(&file.0);
        assert_eq!(
            info.warnings,
            ["the column `CPF` appears more than once (column A and column I); the first is read"]
        );
        assert_eq!(rows[0].cells[0], "first");
        assert_eq!(rows[0].original.len(), 8);
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
                "encrypted or legacy .xls files are not supported; save as .xlsx without a password",
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
        assert_eq!(rows[2].count, Some((3, 8)));
        assert_eq!(rows[2].cells[3], "");
        assert_eq!(rows[3].cells[2], "say \"hi\"");
        assert_eq!(info.data_rows, 4);
    }

    #[test]
    fn csv_unclosed_quote_reads_to_the_end() {
        let text = format!("{CSV_HEADER}\n041.091.641-25;0;0;\"NULL;NULL;NULL;NULL;NULL\n1;2\n");
        let file = Tmp::with("unclosed.csv", text.as_bytes());
        let (_, rows) = run(&file.0);
        // The csv crate ends the field at the end of the file: the row has
        // too few fields and is rejected, nothing is lost silently.
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
