//! Delimited and whitespace-separated text (docs/spec/user_purchase.md,
//! "File-level rules"): the header line and its delimiter (tab, `;` or `,`),
//! then one record at a time, numbered by physical line, with the
//! spreadsheet habits for field counts (spec "Cell rules",
//! `wrong_column_count`). No record may be longer than
//! [`MAX_TEXT_RECORD_BYTES`], so memory does not grow with the file.

use std::cell::Cell as Shared;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;
use std::rc::Rc;

use super::encoding::{TextEncoding, is_utf8};
use super::header::{HeaderMatch, Mapping, field_number, known_headers, map_headers};
use super::{
    DecodeError, Emitter, FileFormat, FileInfo, Limits, MAX_TEXT_RECORD_BYTES, Misaligned, Row,
    Source, dense_header,
};
use crate::cells::Cell;
use crate::dataset::{Dataset, normalize_header};

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

type TextReader = BufReader<Budgeted<Box<dyn Read>>>;

pub(super) struct TextSource {
    pub(super) info: FileInfo,
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

/// Reads one physical line (without its terminator) into `buf`; `false` at
/// the end of the file. A line ends at LF, CRLF or a lone CR (classic Mac),
/// in any mix (spec "File-level rules", line endings).
fn read_line(
    reader: &mut TextReader,
    budget: &RecordBudget,
    buf: &mut Vec<u8>,
    line_no: u64,
) -> Result<bool, DecodeError> {
    buf.clear();
    budget.reset();
    let fill = |reader: &mut TextReader| -> Result<usize, DecodeError> {
        match reader.fill_buf() {
            Ok(available) => Ok(available.len()),
            Err(_) if budget.exceeded() => Err(RecordBudget::error(line_no)),
            Err(e) => Err(DecodeError::Io(e)),
        }
    };
    loop {
        if fill(reader)? == 0 {
            return Ok(!buf.is_empty());
        }
        let available = reader.buffer();
        match available.iter().position(|&b| b == b'\n' || b == b'\r') {
            Some(end) => {
                let cr = available[end] == b'\r';
                buf.extend_from_slice(&available[..end]);
                reader.consume(end + 1);
                // The LF of a CRLF may come in the next buffer.
                if cr && fill(reader)? > 0 && reader.buffer()[0] == b'\n' {
                    reader.consume(1);
                }
                return Ok(true);
            }
            None => {
                let n = available.len();
                buf.extend_from_slice(available);
                reader.consume(n);
            }
        }
    }
}

fn line_text(buf: &[u8], line_no: u64) -> Result<&str, DecodeError> {
    std::str::from_utf8(buf)
        .map_err(|_| DecodeError::Corrupt(format!("line {line_no} is not valid text")))
}

pub(super) fn open_text(
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
                sheets: Vec::new(),
                header: Vec::new(),
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
        return Err(limits.too_wide(format_args!(
            "the header at line {line_no} has {} columns,",
            headers.len()
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
        HeaderMatch::Duplicate(column, first, second) => {
            return Err(DecodeError::DuplicateColumn {
                column,
                first,
                second,
                sheet: None,
            });
        }
    };
    Ok(Source::Text(TextSource {
        info: FileInfo {
            format,
            encoding: encoding.name(),
            sheet: None,
            sheets: Vec::new(),
            header: dense_header(&headers),
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

pub(super) fn stream_text(
    source: TextSource,
    emitter: &mut Emitter<'_>,
) -> Result<(), DecodeError> {
    match source.info.format {
        FileFormat::Delimited { delimiter } => stream_delimited(source, delimiter, emitter),
        _ => stream_whitespace(source, emitter),
    }
}

/// How a text format treats a row whose field count differs from the header's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FieldCount {
    /// The whitespace format: any other count is `wrong_column_count`.
    Strict,
    /// Delimited text (spec "Cell rules", `wrong_column_count`): a short row
    /// whose missing trailing fields are all nullable columns is read with
    /// them empty, a long row whose extra fields are all empty without them.
    SpreadsheetHabits,
    /// The fields cannot be aligned with the header whatever their count
    /// (an unclosed quote swallowed the lines after it).
    Unaligned,
}

/// Builds the row for `fields` and hands it over unless it is blank.
/// `record` is the row's text as the file held it (its fields, separators
/// and quotes), for the error report.
fn emit_fields(
    emitter: &mut Emitter<'_>,
    mapping: &Mapping,
    header_fields: usize,
    count_rule: FieldCount,
    number: u64,
    fields: &[&str],
    record: &str,
) -> Result<(), DecodeError> {
    if fields.iter().all(|f| f.trim().is_empty()) {
        return Ok(());
    }
    let mut fields = fields;
    let mut field_count_error = None;
    let misaligned = Misaligned::Count {
        found: fields.len(),
        expected: header_fields,
    };
    if count_rule == FieldCount::Unaligned {
        field_count_error = Some(misaligned);
    } else if fields.len() != header_fields {
        let habit = count_rule == FieldCount::SpreadsheetHabits;
        if habit && fields.len() < header_fields && fields.len() >= mapping.required_width {
            emitter.padded_rows += 1;
        } else if habit
            && fields.len() > header_fields
            && fields[header_fields..].iter().all(|f| f.trim().is_empty())
        {
            emitter.trimmed_rows += 1;
            fields = &fields[..header_fields];
        } else {
            field_count_error = Some(misaligned);
        }
    }
    let cells: Vec<Cell<'_>> = mapping
        .source
        .iter()
        .map(|&f| fields.get(f).map_or(Cell::Empty, |s| Cell::Text(s)))
        .collect();
    let mut record = record;
    if field_count_error.is_none() && cells.iter().all(Cell::is_blank) {
        match mapping.record_field.and_then(|f| fields.get(f)) {
            // A report row sent back with its cells still empty.
            Some(sent_back) if !sent_back.trim().is_empty() => {
                field_count_error = Some(Misaligned::ReportRecord);
                record = sent_back;
            }
            _ => {
                // Values only in columns the dataset does not read.
                emitter.ignored_rows += 1;
                return Ok(());
            }
        }
    }
    let original: Vec<Cell<'_>> = fields.iter().map(|s| Cell::Text(s)).collect();
    emitter.emit(&Row {
        number,
        sheet: None,
        cells: &cells,
        original: &original,
        record: Some(record),
        cell_fields: &mapping.source,
        field_count_error,
    })
}

/// Delimited records, read with `csv-core` (RFC 4180 quoting; CR, LF and
/// CRLF all end a record outside quotes, and a quoted field may hold any of
/// them), each with the physical line where it starts and its text as the
/// file held it.
struct DelimitedRecords {
    core: csv_core::Reader,
    reader: TextReader,
    budget: RecordBudget,
    /// The physical line of the next unread byte (1-based).
    line: u64,
    /// The last byte consumed was a CR: an LF right after it ends no line.
    after_cr: bool,
    /// The current record's bytes as read (leading blank lines included).
    raw: Vec<u8>,
    /// Its fields, unquoted, back to back; `ends` closes each.
    out: Vec<u8>,
    ends: Vec<usize>,
}

/// One record of [`DelimitedRecords`].
struct Record<'r> {
    /// The physical line where the record starts.
    line: u64,
    fields: Vec<&'r str>,
    /// The record's text without leading blank lines and line ending.
    text: &'r str,
    /// A quoted field ran over a line end to the end of the file: its quote
    /// was never closed, and the record swallowed the lines after it.
    unclosed_quote: bool,
}

impl DelimitedRecords {
    fn new(reader: TextReader, budget: RecordBudget, delimiter: u8, first_line: u64) -> Self {
        DelimitedRecords {
            core: csv_core::ReaderBuilder::new()
                .delimiter(delimiter)
                .terminator(csv_core::Terminator::CRLF)
                .build(),
            reader,
            budget,
            line: first_line,
            after_cr: false,
            raw: Vec::new(),
            out: vec![0; 1024],
            ends: vec![0; 64],
        }
    }

    /// Advances the line count over one byte.
    fn count(line: &mut u64, after_cr: &mut bool, b: u8) {
        match b {
            b'\r' => {
                *line += 1;
                *after_cr = true;
            }
            b'\n' => {
                if !*after_cr {
                    *line += 1;
                }
                *after_cr = false;
            }
            _ => *after_cr = false,
        }
    }

    fn next(&mut self) -> Result<Option<Record<'_>>, DecodeError> {
        use csv_core::ReadRecordResult as R;
        self.raw.clear();
        self.budget.reset();
        let (mut out_len, mut ends_len) = (0, 0);
        let at_eof = loop {
            let input = match self.reader.fill_buf() {
                Ok(input) => input,
                Err(_) if self.budget.exceeded() => return Err(RecordBudget::error(self.line)),
                Err(e) => return Err(DecodeError::Io(e)),
            };
            let (result, nin, nout, nend) =
                self.core
                    .read_record(input, &mut self.out[out_len..], &mut self.ends[ends_len..]);
            let eof = input.is_empty();
            self.raw.extend_from_slice(&input[..nin]);
            self.reader.consume(nin);
            out_len += nout;
            ends_len += nend;
            match result {
                R::InputEmpty => {}
                R::OutputFull => self.out.resize(self.out.len() * 2, 0),
                R::OutputEndsFull => self.ends.resize(self.ends.len() * 2, 0),
                R::Record => break eof,
                R::End => return Ok(None),
            }
        };
        // Line numbers: blank lines before the record, then its own lines.
        let (mut line, mut after_cr) = (self.line, self.after_cr);
        let body = self
            .raw
            .iter()
            .position(|&b| b != b'\r' && b != b'\n')
            .unwrap_or(self.raw.len());
        for &b in &self.raw[..body] {
            Self::count(&mut line, &mut after_cr, b);
        }
        let start = line;
        for &b in &self.raw[body..] {
            Self::count(&mut line, &mut after_cr, b);
        }
        (self.line, self.after_cr) = (line, after_cr);

        let invalid = || DecodeError::Corrupt(format!("line {start} is not valid text"));
        let text = std::str::from_utf8(&self.raw[body..])
            .map_err(|_| invalid())?
            .trim_end_matches(['\r', '\n']);
        let values = std::str::from_utf8(&self.out[..out_len]).map_err(|_| invalid())?;
        let mut fields = Vec::with_capacity(ends_len);
        let mut from = 0;
        for &end in &self.ends[..ends_len] {
            fields.push(values.get(from..end).ok_or_else(invalid)?);
            from = end;
        }
        let unclosed_quote = at_eof && fields.iter().any(|f| f.contains(['\r', '\n']));
        Ok(Some(Record {
            line: start,
            fields,
            text,
            unclosed_quote,
        }))
    }
}

fn stream_delimited(
    source: TextSource,
    delimiter: u8,
    emitter: &mut Emitter<'_>,
) -> Result<(), DecodeError> {
    let TextSource {
        info,
        reader,
        budget,
        mapping,
        header_fields,
    } = source;
    let mut records = DelimitedRecords::new(reader, budget, delimiter, info.header_row + 1);
    while let Some(record) = records.next()? {
        let rule = if record.unclosed_quote {
            FieldCount::Unaligned
        } else {
            FieldCount::SpreadsheetHabits
        };
        emit_fields(
            emitter,
            &mapping,
            header_fields,
            rule,
            record.line,
            &record.fields,
            record.text,
        )?;
    }
    Ok(())
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
        emit_fields(
            emitter,
            &mapping,
            header_fields,
            FieldCount::Strict,
            line_no,
            &fields,
            text,
        )?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cells::RowOutcome;
    use crate::decode::test_support::*;

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
        // Short, and what it misses may be null: read with those fields empty
        // (spec: spreadsheet programs drop the separators of blank trailing cells).
        assert_eq!(rows[2].count, None);
        assert_eq!(rows[2].cells[3], "");
        assert!(
            info.warnings
                .iter()
                .any(|w| w.starts_with("1 row had fewer fields"))
        );
        assert_eq!(rows[3].cells[2], "say \"hi\"");
        assert_eq!(info.data_rows, 4);
    }

    #[test]
    fn csv_unclosed_quote_reads_to_the_end() {
        let text = format!("{CSV_HEADER}\n041.091.641-25;0;0;\"NULL;NULL;NULL;NULL;NULL\n1;2\n");
        let file = Tmp::with("unclosed.csv", text.as_bytes());
        let (_, rows) = run(&file.0);
        // The quote never closes, so the field runs over a line end to the end
        // of the file: the row cannot be aligned with the header and is
        // rejected, nothing is lost silently (though short rows of nullable
        // fields are otherwise padded).
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

    // -- spreadsheet habits and line endings (issue #12) -------------------

    /// Three good rows and a multi-line quoted field, with `end` between
    /// records: the same rows, at the same physical lines, whatever `end` is.
    fn rows_with_line_end(end: &str) -> (FileInfo, Vec<Got>) {
        let text = format!(
            "{CSV_HEADER}{end}\
             041.091.641-25;0;0;2013-05-22;399,00;;;{end}\
             990.999.999-66;1;0;;;;;\"a{end}b\"{end}\
             {end}\
             529.982.247-25;0;1;;;;;"
        );
        let file = Tmp::with("ends.csv", text.as_bytes());
        run(&file.0)
    }

    #[test]
    fn lf_crlf_lone_cr_and_mixed_line_endings_read_the_same_rows() {
        for end in ["\n", "\r\n", "\r"] {
            let (info, rows) = rows_with_line_end(end);
            assert_eq!(info.data_rows, 3, "{end:?}");
            let numbers: Vec<u64> = rows.iter().map(|r| r.number).collect();
            assert_eq!(numbers, [2, 3, 6], "{end:?}");
            assert_eq!(rows[1].cells[7], format!("a{end}b"), "{end:?}");
            assert_eq!(
                rows[1].record.as_deref(),
                Some(format!("990.999.999-66;1;0;;;;;\"a{end}b\"").as_str())
            );
            assert!(rows.iter().all(|r| r.count.is_none()), "{end:?}");
        }
        let mixed = format!(
            "{CSV_HEADER}\r041.091.641-25;0;0;;;;;\r\n990.999.999-66;1;0;;;;;\n\r529.982.247-25;0;1;;;;;\r"
        );
        let file = Tmp::with("mixed.csv", mixed.as_bytes());
        let (_, rows) = run(&file.0);
        let numbers: Vec<u64> = rows.iter().map(|r| r.number).collect();
        assert_eq!(numbers, [2, 3, 5]);
        // The whitespace format too.
        let text = "CPF PRIVATE INCOMPLETO DATA DA ÚLTIMA COMPRA TICKET MÉDIO TICKET DA ÚLTIMA COMPRA \
                    LOJA MAIS FREQUÊNTE LOJA DA ÚLTIMA COMPRA\r\
                    041.091.641-25 0 0 NULL NULL NULL NULL NULL\r\
                    990.999.999-66 0 0 NULL NULL NULL NULL NULL\r";
        let file = Tmp::with("mac.txt", text.as_bytes());
        let (info, rows) = run(&file.0);
        assert_eq!(info.format, FileFormat::Whitespace);
        assert_eq!(rows.iter().map(|r| r.number).collect::<Vec<_>>(), [2, 3]);
    }

    #[test]
    fn a_classic_mac_semicolon_csv_reads_all_its_rows() {
        // The file of the report: 14 good rows between lone CRs, which once
        // "succeeded" with 0 rows.
        let mut text = String::from(CSV_HEADER);
        for i in 0..14 {
            text.push('\r');
            text.push_str(&format!(
                "{:011};0;1;2020-01-{:02};10,50;;;",
                10_000_000_000u64 + i,
                i + 1
            ));
        }
        let file = Tmp::with("mac.csv", text.as_bytes());
        let (info, rows) = run(&file.0);
        assert_eq!(info.data_rows, 14);
        assert!(
            rows.iter()
                .all(|r| matches!(r.outcome, RowOutcome::Valid(_)))
        );
        assert_eq!(rows[13].number, 15);
    }

    #[test]
    fn short_and_long_delimited_rows_follow_the_spreadsheet_habits() {
        let text = format!(
            "{CSV_HEADER}\n\
             041.091.641-25;0;0\n\
             990.999.999-66;1\n\
             529.982.247-25;0;1;;;;;;;;\n\
             111.444.777-35;0;1;;;;;;x\n"
        );
        let file = Tmp::with("habits.csv", text.as_bytes());
        let (info, rows) = run(&file.0);
        assert_eq!(rows[0].count, None, "nullable fields missing: padded");
        assert_eq!(rows[0].cells[7], "");
        assert_eq!(
            rows[1].count,
            Some((2, 8)),
            "INCOMPLETO missing: it cannot be null"
        );
        assert_eq!(rows[2].count, None, "empty extra fields: trimmed");
        assert_eq!(rows[2].original.len(), 8);
        assert_eq!(rows[3].count, Some((9, 8)), "an extra field with a value");
        assert_eq!(
            info.warnings,
            [
                "1 row had fewer fields than the header; their missing trailing fields were read as empty",
                "1 row had empty fields beyond the header; they were ignored",
            ]
        );
        // The whitespace format stays strict.
        let text = "CPF PRIVATE INCOMPLETO DATA DA ÚLTIMA COMPRA TICKET MÉDIO TICKET DA ÚLTIMA COMPRA \
                    LOJA MAIS FREQUÊNTE LOJA DA ÚLTIMA COMPRA\n041.091.641-25 0 0\n";
        let file = Tmp::with("strict.txt", text.as_bytes());
        let (_, rows) = run(&file.0);
        assert_eq!(rows[0].count, Some((3, 8)));
    }
}
