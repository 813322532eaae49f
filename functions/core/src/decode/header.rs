//! Header mapping, all formats (docs/spec/user_purchase.md, "File-level
//! rules"): which field holds each dataset column, under any of its
//! spellings, compared through [`normalize_header`]. Unknown columns are
//! warned about, a dataset column named twice is refused, and the export's
//! check-digit flag columns and the error report's own columns are
//! recognised and not read as data.

use std::collections::BTreeMap;

use super::{
    REPORT_DETAIL_HEADER, REPORT_REASON_HEADER, REPORT_RECORD_HEADER, REPORT_ROW_HEADER,
    REPORT_SHEET_HEADER, listed,
};
use crate::dataset::{Dataset, normalize_header};

/// Where each dataset column is read from.
#[derive(Debug, Clone)]
pub(super) struct Mapping {
    /// For each dataset column, the index of its field.
    pub(super) source: Vec<usize>,
    /// Fields a delimited row needs to hold every column that cannot be
    /// null: a shorter row misses a required value.
    pub(super) required_width: usize,
    /// The field of the error report's original-record column, when the
    /// file is a report sent back.
    pub(super) record_field: Option<usize>,
    pub(super) warnings: Vec<String>,
}

pub(super) enum HeaderMatch {
    Complete(Mapping),
    /// The headers (as the dataset spells them) of the columns not found.
    Missing(Vec<String>),
    /// A dataset column named twice: (its header, first place, second place).
    Duplicate(String, String, String),
}

#[derive(Debug, Clone, Copy)]
pub(super) enum Known {
    Column(usize),
    /// An export's check-digit flag column, or one of the error report's
    /// own columns: recognised and ignored silently.
    Validity,
    /// The error report's original-record column.
    Record,
}

/// Every header the dataset knows, normalized, including validity headers.
pub(super) fn known_headers(dataset: &Dataset) -> BTreeMap<String, Known> {
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
pub(super) fn map_headers(
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

pub(super) fn field_number(index: usize) -> String {
    format!("field {}", index + 1)
}

#[cfg(test)]
mod tests {
    use rust_xlsxwriter::Workbook;

    use crate::decode::test_support::*;

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
    fn headers_match_through_invisible_format_characters() {
        let header = "\u{FEFF}C\u{200B}PF;PRI\u{AD}VATE;INCOMPLETO\u{200E};DATA DA ULTIMA COMPRA;\
                      TICKET MEDIO;TICKET DA ULTIMA COMPRA;LOJA MAIS FREQUENTE;\u{2060}LOJA DA ULTIMA COMPRA";
        let text = format!("{header}\n041.091.641-25;0;0;;;;;\n");
        let file = Tmp::with("zwsp.csv", text.as_bytes());
        let (info, rows) = run(&file.0);
        assert!(info.warnings.is_empty(), "{:?}", info.warnings);
        assert_eq!(rows.len(), 1);
    }
}
