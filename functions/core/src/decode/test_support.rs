//! Fixtures shared by the decoder's tests: temp files, small workbooks built
//! with rust_xlsxwriter (or crafted part by part), and a run of
//! [`decode_file`] that checks [`inspect`] agrees and records every row as
//! short strings along with what the cell rules make of it.

use std::fs::File;
use std::io::{Read, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rust_xlsxwriter::{Formula, Workbook, Worksheet};

use super::{DecodeError, FileInfo, Limits, Misaligned, decode_file, inspect};
use crate::cells::{Cell, Reason, RowOutcome, validate_row};
use crate::dataset::Dataset;

pub(super) const HEADERS: [&str; 8] = [
    "CPF",
    "PRIVATE",
    "INCOMPLETO",
    "DATA DA ÚLTIMA COMPRA",
    "TICKET MÉDIO",
    "TICKET DA ÚLTIMA COMPRA",
    "LOJA MAIS FREQUÊNTE",
    "LOJA DA ÚLTIMA COMPRA",
];

pub(super) fn ds() -> Dataset {
    crate::Datasets::builtin()
        .unwrap()
        .get("user_purchase")
        .unwrap()
        .clone()
}

/// A temp file removed when dropped.
pub(super) struct Tmp(pub(super) PathBuf);

impl Tmp {
    pub(super) fn new(name: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        Tmp(std::env::temp_dir().join(format!("xlport-decode-{}-{n}-{name}", std::process::id())))
    }

    pub(super) fn with(name: &str, bytes: &[u8]) -> Self {
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
pub(super) struct Got {
    pub(super) number: u64,
    pub(super) sheet: Option<String>,
    pub(super) record: Option<String>,
    pub(super) cells: Vec<String>,
    pub(super) original: Vec<String>,
    pub(super) count: Option<(usize, usize)>,
    pub(super) outcome: RowOutcome,
}

pub(super) fn run_with(
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

pub(super) fn run(path: &Path) -> (FileInfo, Vec<Got>) {
    let (info, rows) = run_with(path, &Limits::default(), 0).unwrap();
    let inspected = inspect(path, &ds(), &Limits::default()).unwrap();
    assert_eq!(inspected.format, info.format);
    assert_eq!(inspected.header_row, info.header_row);
    assert_eq!(inspected.sheet, info.sheet);
    (info, rows)
}

pub(super) fn err(path: &Path) -> DecodeError {
    err_with(path, &Limits::default())
}

pub(super) fn err_with(path: &Path, limits: &Limits) -> DecodeError {
    let e = inspect(path, &ds(), limits).unwrap_err();
    let again = run_with(path, limits, 0).unwrap_err();
    assert_eq!(e.to_string(), again.to_string());
    e
}

pub(super) fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

pub(super) fn reason(got: &Got) -> Option<Reason> {
    match &got.outcome {
        RowOutcome::Rejected(r) => Some(r.reason),
        _ => None,
    }
}

pub(super) fn write_headers(ws: &mut Worksheet, row: u32, headers: &[&str]) {
    for (c, h) in headers.iter().enumerate() {
        ws.write_string(row, c as u16, *h).unwrap();
    }
}

pub(super) fn save(wb: &mut Workbook, name: &str) -> Tmp {
    let t = Tmp::new(name);
    wb.save(&t.0).unwrap();
    t
}

/// Copies an xlsx, letting `edit` change any part (crafting what
/// rust_xlsxwriter will not write).
pub(super) fn rewrite(src: &Path, name: &str, edit: impl Fn(&str, Vec<u8>) -> Vec<u8>) -> Tmp {
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

pub(super) fn replace(data: Vec<u8>, from: &str, to: &str) -> Vec<u8> {
    let text = String::from_utf8(data).unwrap();
    assert!(text.contains(from), "{from} not in {text}");
    text.replacen(from, to, 1).into_bytes()
}

/// A small rust_xlsxwriter workbook: header on row 1, one valid row.
pub(super) fn simple_xlsx(name: &str) -> Tmp {
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

pub(super) const CSV_HEADER: &str = "CPF;PRIVATE;INCOMPLETO;DATA DA ÚLTIMA COMPRA;TICKET MÉDIO;\
                          TICKET DA ÚLTIMA COMPRA;LOJA MAIS FREQUÊNTE;LOJA DA ÚLTIMA COMPRA";
