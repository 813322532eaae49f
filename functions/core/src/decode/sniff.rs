//! Format detection and the zip guards (docs/spec/user_purchase.md,
//! "File-level rules"): what the file is, from its first bytes, whatever its
//! name or declared content type say; and, for a zip, which workbook it is
//! and whether every part inflates within the limits, checked before calamine
//! opens it. Only inflated byte counts are trusted, never the sizes the zip
//! directory declares, and a shared strings table's `uniqueCount` must match
//! the `<si>` elements it holds.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, Write};
use std::path::Path;

use super::encoding::TextEncoding;
use super::{DecodeError, Limits};

/// How many bytes of the file are looked at to recognise its format.
const SNIFF_BYTES: u64 = 8 * 1024;

pub(super) enum Sniffed {
    Empty,
    Zip,
    /// An OLE2 compound document: an Excel 97-2003 workbook, or an
    /// encrypted .xlsx (which Office wraps in one).
    Ole2,
    /// Text, with the encoding its BOM announces, if any.
    Text(Option<TextEncoding>),
}

const OLE2_MAGIC: &[u8] = &[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];

/// Recognises the file from its first bytes: the name and the declared
/// content type can both be wrong, the bytes cannot.
pub(super) fn sniff(path: &Path) -> Result<Sniffed, DecodeError> {
    let mut head = Vec::new();
    File::open(path)?.take(SNIFF_BYTES).read_to_end(&mut head)?;
    if head.is_empty() {
        return Ok(Sniffed::Empty);
    }
    if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        return Ok(Sniffed::Zip);
    }
    if head.starts_with(OLE2_MAGIC) {
        return Ok(Sniffed::Ole2);
    }
    if let Some(bom) = TextEncoding::from_bom(&head) {
        return Ok(Sniffed::Text(Some(bom)));
    }
    const MAGIC: &[(&[u8], &str)] = &[
        (b"%PDF", "a PDF document"),
        (b"\x89PNG", "a PNG image"),
        (b"GIF87a", "a GIF image"),
        (b"GIF89a", "a GIF image"),
        (b"\xFF\xD8\xFF", "a JPEG image"),
        (b"\x1F\x8B", "a gzip archive"),
        (b"Rar!", "a RAR archive"),
        (b"7z\xBC\xAF\x27\x1C", "a 7-Zip archive"),
        (b"\x09\x08", "a pre-97 binary .xls (BIFF5 or older) file"),
        (b"{\\rtf", "an RTF document"),
    ];
    if let Some((_, what)) = MAGIC.iter().find(|(magic, _)| head.starts_with(magic)) {
        return Err(DecodeError::NotASpreadsheet(format!(
            "it looks like {what}; upload an .xlsx, .csv or .txt file"
        )));
    }
    if head.contains(&0) {
        return Err(DecodeError::NotASpreadsheet(
            "it holds binary data (NUL bytes), not text; upload an .xlsx, .csv or .txt file"
                .to_owned(),
        ));
    }
    Ok(Sniffed::Text(None))
}

