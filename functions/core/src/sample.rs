//! Deterministic, realistic `user_purchase` rows for tests and benchmarks,
//! written in Postgres COPY text format so millions load in seconds.
//!
//! Like the original customer file: most CPFs have valid check digits and
//! some don't; about one customer in seven has never bought (date, tickets and
//! stores NULL); stores repeat from a pool that includes invalid and
//! alphanumeric CNPJs. The same `(rows, seed)` always gives the same data.

use crate::cells::{cnpj_check_digits, cpf_check_digits};

/// SplitMix64: tiny, fast and good enough for fixture data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

struct Store {
    cnpj: String,
    valid: bool,
}

/// Generates rows `0..rows` of `user_purchase`, in `Dataset::stored_columns` order.
pub struct UserPurchaseSample {
    rng: Rng,
    seed: u64,
    stores: Vec<Store>,
}

const ALNUM: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";

impl UserPurchaseSample {
    pub fn new(seed: u64) -> Self {
        let mut rng = Rng(seed ^ 0x5EED);
        let stores = (0..250)
            .map(|i| {
                let mut base = [0u8; 12];
                for (j, b) in base.iter_mut().enumerate() {
                    *b = if i % 10 == 0 && j < 8 {
                        ALNUM[rng.below(36) as usize]
                    } else {
                        b'0' + rng.below(10) as u8
                    };
                }
                let mut cnpj: Vec<u8> = base.to_vec();
                cnpj.extend_from_slice(&cnpj_check_digits(&base));
                let valid = !rng.chance(4);
                if !valid {
                    cnpj[13] = b'0' + (cnpj[13] - b'0' + 1) % 10;
                }
                Store {
                    cnpj: String::from_utf8_lossy(&cnpj).into_owned(),
                    valid,
                }
            })
            .collect();
        UserPurchaseSample { rng, seed, stores }
    }

    /// Appends row `i` (a COPY text line with its newline) to `out`. Row
    /// `i`'s CPF is unique for `i < 10^9`.
    pub fn write_row(&mut self, i: u64, out: &mut String) {
        use std::fmt::Write;
        // 3^18 is coprime with 10^9, so this is a permutation of 0..10^9.
        let base = (i.wrapping_mul(387_420_489).wrapping_add(self.seed)) % 1_000_000_000;
        let mut cpf = [0u8; 11];
        let digits = format!("{base:09}");
        cpf[..9].copy_from_slice(digits.as_bytes());
        let mut base9 = [0u8; 9];
        base9.copy_from_slice(&cpf[..9]);
        let dv = cpf_check_digits(&base9);
        cpf[9..].copy_from_slice(&dv);
        let all_equal = cpf.windows(2).all(|w| w[0] == w[1]);
        let mut cpf_valid = !all_equal;
        if self.rng.chance(8) {
            cpf[10] = b'0' + (cpf[10] - b'0' + 1) % 10;
            cpf_valid = false;
        }
        let r = &mut self.rng;
        let private = r.chance(5);
        let incompleto = r.chance(12);
        out.push_str(std::str::from_utf8(&cpf).unwrap_or("00000000000"));
        let _ = write!(
            out,
            "\t{}\t{}",
            if private { 't' } else { 'f' },
            if incompleto { 't' } else { 'f' }
        );
        if r.chance(14) {
            // Never bought: everything NULL, as in the original file.
            out.push_str("\t\\N\t\\N\t\\N\t\\N\t\\N");
            let _ = writeln!(out, "\t{}\t\\N\t\\N", if cpf_valid { 't' } else { 'f' });
            return;
        }
        let day = r.below(4018); // 2010-01-01 + up to 11 years
        let date = chrono::NaiveDate::from_ymd_opt(2010, 1, 1)
            .and_then(|d| d.checked_add_days(chrono::Days::new(day)))
            .unwrap_or_default();
        let average = 1_000 + r.below(60_000) + r.below(4) * r.below(400_000);
        let last = if r.chance(30) {
            average
        } else {
            500 + r.below(90_000)
        };
        let frequent = r.below(self.stores.len() as u64) as usize;
        let latest = if r.chance(60) {
            frequent
        } else {
            r.below(self.stores.len() as u64) as usize
        };
        let (f, l) = (&self.stores[frequent], &self.stores[latest]);
        let _ = writeln!(
            out,
            "\t{date}\t{}.{:02}\t{}.{:02}\t{}\t{}\t{}\t{}\t{}",
            average / 100,
            average % 100,
            last / 100,
            last % 100,
            f.cnpj,
            l.cnpj,
            if cpf_valid { 't' } else { 'f' },
            if f.valid { 't' } else { 'f' },
            if l.valid { 't' } else { 'f' },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cells::{cnpj_check_digits_valid, cpf_check_digits_valid};
    use crate::export::split_copy_line;

    #[test]
    fn rows_are_deterministic_unique_and_consistent() {
        let mut a = UserPurchaseSample::new(7);
        let mut b = UserPurchaseSample::new(7);
        let (mut ta, mut tb) = (String::new(), String::new());
        for i in 0..5_000 {
            a.write_row(i, &mut ta);
            b.write_row(i, &mut tb);
        }
        assert_eq!(ta, tb);
        let mut cpfs = std::collections::HashSet::new();
        let (mut invalid_cpf, mut nulls, mut invalid_cnpj) = (0, 0, 0);
        let mut fields = Vec::new();
        for line in ta.lines() {
            split_copy_line(line, &mut fields);
            assert_eq!(fields.len(), 11, "{line}");
            let cpf = fields[0].as_deref().unwrap();
            assert!(cpfs.insert(cpf.to_string()), "duplicate {cpf}");
            let valid = fields[8].as_deref() == Some("t");
            assert_eq!(valid, cpf_check_digits_valid(cpf), "{line}");
            invalid_cpf += usize::from(!valid);
            match fields[6].as_deref() {
                None => {
                    nulls += 1;
                    assert_eq!(fields[9], None);
                }
                Some(cnpj) => {
                    let valid = fields[9].as_deref() == Some("t");
                    assert_eq!(valid, cnpj_check_digits_valid(cnpj), "{line}");
                    invalid_cnpj += usize::from(!valid);
                }
            }
        }
        assert!((200..700).contains(&invalid_cpf), "{invalid_cpf}");
        assert!((400..1100).contains(&nulls), "{nulls}");
        assert!(invalid_cnpj > 0);
    }
}
