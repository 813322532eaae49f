//! Enum labels and boolean words (docs/spec/datasets.md, "Column types",
//! `enum` and `boolean`): words a cell is matched against case- and
//! accent-insensitively, the word as declared being what is stored.

use super::{Cell, Reason, Refusal, listed, parse_flag};

/// The matching key of a label or word (docs/spec/datasets.md, "Column
/// types", `enum`): trimmed, runs of whitespace as one space, accents
/// dropped (NFD, then no combining marks), lower case. `Em Trânsito` and
/// `em  transito` have the same key.
pub fn label_key(s: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
    let spaced: Vec<&str> = s.split_whitespace().collect();
    spaced
        .join(" ")
        .nfd()
        .filter(|c| c.general_category() != GeneralCategory::NonspacingMark)
        .flat_map(char::to_lowercase)
        .collect()
}

/// An `enum` column's labels (docs/spec/datasets.md, "Column types"): as
/// declared (what is stored) and their keys (what cells are matched by).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Labels {
    declared: Vec<String>,
    keys: Vec<String>,
}

impl Labels {
    /// The labels of a declaration; the error says which label is empty or
    /// repeats another once case and accents are ignored.
    pub fn new(declared: &[String]) -> Result<Labels, String> {
        let mut keys: Vec<String> = Vec::with_capacity(declared.len());
        for label in declared {
            let key = label_key(label);
            if key.is_empty() {
                return Err("has an empty label".into());
            }
            if let Some(j) = keys.iter().position(|k| *k == key) {
                return Err(format!(
                    "labels `{}` and `{label}` are the same once case and accents are ignored",
                    declared[j]
                ));
            }
            if label.trim() != label {
                return Err(format!("label `{label}` has spaces around it"));
            }
            keys.push(key);
        }
        Ok(Labels {
            declared: declared.to_vec(),
            keys,
        })
    }

    /// The declared label whose key `text` has, if any.
    pub fn find(&self, text: &str) -> Option<&str> {
        let key = label_key(text);
        let at = self.keys.iter().position(|k| *k == key)?;
        self.declared.get(at).map(String::as_str)
    }

    /// The labels as declared, in order.
    pub fn declared(&self) -> &[String] {
        &self.declared
    }

    /// No labels: not an enum column (docs/spec/datasets.md, "Column types").
    pub fn is_empty(&self) -> bool {
        self.declared.is_empty()
    }
}

/// An `enum` cell (docs/spec/datasets.md, "Column types"): one of `labels`
/// matched by [`label_key`], stored as declared; anything else is
/// `not_in_list`, the labels in the refusal. A numeric cell is matched by
/// its text.
pub fn parse_label(cell: &Cell<'_>, labels: &Labels) -> Result<String, Refusal> {
    labels
        .find(&cell.display_text())
        .map(str::to_owned)
        .ok_or_else(|| Refusal::new(Reason::NotInList, listed(labels.declared())))
}

/// A dataset's boolean words (docs/spec/datasets.md, "Column types",
/// `boolean`: `true_words = ["sim", "s"]`, `false_words = ["não", "nao",
/// "n"]`), matched by [`label_key`] after the flag rule. Spellings with the
/// same key (`não`, `nao`) may both be listed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlagWords {
    declared: Vec<String>,
    true_keys: Vec<String>,
    false_keys: Vec<String>,
}

impl FlagWords {
    /// The words of a declaration; the error says which word is empty,
    /// `NULL`, on both lists, or a flag of the other meaning (`0` as a true
    /// word).
    pub fn new(true_words: &[String], false_words: &[String]) -> Result<FlagWords, String> {
        let keys = |words: &[String], list: &str| -> Result<Vec<String>, String> {
            words
                .iter()
                .map(|word| {
                    let key = label_key(word);
                    if key.is_empty() {
                        Err(format!("{list} has an empty word"))
                    } else if key == "null" {
                        Err("`NULL` is SQL NULL, not a boolean word".into())
                    } else {
                        Ok(key)
                    }
                })
                .collect()
        };
        let true_keys = keys(true_words, "true_words")?;
        let false_keys = keys(false_words, "false_words")?;
        for (words, meaning, others) in [
            (true_words, true, &false_keys),
            (false_words, false, &true_keys),
        ] {
            for word in words {
                let flag_clash = parse_flag(&Cell::Text(word)).is_ok_and(|flag| flag != meaning);
                if flag_clash || others.contains(&label_key(word)) {
                    return Err(format!("word `{word}` means both true and false"));
                }
            }
        }
        let declared = true_words.iter().chain(false_words).cloned().collect();
        Ok(FlagWords {
            declared,
            true_keys,
            false_keys,
        })
    }

    /// No words declared: the flag rule alone (docs/spec/user_purchase.md,
    /// "Cell rules").
    pub fn is_empty(&self) -> bool {
        self.declared.is_empty()
    }

    /// Every accepted spelling, for messages: the flag rule's, then the words.
    fn expected(&self) -> String {
        let mut all: Vec<String> = ["0", "1", "true", "false"].map(String::from).to_vec();
        all.extend(self.declared.iter().cloned());
        listed(&all)
    }