/// Inflates every part of the zip into a counting sink: a part inflating
/// past the limit fails the file (the sizes in the zip directory are declared
/// by whoever wrote the file, so only the inflated count is trusted). Every
/// part, not just the sheets, because the relationships can point a sheet at
/// any part name, and calamine keeps the shared strings and styles in memory.
/// Also recognises zips that are other documents.
pub(super) fn guard_zip(path: &Path, limits: &Limits) -> Result<ZipKind, DecodeError> {
    let file = BufReader::new(File::open(path)?);
    let mut zip = zip::ZipArchive::new(file).map_err(|e| {
        DecodeError::Corrupt(format!("the file is truncated or not a valid .xlsx: {e}"))
    })?;
    let mut names = Vec::with_capacity(zip.len());
    for name in zip.file_names() {
        let name =
            name.map_err(|e| DecodeError::Corrupt(format!("the file is not a valid .xlsx: {e}")))?;
        names.push(name.to_ascii_lowercase());
    }
    let kind = zip_kind(&mut zip, &names)?;
    // Formats read a sheet at a time, whole, get a tighter bound.
    let limit = match kind {
        ZipKind::Xlsx => limits.max_sheet_inflated_bytes,
        ZipKind::Xlsb | ZipKind::Ods => limits
            .max_sheet_inflated_bytes
            .min(MAX_WHOLE_SHEET_INFLATED_BYTES),
    };
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).map_err(|e| {
            DecodeError::Corrupt(format!("the file is truncated or not a valid .xlsx: {e}"))
        })?;
        if entry.is_dir() {
            continue;
        }
        let name = entry
            .name()
            .map(|n| n.into_owned())
            .unwrap_or_else(|_| format!("#{i}"));
        let mut sink = CountingSink::new(name.to_ascii_lowercase().ends_with("sharedstrings.xml"));
        let inflated = io::copy(&mut (&mut entry).take(limit.saturating_add(1)), &mut sink)
            .map_err(|e| {
                DecodeError::Corrupt(format!(
                    "the file is truncated or not a valid .xlsx: part `{name}`: {e}"
                ))
            })?;
        if inflated > limit {
            let why = if kind == ZipKind::Xlsx {
                "(XLPORT_MAX_SHEET_INFLATED_BYTES)"
            } else {
                "(.xlsb and .ods sheets are read whole; save a file this large as .xlsx)"
            };
            return Err(DecodeError::LimitExceeded(format!(
                "part `{name}` of the workbook inflates past the {limit}-byte limit {why}"
            )));
        }
        sink.check_shared_strings(&name)?;
    }
    Ok(kind)
}

/// Which workbook a zip is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ZipKind {
    Xlsx,
    Xlsb,
    Ods,
}

/// The bytes one part of an `.xlsb` or `.ods` may inflate to: calamine reads
/// such a sheet whole into memory (about 10 times its XML), where `.xlsx`
/// sheets stream.
pub const MAX_WHOLE_SHEET_INFLATED_BYTES: u64 = 128 * 1024 * 1024;

/// Tells an xlsx from the other zips: `.xlsb` and `.ods` are read too; Word
/// and PowerPoint documents and plain archives are named instead of
/// reported as a broken .xlsx.
fn zip_kind<R: Read + Seek>(
    zip: &mut zip::ZipArchive<R>,
    names: &[String],
) -> Result<ZipKind, DecodeError> {
    let has = |n: &str| names.iter().any(|x| x == n);
    let has_prefix = |p: &str| names.iter().any(|x| x.starts_with(p));
    if has("xl/workbook.bin") {
        return Ok(ZipKind::Xlsb);
    }
    if has("mimetype") {
        let mut mime = Vec::new();
        if let Ok(entry) = zip.by_name("mimetype") {
            let _ = entry.take(200).read_to_end(&mut mime);
        }
        if mime.starts_with(b"application/vnd.oasis.opendocument.spreadsheet") {
            return Ok(ZipKind::Ods);
        }
        if mime.starts_with(b"application/vnd.oasis.opendocument") {
            return Err(DecodeError::NotASpreadsheet(
                "it is an OpenDocument file that is not a spreadsheet".to_owned(),
            ));
        }
    }
    let what = if !has_prefix("xl/") && has_prefix("word/") {
        Some("a Word document")
    } else if !has_prefix("xl/") && has_prefix("ppt/") {
        Some("a PowerPoint presentation")
    } else if !has("[content_types].xml") {
        Some("a zip archive, not an .xlsx workbook")
    } else {
        None
    };
    match what {
        Some(what) => Err(DecodeError::NotASpreadsheet(format!("it is {what}"))),
        None => Ok(ZipKind::Xlsx),
    }
}

