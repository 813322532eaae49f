//! Text encodings (docs/spec/user_purchase.md, "File-level rules"): a BOM
//! names UTF-8 or UTF-16; without one the file is UTF-8 if every byte of it
//! is, Windows-1252 otherwise. Whatever the encoding, the text is handed on
//! as UTF-8, transcoded with bounded buffers.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use encoding_rs::{CoderResult, Decoder, Encoding};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TextEncoding {
    Utf8Bom,
    Utf8,
    Utf16Le,
    Utf16Be,
    Windows1252,
}

impl TextEncoding {
    pub(super) fn from_bom(head: &[u8]) -> Option<Self> {
        if head.starts_with(b"\xEF\xBB\xBF") {
            Some(Self::Utf8Bom)
        } else if head.starts_with(b"\xFF\xFE") {
            Some(Self::Utf16Le)
        } else if head.starts_with(b"\xFE\xFF") {
            Some(Self::Utf16Be)
        } else {
            None
        }
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            Self::Utf8Bom => "utf-8 (BOM)",
            Self::Utf8 => "utf-8",
            Self::Utf16Le => "utf-16le (BOM)",
            Self::Utf16Be => "utf-16be (BOM)",
            Self::Windows1252 => "windows-1252",
        }
    }

    /// The file as a stream of UTF-8 bytes, BOM removed.
    pub(super) fn reader(self, path: &Path) -> io::Result<Box<dyn Read>> {
        let mut file = File::open(path)?;
        let transcode = |encoding: &'static Encoding, file: File| -> Box<dyn Read> {
            Box::new(Transcoder::new(
                file,
                encoding.new_decoder_with_bom_removal(),
            ))
        };
        Ok(match self {
            Self::Utf8 => Box::new(file),
            Self::Utf8Bom => {
                file.seek(SeekFrom::Start(3))?;
                Box::new(file)
            }
            Self::Utf16Le => transcode(encoding_rs::UTF_16LE, file),
            Self::Utf16Be => transcode(encoding_rs::UTF_16BE, file),
            Self::Windows1252 => transcode(encoding_rs::WINDOWS_1252, file),
        })
    }
}

/// Strict UTF-8 over the whole file, read in chunks (a sequence cut by a
/// chunk boundary is carried over): one byte that is not UTF-8 anywhere makes
/// the file Windows-1252, as the spec orders.
pub(super) fn is_utf8(path: &Path) -> io::Result<bool> {
    let mut file = File::open(path)?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut carry = 0;
    loop {
        let n = match file.read(&mut buf[carry..]) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if n == 0 {
            return Ok(carry == 0);
        }
        let len = carry + n;
        match std::str::from_utf8(&buf[..len]) {
            Ok(_) => carry = 0,
            Err(e) if e.error_len().is_some() => return Ok(false),
            Err(e) => {
                let valid = e.valid_up_to();
                buf.copy_within(valid..len, 0);
                carry = len - valid;
            }
        }
    }
}

/// Streams any encoding_rs encoding to UTF-8 with bounded buffers (the
/// decoder keeps state across chunk boundaries, so a UTF-16 pair cut in two
/// is decoded whole).
struct Transcoder<R> {
    inner: R,
    decoder: Decoder,
    input: Vec<u8>,
    in_pos: usize,
    in_len: usize,
    eof: bool,
    output: Vec<u8>,
    out_pos: usize,
    out_len: usize,
    done: bool,
}

impl<R: Read> Transcoder<R> {
    fn new(inner: R, decoder: Decoder) -> Self {
        Self {
            inner,
            decoder,
            input: vec![0; 16 * 1024],
            in_pos: 0,
            in_len: 0,
            eof: false,
            output: vec![0; 64 * 1024],
            out_pos: 0,
            out_len: 0,
            done: false,
        }
    }

    fn fill(&mut self) -> io::Result<()> {
        while !self.done {
            if self.in_pos == self.in_len && !self.eof {
                let n = loop {
                    match self.inner.read(&mut self.input) {
                        Ok(n) => break n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                };
                self.in_pos = 0;
                self.in_len = n;
                self.eof = n == 0;
            }
            let (result, read, written, _) = self.decoder.decode_to_utf8(
                &self.input[self.in_pos..self.in_len],
                &mut self.output,
                self.eof,
            );
            self.in_pos += read;
            self.out_pos = 0;
            self.out_len = written;
            if self.eof && result == CoderResult::InputEmpty {
                self.done = true;
            }
            if written > 0 {
                break;
            }
        }
        Ok(())
    }
}

impl<R: Read> Read for Transcoder<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.out_pos == self.out_len {
            self.out_pos = 0;
            self.out_len = 0;
            self.fill()?;
        }
        let n = out.len().min(self.out_len - self.out_pos);
        out[..n].copy_from_slice(&self.output[self.out_pos..self.out_pos + n]);
        self.out_pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use crate::cells::RowOutcome;
    use crate::decode::FileFormat;
    use crate::decode::test_support::*;

    const ASCII_HEADER: &str = "CPF,PRIVATE,INCOMPLETO,DATA DA ULTIMA COMPRA,TICKET MEDIO,\
                                TICKET DA ULTIMA COMPRA,LOJA MAIS FREQUENTE,LOJA DA ULTIMA COMPRA";

