//! The CPF and CNPJ masks of exports (`990.999.999-66`,
//! `79.379.491/0008-50`, alphanumeric CNPJs alike), built on the stack.

/// Characters a CPF or CNPJ mask adds to a value: 3 for a CPF, 4 for a CNPJ.
pub(super) const MASK_GROWTH: u64 = 4;

/// `99099999966` -> `990.999.999-66`; anything not 11 ASCII characters is returned as is.
pub fn mask_cpf(cpf: &str) -> Masked<'_> {
    Masked::new(cpf, 11, &[(3, b'.'), (6, b'.'), (9, b'-')])
}

/// `79379491000850` -> `79.379.491/0008-50` (alphanumeric CNPJs alike).
pub fn mask_cnpj(cnpj: &str) -> Masked<'_> {
    Masked::new(cnpj, 14, &[(2, b'.'), (5, b'.'), (8, b'/'), (12, b'-')])
}

/// The longest masked value: a CNPJ's 14 characters and 4 separators.
const MASKED_LEN: usize = 18;

/// A masked CPF or CNPJ, built on the stack: an export masks three cells a
/// row, and a formatted heap string for each was a measurable share of the
/// encoder's time. Derefs to `str`.
#[derive(Debug, Clone, Copy)]
pub enum Masked<'a> {
    Masked {
        buf: [u8; MASKED_LEN],
        len: u8,
    },
    /// Not the expected length (or not ASCII): shown as stored.
    AsIs(&'a str),
}

impl<'a> Masked<'a> {
    /// `value` of `len` ASCII characters, with `separator` inserted before
    /// each `(index, separator)`.
    fn new(value: &'a str, len: usize, separators: &[(usize, u8)]) -> Self {
        let bytes = value.as_bytes();
        if bytes.len() != len || !value.is_ascii() || len + separators.len() > MASKED_LEN {
            return Masked::AsIs(value);
        }
        let mut buf = [0u8; MASKED_LEN];
        let (mut from, mut at) = (0, 0);
        for &(cut, separator) in separators {
            buf[at..at + cut - from].copy_from_slice(&bytes[from..cut]);
            at += cut - from;
            buf[at] = separator;
            at += 1;
            from = cut;
        }
        buf[at..at + len - from].copy_from_slice(&bytes[from..]);
        Masked::Masked {
            buf,
            len: (at + len - from) as u8,
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            // ASCII in, ASCII separators: always UTF-8.
            Masked::Masked { buf, len } => {
                std::str::from_utf8(&buf[..usize::from(*len)]).unwrap_or_default()
            }
            Masked::AsIs(s) => s,
        }
    }
}

impl std::ops::Deref for Masked<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl std::fmt::Display for Masked<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for Masked<'_> {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks() {
        assert_eq!(mask_cpf("99099999966"), "990.999.999-66");
        assert_eq!(mask_cnpj("79379491000850"), "79.379.491/0008-50");
        assert_eq!(mask_cnpj("12ABC34501DE35"), "12.ABC.345/01DE-35");
        assert_eq!(mask_cpf("123"), "123");
        assert_eq!(mask_cpf("990999999660"), "990999999660");
        assert_eq!(mask_cnpj("7937949100085É"), "7937949100085É");
        assert_eq!(mask_cnpj(""), "");
    }
}
