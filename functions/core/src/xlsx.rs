//! The xlsx container xlport writes, and how it stays a conventional zip.
//!
//! An .xlsx is a zip package (ECMA-376 Part 2, Open Packaging Conventions)
//! whose readers do not all understand Zip64: LibreOffice 7.4, for one,
//! refuses a workbook whose entries carry Zip64 extra fields. A zip entry
//! needs Zip64 only when one of its sizes or its offset does not fit the 4
//! bytes of the classic headers (APPNOTE.TXT 4.4.8, 4.4.9, 4.4.16 and 4.5.3):
//! so xlport writes plain entries (rust_xlsxwriter's default) and starts a new
//! sheet before a worksheet part could reach 4 GiB of XML.
//!
//! rust_xlsxwriter does not tell how much XML a sheet has taken, so
//! [`SheetXmlBudget`] keeps an upper bound of it, from the bounds here of each
//! `<row>` and `<c>` element its constant-memory writer emits
//! (`Worksheet::write_constant_table_row`, `write_number_cell`,
//! `write_boolean_cell` and `write_inline_string_cell` in rust_xlsxwriter
//! 0.102's `worksheet.rs`).
//!
//! [`check_conventional_zip`] is the other side: it reads a written file's
//! raw zip records and says whether any reader of plain zip files can open it.

use std::io::Read;

/// The most XML bytes one worksheet part may take before xlport starts the
/// next sheet: 3.5 GiB, leaving 512 MiB below the 4 GiB (0xFFFF_FFFF bytes)
/// at which an entry's uncompressed size needs Zip64 (APPNOTE.TXT 4.5.3).
/// The margin is far above what the bounds below leave out (the sheet's
/// prologue and epilogue are counted by [`sheet_xml_fixed_bound`]).
pub const MAX_SHEET_XML_BYTES: u64 = 3 * 1024 * 1024 * 1024 + 512 * 1024 * 1024;

/// The longest opening of a cell holding an inline string, as rust_xlsxwriter
/// writes it: the last column and row of a sheet, a style index of the most
/// digits a `u32` has, and the `xml:space` attribute of text that starts or
/// ends with white space (ECMA-376 Part 1, 18.3.1.4 `c`, 18.4.12 `t`).
const STRING_CELL_OPEN: &str =
    r#"<c r="XFD1048576" s="4294967295" t="inlineStr"><is><t xml:space="preserve">"#;
const STRING_CELL_CLOSE: &str = "</t></is></c>";

/// The longest number (or boolean, or date) cell: the same reference and
/// style, an explicit type, and 32 bytes for the value, more than the 24 of
/// the longest shortest-round-trip form of an `f64` (`-2.2250738585072014e-308`).
const NUMBER_CELL: &str =
    r#"<c r="XFD1048576" s="4294967295" t="b"><v>--------------------------------</v></c>"#;

/// The longest `<row>` wrapper: the last row number, the x14ac descent
/// attribute, and room for a style and custom height xlport does not set.
const ROW_WRAPPER: &str = r#"<row r="1048576" x14ac:dyDescent="0.25" s="4294967295" customFormat="1" ht="409.5" customHeight="1"></row>"#;

/// Bytes of the XML of one number, boolean or date cell, at most.
pub const NUMBER_CELL_XML_BOUND: u64 = NUMBER_CELL.len() as u64;

/// Bytes of one `<row>` element's own tags, cells not included, at most.
pub const ROW_XML_BOUND: u64 = ROW_WRAPPER.len() as u64;

/// Extra bytes an escaped byte of text can take, at most: a control character
/// (U+0000..U+001F but tab and line feed) becomes `_xHHHH_`, one byte to 7.
const ESCAPE_GROWTH: u64 = 6;

