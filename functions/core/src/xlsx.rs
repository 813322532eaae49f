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
    let directory = CentralDirectory::find(bytes)?;
    let mut summary = ZipSummary {
        names: Vec::new(),
        with_data_descriptor: 0,
        largest_uncompressed: 0,
    };
    let mut at = directory.start;
    let mut entry_end = 0usize;
    for index in 0..directory.entries {
        let central = CentralHeader::read(bytes, at, index)?;
        central.check()?;
        entry_end = check_local_header(bytes, &central, entry_end)?;
        if central.fields.has_data_descriptor() {
            summary.with_data_descriptor += 1;
        }
        let uncompressed = u64::from(central.fields.uncompressed);
        summary.largest_uncompressed = summary.largest_uncompressed.max(uncompressed);
        at = central.next;
        summary.names.push(central.name);
    }
    if at != directory.end {
        return Err(format!(
            "the central directory holds {} bytes after its {} entries",
            directory.end - at,
            directory.entries
        ));
    }
    if entry_end != directory.start {
        return Err(format!(
            "the last entry ends at {entry_end}, the central directory starts at {}",
            directory.start
        ));
    }
    check_inflates(bytes)?;
    Ok(summary)
}

/// Where the central directory (APPNOTE.TXT 4.3.12) lies, and how many
/// entries it holds, as the end of central directory record tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CentralDirectory {
    /// Offset of its first file header.
    start: usize,
    /// Offset just past it: where the end of central directory record starts.
    end: usize,
    /// Its number of entries.
    entries: u16,
}

impl CentralDirectory {
    /// Reads the end of central directory record (APPNOTE.TXT 4.3.16), the
    /// last 22 bytes since xlport writes no archive comment, and checks it:
    /// one disk, no 0xFFFF/0xFFFFFFFF Zip64 placeholder, no Zip64 end of
    /// central directory locator (4.3.15) before it, and the central
    /// directory ending where the record starts.
    fn find(bytes: &[u8]) -> Result<Self, String> {
        const EOCD_LEN: usize = 22;
        if bytes.len() < EOCD_LEN {
            return Err(format!("{} bytes is too short for a zip", bytes.len()));
        }
        let eocd = bytes.len() - EOCD_LEN;
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
        let (start, end) = (cd_offset as usize, cd_offset as usize + cd_size as usize);
        if end != eocd {
            return Err(format!(
                "the central directory ({start}..{end}) does not end where the end record starts ({eocd})"
            ));
        }
        Ok(CentralDirectory {
            start,
            end,
            entries: total,
        })
    }
}

/// The fields a local file header (APPNOTE.TXT 4.3.7) and a central
/// directory file header (4.3.12) share, laid out alike from the version
/// needed to extract on (the time and date between are not read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct HeaderFields {
    /// Version needed to extract (4.4.3), as major * 10 + minor.
    needed: u16,
    /// General purpose bit flag (4.4.4).
    flags: u16,
    /// Compression method (4.4.5).
    method: u16,
    /// CRC-32 (4.4.7).
    crc: u32,
    /// Compressed size (4.4.8).
    compressed: u32,
    /// Uncompressed size (4.4.9).
    uncompressed: u32,
}

impl HeaderFields {
    /// Reads the fields of a header whose version needed to extract is at
    /// `at`: byte 4 of a local file header (APPNOTE.TXT 4.3.7), byte 6 of a
    /// central directory file header (4.3.12).
    fn read(bytes: &[u8], at: usize) -> Result<Self, String> {
        Ok(HeaderFields {
            needed: u16_at(bytes, at)?,
            flags: u16_at(bytes, at + 2)?,
            method: u16_at(bytes, at + 4)?,
            crc: u32_at(bytes, at + 10)?,
            compressed: u32_at(bytes, at + 14)?,
            uncompressed: u32_at(bytes, at + 18)?,
        })
    }

    /// Whether general purpose flag bit 3 says a data descriptor (APPNOTE.TXT
    /// 4.3.9) follows the entry's data.
    fn has_data_descriptor(&self) -> bool {
        self.flags & 0x0008 != 0
    }

