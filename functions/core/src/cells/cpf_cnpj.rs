//! Tax documents (docs/spec/user_purchase.md, "Cell rules"): a CPF (11
//! digits) or a CNPJ (14 characters: all digits, or the alphanumeric form in
//! force since July 2026) read from a cell, and their mod-11 check digits.

use super::Cell;

/// A cell that is not a tax document of the expected length. The column type
/// decides which [`Reason`](super::Reason) that is (`malformed_cpf` or `malformed_cnpj`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a tax document of the expected length")]
pub struct ShapeError;

/// Reads a CPF (`len` 11, `alnum` false) or a CNPJ (`len` 14, `alnum` true)
/// and says whether its check digits hold.
///
/// Text is trimmed, must start with a digit (or, when `alnum`, a letter or
/// digit) and may hold only ASCII digits (and letters when `alnum`) plus the
/// separators `.`, `-`, `/` and space, which are removed; letters are
/// upper-cased. Text is never padded: a missing leading zero is an error in
/// the data. A numeric cell is a non-negative whole number that Excel stripped
/// of its leading zeros, so it is left-padded to `len`. Anything else (empty,
/// boolean, date cells) and any length other than 11 or 14, which have no
/// check-digit algorithm, is a [`ShapeError`].
pub fn parse_document(
    cell: &Cell<'_>,
    len: usize,
    alnum: bool,
) -> Result<(String, bool), ShapeError> {
    let check: fn(&str) -> bool = match len {
        11 => cpf_check_digits_valid,
        14 => cnpj_check_digits_valid,
        _ => return Err(ShapeError),
    };
    let document = match *cell {
        Cell::Number(n) => numeric_document(n, len)?,
        Cell::Text(s) | Cell::Error(s) => text_document(s, len, alnum)?,
        Cell::Empty | Cell::DateSerial(_) | Cell::Bool(_) => return Err(ShapeError),
    };
    let valid = check(&document);
    Ok((document, valid))
}

fn numeric_document(n: f64, len: usize) -> Result<String, ShapeError> {
    if !(n.is_finite() && n >= 0.0 && n.fract() == 0.0) {
        return Err(ShapeError);
    }
    // A saturating cast: anything too large for u128 is far beyond `len` digits.
    let digits = (n as u128).to_string();
    if digits.len() > len {
        return Err(ShapeError);
    }
    Ok(format!("{digits:0>len$}"))
}

fn text_document(s: &str, len: usize, alnum: bool) -> Result<String, ShapeError> {
    let s = s.trim();
    let accepted = |c: char| c.is_ascii_digit() || (alnum && c.is_ascii_alphabetic());
    if !s.chars().next().is_some_and(accepted) {
        return Err(ShapeError);
    }
    let mut out = String::with_capacity(len);
    for c in s.chars() {
        match c {
            '.' | '-' | '/' | ' ' => {}
            c if accepted(c) => {
                // Stop early so a huge cell cannot make a huge string.
                if out.len() == len {
                    return Err(ShapeError);
                }
                out.push(c.to_ascii_uppercase());
            }
            _ => return Err(ShapeError),
        }
    }
    if out.len() == len {
        Ok(out)
    } else {
        Err(ShapeError)
    }
}

/// Mod-11 weights, the CPF's: 10..=2 for the first check digit over nine
/// digits, 11..=2 for the second over ten.
const CPF_WEIGHTS: [u32; 10] = [11, 10, 9, 8, 7, 6, 5, 4, 3, 2];
/// The CNPJ's: the last twelve for the first check digit, all thirteen for the
/// second.
const CNPJ_WEIGHTS: [u32; 13] = [6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2];

/// The check digit shared by CPF and CNPJ: the weighted sum of the character
/// values (ASCII code − 48, so digits are themselves and `A` is 17), 0 when the
/// remainder mod 11 is below 2, else 11 − remainder.
fn mod11_check_digit(chars: &[u8], weights: &[u32]) -> u8 {
    let sum: u32 = chars
        .iter()
        .zip(weights)
        .map(|(&c, &w)| u32::from(c.saturating_sub(b'0')) * w)
        .sum();
    match sum % 11 {
        r if r < 2 => b'0',
        // r is 2..=10, so the digit is 1..=9.
        r => b'0' + (11 - r) as u8,
    }
}

fn all_equal(b: &[u8]) -> bool {
    b.windows(2).all(|w| w[0] == w[1])
}

