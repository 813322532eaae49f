//! `.xlsx` (ECMA-376 SpreadsheetML) through calamine's streaming cell reader:
//! one row held at a time, never `worksheet_range`, so memory stays flat
//! whatever the sheet's size. The zip's parts have passed the guards of
//! `super::sniff` before the workbook is opened; finding the table and
//! handing rows over follow the rules every workbook format shares
//! (`super::sheet`).

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use calamine::{DataRef, Reader, Xlsx, XlsxCellReader, XlsxError};

use super::sheet::{
    HeaderCells, Table, emit_sheet_row, encrypted_workbook, find_table, header_too_wide, to_cell,
    worksheet_names,
};
use super::{DecodeError, Emitter, FileFormat, Limits, Source};
use crate::cells::Cell;
use crate::dataset::Dataset;

type Workbook = Xlsx<BufReader<File>>;

pub(super) struct XlsxSource {
    workbook: Workbook,
    pub(super) table: Table,
}

/// Everything calamine reads and keeps in memory (the shared strings, the
/// styles, the workbook part) and every sheet is first inflated into a
/// counting sink, so a zip bomb fails here, cheaply, instead of while rows
/// are being written.
pub(super) fn open_xlsx(
    path: &Path,
    dataset: &Dataset,
    limits: &Limits,
) -> Result<Source, DecodeError> {
    let file = BufReader::new(File::open(path)?);
    let mut workbook: Workbook = Xlsx::new(file).map_err(|e| xlsx_error(e, None))?;
    let names = worksheet_names(workbook.sheets_metadata());
    let table = find_table(dataset, FileFormat::Xlsx, names, |sheet| {
        read_xlsx_header(&mut workbook, sheet, limits)
    })?;
    Ok(match table {
        Err(nothing) => Source::Nothing(nothing),
        Ok(table) => Source::Xlsx(Box::new(XlsxSource { workbook, table })),
    })
}

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
            return Err(header_too_wide(sheet, limits));
        }
        if !headers.is_empty() {
            return Ok(Some((index, headers)));
        }
    }
}

pub(super) fn stream_xlsx(
    source: Box<XlsxSource>,
    emitter: &mut Emitter<'_>,
) -> Result<(), DecodeError> {
    let mut source = *source;
    let sheets = std::mem::take(&mut source.table.sheets);
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
    let mapping = &source.table.mapping;
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

/// A calamine error as something the user can act on.
fn xlsx_error(e: XlsxError, sheet: Option<&str>) -> DecodeError {
    let place = sheet.map_or_else(String::new, |s| format!(" (sheet `{s}`)"));
    match e {
        XlsxError::Password => encrypted_workbook(""),
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

#[cfg(test)]
mod tests {
    use rust_xlsxwriter::{ExcelDateTime, Format, Formula, Workbook};

    use super::*;
    use crate::cells::{Reason, RowOutcome};
    use crate::decode::test_support::*;

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
}
