//! xlport's workbook reader against an independent one (issue #12): each
//! generated workbook is read by `xlport_core::decode` and by openpyxl
//! (pinned, in the venv `scripts/test` installs), and every cell must agree
//! wherever the spec does not say otherwise. The workbooks vary cell types,
//! number formats (built-in and custom date formats, locale prefixes, times),
//! shared and inline strings, rich text, escapes, formulas with cached
//! values, several sheets and empty rows; some traits rust_xlsxwriter never
//! writes are made by rewriting its parts by hand (`t="d"` cells, built-in
//! date formats by id, the 1904 date system).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;

use rust_xlsxwriter::{ExcelDateTime, Format, Formula, Workbook, Worksheet};
use serde_json::Value;
use uuid::Uuid;
use xlport_core::cells::Cell;
use xlport_core::decode::{Limits, decode_file};

use xlport_tests::USER_PURCHASE_HEADERS as HEADERS;

/// A cell as both readers are compared: text, number, boolean, or a date
/// serial (1900 system).
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Text(String),
    Number(f64),
    Bool(bool),
    Serial(f64),
}

fn from_xlport(cell: &Cell<'_>) -> Option<Seen> {
    match *cell {
        Cell::Empty => None,
        Cell::Text(s) | Cell::Error(s) => Some(Seen::Text(s.to_owned())),
        Cell::Number(n) => Some(Seen::Number(n)),
        Cell::Bool(b) => Some(Seen::Bool(b)),
        Cell::DateSerial(n) => Some(Seen::Serial(n)),
    }
}

fn from_openpyxl(cell: &Value) -> Option<Seen> {
    let o = cell.as_object()?;
    if let Some(s) = o.get("s") {
        return Some(Seen::Text(s.as_str()?.to_owned()));
    }
    if let Some(n) = o.get("n") {
        return Some(Seen::Number(n.as_f64()?));
    }
    if let Some(b) = o.get("b") {
        return Some(Seen::Bool(b.as_bool()?));
    }
    o.get("serial").and_then(Value::as_f64).map(Seen::Serial)
}