/// Bytes of the XML of a cell holding `text` as an inline string, at most.
///
/// rust_xlsxwriter escapes the text twice (`escape_xml_escapes`, then
/// `escape_xml_data` in its `xmlwriter.rs`): a literal `_xHHHH_` gains a
/// `_x005F` prefix (6 bytes, counted on its `_`), `&` becomes `&amp;`, `<` and
/// `>` `&lt;` and `&gt;`, a control character `_xHHHH_` (6 more bytes), and
/// U+FFFE or U+FFFF (3 bytes, counted on the lead byte 0xEF) `_xFFFE_`. `"`
/// and `'` are counted too, in case a writer escapes them as `&quot;` and
/// `&apos;` (5 more bytes). Each such byte is counted as 6 more, the most any
/// of them grows; one pass over the bytes, no allocation.
pub fn string_cell_xml_bound(text: &str) -> u64 {
    let escapable = text
        .bytes()
        .filter(|&b| b < 0x20 || matches!(b, b'&' | b'<' | b'>' | b'"' | b'\'' | b'_' | 0xEF))
        .count() as u64;
    (STRING_CELL_OPEN.len() + STRING_CELL_CLOSE.len() + text.len()) as u64
        + ESCAPE_GROWTH * escapable
}

/// Bytes of a worksheet part outside its `<row>` elements, at most, for a
/// sheet of `columns` columns: the XML declaration and `<worksheet>` with its
/// namespaces, `<dimension>`, `<sheetViews>` with a frozen pane,
/// `<sheetFormatPr>`, one `<col>` per column (ECMA-376 Part 1, 18.3.1.13) and
/// the closing `<pageMargins>` and tags: under 4 KiB written, counted as 16 KiB
/// plus 256 bytes a column.
pub fn sheet_xml_fixed_bound(columns: usize) -> u64 {
    16 * 1024 + 256 * columns as u64
}

/// An upper bound of the XML one worksheet has taken, to know when the next
/// row should start a new sheet so that no part reaches 4 GiB.
///
/// Rows are measured by the caller, as [`ROW_XML_BOUND`] plus each written
/// cell's [`string_cell_xml_bound`] or [`NUMBER_CELL_XML_BOUND`], and offered
/// with [`SheetXmlBudget::fits`] before they are written.
#[derive(Debug, Clone)]
pub struct SheetXmlBudget {
    limit: u64,
    used: u64,
}

impl SheetXmlBudget {
    /// A budget of `limit` bytes per sheet ([`MAX_SHEET_XML_BYTES`] in
    /// production; tests set it small), before any sheet is started.
    pub fn new(limit: u64) -> Self {
        SheetXmlBudget { limit, used: 0 }
    }

    /// A new sheet of `columns` columns starts: only its fixed parts are used.
    pub fn start_sheet(&mut self, columns: usize) {
        self.used = sheet_xml_fixed_bound(columns);
    }

    /// Whether a row of at most `row_bytes` bytes still fits the sheet.
    pub fn fits(&self, row_bytes: u64) -> bool {
        self.used.saturating_add(row_bytes) <= self.limit
    }

    /// A row of at most `row_bytes` bytes was written.
    pub fn add(&mut self, row_bytes: u64) {
        self.used = self.used.saturating_add(row_bytes);
    }

    /// Bytes the current sheet has taken, at most.
    pub fn used(&self) -> u64 {
        self.used
    }

    /// The per-sheet limit, in bytes.
    pub fn limit(&self) -> u64 {
        self.limit
    }
}

// ---------------------------------------------------------------------------
// Checking a written zip

/// What [`check_conventional_zip`] found in a file that passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZipSummary {
    /// Entry names, in central directory order.
    pub names: Vec<String>,
    /// Entries written with a data descriptor (general purpose flag bit 3).
    pub with_data_descriptor: usize,
    /// The largest uncompressed entry, in bytes.
    pub largest_uncompressed: u64,
}

const LOCAL_HEADER_SIG: u32 = 0x0403_4b50;
const CENTRAL_HEADER_SIG: u32 = 0x0201_4b50;
const DATA_DESCRIPTOR_SIG: u32 = 0x0807_4b50;
const EOCD_SIG: u32 = 0x0605_4b50;
const ZIP64_EOCD_SIG: u32 = 0x0606_4b50;
const ZIP64_LOCATOR_SIG: u32 = 0x0706_4b50;
const ZIP64_EXTRA_ID: u16 = 0x0001;
/// Version 2.0: deflate, folders, data descriptors (APPNOTE.TXT 4.4.3.2).
const MAX_VERSION_NEEDED: u16 = 20;

fn u16_at(bytes: &[u8], at: usize) -> Result<u16, String> {
    bytes
        .get(at..at + 2)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
        .ok_or_else(|| format!("the file ends inside a record (at byte {at})"))
}

