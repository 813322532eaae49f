//! `.xls` (BIFF8), `.xlsb` and `.ods` through calamine, each sheet read
//! whole, under the rules every workbook format shares (`super::sheet`). One
//! module for the three: calamine's `Sheets` reads them all the same way.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use calamine::{Data, Range, Reader};

use super::sheet::{
    HeaderCells, Table, data_cell, emit_sheet_row, encrypted_workbook, find_table, header_too_wide,
    worksheet_names,
};
use super::{DecodeError, Emitter, FileFormat, Limits, Source};
use crate::cells::Cell;
use crate::dataset::Dataset;

type WholeBook = calamine::Sheets<BufReader<File>>;

pub(super) struct WholeSource {
    book: WholeBook,
    pub(super) table: Table,
}

/// `.xls` (BIFF8), `.xlsb` and `.ods` through calamine, under the same rules
/// as `.xlsx`: the header, continuation sheets, dates from the cell's format,
/// the 1904 flag. calamine reads these a sheet at a time, whole; memory is
/// bounded by the format (65,536 × 256 cells in BIFF8) or by
/// [`MAX_WHOLE_SHEET_INFLATED_BYTES`](super::MAX_WHOLE_SHEET_INFLATED_BYTES).
pub(super) fn open_whole(
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
            return Err(header_too_wide(sheet, limits));
        }
        if !headers.is_empty() {
            return Ok(Some((first_row + i as u32, headers)));
        }
    }
    Ok(None)
}

pub(super) fn stream_whole(
    source: WholeSource,
    emitter: &mut Emitter<'_>,
) -> Result<(), DecodeError> {
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
        | Error::Ods(OdsError::Password) => encrypted_workbook(&place),
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

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;
    use crate::cells::RowOutcome;
    use crate::decode::test_support::*;

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