/// The two check digits of a CPF's first nine digits.
pub fn cpf_check_digits(base: &[u8; 9]) -> [u8; 2] {
    let first = mod11_check_digit(base, &CPF_WEIGHTS[1..]);
    let mut ten = [0u8; 10];
    ten[..9].copy_from_slice(base);
    ten[9] = first;
    [first, mod11_check_digit(&ten, &CPF_WEIGHTS)]
}

/// The two check digits of a CNPJ's first twelve characters (`0-9A-Z`).
pub fn cnpj_check_digits(base: &[u8; 12]) -> [u8; 2] {
    let first = mod11_check_digit(base, &CNPJ_WEIGHTS[1..]);
    let mut thirteen = [0u8; 13];
    thirteen[..12].copy_from_slice(base);
    thirteen[12] = first;
    [first, mod11_check_digit(&thirteen, &CNPJ_WEIGHTS)]
}

/// Whether 11 ASCII digits are a CPF with valid check digits. Numbers made of
/// one repeated digit pass the arithmetic but are not issued, so they fail.
pub fn cpf_check_digits_valid(cpf: &str) -> bool {
    let b = cpf.as_bytes();
    b.len() == 11
        && b.iter().all(u8::is_ascii_digit)
        && !all_equal(b)
        && b[9] == mod11_check_digit(&b[..9], &CPF_WEIGHTS[1..])
        && b[10] == mod11_check_digit(&b[..10], &CPF_WEIGHTS)
}

