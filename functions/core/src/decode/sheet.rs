//! What the workbook formats share (docs/spec/user_purchase.md,
//! "File-level rules", xlsx): the table found across the worksheets (the
//! first whose header holds every dataset column, then its continuation
//! sheets), a sheet row handed over, and calamine's values as [`Cell`]s:
//! dates moved to the 1900 system (the `date1904` flag, ECMA-376 Part 1
//! §18.2.28), errors spelled as Excel shows them.

use calamine::{CellErrorType, Data, DataRef, ExcelDateTime, ExcelDateTimeType, SheetType};

use super::header::{HeaderMatch, Mapping, map_headers};
use super::{
    DecodeError, Emitter, FileFormat, FileInfo, Limits, Misaligned, Row, dense_header, listed,
    plural,
};
use crate::cells::Cell;
use crate::dataset::{Dataset, normalize_header};

/// A header row as a matching key: (column, normalized text) of every
/// non-blank cell.
fn header_key(headers: &[(usize, String)]) -> HeaderCells {
    headers
        .iter()
        .map(|(c, h)| (*c, normalize_header(h)))
        .filter(|(_, h)| !h.is_empty())
        .collect()
}

/// A sheet whose header row reaches past the column limit, in every workbook
/// format.
pub(super) fn header_too_wide(sheet: &str, limits: &Limits) -> DecodeError {
    limits.too_wide(format_args!("the header row of sheet `{sheet}` spans"))
}

/// An encrypted workbook, in every workbook format; `place` is empty or
/// ` (sheet `…`)`.
pub(super) fn encrypted_workbook(place: &str) -> DecodeError {
    DecodeError::NotASpreadsheet(format!(
        "the workbook is encrypted (password-protected); save it without a password{place}"
    ))
}

/// The table of a workbook: where its rows are and how they map.
pub(super) struct Table {
    pub(super) info: FileInfo,
    /// The sheets read, in workbook order: the first whose header holds
    /// every dataset column, then its continuation sheets; each with the
    /// 0-based row index of its header.
    pub(super) sheets: Vec<(String, u32)>,
    pub(super) mapping: Mapping,
}

/// Finds the table in a workbook's sheets (`names`, in workbook order), given
/// each sheet's first non-empty row from `header_of`: the first worksheet
/// whose first non-empty row holds every dataset column, and every later
/// worksheet whose first non-empty row is that same header (spec "File-level
/// rules", xlsx: how an export longer than one sheet comes back). Any other
/// worksheet holding a value is named in a warning. `Ok(Err(info))`: the
/// workbook holds no value at all.
pub(super) fn find_table(
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

pub(super) fn worksheet_names(sheets: &[calamine::Sheet]) -> Vec<String> {
    sheets
        .iter()
        .filter(|s| s.typ == SheetType::WorkSheet)
        .map(|s| s.name.clone())
        .collect()
}

/// Header cells as (field or column index, text).
pub(super) type HeaderCells = Vec<(usize, String)>;

/// Hands over one worksheet row (`original`: its cells by column) unless it
/// is blank; see `xlsx::stream_sheet`.
pub(super) fn emit_sheet_row(
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

/// calamine's value as a [`Cell`]. Date serials are moved to the 1900 system
/// (see [`serial_1900`]); durations stay numbers; ISO text dates (`t="d"`,
/// ODS date values) stay text for the date rule to parse.
pub(super) fn to_cell<'s>(value: &'s DataRef<'_>) -> Cell<'s> {
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
pub(super) fn data_cell(value: &Data) -> Cell<'_> {
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

#[cfg(test)]
mod tests {
    use rust_xlsxwriter::Workbook;

    use super::*;
    use crate::decode::test_support::*;

    #[test]
    fn the_messages_every_workbook_format_shares() {
        let limits = Limits {
            max_columns: 20,
            ..Limits::default()
        };
        assert!(matches!(
            header_too_wide("Plan1", &limits),
            DecodeError::LimitExceeded(m) if m == "the header row of sheet `Plan1` spans more \
                than the 20-column limit (XLPORT_MAX_COLUMNS)"
        ));
        assert!(matches!(
            limits.too_wide(format_args!("the header at line 3 has 38 columns,")),
            DecodeError::LimitExceeded(m) if m == "the header at line 3 has 38 columns, more \
                than the 20-column limit (XLPORT_MAX_COLUMNS)"
        ));
        assert!(matches!(
            encrypted_workbook(""),
            DecodeError::NotASpreadsheet(m) if m == "the workbook is encrypted \
                (password-protected); save it without a password"
        ));
        assert!(matches!(
            encrypted_workbook(" (sheet `Plan1`)"),
            DecodeError::NotASpreadsheet(m) if m == "the workbook is encrypted \
                (password-protected); save it without a password (sheet `Plan1`)"
        ));
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
}