    /// The CRC-32 and sizes (APPNOTE.TXT 4.4.7 to 4.4.9), in that order.
    fn crc_and_sizes(&self) -> (u32, u32, u32) {
        (self.crc, self.compressed, self.uncompressed)
    }
}

/// Checks a header's version needed to extract, 2.0 at most (APPNOTE.TXT
/// 4.4.3), and its extra field: well formed (4.5.1), with no Zip64 extended
/// information (id 0x0001, 4.5.3). `record` names the header in the error,
/// which the caller prefixes with the entry's name.
fn check_version_and_extra(needed: u16, extra: &[u8], record: &str) -> Result<(), String> {
    if needed > MAX_VERSION_NEEDED {
        return Err(format!(
            "{record} needs version {}.{} to extract",
            needed / 10,
            needed % 10
        ));
    }
    if extra_ids(extra)?.contains(&ZIP64_EXTRA_ID) {
        return Err(format!("a Zip64 extra field in the {record}"));
    }
    Ok(())
}

/// One central directory file header (APPNOTE.TXT 4.3.12), as far as the
/// check reads it.
#[derive(Debug)]
struct CentralHeader<'a> {
    /// Version needed, flags, method, CRC-32 and sizes.
    fields: HeaderFields,
    /// The file name (4.4.17), decoded lossily, as errors and the summary
    /// give it and the local header must repeat it.
    name: String,
    /// The extra field (4.4.28).
    extra: &'a [u8],
    /// Disk number start (4.4.13).
    start_disk: u16,
    /// Relative offset of the local header (4.4.16).
    local: u32,
    /// Offset just past its name, extra field and comment: where the next
    /// header starts.
    next: usize,
}

impl<'a> CentralHeader<'a> {
    /// Reads the central directory file header (APPNOTE.TXT 4.3.12) of entry
    /// `index`, at `at`; a Zip64 end of central directory record (4.3.14)
    /// there instead is an error of its own.
    fn read(bytes: &'a [u8], at: usize, index: u16) -> Result<Self, String> {
        if u32_at(bytes, at)? != CENTRAL_HEADER_SIG {
            if u32_at(bytes, at)? == ZIP64_EOCD_SIG {
                return Err("a Zip64 end of central directory record".into());
            }
            return Err(format!(
                "central directory entry {index}: no signature at {at}"
            ));
        }
        let fields = HeaderFields::read(bytes, at + 6)?;
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
        Ok(CentralHeader {
            fields,
            name,
            extra,
            start_disk,
            local,
            next: name_at + name_len + extra_len + comment_len,
        })
    }

    /// The header's own checks (APPNOTE.TXT 4.3.12): version 2.0 at most and
    /// no Zip64 extra field ([`check_version_and_extra`]), no 0xFFFFFFFF
    /// size or local header offset (4.4.8, 4.4.9, 4.4.16), on disk 0 (4.4.13).
    fn check(&self) -> Result<(), String> {
        check_version_and_extra(self.fields.needed, self.extra, "central directory")
            .map_err(|problem| self.entry(problem))?;
        let f = &self.fields;
        if f.compressed == 0xFFFF_FFFF || f.uncompressed == 0xFFFF_FFFF || self.local == 0xFFFF_FFFF
        {
            return Err(self.entry("Zip64 placeholders in the central directory".into()));
        }
        if self.start_disk != 0 {
            return Err(self.entry(format!("starts on disk {}", self.start_disk)));
        }
        Ok(())
    }

    /// `problem`, said of this entry.
    fn entry(&self, problem: String) -> String {
        format!("{}: {problem}", self.name)
    }
}

