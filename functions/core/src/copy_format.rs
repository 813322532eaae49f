//! Postgres `COPY ... (FORMAT text)` (PostgreSQL documentation, COPY, "Text
//! Format"): the NULL marker and the backslash escapes, in one table that
//! both directions read. `crate::cells` writes the format for imports
//! ([`escape`]); `crate::export` reads what `COPY ... TO STDOUT` writes back
//! ([`unescape`]).

/// SQL NULL, a whole field.
pub(crate) const NULL: &str = "\\N";

/// Each character that stands as a backslash and a letter, and its letter.
/// Postgres writes all of them; the first [`MUST_ESCAPE`] are the ones a
/// writer has to escape, since raw they would split a field or a row (the
/// others may stand as they are). A backslash followed by any other
/// character stands for that character, so `\\` is a backslash.
pub(crate) const ESCAPES: [(char, char); 6] = [
    ('\t', 't'),
    ('\n', 'n'),
    ('\r', 'r'),
    ('\u{8}', 'b'),
    ('\u{c}', 'f'),
    ('\u{b}', 'v'),
];

/// How many of the first [`ESCAPES`] a writer must use: tab, newline, CR.
const MUST_ESCAPE: usize = 3;

/// The character to write after a backslash for `c` in a field: `\` for a
/// backslash, the letter of a tab, newline or carriage return; `None` for
/// any other character, which is written as it is.
pub(crate) fn escape(c: char) -> Option<char> {
    match c {
        '\\' => Some('\\'),
        // Tab, newline and CR are all below it: most characters stop here.
        c if c > '\r' => None,
        c => ESCAPES[..MUST_ESCAPE]
            .iter()
            .find(|&&(raw, _)| raw == c)
            .map(|&(_, letter)| letter),
    }
}

/// The character that a backslash followed by `letter` stands for.
pub(crate) fn unescape(letter: char) -> char {
    ESCAPES
        .iter()
        .find(|&&(_, l)| l == letter)
        .map_or(letter, |&(raw, _)| raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_writer_escapes_backslash_tab_newline_and_cr_only() {
        let escaped: Vec<(char, char)> = ('\0'..='\u{ff}')
            .filter_map(|c| Some((c, escape(c)?)))
            .collect();
        assert_eq!(
            escaped,
            [('\t', 't'), ('\n', 'n'), ('\r', 'r'), ('\\', '\\')]
        );
        for c in ['\u{8}', '\u{c}', '\u{b}', 'ú', '\u{2028}', '\u{10ffff}'] {
            assert_eq!(escape(c), None, "{c:?}");
        }
    }

    #[test]
    fn a_reader_undoes_every_escape_postgres_writes() {
        let read: String = "tnrbfv\\Nx".chars().map(unescape).collect();
        // Any other character stands for itself.
        assert_eq!(read, "\t\n\r\u{8}\u{c}\u{b}\\Nx");
        // What a writer escapes, a reader reads back.
        for c in ['\\', '\t', '\n', '\r'] {
            assert_eq!(escape(c).map(unescape), Some(c));
        }
    }
}