    #[test]
    fn csv_semicolon_windows_1252() {
        let text = format!(
            "{CSV_HEADER};OBSERVAÇÃO\r\n\
             990.999.999-66;0;0;22/05/2013;399,00;399,00;79.379.491/0008-50;79.379.491/0008-50;café\r\n"
        );
        let (bytes, _, _) = encoding_rs::WINDOWS_1252.encode(&text);
        assert!(bytes.contains(&0xC9), "TICKET MÉDIO as 0xC9");
        let file = Tmp::with("1252.csv", &bytes);
        let (info, rows) = run(&file.0);
        assert_eq!(info.format, FileFormat::Delimited { delimiter: b';' });
        assert_eq!(info.encoding, "windows-1252");
        assert_eq!(
            info.warnings,
            ["ignored a column not in dataset `user_purchase`: `OBSERVAÇÃO` (field 9)"]
        );
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].number, 2);
        assert_eq!(rows[0].cells[3], "22/05/2013");
        assert_eq!(rows[0].original[8], "café");
        assert!(matches!(rows[0].outcome, RowOutcome::Valid(_)));
    }

    #[test]
    fn csv_comma_with_utf8_bom() {
        let text = "\u{FEFF}CPF,private,incompleto,Data da Última Compra,Ticket Médio,\
                    Ticket da Última Compra,Loja Mais Frequente,Loja da Última Compra,CPF VÁLIDO\n\
                    041.091.641-25,1,0,2013-05-22,\"1.234,56\",NULL,,,true\n";
        let file = Tmp::with("bom.csv", text.as_bytes());
        let (info, rows) = run(&file.0);
        assert_eq!(info.format, FileFormat::Delimited { delimiter: b',' });
        assert_eq!(info.encoding, "utf-8 (BOM)");
        assert!(info.warnings.is_empty(), "{:?}", info.warnings);
        assert_eq!(
            rows[0].cells,
            strings(&[
                "041.091.641-25",
                "1",
                "0",
                "2013-05-22",
                "1.234,56",
                "NULL",
                "",
                ""
            ])
        );
        assert_eq!(rows[0].original.len(), 9);
    }

    #[test]
    fn utf16_with_bom_is_transcoded() {
        let text = format!("{CSV_HEADER}\r\n041.091.641-25;0;0;NULL;NULL;NULL;NULL;NULL\r\n");
        let mut le = vec![0xFF, 0xFE];
        let mut be = vec![0xFE, 0xFF];
        for unit in text.encode_utf16() {
            le.extend(unit.to_le_bytes());
            be.extend(unit.to_be_bytes());
        }
        for (bytes, name) in [(le, "utf-16le (BOM)"), (be, "utf-16be (BOM)")] {
            let file = Tmp::with("u16.csv", &bytes);
            let (info, rows) = run(&file.0);
            assert_eq!(info.encoding, name);
            assert_eq!(rows.len(), 1);
            assert!(matches!(rows[0].outcome, RowOutcome::Valid(_)));
        }
    }

    #[test]
    fn utf8_is_validated_across_chunks_and_to_the_end() {
        // A two-byte character straddling the 64 KiB read boundary. The
        // header is ASCII so it reads the same in both encodings.
        let mut text = format!("{}\n", ASCII_HEADER.replace(',', ";"));
        let row = "041.091.641-25;0;0;NULL;NULL;NULL;NULL;NULL\n";
        while text.len() < 64 * 1024 - 1 - row.len() {
            text.push_str(row);
        }
        while text.len() < 64 * 1024 - 1 {
            text.push('\n');
        }
        text.push_str("É;0;0;NULL;NULL;NULL;NULL;NULL\n");
        assert!(!text.is_char_boundary(64 * 1024));
        let file = Tmp::with("chunks.csv", text.as_bytes());
        let (info, rows) = run(&file.0);
        assert_eq!(info.encoding, "utf-8");
        assert_eq!(rows.last().unwrap().cells[0], "É");

        // One Windows-1252 byte at the very end makes the whole file 1252.
        let mut bytes = text.into_bytes();
        bytes.extend(b"caf\xE9;0;0;NULL;NULL;NULL;NULL;NULL\n");
        let file = Tmp::with("late1252.csv", &bytes);
        let (info, rows) = run(&file.0);
        assert_eq!(info.encoding, "windows-1252");
        assert_eq!(rows.last().unwrap().cells[0], "café");
        // ...and the UTF-8 "É" now reads as two 1252 characters.
        assert_eq!(rows[rows.len() - 2].cells[0], "Ã‰");
    }

    #[test]
    fn utf16_text_with_a_bom_is_excels_unicode_text() {
        let text = format!(
            "{}\r\n990.999.999-66\t0\t0\t22/05/2013\t399,00\t\t\t\r\n",
            CSV_HEADER.replace(';', "\t")
        );
        for (bom, encode, name) in [
            (
                &[0xFF, 0xFE][..],
                u16::to_le_bytes as fn(u16) -> [u8; 2],
                "utf-16le (BOM)",
            ),
            (
                &[0xFE, 0xFF][..],
                u16::to_be_bytes as fn(u16) -> [u8; 2],
                "utf-16be (BOM)",
            ),
        ] {
            let mut bytes = bom.to_vec();
            for unit in text.encode_utf16() {
                bytes.extend_from_slice(&encode(unit));
            }
            let file = Tmp::with("unicode.txt", &bytes);
            let (info, rows) = run(&file.0);
            assert_eq!(info.encoding, name);
            assert_eq!(info.format, FileFormat::Delimited { delimiter: b'\t' });
            assert_eq!(rows.len(), 1);
            assert_eq!(rows[0].cells[4], "399,00");
            assert!(matches!(rows[0].outcome, RowOutcome::Valid(_)));
        }
    }
}
