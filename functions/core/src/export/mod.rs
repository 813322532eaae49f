//! Export encoding: rows as Postgres sends them (`COPY ... TO STDOUT`, text
//! format) in, an .xlsx or .csv byte stream out. The xlsx side uses
//! rust_xlsxwriter's constant-memory worksheets, so memory stays flat however
//! many rows pass through; only the library's temp files grow (in `tmp_dir`).
//!
//! The types both formats share live here; one module per job:
//! - `filter`: an export request's `filter`, validated against the dataset;
//! - `copy_text`: `COPY ... TO STDOUT` text lines split into fields;
//! - `mask`: CPF and CNPJ masks;
//! - `xlsx_writer` and `csv_writer`: one module per output format.

use crate::dataset::{ColumnType, Dataset};
use rust_xlsxwriter::XlsxError;

mod copy_text;
mod csv_writer;
mod filter;
mod mask;
mod xlsx_writer;

#[cfg(test)]
mod test_support;

pub use copy_text::split_copy_line;
pub use csv_writer::{CSV_DIALECTS, CsvDialect, CsvExport, neutralise_formula};
pub use filter::{Condition, FilterError, parse_filter};
pub use mask::{Masked, mask_cnpj, mask_cpf};
pub use xlsx_writer::XlsxExport;

/// Excel's last row is 1,048,576 (ECMA-376 Part 1, 18.3.1.73: `r` of a `row`
/// is at most 1,048,576 in Excel; LibreOffice 7.4 has the same limit); one is
/// the header.
pub const MAX_DATA_ROWS_PER_SHEET: u32 = 1_048_575;

/// The formats (their names, extensions and content types) are the API's.
pub use xlport_contract::ExportFormat;

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