/// Checks the local file header (APPNOTE.TXT 4.3.7) of the entry `central`
/// describes: it starts at `expected_at`, where the previous entry ended;
/// it repeats the central name; its version and extra field pass
/// [`check_version_and_extra`]; its flags and method are the central ones;
/// and its CRC-32 and sizes are too, or with flag bit 3 are zero, the data
/// descriptor after the data ([`check_data_descriptor`], 4.3.9) holding
/// them. Returns where the entry ends.
fn check_local_header(
    bytes: &[u8],
    central: &CentralHeader<'_>,
    expected_at: usize,
) -> Result<usize, String> {
    let entry = |problem: String| central.entry(problem);
    let l = central.local as usize;
    if l != expected_at {
        return Err(entry(format!(
            "local header at {l}, but the previous entry ended at {expected_at}"
        )));
    }
    if u32_at(bytes, l)? != LOCAL_HEADER_SIG {
        return Err(entry(format!("no local file header at {l}")));
    }
    let local = HeaderFields::read(bytes, l + 4)?;
    let name_len = usize::from(u16_at(bytes, l + 26)?);
    let extra_len = usize::from(u16_at(bytes, l + 28)?);
    let name = bytes
        .get(l + 30..l + 30 + name_len)
        .ok_or_else(|| entry("the local name runs past the end".into()))?;
    if name != central.name.as_bytes() {
        let name = String::from_utf8_lossy(name);
        return Err(entry(format!("the local header names it {name:?}")));
    }
    let extra = bytes
        .get(l + 30 + name_len..l + 30 + name_len + extra_len)
        .ok_or_else(|| entry("the local extra field runs past the end".into()))?;
    check_version_and_extra(local.needed, extra, "local header").map_err(entry)?;
    let c = &central.fields;
    if local.flags != c.flags || local.method != c.method {
        return Err(entry(format!(
            "local flags/method {:#06x}/{} differ from the central {:#06x}/{}",
            local.flags, local.method, c.flags, c.method
        )));
    }
    let data_end = l + 30 + name_len + extra_len + c.compressed as usize;
    if !c.has_data_descriptor() {
        if local.crc_and_sizes() != c.crc_and_sizes() {
            return Err(entry(
                "local CRC/sizes differ from the central directory".into(),
            ));
        }
        return Ok(data_end);
    }
    // Sizes and CRC are zero in the local header and follow the data.
    if local.crc_and_sizes() != (0, 0, 0) {
        return Err(entry(
            "local header has sizes though a data descriptor follows".into(),
        ));
    }
    check_data_descriptor(bytes, data_end, central)?;
    Ok(data_end + 16)
}

/// Checks the data descriptor (APPNOTE.TXT 4.3.9) at `at`, after the data of
/// the entry `central` describes: it has its signature, and its CRC-32 and
/// sizes are the central directory's.
fn check_data_descriptor(
    bytes: &[u8],
    at: usize,
    central: &CentralHeader<'_>,
) -> Result<(), String> {
    if u32_at(bytes, at)? != DATA_DESCRIPTOR_SIG {
        return Err(central.entry(format!("no data descriptor signature at {at}")));
    }
    let d = (
        u32_at(bytes, at + 4)?,
        u32_at(bytes, at + 8)?,
        u32_at(bytes, at + 12)?,
    );
    let (crc, compressed, uncompressed) = central.fields.crc_and_sizes();
    if d != (crc, compressed, uncompressed) {
        return Err(central.entry(format!(
            "data descriptor (crc {:#010x}, {} -> {} bytes) differs from the central directory (crc {crc:#010x}, {compressed} -> {uncompressed})",
            d.0, d.1, d.2
        )));
    }
    Ok(())
}