/// ECMA-376 Part 1 §22.9.2.19 (`ST_Xstring`): `_xHHHH_` is the UTF-16
/// unit HHHH, and `_x005F_` escapes the underscore of a literal `_xHHHH_`.
fn ecma_unescape(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(at) = rest.find("_x") {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let unit = tail
            .get(2..6)
            .filter(|h| tail.get(6..7) == Some("_") && h.chars().all(|c| c.is_ascii_hexdigit()))
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .and_then(char::from_u32);
        match unit {
            Some(c) => {
                out.push(c);
                rest = &tail[7..];
            }
            None => {
                out.push_str("_x");
                rest = &tail[2..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Whether the two readers agree on a cell, allowing for what openpyxl is
/// known to do differently from the spec:
/// - it leaves some `_xHHHH_` escapes in text (the spec decodes them, as
///   Excel shows them): its text agrees as read or once unescaped;
/// - it reads a date-formatted value under 1 as a time of day whatever the
///   workbook's epoch (in a 1904 workbook that value is a date in 1904).
fn agree(ours: &Seen, theirs: &Seen) -> bool {
    match (ours, theirs) {
        // openpyxl goes through a datetime (microseconds): a serial agrees
        // to well under a millisecond (1e-7 days is 9 ms).
        (Seen::Serial(x), Seen::Serial(y)) => {
            (x - y).abs() < 1e-7 || (*y < 1.0 && (x - 1462.0 - y).abs() < 1e-7)
        }
        (Seen::Text(a), Seen::Text(b)) => a == b || *a == ecma_unescape(b),
        _ => ours == theirs,
    }
}

/// (sheet, 1-based row) → cells by column, as xlport reads the data rows.
type Sheets = BTreeMap<(String, u64), Vec<Option<Seen>>>;

fn xlport_cells(path: &Path) -> Sheets {
    let dataset = xlport_core::Datasets::builtin()
        .unwrap()
        .get("user_purchase")
        .unwrap()
        .clone();
    let mut out = Sheets::new();
    decode_file(path, &dataset, &Limits::default(), 0, &mut |row| {
        let sheet = row.sheet.unwrap_or_default().to_owned();
        out.insert(
            (sheet, row.number),
            row.original.iter().map(from_xlport).collect(),
        );
        Ok(())
    })
    .unwrap_or_else(|e| panic!("xlport could not read {}: {e}", path.display()));
    out
}

fn openpyxl_cells(path: &Path) -> Sheets {
    let json = xlport_tests::openpyxl_typed(&std::fs::read(path).unwrap());
    let mut sheets = Sheets::new();
    for sheet in json["sheets"].as_array().unwrap() {
        let name = sheet[0].as_str().unwrap().to_owned();
        for (i, row) in sheet[1].as_array().unwrap().iter().enumerate() {
            let cells: Vec<Option<Seen>> =
                row.as_array().unwrap().iter().map(from_openpyxl).collect();
            sheets.insert((name.clone(), i as u64 + 1), cells);
        }
    }
    sheets
}

/// Every data row xlport read must be the row openpyxl read, cell for cell;
/// and every row openpyxl read below a header that has a value in column A
/// must be one xlport read.
fn assert_readers_agree(name: &str, bytes: &[u8]) {
    let path = std::env::temp_dir().join(format!("xlport-diff-{}-{name}", Uuid::new_v4()));
    std::fs::write(&path, bytes).unwrap();
    let ours = xlport_cells(&path);
    let theirs = openpyxl_cells(&path);
    std::fs::remove_file(&path).ok();
    assert!(!ours.is_empty(), "{name}: no rows read");
    for ((sheet, row), cells) in &ours {
        let Some(other) = theirs.get(&(sheet.clone(), *row)) else {
            panic!("{name}: openpyxl has no row {sheet}!{row}");
        };
        let width = cells.len().max(other.len());
        for c in 0..width {
            let a = cells.get(c).cloned().flatten();
            let b = other.get(c).cloned().flatten();
            let same = match (&a, &b) {
                (None, None) => true,
                (Some(a), Some(b)) => agree(a, b),
                _ => false,
            };
            assert!(
                same,
                "{name}: {sheet}!R{row}C{}: xlport {a:?}, openpyxl {b:?}",
                c + 1
            );
        }
    }
    for ((sheet, row), cells) in &theirs {
        let data = *row > 1 && cells.first().cloned().flatten().is_some();
        if data {
            assert!(
                ours.contains_key(&(sheet.clone(), *row)),
                "{name}: xlport did not read {sheet}!{row}"
            );
        }
    }
}

fn header(ws: &mut Worksheet) {
    for (c, h) in HEADERS.iter().enumerate() {
        ws.write_string(0, c as u16, *h).unwrap();
    }
}

/// Values of many kinds under many formats, from column I on; column A
/// keeps each row a data row.
fn fill(ws: &mut Worksheet, seed: u32) {
    let formats = [
        Format::new().set_num_format("yyyy-mm-dd"),
        Format::new().set_num_format("dd/mm/yyyy"),
        Format::new().set_num_format("[$-416]dd/mm/yyyy"),
        Format::new().set_num_format("[$-F800]dddd, mmmm dd, yyyy"),
        Format::new().set_num_format("d-mmm-yy"),
        Format::new().set_num_format("yyyy-mm-dd hh:mm:ss"),
        Format::new().set_num_format("hh:mm"),
        Format::new().set_num_format_index(14),
        Format::new().set_num_format_index(22),
        Format::new().set_num_format("#,##0.00"),
        Format::new().set_num_format("0%"),
        Format::new().set_num_format("@"),
        Format::new().set_num_format("[Red]#,##0.00;[Blue]-#,##0.00"),
    ];
    let dt = ExcelDateTime::from_ymd(2013, 5, 22).unwrap();
    let dtt = ExcelDateTime::parse_from_str("2016-07-20T23:59:59.999").unwrap();
    let mut r = 1u32;
    for (i, f) in formats.iter().enumerate() {
        // An empty row now and then: neither reader makes a row of it.
        if (i as u32 + seed).is_multiple_of(5) {
            r += 1;
        }
        ws.write_string(r, 0, format!("row {i}")).unwrap();
        ws.write_number_with_format(r, 8, 41416.0, f).unwrap();
        ws.write_number_with_format(r, 9, 42571.9999999998, f)
            .unwrap();
        ws.write_datetime_with_format(r, 10, &dt, f).unwrap();
        ws.write_datetime_with_format(r, 11, &dtt, f).unwrap();
        ws.write_number_with_format(r, 12, 705.69 + f64::from(seed), f)
            .unwrap();
        ws.write_number_with_format(r, 13, 0.5, f).unwrap();
        r += 1;
    }
    /// A row's name and how to write its cells.
    type Writer = fn(&mut Worksheet, u32);
    let rows: [(&str, Writer); 8] = [
        ("text", |ws, r| {
            ws.write_string(r, 8, "  spaced  ").unwrap();
            ws.write_string(r, 9, "ÚLTIMA, ção; \"aspas\" ☃ 🎉")
                .unwrap();
            ws.write_string(r, 10, "line\nbreak\r\nand CR").unwrap();
            ws.write_string(r, 11, "_x000D_ literal").unwrap();
            ws.write_string(r, 12, "=1+1").unwrap();
        }),
        ("numbers", |ws, r| {
            ws.write_number(r, 8, 4109164125.0).unwrap();
            ws.write_number(r, 9, 79379491000850.0).unwrap();
            ws.write_number(r, 10, -0.1).unwrap();
            ws.write_number(r, 11, 1e-10).unwrap();
            ws.write_number(r, 12, 123456789012345.0).unwrap();
        }),
        ("booleans", |ws, r| {
            ws.write_boolean(r, 8, true).unwrap();
            ws.write_boolean(r, 9, false).unwrap();
        }),
        ("formulas", |ws, r| {
            ws.write_formula(r, 8, Formula::new("=1+1").set_result("2"))
                .unwrap();
            ws.write_formula(r, 9, Formula::new("=\"a\"&\"b\"").set_result("ab"))
                .unwrap();
            ws.write_formula(r, 10, Formula::new("=1/0").set_result("#DIV/0!"))
                .unwrap();
            ws.write_formula(r, 11, Formula::new("=TRUE()").set_result("TRUE"))
                .unwrap();
        }),
        ("rich", |ws, r| {
            let bold = Format::new().set_bold();
            let plain = Format::new();
            ws.write_rich_string(r, 8, &[(&bold, "rich "), (&plain, "text")])
                .unwrap();
        }),
        ("far", |ws, r| {
            ws.write_string(r, 40, "far right").unwrap();
        }),
        ("blank-typed", |ws, r| {
            ws.write_blank(r, 8, &Format::new().set_bold()).unwrap();
            ws.write_string(r, 9, "").unwrap();
        }),
        ("header-like", |ws, r| {
            for (c, h) in HEADERS.iter().enumerate() {
                ws.write_string(r, 8 + c as u16, *h).unwrap();
            }
        }),
    ];
    for (name, write) in rows {
        ws.write_string(r, 0, name).unwrap();
        write(ws, r);
        r += 1;
    }
}

fn workbook(constant_memory: bool) -> Vec<u8> {
    let mut wb = Workbook::new();
    for (i, name) in ["Dados", "Dados (2)"].into_iter().enumerate() {
        let ws = if constant_memory {
            wb.add_worksheet_with_constant_memory().unwrap()
        } else {
            wb.add_worksheet()
        };
        ws.set_name(name).unwrap();
        header(ws);
        fill(ws, i as u32);
    }
    wb.add_worksheet().set_name("vazia").unwrap();
    wb.save_to_buffer().unwrap()
}

/// Copies a zip, letting `edit` change any part by name.
fn rewrite(bytes: &[u8], edit: impl Fn(&str, String) -> String) -> Vec<u8> {
    let mut zin = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let mut out = std::io::Cursor::new(Vec::new());
    {
        let mut zout = zip::ZipWriter::new(&mut out);
        for i in 0..zin.len() {
            let mut entry = zin.by_index(i).unwrap();
            let name = entry.name().unwrap().into_owned();
            let mut data = String::new();
            entry.read_to_string(&mut data).unwrap();
            zout.start_file(name.as_str(), zip::write::SimpleFileOptions::default())
                .unwrap();
            zout.write_all(edit(&name, data).as_bytes()).unwrap();
        }
        zout.finish().unwrap();
    }
    out.into_inner()
}

#[test]
fn shared_strings_workbooks_read_the_same_in_xlport_and_openpyxl() {
    assert_readers_agree("shared.xlsx", &workbook(false));
}

#[test]
fn inline_strings_workbooks_read_the_same_in_xlport_and_openpyxl() {
    assert_readers_agree("inline.xlsx", &workbook(true));
}

#[test]
fn hand_made_traits_read_the_same_in_xlport_and_openpyxl() {
    let base = workbook(true);
    // ISO date cells (`t="d"`, ECMA-376 Part 1 §18.18.11), as some writers
    // (LibreOffice's strict mode, scripts) emit them.
    let iso = rewrite(&base, |name, data| {
        if name == "xl/worksheets/sheet1.xml" {
            data.replacen("<c r=\"I2\" s=", "<c r=\"I2\" t=\"d\" s=", 1)
                .replacen("<v>41416</v>", "<v>2013-05-22T00:00:00</v>", 1)
        } else {
            data
        }
    });
    assert_readers_agree("iso-dates.xlsx", &iso);
    // The 1904 date system (ECMA-376 Part 1 §18.2.28): the same serials are
    // 1462 days later.
    let mac = rewrite(&base, |name, data| {
        if name == "xl/workbook.xml" {
            data.replacen("<workbookPr", "<workbookPr date1904=\"1\"", 1)
        } else {
            data
        }
    });
    assert_readers_agree("date1904.xlsx", &mac);
    // Escapes in shared strings (`_xHHHH_`, ECMA-376 Part 1 §22.9.2.19).
    // (An escaped underscore, `_x005F_x0041_`, is left to the decoder's unit
    // test: openpyxl decodes it and then not the escape it protected.)
    let shared = workbook(false);
    let escaped = rewrite(&shared, |name, data| {
        if name == "xl/sharedStrings.xml" {
            data.replacen("<t>row 0</t>", "<t>row_x000D_0 _x0041_</t>", 1)
        } else {
            data
        }
    });
    assert_readers_agree("escapes.xlsx", &escaped);
}