/// Counts inflated bytes; for the shared strings part, also counts the `<si>`
/// elements and keeps the start of the part, so a table whose `uniqueCount`
/// claims billions of strings is refused before calamine reserves room for
/// them.
struct CountingSink {
    scan: Option<SstScan>,
}

struct SstScan {
    head: Vec<u8>,
    window: u32,
    elements: u64,
}

const SST_HEAD_BYTES: usize = 64 * 1024;

impl CountingSink {
    fn new(shared_strings: bool) -> Self {
        Self {
            scan: shared_strings.then(|| SstScan {
                head: Vec::new(),
                window: 0,
                elements: 0,
            }),
        }
    }

    fn check_shared_strings(&self, name: &str) -> Result<(), DecodeError> {
        let Some(scan) = &self.scan else {
            return Ok(());
        };
        let Some(declared) = declared_unique_count(&scan.head) else {
            return Ok(());
        };
        // Writers may miscount a little; only a claim that would make the
        // reader reserve a lot more than the part holds is refused.
        if declared > scan.elements.max(1 << 20) {
            return Err(DecodeError::Corrupt(format!(
                "the file is not a valid .xlsx: part `{name}` declares {declared} strings \
                 but holds {}",
                scan.elements
            )));
        }
        Ok(())
    }
}