/// Checks the data itself: each entry inflates to the CRC-32 and uncompressed
/// size (APPNOTE.TXT 4.4.7, 4.4.9) its headers give, which the zip crate
/// checks as it reads an entry to the end.
fn check_inflates(bytes: &[u8]) -> Result<(), String> {
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
    Ok(())
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

    /// Where `name`'s central directory header and local file header start.
    fn headers_of(bytes: &[u8], name: &str) -> (usize, usize) {
        let directory = CentralDirectory::find(bytes).unwrap();
        let mut at = directory.start;
        for index in 0..directory.entries {
            let central = CentralHeader::read(bytes, at, index).unwrap();
            if central.name == name {
                return (at, central.local as usize);
            }
            at = central.next;
        }
        panic!("no entry {name}");
    }

    /// `bytes` with `value` written little-endian at `at`.
    fn patched(mut bytes: Vec<u8>, at: usize, value: &[u8]) -> Vec<u8> {
        bytes[at..at + value.len()].copy_from_slice(value);
        bytes
    }

    const FIRST: &str = "[Content_Types].xml";

    #[test]
    fn the_end_record_gives_the_central_directory() {
        let bytes = workbook(false);
        let directory = CentralDirectory::find(&bytes).unwrap();
        let zip = check_conventional_zip(&bytes).unwrap();
        assert_eq!(directory.end, bytes.len() - 22);
        assert_eq!(usize::from(directory.entries), zip.names.len());
        assert_eq!(headers_of(&bytes, FIRST).0, directory.start);

        let err = |bytes: &[u8]| CentralDirectory::find(bytes).unwrap_err();
        assert_eq!(err(&[0; 21]), "21 bytes is too short for a zip");
        assert_eq!(
            err(&[0; 22]),
            "no end of central directory record in the last 22 bytes"
        );
        let eocd = bytes.len() - 22;
        let n = directory.entries;
        let with = |at: usize, value: &[u8]| patched(bytes.clone(), eocd + at, value);
        assert_eq!(err(&with(20, &[1, 0])), "the archive has a comment");
        assert_eq!(
            err(&with(4, &[1, 0])),
            format!("a multi-disk end of central directory: disk 1, {n} of {n} entries")
        );
        assert_eq!(
            err(&with(8, &[0xFF, 0xFF])),
            format!("a multi-disk end of central directory: disk 0, 65535 of {n} entries")
        );
        assert_eq!(
            err(&with(8, &[0xFF; 4])),
            "Zip64 placeholders in the end of central directory record"
        );
        let size = u32_at(&bytes, eocd + 12).unwrap() + 1;
        let start = directory.start;
        assert_eq!(
            err(&with(12, &size.to_le_bytes())),
            format!(
                "the central directory ({start}..{}) does not end where the end record starts ({eocd})",
                start + size as usize
            )
        );
        // An empty archive after a Zip64 end of central directory locator.
        let mut locator = vec![0; 42];
        locator[..4].copy_from_slice(&ZIP64_LOCATOR_SIG.to_le_bytes());
        locator[20..24].copy_from_slice(&EOCD_SIG.to_le_bytes());
        assert_eq!(err(&locator), "a Zip64 end of central directory locator");
    }

    /// The shared fields read alike from both headers of every entry.
    #[test]
    fn central_and_local_headers_share_their_fields() {
        let bytes = workbook(false);
        for name in check_conventional_zip(&bytes).unwrap().names {
            let (central_at, local_at) = headers_of(&bytes, &name);
            let central = HeaderFields::read(&bytes, central_at + 6).unwrap();
            let local = HeaderFields::read(&bytes, local_at + 4).unwrap();
            assert_eq!(central.needed, MAX_VERSION_NEEDED, "{name}");
            assert!(central.has_data_descriptor(), "{name}");
            assert_eq!(
                (local.needed, local.flags, local.method),
                (central.needed, central.flags, central.method),
                "{name}"
            );
            assert_eq!(local.crc_and_sizes(), (0, 0, 0), "{name}");
            assert!(central.uncompressed > 0, "{name}");
        }
    }

    #[test]
    fn the_zip_check_pins_central_header_problems() {
        let bytes = workbook(false);
        let (at, _) = headers_of(&bytes, FIRST);
        let central = CentralHeader::read(&bytes, at, 0).unwrap();
        assert_eq!(
            (central.name.as_str(), central.local, central.start_disk),
            (FIRST, 0, 0)
        );
        assert_eq!(central.next, at + 46 + FIRST.len() + central.extra.len());
        central.check().unwrap();

        let err = |at: usize, value: &[u8]| {
            check_conventional_zip(&patched(bytes.clone(), at, value)).unwrap_err()
        };
        assert_eq!(
            err(at, &[0, 0]),
            format!("central directory entry 0: no signature at {at}")
        );
        assert_eq!(
            err(at, &ZIP64_EOCD_SIG.to_le_bytes()),
            "a Zip64 end of central directory record"
        );
        assert_eq!(
            err(at + 6, &[45, 0]),
            format!("{FIRST}: central directory needs version 4.5 to extract")
        );
        assert_eq!(
            err(at + 24, &[0xFF; 4]),
            format!("{FIRST}: Zip64 placeholders in the central directory")
        );
        assert_eq!(err(at + 34, &[2, 0]), format!("{FIRST}: starts on disk 2"));
        assert_eq!(
            err(at + 42, &[1, 0, 0, 0]),
            format!("{FIRST}: local header at 1, but the previous entry ended at 0")
        );
    }

    #[test]
    fn the_zip_check_pins_local_header_problems() {
        let bytes = workbook(false);
        let (_, l) = headers_of(&bytes, FIRST);
        let err = |at: usize, value: &[u8]| {
            check_conventional_zip(&patched(bytes.clone(), at, value)).unwrap_err()
        };
        assert_eq!(
            err(l, &[0, 0]),
            format!("{FIRST}: no local file header at 0")
        );
        assert_eq!(
            err(l + 30 + 15, b"X"),
            format!("{FIRST}: the local header names it \"[Content_Types]Xxml\"")
        );
        assert_eq!(
            err(l + 4, &[45, 0]),
            format!("{FIRST}: local header needs version 4.5 to extract")
        );
        assert_eq!(
            err(l + 8, &[0, 0]),
            format!("{FIRST}: local flags/method 0x0008/0 differ from the central 0x0008/8")
        );
        assert_eq!(
            err(l + 14, &[1, 0, 0, 0]),
            format!("{FIRST}: local header has sizes though a data descriptor follows")
        );
    }

    #[test]
    fn the_zip_check_pins_a_descriptor_that_disagrees() {
        let bytes = workbook(false);
        let (at, l) = headers_of(&bytes, FIRST);
        let central = CentralHeader::read(&bytes, at, 0).unwrap();
        let (crc, compressed, uncompressed) = central.fields.crc_and_sizes();
        let data_end = l + 30 + FIRST.len() + compressed as usize;
        check_data_descriptor(&bytes, data_end, &central).unwrap();
        let damaged = patched(bytes.clone(), data_end + 4, &(crc ^ 1).to_le_bytes());
        assert_eq!(
            check_data_descriptor(&damaged, data_end, &central).unwrap_err(),
            format!(
                "{FIRST}: data descriptor (crc {:#010x}, {compressed} -> {uncompressed} bytes) differs from the central directory (crc {crc:#010x}, {compressed} -> {uncompressed})",
                crc ^ 1
            )
        );
        let damaged = patched(bytes.clone(), data_end, &[0, 0]);
        assert_eq!(
            check_data_descriptor(&damaged, data_end, &central).unwrap_err(),
            format!("{FIRST}: no data descriptor signature at {data_end}")
        );
    }

    #[test]
    fn the_zip_check_refuses_data_that_does_not_inflate() {
        let bytes = workbook(false);
        check_inflates(&bytes).unwrap();
        let sheet = "xl/worksheets/sheet1.xml";
        let (at, l) = headers_of(&bytes, sheet);
        let central = CentralHeader::read(&bytes, at, 0).unwrap();
        let data = l + 30 + sheet.len();
        let mut damaged = bytes.clone();
        for b in &mut damaged[data..data + central.fields.compressed as usize / 2] {
            *b ^= 0x55;
        }
        let err = check_inflates(&damaged).unwrap_err();
        assert!(
            err.starts_with(&format!("{sheet}: does not inflate: ")),
            "{err}"
        );
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
