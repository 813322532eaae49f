//! Import bookkeeping that needs no database: conflict policies, counts, and
//! cutting validated rows into parts of N non-blank data rows, each carrying
//! its COPY text for the valid rows and its rejected rows for the report.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::cells::{Reason, Rejection, RowOutcome, validate_row};
use crate::dataset::{ColumnType, Dataset};
use crate::decode::Row;
use crate::export::split_copy_line;
use crate::report::StoredCell;

/// The policies and the counters are the API's ([`xlport_contract`]): a
/// job's `options` and `counts` carry them as they are.
pub use xlport_contract::{ConflictPolicy, ImportCounts};

/// A rejected row as the error report shows it (see [`crate::report`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RejectedRow {
    /// The row's position among the file's counted data rows (0-based):
    /// orders the report and identifies the row across sheets.
    pub ord: u64,
    /// The worksheet the row was on (workbooks only).
    pub sheet: Option<String>,
    /// The sheet row, or the physical line where the text record starts.
    pub row_number: u64,
    pub reason: Reason,
    pub message: String,
    /// Every field of the row as the file held it, typed, by field index.
    pub cells: Vec<StoredCell>,
    /// The field whose cell decided the rejection.
    pub failed_field: Option<usize>,
    /// The record as the file held it, for a row whose fields could not be
    /// aligned with the header (its cells are then not shown).
    pub record: Option<String>,
}

/// A valid row kept while the policy may still reject it (duplicates under
/// `reject`): what its rejection would need.
#[derive(Debug, Clone, PartialEq)]
pub struct KeptRow {
    pub sheet: Option<String>,
    pub row_number: u64,
    pub cells: Vec<StoredCell>,
    /// The field of the dataset's key.
    pub key_field: Option<usize>,
}

/// What a valid row rejected under the `reject` policy is told: its key is
/// in the table already, or earlier in the file (docs/spec/user_purchase.md,
/// "Duplicate `cpf`"). `key_text` is the key as the table holds it.
pub fn duplicate_key_message(dataset: &Dataset, key_text: &str) -> String {
    let key = &dataset.key;
    let header = dataset
        .column(key)
        .map_or(key.as_str(), |c| c.header.as_str());
    format!("column {key}: {header} {key_text} is already in the table or earlier in the file")
}

impl KeptRow {
    /// The row rejected as a duplicate key.
    pub fn rejected(self, ord: u64, message: String) -> RejectedRow {
        RejectedRow {
            ord,
            sheet: self.sheet,
            row_number: self.row_number,
            reason: Reason::DuplicateKey,
            message,
            cells: self.cells,
            failed_field: self.key_field,
            record: None,
        }
    }
}

/// One part: a contiguous block of non-blank data rows.
#[derive(Debug, Default)]
pub struct Part {
    /// 1-based.
    pub number: u32,
    /// Where the part starts and ends: the sheet (workbooks) and the row.
    pub first_sheet: Option<String>,
    pub first_row: u64,
    pub last_sheet: Option<String>,
    pub last_row: u64,
    /// Valid rows, each `ord \t stored columns... \n` (COPY text), `ord`
    /// being the row's position in the file, which orders duplicates.
    pub copy_text: String,
    pub valid_rows: u64,
    /// Each valid row, by `ord`, kept only when the policy may still reject
    /// valid rows (duplicates under `reject`).
    pub valid_cells: BTreeMap<u64, KeptRow>,
    pub rejected: Vec<RejectedRow>,
    /// Counts known before the merge: rows read, rejections, flags.
    pub counts: ImportCounts,
    /// The valid rows split for a plain COPY, when the parsing stage did it
    /// ahead of the loader (see [`Part::prepare_direct_copy`]).
    pub direct: Option<PartSplit>,
}

/// A part's valid rows, split between a plain `COPY` into the table and the
/// staging merge the conflict policy needs.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PartSplit {
    /// COPY text of the rows that can go straight into the table: the
    /// stored columns then `extra_field` (no `ord`).
    pub direct: String,
    pub direct_rows: u64,
    /// COPY text (with `ord`) of the rows that need the merge.
    pub staged: String,
    pub staged_rows: u64,
}