/// Whether 14 characters are a CNPJ with valid check digits, classic (all
/// digits) or alphanumeric (twelve of `0-9A-Z`, upper case, then two digits),
/// the latter in force since July 2026. Fourteen equal characters fail.
pub fn cnpj_check_digits_valid(cnpj: &str) -> bool {
    let b = cnpj.as_bytes();
    b.len() == 14
        && b[..12]
            .iter()
            .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
        && b[12..].iter().all(u8::is_ascii_digit)
        && !all_equal(b)
        && b[12] == mod11_check_digit(&b[..12], &CNPJ_WEIGHTS[1..])
        && b[13] == mod11_check_digit(&b[..13], &CNPJ_WEIGHTS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(cell: Cell<'_>, len: usize, alnum: bool) -> Option<(String, bool)> {
        parse_document(&cell, len, alnum).ok()
    }

    fn cpf(cell: Cell<'_>) -> Option<(String, bool)> {
        doc(cell, 11, false)
    }

    fn cnpj(cell: Cell<'_>) -> Option<(String, bool)> {
        doc(cell, 14, true)
    }

    // ---- CPF ----

    #[test]
    fn cpf_check_digits_of_the_spec_examples() {
        // 990.999.999 has check digits 41, so -66 is invalid (the spec says so).
        assert_eq!(
            cpf(Cell::Text("990.999.999-66")),
            Some(("99099999966".into(), false))
        );
        assert!(cpf_check_digits_valid("99099999941"));
        assert_eq!(
            cpf(Cell::Text("041.091.641-25")),
            Some(("04109164125".into(), true))
        );
    }

    #[test]
    fn cpf_known_valid_and_invalid() {
        for valid in ["11144477735", "52998224725", "04109164125", "70499962206"] {
            assert!(cpf_check_digits_valid(valid), "{valid}");
        }
        for invalid in [
            "11144477736",
            "11144477725",
            "11111111111",
            "00000000000",
            "99999999999",
            "1114447773",
            "111444777355",
            "1114447773a",
        ] {
            assert!(!cpf_check_digits_valid(invalid), "{invalid}");
        }
    }

    #[test]
    fn cpf_check_digits_cannot_catch_every_single_digit_change() {
        // A remainder of 0 and of 1 both give check digit 0, so this change
        // of the first digit keeps both check digits: both numbers are valid.
        assert!(cpf_check_digits_valid("70499962206"));
        assert!(cpf_check_digits_valid("80499962206"));
    }

    #[test]
    fn cpf_shapes() {
        assert_eq!(cpf(Cell::Text(" 04109164125 ")).unwrap().0, "04109164125");
        assert_eq!(cpf(Cell::Text("041 091 641/25")).unwrap().0, "04109164125");
        assert_eq!(
            cpf(Cell::Text("0.4.1.0.9.1.6.4.1.2.5")).unwrap().0,
            "04109164125"
        );
        // Text is never padded.
        assert_eq!(cpf(Cell::Text("4109164125")), None);
        assert_eq!(cpf(Cell::Text("041091641250")), None);
        assert_eq!(cpf(Cell::Text("12.3")), None);
        // Must start with a digit.
        assert_eq!(cpf(Cell::Text(".04109164125")), None);
        assert_eq!(cpf(Cell::Text("-04109164125")), None);
        // Only ASCII digits and the four separators.
        assert_eq!(cpf(Cell::Text("041_091_641_25")), None);
        assert_eq!(cpf(Cell::Text("041.091.641-2a")), None);
        assert_eq!(cpf(Cell::Text("٠٤١٠٩١٦٤١٢٥")), None);
        assert_eq!(cpf(Cell::Text("04109164125\u{a0}0")), None);
        assert_eq!(cpf(Cell::Text("")), None);
        assert_eq!(cpf(Cell::Error("#REF!")), None);
        assert_eq!(cpf(Cell::Bool(true)), None);
        assert_eq!(cpf(Cell::DateSerial(41416.0)), None);
        assert_eq!(cpf(Cell::Empty), None);
    }

    #[test]
    fn numeric_cpf_cells_are_padded() {
        assert_eq!(
            cpf(Cell::Number(4109164125.0)),
            Some(("04109164125".into(), true))
        );
        assert_eq!(cpf(Cell::Number(99099999966.0)).unwrap().0, "99099999966");
        assert_eq!(cpf(Cell::Number(0.0)), Some(("00000000000".into(), false)));
        assert_eq!(cpf(Cell::Number(4109164125.5)), None);
        assert_eq!(cpf(Cell::Number(-4109164125.0)), None);
        assert_eq!(cpf(Cell::Number(100000000000.0)), None);
        assert_eq!(cpf(Cell::Number(f64::NAN)), None);
        assert_eq!(cpf(Cell::Number(f64::INFINITY)), None);
        assert_eq!(cpf(Cell::Number(1e300)), None);
    }

    #[test]
    fn documents_have_two_known_lengths() {
        assert_eq!(doc(Cell::Text("123456789012"), 12, false), None);
    }

    // ---- CNPJ ----

    #[test]
    fn cnpj_spec_examples() {
        assert_eq!(
            cnpj(Cell::Text("79.379.491/0008-50")),
            Some(("79379491000850".into(), true))
        );
        assert_eq!(
            cnpj(Cell::Text("12.ABC.345/01DE-35")),
            Some(("12ABC34501DE35".into(), true))
        );
        // Letters are case-insensitive and stored upper case.
        assert_eq!(
            cnpj(Cell::Text("12.abc.345/01de-35")),
            Some(("12ABC34501DE35".into(), true))
        );
        assert!(!cnpj(Cell::Text("12.ABC.345/01DE-36")).unwrap().1);
        assert!(!cnpj(Cell::Text("79.379.491/0008-51")).unwrap().1);
    }

    #[test]
    fn cnpj_check_digit_rules() {
        assert!(cnpj_check_digits_valid("11222333000181"));
        assert!(!cnpj_check_digits_valid("00000000000000"));
        assert!(!cnpj_check_digits_valid("AAAAAAAAAAAAAA"));
        // Check digits are digits; lower case is not the stored form.
        assert!(!cnpj_check_digits_valid("12ABC34501DE3A"));
        assert!(!cnpj_check_digits_valid("12abc34501de35"));
        assert!(!cnpj_check_digits_valid("12ABC34501DE3"));
        // A value change of 22 (3 → I) is a multiple of 11 and goes unseen:
        // the alphanumeric check digits cannot catch every substitution.
        assert!(cnpj_check_digits_valid("12ABCI4501DE35"));
    }

    #[test]
    fn cnpj_shapes() {
        assert_eq!(
            cnpj(Cell::Text("ab.cde.fgh/ijkl-mn")).unwrap(),
            ("ABCDEFGHIJKLMN".into(), false)
        );
        assert_eq!(
            cnpj(Cell::Text("A2.ABC.345/01DE-35")).unwrap().0,
            "A2ABC34501DE35"
        );
        assert_eq!(cnpj(Cell::Text("/12.ABC.345/01DE-35")), None);
        assert_eq!(cnpj(Cell::Text("12.ABC.345/01DE-3")), None);
        assert_eq!(cnpj(Cell::Text("12.ABC.345/01DE-355")), None);
        assert_eq!(cnpj(Cell::Text("12.ÁBC.345/01DE-35")), None);
        assert_eq!(cnpj(Cell::Text("12_ABC_345_01DE_35")), None);
        assert_eq!(
            cnpj(Cell::Number(79379491000850.0)),
            Some(("79379491000850".into(), true))
        );
        assert_eq!(
            cnpj(Cell::Number(11222333000181.0)).unwrap().0,
            "11222333000181"
        );
        assert_eq!(cnpj(Cell::Number(1.0)).unwrap().0, "00000000000001");
        assert_eq!(cnpj(Cell::Number(123456789012345.0)), None);
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    /// An independent statement of the CPF rule, as usually published:
    /// (sum × 10) mod 11, with 10 meaning 0.
    fn reference_cpf_digits(body: &[u32]) -> (u32, u32) {
        let dv = |digits: &[u32]| {
            let n = digits.len() as u32 + 1;
            let sum: u32 = digits
                .iter()
                .enumerate()
                .map(|(i, d)| d * (n - i as u32))
                .sum();
            (sum * 10 % 11) % 10
        };
        let d1 = dv(body);
        let mut ten = body.to_vec();
        ten.push(d1);
        (d1, dv(&ten))
    }

    fn cpf_text(digits: &[u32]) -> String {
        digits.iter().map(|d| char::from(b'0' + *d as u8)).collect()
    }

    fn reference_cpf_valid(digits: &[u32]) -> bool {
        let (d1, d2) = reference_cpf_digits(&digits[..9]);
        digits[9] == d1 && digits[10] == d2 && digits.iter().any(|d| *d != digits[0])
    }

    /// The CNPJ rule written out with the published weight tables.
    fn reference_cnpj_digits(body: &[u8]) -> (u8, u8) {
        const W1: [u32; 12] = [5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2];
        const W2: [u32; 13] = [6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2];
        let dv = |chars: &[u8], weights: &[u32]| {
            let sum: u32 = chars
                .iter()
                .zip(weights)
                .map(|(c, w)| (u32::from(*c) - 48) * w)
                .sum();
            let r = sum % 11;
            if r < 2 { b'0' } else { b'0' + (11 - r) as u8 }
        };
        let d1 = dv(body, &W1);
        let mut thirteen = body.to_vec();
        thirteen.push(d1);
        (d1, dv(&thirteen, &W2))
    }

    fn reference_cnpj_valid(chars: &[u8]) -> bool {
        let (d1, d2) = reference_cnpj_digits(&chars[..12]);
        chars[12] == d1 && chars[13] == d2 && chars.iter().any(|c| *c != chars[0])
    }

    const ALNUM: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";

    fn alnum() -> impl Strategy<Value = u8> {
        proptest::sample::select(ALNUM)
    }

    proptest! {
        #[test]
        fn cpf_with_computed_check_digits_validates(
            body in proptest::collection::vec(0u32..10, 9),
            position in 0usize..11,
            replacement in 0u32..10,
        ) {
            let (d1, d2) = reference_cpf_digits(&body);
            let mut digits = body.clone();
            digits.extend([d1, d2]);
            let all_equal = digits.iter().all(|d| *d == digits[0]);
            prop_assert_eq!(cpf_check_digits_valid(&cpf_text(&digits)), !all_equal);

            prop_assume!(digits[position] != replacement);
            digits[position] = replacement;
            let verdict = cpf_check_digits_valid(&cpf_text(&digits));
            prop_assert_eq!(verdict, reference_cpf_valid(&digits));
            // Changing a check digit always shows; changing a body digit shows
            // unless the new body happens to have the same check digits (the
            // remainders 0 and 1 both give 0).
            if position >= 9 {
                prop_assert!(!verdict);
            } else if verdict {
                prop_assert_eq!(reference_cpf_digits(&digits[..9]), (d1, d2));
            }
        }

        #[test]
        fn alphanumeric_cnpj_with_computed_check_digits_validates(
            body in proptest::collection::vec(alnum(), 12),
            position in 0usize..14,
            replacement in alnum(),
        ) {
            let (d1, d2) = reference_cnpj_digits(&body);
            let mut chars = body.clone();
            chars.extend([d1, d2]);
            let all_equal = chars.iter().all(|c| *c == chars[0]);
            let text = String::from_utf8(chars.clone()).unwrap();
            prop_assert_eq!(cnpj_check_digits_valid(&text), !all_equal);
            // Through the parser, masked and in lower case.
            let masked = format!(
                "{}.{}.{}/{}-{}",
                &text[..2], &text[2..5], &text[5..8], &text[8..12], &text[12..]
            )
            .to_lowercase();
            prop_assert_eq!(
                parse_document(&Cell::Text(&masked), 14, true),
                Ok((text.clone(), !all_equal))
            );

            prop_assume!(chars[position] != replacement);
            chars[position] = replacement;
            let verdict = cnpj_check_digits_valid(&String::from_utf8(chars.clone()).unwrap());
            prop_assert_eq!(verdict, reference_cnpj_valid(&chars));
            if position >= 12 {
                prop_assert!(!verdict);
            } else if verdict {
                prop_assert_eq!(reference_cnpj_digits(&chars[..12]), (d1, d2));
            }
        }
    }
}