fn u32_at(bytes: &[u8], at: usize) -> Result<u32, String> {
    bytes
        .get(at..at + 4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or_else(|| format!("the file ends inside a record (at byte {at})"))
}

/// Extra field header ids (APPNOTE.TXT 4.5.1), or why the block is damaged.
fn extra_ids(extra: &[u8]) -> Result<Vec<u16>, String> {
    let mut ids = Vec::new();
    let mut at = 0;
    while at < extra.len() {
        let id = u16_at(extra, at)?;
        let len = usize::from(u16_at(extra, at + 2)?);
        at += 4 + len;
        if at > extra.len() {
            return Err(format!("extra field {id:#06x} runs past its block"));
        }
        ids.push(id);
    }
    Ok(ids)
}

/// Reads the raw records of a zip file and checks that it is a conventional
/// one, readable without Zip64 support (APPNOTE.TXT 6.3.10):
///
/// - one end of central directory record (4.3.16) at the end, with no Zip64
///   end of central directory record (4.3.14) or locator (4.3.15) before it,
///   no 0xFFFF/0xFFFFFFFF placeholder in it, and the central directory
///   (4.3.12) right before it;
/// - every central directory header and local file header (4.3.7) needs
///   version 2.0 at most (4.4.3), has no Zip64 extended information extra
///   field (id 0x0001, 4.5.3) and no 0xFFFFFFFF size or offset; local and
///   central headers agree on name, flags and method;
/// - an entry with flag bit 3 is followed by the 16-byte data descriptor with
///   its signature (4.3.9), whose CRC-32 and sizes equal the central
///   directory's; entries follow one another with nothing between them, the
///   last one ending where the central directory starts;
/// - every entry inflates to its recorded size and CRC-32.
///
/// Returns the entries' names and a few facts; the error says what is wrong
/// and where.
pub fn check_conventional_zip(bytes: &[u8]) -> Result<ZipSummary, String> {
    const EOCD_LEN: usize = 22;
    if bytes.len() < EOCD_LEN {
        return Err(format!("{} bytes is too short for a zip", bytes.len()));
    }
    let eocd = bytes.len() - EOCD_LEN;
    // xlport writes no archive comment, so the record is the last 22 bytes.
    if u32_at(bytes, eocd)? != EOCD_SIG {
        return Err("no end of central directory record in the last 22 bytes".into());
    }
    if u16_at(bytes, eocd + 20)? != 0 {
        return Err("the archive has a comment".into());
    }
    let (disk, cd_disk) = (u16_at(bytes, eocd + 4)?, u16_at(bytes, eocd + 6)?);
    let (on_disk, total) = (u16_at(bytes, eocd + 8)?, u16_at(bytes, eocd + 10)?);
    let cd_size = u32_at(bytes, eocd + 12)?;
    let cd_offset = u32_at(bytes, eocd + 16)?;
    if disk != 0 || cd_disk != 0 || on_disk != total {
        return Err(format!(
            "a multi-disk end of central directory: disk {disk}, {on_disk} of {total} entries"
        ));
    }
    if total == 0xFFFF || cd_size == 0xFFFF_FFFF || cd_offset == 0xFFFF_FFFF {
        return Err("Zip64 placeholders in the end of central directory record".into());
    }
    if eocd >= 20 && u32_at(bytes, eocd - 20)? == ZIP64_LOCATOR_SIG {
        return Err("a Zip64 end of central directory locator".into());
    }
    let (cd_start, cd_end) = (cd_offset as usize, cd_offset as usize + cd_size as usize);
    if cd_end != eocd {
        return Err(format!(
            "the central directory ({cd_start}..{cd_end}) does not end where the end record starts ({eocd})"
        ));
    }

    let mut summary = ZipSummary {
        names: Vec::new(),
        with_data_descriptor: 0,
        largest_uncompressed: 0,
    };
    let mut at = cd_start;
    let mut expected_local = 0usize;
    for index in 0..total {
        if u32_at(bytes, at)? != CENTRAL_HEADER_SIG {
            if u32_at(bytes, at)? == ZIP64_EOCD_SIG {
                return Err("a Zip64 end of central directory record".into());
            }
            return Err(format!(
                "central directory entry {index}: no signature at {at}"
            ));
        }
        let needed = u16_at(bytes, at + 6)?;
        let flags = u16_at(bytes, at + 8)?;
        let method = u16_at(bytes, at + 10)?;
        let crc = u32_at(bytes, at + 16)?;
        let compressed = u32_at(bytes, at + 20)?;
        let uncompressed = u32_at(bytes, at + 24)?;
        let name_len = usize::from(u16_at(bytes, at + 28)?);
        let extra_len = usize::from(u16_at(bytes, at + 30)?);
        let comment_len = usize::from(u16_at(bytes, at + 32)?);
        let start_disk = u16_at(bytes, at + 34)?;
        let local = u32_at(bytes, at + 42)?;
        let name_at = at + 46;
        let name = bytes
            .get(name_at..name_at + name_len)
            .ok_or("a central directory name runs past the end")?;
        let name = String::from_utf8_lossy(name).into_owned();
        let extra = bytes
            .get(name_at + name_len..name_at + name_len + extra_len)
            .ok_or_else(|| format!("{name}: central extra field runs past the end"))?;
        let entry = |problem: String| format!("{name}: {problem}");
        if needed > MAX_VERSION_NEEDED {
            return Err(entry(format!(
                "central directory needs version {}.{} to extract",
                needed / 10,
                needed % 10
            )));
        }
        if extra_ids(extra).map_err(&entry)?.contains(&ZIP64_EXTRA_ID) {
            return Err(entry("a Zip64 extra field in the central directory".into()));
        }
        if compressed == 0xFFFF_FFFF || uncompressed == 0xFFFF_FFFF || local == 0xFFFF_FFFF {
            return Err(entry("Zip64 placeholders in the central directory".into()));
        }
        if start_disk != 0 {
            return Err(entry(format!("starts on disk {start_disk}")));
        }
        if local as usize != expected_local {
            return Err(entry(format!(
                "local header at {local}, but the previous entry ended at {expected_local}"
            )));
        }

        // The local file header (4.3.7).
        let l = local as usize;
        if u32_at(bytes, l)? != LOCAL_HEADER_SIG {
            return Err(entry(format!("no local file header at {l}")));
        }
        let l_needed = u16_at(bytes, l + 4)?;
        let l_flags = u16_at(bytes, l + 6)?;
        let l_method = u16_at(bytes, l + 8)?;
        let l_crc = u32_at(bytes, l + 14)?;
        let l_compressed = u32_at(bytes, l + 18)?;
        let l_uncompressed = u32_at(bytes, l + 22)?;
        let l_name_len = usize::from(u16_at(bytes, l + 26)?);
        let l_extra_len = usize::from(u16_at(bytes, l + 28)?);
        let l_name = bytes
            .get(l + 30..l + 30 + l_name_len)
            .ok_or_else(|| entry("the local name runs past the end".into()))?;
        if l_name != name.as_bytes() {
            return Err(entry(format!(
                "the local header names it {:?}",
                String::from_utf8_lossy(l_name)
            )));
        }
        let l_extra = bytes
            .get(l + 30 + l_name_len..l + 30 + l_name_len + l_extra_len)
            .ok_or_else(|| entry("the local extra field runs past the end".into()))?;
        if l_needed > MAX_VERSION_NEEDED {
            return Err(entry(format!(
                "local header needs version {}.{} to extract",
                l_needed / 10,
                l_needed % 10
            )));
        }
        if extra_ids(l_extra)
            .map_err(&entry)?
            .contains(&ZIP64_EXTRA_ID)
        {
            return Err(entry("a Zip64 extra field in the local header".into()));
        }
        if l_flags != flags || l_method != method {
            return Err(entry(format!(
                "local flags/method {l_flags:#06x}/{l_method} differ from the central {flags:#06x}/{method}"
            )));
        }
        let data_end = l + 30 + l_name_len + l_extra_len + compressed as usize;
        let mut end = data_end;
        if flags & 0x0008 != 0 {
            summary.with_data_descriptor += 1;
            // Sizes and CRC are zero in the local header and follow the data.
            if l_crc != 0 || l_compressed != 0 || l_uncompressed != 0 {
                return Err(entry(
                    "local header has sizes though a data descriptor follows".into(),
                ));
            }
            if u32_at(bytes, data_end)? != DATA_DESCRIPTOR_SIG {
                return Err(entry(format!("no data descriptor signature at {data_end}")));
            }
            let d = (
                u32_at(bytes, data_end + 4)?,
                u32_at(bytes, data_end + 8)?,
                u32_at(bytes, data_end + 12)?,
            );
            if d != (crc, compressed, uncompressed) {
                return Err(entry(format!(
                    "data descriptor (crc {:#010x}, {} -> {} bytes) differs from the central directory (crc {crc:#010x}, {compressed} -> {uncompressed})",
                    d.0, d.1, d.2
                )));
            }
            end += 16;
        } else if (l_crc, l_compressed, l_uncompressed) != (crc, compressed, uncompressed) {
            return Err(entry(
                "local CRC/sizes differ from the central directory".into(),
            ));
        }
        expected_local = end;
        summary.largest_uncompressed = summary.largest_uncompressed.max(u64::from(uncompressed));
        summary.names.push(name);
        at = name_at + name_len + extra_len + comment_len;
    }
    if at != cd_end {
        return Err(format!(
            "the central directory holds {} bytes after its {total} entries",
            cd_end - at
        ));
    }
    if expected_local != cd_start {
        return Err(format!(
            "the last entry ends at {expected_local}, the central directory starts at {cd_start}"
        ));
    }

    // The data itself: each entry inflates to its size and CRC-32 (the zip
    // crate checks both as it reads to the end).
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| format!("the zip crate cannot open it: {e}"))?;
    let mut sink = vec![0u8; 64 * 1024];
    for i in 0..archive.len() {
        let mut file = archive.by_index(i).map_err(|e| format!("entry {i}: {e}"))?;
        let name = file.name().map(|n| n.into_owned()).unwrap_or_default();
        loop {
            match file.read(&mut sink) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => return Err(format!("{name}: does not inflate: {e}")),
            }
        }
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_xlsxwriter::Workbook;

    fn workbook(large_file: bool) -> Vec<u8> {
        let mut book = Workbook::new();
        book.use_zip_large_file(large_file);
        let sheet = book.add_worksheet_with_constant_memory().unwrap();
        for r in 0..100u32 {
            sheet.write_string(r, 0, format!("row {r}")).unwrap();
            sheet.write_number(r, 1, f64::from(r)).unwrap();
        }
        let mut out = Vec::new();
        book.save_to_writer(&mut out).unwrap();
        out
    }

    #[test]
    fn the_zip_check_passes_a_plain_workbook() {
        let zip = check_conventional_zip(&workbook(false)).unwrap_or_else(|e| panic!("{e}"));
        assert!(zip.names.contains(&"xl/workbook.xml".to_string()));
        assert_eq!(zip.names[0], "[Content_Types].xml");
        assert_eq!(zip.with_data_descriptor, zip.names.len());
    }

    /// What `use_zip_large_file(true)` wrote, and LibreOffice 7.4 refused.
    #[test]
    fn the_zip_check_refuses_zip64_entries() {
        let err = check_conventional_zip(&workbook(true)).unwrap_err();
        assert!(
            err.contains("version 4.5") || err.contains("Zip64"),
            "{err}"
        );
    }

    #[test]
    fn the_zip_check_refuses_a_descriptor_that_disagrees() {
        let mut bytes = workbook(false);
        let sig = DATA_DESCRIPTOR_SIG.to_le_bytes();
        let at = bytes
            .windows(4)
            .position(|w| w == sig)
            .expect("a data descriptor");
        bytes[at + 4] ^= 0xFF;
        let err = check_conventional_zip(&bytes).unwrap_err();
        assert!(err.contains("data descriptor"), "{err}");
        // A truncated file is an error, not a panic.
        assert!(check_conventional_zip(&bytes[..bytes.len() / 2]).is_err());
        assert!(check_conventional_zip(&[]).is_err());
    }

    #[test]
    fn a_budget_refuses_rows_past_its_limit() {
        let mut b = SheetXmlBudget::new(sheet_xml_fixed_bound(2) + 100);
        b.start_sheet(2);
        assert!(b.fits(100));
        assert!(!b.fits(101));
        b.add(60);
        assert!(b.fits(40) && !b.fits(41));
        b.start_sheet(2);
        assert_eq!(b.used(), sheet_xml_fixed_bound(2));
        // Control characters count 7 bytes each, plain ASCII one.
        let base = string_cell_xml_bound("");
        assert_eq!(string_cell_xml_bound("ab"), base + 2);
        assert_eq!(string_cell_xml_bound("\u{1}"), base + 7);
        assert!(NUMBER_CELL_XML_BOUND < base);
    }
}
