//! Postgres `COPY ... TO STDOUT` text format (PostgreSQL documentation,
//! COPY, "Text Format") read back: one line into its fields, backslash
//! escapes undone, `\N` as SQL NULL. `crate::cells` writes the same format
//! for imports; the escapes of both are `crate::copy_format`'s.

use crate::copy_format;

/// Splits one line of `COPY ... TO STDOUT` text format (without its newline)
/// into fields, undoing the backslash escapes; `None` is SQL NULL (`\N`).
pub fn split_copy_line<'a>(line: &'a str, out: &mut Vec<Option<std::borrow::Cow<'a, str>>>) {
    use std::borrow::Cow;
    out.clear();
    // Escapes and NULLs (`\N`) all start with a backslash: most lines have
    // none, and their fields are plain slices.
    if !line.contains('\\') {
        out.extend(line.split('\t').map(|f| Some(Cow::Borrowed(f))));
        return;
    }
    for raw in line.split('\t') {
        if raw == copy_format::NULL {
            out.push(None);
        } else if !raw.contains('\\') {
            out.push(Some(Cow::Borrowed(raw)));
        } else {
            let mut s = String::with_capacity(raw.len());
            let mut chars = raw.chars();
            while let Some(c) = chars.next() {
                if c != '\\' {
                    s.push(c);
                    continue;
                }
                match chars.next() {
                    Some(letter) => s.push(copy_format::unescape(letter)),
                    None => s.push('\\'),
                }
            }
            out.push(Some(Cow::Owned(s)));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;

    #[test]
    fn copy_lines_are_split_and_unescaped() {
        let mut f = Vec::new();
        split_copy_line("a\t\\N\tb\\tc\\\\d\t", &mut f);
        assert_eq!(
            f,
            vec![
                Some(Cow::Borrowed("a")),
                None,
                Some(Cow::Owned("b\tc\\d".to_string())),
                Some(Cow::Borrowed(""))
            ]
        );
        // No backslash anywhere: the fast path, empty fields included.
        split_copy_line("a\t\tc", &mut f);
        assert_eq!(
            f,
            vec![
                Some(Cow::Borrowed("a")),
                Some(Cow::Borrowed("")),
                Some(Cow::Borrowed("c"))
            ]
        );
    }
}
