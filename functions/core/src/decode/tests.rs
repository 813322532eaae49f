//! End-to-end tests of the entry points: what [`decode_file`] does whatever
//! the format (rows counted and skipped, warnings, a visitor's error, content
//! that yields no row).

use rust_xlsxwriter::Workbook;

use super::test_support::*;
use super::*;

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
