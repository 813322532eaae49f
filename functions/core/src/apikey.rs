//! API keys: shown once, stored only as a SHA-256 hash. Keys carry 256 bits
//! from the OS random source, so a fast hash is enough (no password stretching
//! needed) and lookups by hash stay a single index probe.

use sha2::{Digest, Sha256};

const PREFIX: &str = "xlp_";

/// A freshly generated key: `plaintext` goes to the user once, `hash` to the store.
pub struct NewApiKey {
    pub plaintext: String,
    pub hash: String,
    /// First characters of the key, kept to help people tell keys apart.
    pub display_prefix: String,
}

#[derive(Debug, thiserror::Error)]
#[error("the operating system's random source failed: {0}")]
pub struct RandomError(String);

pub fn generate() -> Result<NewApiKey, RandomError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| RandomError(e.to_string()))?;
    let plaintext = format!("{PREFIX}{}", hex::encode(bytes));
    Ok(NewApiKey {
        hash: hash(&plaintext),
        display_prefix: plaintext[..PREFIX.len() + 6].to_string(),
        plaintext,
    })
}

pub fn hash(plaintext: &str) -> String {
    hex::encode(Sha256::digest(plaintext.as_bytes()))
}

/// The token of an `Authorization: Bearer <token>` header value, if well formed.
pub fn bearer_token(header_value: &str) -> Option<&str> {
    let (scheme, token) = header_value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() && !token.contains(' '))
        .then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_hash_to_their_stored_hash_and_differ() {
        let a = generate().unwrap();
        let b = generate().unwrap();
        assert_ne!(a.plaintext, b.plaintext);
        assert_eq!(hash(&a.plaintext), a.hash);
        assert!(a.plaintext.starts_with("xlp_"));
        assert_eq!(a.plaintext.len(), 4 + 64);
        assert!(a.plaintext.starts_with(&a.display_prefix));
    }

    #[test]
    fn parses_bearer_headers() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer"), None);
        assert_eq!(bearer_token("Bearer a b"), None);
    }
}