impl Write for CountingSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(scan) = &mut self.scan {
            if scan.head.len() < SST_HEAD_BYTES {
                let take = buf.len().min(SST_HEAD_BYTES - scan.head.len());
                scan.head.extend_from_slice(&buf[..take]);
            }
            for &b in buf {
                scan.window = (scan.window << 8) | u32::from(b);
                let [w3, w2, w1, w0] = scan.window.to_be_bytes();
                if (w3 == b'<' || w3 == b':')
                    && w2 == b's'
                    && w1 == b'i'
                    && matches!(w0, b'>' | b'/' | b' ' | b'\t' | b'\r' | b'\n')
                {
                    scan.elements += 1;
                }
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The `uniqueCount` attribute of the `<sst>` element, if any.
fn declared_unique_count(head: &[u8]) -> Option<u64> {
    let at = find(head, b"uniqueCount")?;
    let rest = &head[at + b"uniqueCount".len()..];
    let rest = rest.strip_prefix(b"=")?;
    let rest = rest
        .strip_prefix(b"\"")
        .or_else(|| rest.strip_prefix(b"'"))?;
    let digits: Vec<u8> = rest
        .iter()
        .copied()
        .take_while(u8::is_ascii_digit)
        .take(20)
        .collect();
    std::str::from_utf8(&digits).ok()?.parse().ok()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use rust_xlsxwriter::Workbook;

    use super::*;
    use crate::decode::test_support::*;
    use crate::decode::{DecodeError, Limits, inspect};

    #[test]
    fn xlsx_zip_bomb_fails_on_inflated_bytes() {
        let file = simple_xlsx("bomb-src.xlsx");
        let padding = " ".repeat(5 * 1024 * 1024);
        let bomb = rewrite(&file.0, "bomb.xlsx", |part, data| {
            if part == "xl/worksheets/sheet1.xml" {
                replace(data, "<sheetData>", &format!("{padding}<sheetData>"))
            } else {
                data
            }
        });
        assert!(std::fs::metadata(&bomb.0).unwrap().len() < 100 * 1024);
        let limits = Limits {
            max_sheet_inflated_bytes: 1024 * 1024,
            ..Limits::default()
        };
        let e = err_with(&bomb.0, &limits);
        assert_eq!(
            e.to_string(),
            "part `xl/worksheets/sheet1.xml` of the workbook inflates past the \
             1048576-byte limit (XLPORT_MAX_SHEET_INFLATED_BYTES)"
        );
        // The same file within a larger limit reads fine.
        let (_, rows) = run(&bomb.0);
        assert_eq!(rows.len(), 1);
    }

    #[test]
    fn xlsx_shared_strings_count_that_lies_is_refused() {
        let mut wb = Workbook::new();
        write_headers(wb.add_worksheet(), 0, &HEADERS);
        let file = save(&mut wb, "sst-src.xlsx");
        let liar = rewrite(&file.0, "sst-lie.xlsx", |part, data| {
            if part == "xl/sharedStrings.xml" {
                let text = String::from_utf8(data).unwrap();
                let start = text.find("uniqueCount=\"").unwrap() + 13;
                let end = start + text[start..].find('"').unwrap();
                format!("{}4000000000{}", &text[..start], &text[end..]).into_bytes()
            } else {
                data
            }
        });
        let e = err(&liar.0);
        assert!(matches!(e, DecodeError::Corrupt(_)), "{e:?}");
        assert!(
            e.to_string()
                .contains("declares 4000000000 strings but holds 8"),
            "{e}"
        );
    }

    #[test]
    fn truncated_xlsx_is_corrupt() {
        let file = simple_xlsx("whole.xlsx");
        let bytes = std::fs::read(&file.0).unwrap();
        let cut = Tmp::with("cut.xlsx", &bytes[..bytes.len() / 2]);
        let e = err(&cut.0);
        assert!(matches!(e, DecodeError::Corrupt(_)), "{e:?}");
        assert!(
            e.to_string()
                .starts_with("the file is truncated or not a valid .xlsx: "),
            "{e}"
        );
        // A damaged byte inside a part (CRC or inflate error).
        let mut flipped = bytes.clone();
        let sheet_at = find(&flipped, b"xl/worksheets/sheet1.xml").unwrap();
        flipped[sheet_at + 40] ^= 0xFF;
        let bad = Tmp::with("flipped.xlsx", &flipped);
        assert!(inspect(&bad.0, &ds(), &Limits::default()).is_err());
    }

    #[test]
    fn other_files_are_not_spreadsheets() {
        let cases: [(&[u8], &str); 6] = [
            (b"%PDF-1.7\n%\xE2\xE3\xCF\xD3\n", "PDF"),
            (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", "PNG"),
            (b"\xFF\xD8\xFF\xE0\0\x10JFIF", "JPEG"),
            (b"GIF89a\x01\0\x01\0", "GIF"),
            (b"CPF;PRIVATE\x00\x01\x02", "binary"),
            (
                b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1\0\0\0\0",
                "most likely an encrypted (password-protected) .xlsx; save it as .xlsx without a password",
            ),
        ];
        for (bytes, what) in cases {
            let file = Tmp::with("x.bin", bytes);
            let e = err(&file.0);
            assert!(matches!(e, DecodeError::NotASpreadsheet(_)), "{e:?}");
            assert!(e.to_string().contains(what), "{e}");
        }
    }

    #[test]
    fn other_zips_are_named() {
        let make = |name: &str, parts: &[(&str, &str)]| {
            let t = Tmp::new(name);
            let mut z = zip::ZipWriter::new(File::create(&t.0).unwrap());
            for (part, text) in parts {
                z.start_file(*part, zip::write::SimpleFileOptions::default())
                    .unwrap();
                z.write_all(text.as_bytes()).unwrap();
            }
            z.finish().unwrap();
            t
        };
        let ods = make(
            "a.ods",
            &[
                ("mimetype", "application/vnd.oasis.opendocument.spreadsheet"),
                ("content.xml", "<x/>"),
            ],
        );
        assert!(err(&ods.0).to_string().contains(".ods"));
        let docx = make(
            "a.docx",
            &[
                ("[Content_Types].xml", "<x/>"),
                ("word/document.xml", "<x/>"),
            ],
        );
        assert!(err(&docx.0).to_string().contains("Word"));
        let plain = make("a.zip", &[("data.csv", "CPF;PRIVATE")]);
        assert!(err(&plain.0).to_string().contains("zip archive"));
    }
}