impl Part {
    /// Whether rows of `dataset` can skip the staging merge at all: its key
    /// must be stored as text, so keys compare as the strings we hold.
    pub fn direct_copy_possible(dataset: &Dataset) -> bool {
        dataset.columns.get(dataset.key_index()).is_some_and(|c| {
            matches!(
                c.kind,
                ColumnType::Cpf | ColumnType::Cnpj | ColumnType::Text
            )
        })
    }

    /// The key of each valid row, in file order, COPY escapes undone.
    pub fn keys(&self, dataset: &Dataset) -> Vec<String> {
        let position = dataset.key_index() + 1; // after `ord`
        let mut fields = Vec::new();
        self.copy_text
            .lines()
            .map(|line| {
                split_copy_line(line, &mut fields);
                fields
                    .get(position)
                    .and_then(|f| f.as_deref())
                    .unwrap_or_default()
                    .to_string()
            })
            .collect()
    }

    /// Splits the rows ahead for [`Part::split_for_direct_copy`], on the
    /// parsing thread, so the loader only sends them.
    pub fn prepare_direct_copy(&mut self, dataset: &Dataset, extra_field: &str) {
        if self.valid_rows > 0 && Self::direct_copy_possible(dataset) {
            self.direct = Some(self.split_for_direct_copy(dataset, extra_field));
        }
    }

    /// Splits the valid rows for loading: a row whose key appears only once
    /// in the part is a plain insert under every policy, unless the key is
    /// already in the table, so it goes to `direct`, followed by
    /// `extra_field` (the job id, say), in key order (an index takes sorted
    /// keys faster); rows of repeated keys need the merge.
    pub fn split_for_direct_copy(&self, dataset: &Dataset, extra_field: &str) -> PartSplit {
        let keys = self.keys(dataset);
        let mut seen: HashMap<&str, u32> = HashMap::with_capacity(keys.len());
        for k in &keys {
            *seen.entry(k.as_str()).or_default() += 1;
        }
        let mut split = PartSplit::default();
        let mut direct: Vec<(&str, &str)> = Vec::with_capacity(keys.len());
        for (line, key) in self.copy_text.lines().zip(&keys) {
            if seen.get(key.as_str()) == Some(&1) {
                let row = line.split_once('\t').map_or(line, |(_, rest)| rest);
                direct.push((key, row));
            } else {
                split.staged.push_str(line);
                split.staged.push('\n');
                split.staged_rows += 1;
            }
        }
        direct.sort_unstable_by(|a, b| a.0.cmp(b.0));
        for (_, row) in direct {
            split.direct.push_str(row);
            split.direct.push('\t');
            split.direct.push_str(extra_field);
            split.direct.push('\n');
            split.direct_rows += 1;
        }
        split
    }
}

/// Cuts the rows a decoder produces into parts.
pub struct PartBuilder<'d> {
    dataset: &'d Dataset,
    part_rows: u64,
    keep_valid_cells: bool,
    next_number: u32,
    next_ord: u64,
    current: Part,
}

impl<'d> PartBuilder<'d> {
    /// `committed_parts` and `committed_rows` say where a resumed import
    /// starts: the decoder skips that many rows, the builder numbers on.
    pub fn new(
        dataset: &'d Dataset,
        part_rows: usize,
        policy: ConflictPolicy,
        committed_parts: u32,
        committed_rows: u64,
    ) -> Self {
        PartBuilder {
            dataset,
            part_rows: part_rows.max(1) as u64,
            keep_valid_cells: policy == ConflictPolicy::Reject,
            next_number: committed_parts + 1,
            next_ord: committed_rows,
            current: Part::default(),
        }
    }