    /// What `text` means, if it is one of the words.
    fn find(&self, text: &str) -> Option<bool> {
        let key = label_key(text);
        if self.true_keys.contains(&key) {
            Some(true)
        } else if self.false_keys.contains(&key) {
            Some(false)
        } else {
            None
        }
    }
}

/// A `boolean` cell (docs/spec/datasets.md, "Column types"): the flag rule
/// ([`parse_flag`]: the user_purchase one, unchanged), then text matching one
/// of the dataset's `words`. Anything else is `invalid_flag`; when words are
/// declared the refusal lists every accepted spelling.
pub fn parse_boolean(cell: &Cell<'_>, words: &FlagWords) -> Result<bool, Refusal> {
    match parse_flag(cell) {
        Ok(flag) => Ok(flag),
        Err(reason) if words.is_empty() => Err(reason.into()),
        Err(reason) => {
            let text = match *cell {
                Cell::Text(s) | Cell::Error(s) => s,
                _ => return Err(Refusal::new(reason, words.expected())),
            };
            words
                .find(text)
                .ok_or_else(|| Refusal::new(reason, words.expected()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn keys_ignore_case_accents_and_spacing() {
        assert_eq!(label_key(" Em  Trânsito "), "em transito");
        assert_eq!(label_key("NÃO"), "nao");
        assert_eq!(label_key("Ça\tva"), "ca va");
        assert_eq!(label_key("paid"), label_key("PAID"));
        assert_ne!(label_key("paid"), label_key("pai d"));
    }

    #[test]
    fn labels_match_and_store_as_declared() {
        let labels = Labels::new(&strings(&["pending", "Em Trânsito", "PAID"])).unwrap();
        let label = |text: &str| parse_label(&Cell::Text(text), &labels);
        assert_eq!(label("pending").as_deref(), Ok("pending"));
        assert_eq!(label(" PENDING ").as_deref(), Ok("pending"));
        assert_eq!(label("em transito").as_deref(), Ok("Em Trânsito"));
        assert_eq!(label("EM  TRÂNSITO").as_deref(), Ok("Em Trânsito"));
        assert_eq!(label("paid").as_deref(), Ok("PAID"));
        let refused = Refusal::new(Reason::NotInList, "pending, Em Trânsito or PAID");
        for text in ["", "pend", "paid!", "em-transito", "0"] {
            assert_eq!(label(text), Err(refused.clone()), "{text}");
        }
        let numbered = Labels::new(&strings(&["1", "2"])).unwrap();
        assert_eq!(
            parse_label(&Cell::Number(2.0), &numbered).as_deref(),
            Ok("2")
        );
    }

    #[test]
    fn labels_must_differ_once_case_and_accents_are_ignored() {
        assert_eq!(
            Labels::new(&strings(&["Não", "nao"])),
            Err("labels `Não` and `nao` are the same once case and accents are ignored".into())
        );
        assert_eq!(
            Labels::new(&strings(&["a", " "])),
            Err("has an empty label".into())
        );
        assert_eq!(
            Labels::new(&strings(&[" a"])),
            Err("label ` a` has spaces around it".into())
        );
    }

    #[test]
    fn boolean_words_extend_the_flag_rule() {
        let words = FlagWords::new(&strings(&["sim", "s"]), &strings(&["não", "n"])).unwrap();
        let b = |cell| parse_boolean(&cell, &words);
        assert_eq!(b(Cell::Text("SIM")), Ok(true));
        assert_eq!(b(Cell::Text(" s ")), Ok(true));
        assert_eq!(b(Cell::Text("Nao")), Ok(false));
        assert_eq!(b(Cell::Text("NÃO")), Ok(false));
        assert_eq!(b(Cell::Text("1")), Ok(true));
        assert_eq!(b(Cell::Bool(false)), Ok(false));
        let refused = Refusal::new(Reason::InvalidFlag, "0, 1, true, false, sim, s, não or n");
        assert_eq!(b(Cell::Text("talvez")), Err(refused.clone()));
        assert_eq!(b(Cell::Number(2.0)), Err(refused));
        // No words: the flag rule alone, its refusal unchanged.
        let none = FlagWords::default();
        assert_eq!(
            parse_boolean(&Cell::Text("sim"), &none),
            Err(Reason::InvalidFlag.into())
        );
    }

    #[test]
    fn boolean_words_cannot_mean_both() {
        let err = |t: &[&str], f: &[&str]| FlagWords::new(&strings(t), &strings(f)).unwrap_err();
        assert_eq!(err(&["s"], &["S"]), "word `s` means both true and false");
        assert_eq!(err(&["0"], &[]), "word `0` means both true and false");
        assert_eq!(err(&[], &["TRUE"]), "word `TRUE` means both true and false");
        assert_eq!(
            err(&["null"], &[]),
            "`NULL` is SQL NULL, not a boolean word"
        );
        assert_eq!(err(&[" "], &[]), "true_words has an empty word");
        assert_eq!(err(&["s"], &["Ś"]), "word `s` means both true and false");
        assert!(FlagWords::new(&strings(&["1", "true", "sim", "SIM"]), &[]).is_ok());
        assert!(FlagWords::new(&strings(&["sim"]), &strings(&["não", "nao"])).is_ok());
    }
}