    /// Adds one data row; returns a part when it is full. Blank rows are
    /// skipped silently and not counted.
    pub fn push(&mut self, row: &Row<'_>) -> Option<Part> {
        let outcome = match row.field_count_error {
            Some(misaligned) => RowOutcome::Rejected(Rejection::wrong_column_count(misaligned)),
            None => validate_row(self.dataset, row.cells),
        };
        let original = || row.original.iter().map(StoredCell::of).collect::<Vec<_>>();
        let field_of = |column: &str| {
            let index = self.dataset.columns.iter().position(|c| c.name == column)?;
            row.cell_fields.get(index).copied()
        };
        let part = &mut self.current;
        match outcome {
            RowOutcome::Skip => return None,
            RowOutcome::Rejected(r) => {
                part.counts.reject(r.reason);
                let record = row
                    .field_count_error
                    .and(row.record)
                    .map(crate::report::fit_cell);
                part.rejected.push(RejectedRow {
                    ord: self.next_ord,
                    sheet: row.sheet.map(str::to_owned),
                    row_number: row.number,
                    reason: r.reason,
                    message: r.message(),
                    cells: if record.is_some() {
                        Vec::new()
                    } else {
                        original()
                    },
                    failed_field: field_of(&r.column),
                    record,
                });
            }
            RowOutcome::Valid(v) => {
                use std::fmt::Write;
                part.counts.invalid_cpf += u64::from(v.invalid_cpf);
                part.counts.invalid_cnpj += u64::from(v.invalid_cnpj);
                let _ = write!(part.copy_text, "{}\t", self.next_ord);
                v.write_copy_line(&mut part.copy_text);
                part.valid_rows += 1;
                if self.keep_valid_cells {
                    part.valid_cells.insert(
                        self.next_ord,
                        KeptRow {
                            sheet: row.sheet.map(str::to_owned),
                            row_number: row.number,
                            cells: original(),
                            key_field: field_of(&self.dataset.key),
                        },
                    );
                }
            }
        }
        if part.counts.rows_read == 0 {
            part.first_row = row.number;
            part.first_sheet = row.sheet.map(str::to_owned);
        }
        part.last_row = row.number;
        if part.last_sheet.as_deref() != row.sheet {
            part.last_sheet = row.sheet.map(str::to_owned);
        }
        part.counts.rows_read += 1;
        self.next_ord += 1;
        if part.counts.rows_read >= self.part_rows {
            return Some(self.take());
        }
        None
    }

    fn take(&mut self) -> Part {
        let mut part = std::mem::take(&mut self.current);
        part.number = self.next_number;
        self.next_number += 1;
        part
    }

    /// The last, partial part, if it has any row.
    pub fn finish(mut self) -> Option<Part> {
        (self.current.counts.rows_read > 0).then(|| self.take())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Datasets;
    use crate::cells::Cell;
    use crate::decode::Misaligned;

    const FIELDS: [usize; 8] = [0, 1, 2, 3, 4, 5, 6, 7];

    /// Pushes a text row of `cells` at line `number`.
    fn push(
        b: &mut PartBuilder<'_>,
        number: u64,
        cells: &[Cell<'_>],
        misaligned: Option<(usize, usize)>,
    ) -> Option<Part> {
        b.push(&Row {
            number,
            sheet: None,
            cells,
            original: cells,
            record: Some("the record"),
            cell_fields: &FIELDS,
            field_count_error: misaligned
                .map(|(found, expected)| Misaligned::Count { found, expected }),
        })
    }

    fn up() -> Dataset {
        Datasets::builtin()
            .unwrap()
            .get("user_purchase")
            .unwrap()
            .clone()
    }

    fn row(cpf: &'static str) -> Vec<Cell<'static>> {
        vec![
            Cell::Text(cpf),
            Cell::Text("0"),
            Cell::Text("1"),
            Cell::Text("2013-05-22"),
            Cell::Text("399,00"),
            Cell::Text("NULL"),
            Cell::Text("79.379.491/0008-50"),
            Cell::Empty,
        ]
    }

    #[test]
    fn rows_are_cut_into_parts_blank_rows_not_counted() {
        let d = up();
        let mut b = PartBuilder::new(&d, 2, ConflictPolicy::Upsert, 0, 0);
        assert!(push(&mut b, 2, &row("990.999.999-66"), None).is_none());
        assert!(push(&mut b, 3, &[Cell::Empty, Cell::Text("  ")], None).is_none());
        let p1 = push(&mut b, 4, &row("abc"), None).expect("full part");
        assert_eq!(p1.number, 1);
        assert_eq!((p1.first_row, p1.last_row), (2, 4));
        assert_eq!(p1.counts.rows_read, 2);
        assert_eq!(p1.counts.rejected_by_reason["malformed_cpf"], 1);
        assert_eq!(p1.counts.invalid_cpf, 1);
        assert_eq!(p1.valid_rows, 1);
        assert!(
            p1.copy_text
                .starts_with("0\t99099999966\tf\tt\t2013-05-22\t399.00\t\\N\t")
        );
        assert_eq!(p1.rejected[0].row_number, 4);
        assert_eq!(p1.rejected[0].ord, 1);
        // A cell rejection keeps the row's typed cells and points at the cell.
        assert_eq!(p1.rejected[0].failed_field, Some(0));
        assert_eq!(p1.rejected[0].cells[0], StoredCell::Text("abc".into()));
        assert_eq!(p1.rejected[0].record, None);
        assert!(push(&mut b, 5, &row("041.091.641-25"), Some((9, 8))).is_none());
        let p2 = b.finish().expect("last part");
        assert_eq!(p2.number, 2);
        assert_eq!(p2.counts.rejected_by_reason["wrong_column_count"], 1);
        // A misaligned row keeps its record, not cells that would not line up.
        assert_eq!(p2.rejected[0].record.as_deref(), Some("the record"));
        assert!(p2.rejected[0].cells.is_empty());
        assert_eq!(p2.rejected[0].failed_field, None);
    }

    #[test]
    fn a_resumed_builder_numbers_on() {
        let d = up();
        let mut b = PartBuilder::new(&d, 10, ConflictPolicy::Reject, 3, 30);
        push(&mut b, 40, &row("041.091.641-25"), None);
        let p = b.finish().unwrap();
        assert_eq!(p.number, 4);
        assert!(p.copy_text.starts_with("30\t"));
        assert_eq!(p.valid_cells[&30].row_number, 40);
    }

    #[test]
    fn counts_add_up() {
        let mut a = ImportCounts::default();
        a.reject(Reason::InvalidDate);
        let mut b = ImportCounts {
            inserted: 2,
            ..Default::default()
        };
        b.reject(Reason::InvalidDate);
        a.add(&b);
        assert_eq!(a.rejected, 2);
        assert_eq!(a.rejected_by_reason["invalid_date"], 2);
        assert_eq!(ImportCounts::from_json(&a.to_json()), a);
    }

    #[test]
    fn rows_new_to_the_table_and_the_part_go_straight_in() {
        let d = up();
        assert!(Part::direct_copy_possible(&d));
        let mut b = PartBuilder::new(&d, 10, ConflictPolicy::Upsert, 0, 0);
        for (n, cpf) in [
            "111.444.777-35",
            "529.982.247-25",
            "111.444.777-35",
            "390.533.447-05",
        ]
        .into_iter()
        .enumerate()
        {
            assert!(push(&mut b, n as u64 + 2, &row(cpf), None).is_none());
        }
        let part = b.finish().expect("a part");
        assert_eq!(
            part.keys(&d),
            ["11144477735", "52998224725", "11144477735", "39053344705"]
        );
        let split = part.split_for_direct_copy(&d, "JOB");
        // 111… is repeated in the part: both its rows need the merge.
        assert_eq!((split.direct_rows, split.staged_rows), (2, 2));
        let direct_keys: Vec<&str> = split
            .direct
            .lines()
            .filter_map(|l| l.split('\t').next())
            .collect();
        assert_eq!(direct_keys, ["39053344705", "52998224725"], "key order");
        assert!(
            split.direct.lines().all(|l| l.ends_with("\tJOB")),
            "{}",
            split.direct
        );
        let staged_ords: Vec<&str> = split
            .staged
            .lines()
            .filter_map(|l| l.split('\t').next())
            .collect();
        assert_eq!(staged_ords, ["0", "2"]);
        // Direct lines have the stored columns plus the extra field.
        for line in split.direct.lines() {
            assert_eq!(line.split('\t').count(), d.stored_columns().len() + 1);
        }
    }
}
