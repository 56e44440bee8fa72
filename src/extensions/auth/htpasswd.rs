//! htpasswd tables: `user:hash` lines as Apache's `htpasswd` writes them.
//!
//! Accepted hashes: bcrypt (`$2y$`, `$2b$`, `$2a$`; `htpasswd -B`), SHA-1
//! (`{SHA}`; `htpasswd -s`) and salted SHA-1 (`{SSHA}`). Anything else (MD5
//! `$apr1$`, crypt, plain text) is refused when the table is read, naming the
//! line, rather than never matching at request time.

use ring::digest;
use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Hash {
    Bcrypt(String),
    Sha1(Vec<u8>),
    SaltedSha1 { digest: Vec<u8>, salt: Vec<u8> },
}

/// Users and their password hashes.
#[derive(Debug, Clone, Default)]
pub struct Htpasswd {
    users: HashMap<String, Hash>,
    /// A bcrypt hash as costly as the table's costliest, checked for a user
    /// the table does not know, so that the time of a refusal does not tell
    /// whether the user exists. Set by [`Htpasswd::with_decoy`].
    decoy: Option<String>,
}

impl Htpasswd {
    /// Parses a table; `source` names it in errors (a path or "inline").
    /// Later lines for the same user replace earlier ones.
    pub fn parse(text: &str, source: &str) -> Result<Htpasswd, String> {
        let mut users = HashMap::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let n = i + 1;
            let Some((user, hash)) = line.split_once(':') else {
                return Err(format!("{source} line {n}: expected user:hash"));
            };
            if user.is_empty() {
                return Err(format!("{source} line {n}: the user name is empty"));
            }
            users.insert(user.to_string(), parse_hash(hash).map_err(|e| format!("{source} line {n} ({user}): {e}"))?);
        }
        Ok(Htpasswd { users, decoy: None })
    }

    /// Makes a check for an unknown user cost what one for a known user
    /// costs: a bcrypt verification at the table's highest cost (none for a
    /// table without bcrypt entries: its checks take microseconds).
    pub fn with_decoy(mut self) -> Htpasswd {
        let cost = self
            .users
            .values()
            .filter_map(|h| match h {
                Hash::Bcrypt(s) => s.get(4..6)?.parse::<u32>().ok(),
                _ => None,
            })
            .max();
        self.decoy = cost.and_then(|c| bcrypt::hash("sluice-decoy", c).ok());
        self
    }

    /// Adds the users of `other`, replacing those already present.
    pub fn extend(&mut self, other: Htpasswd) {
        self.users.extend(other.users);
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// Whether checking `user`'s password is slow (bcrypt, for a known user
    /// or, with a decoy, an unknown one): then it belongs off the async workers.
    pub fn is_slow(&self, user: &str) -> bool {
        match self.users.get(user) {
            Some(Hash::Bcrypt(_)) => true,
            Some(_) => false,
            None => self.decoy.is_some(),
        }
    }

    /// Whether `password` is the password of `user`.
    pub fn verify(&self, user: &str, password: &str) -> bool {
        match self.users.get(user) {
            None => {
                if let Some(decoy) = &self.decoy {
                    let _ = std::hint::black_box(bcrypt::verify(password, decoy));
                }
                false
            }
            Some(Hash::Bcrypt(h)) => bcrypt::verify(password, h).unwrap_or(false),
            Some(Hash::Sha1(want)) => {
                let got = digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, password.as_bytes());
                super::constant_time_eq(got.as_ref(), want)
            }
            Some(Hash::SaltedSha1 { digest: want, salt }) => {
                let mut ctx = digest::Context::new(&digest::SHA1_FOR_LEGACY_USE_ONLY);
                ctx.update(password.as_bytes());
                ctx.update(salt);
                super::constant_time_eq(ctx.finish().as_ref(), want)
            }
        }
    }
}

fn parse_hash(hash: &str) -> Result<Hash, String> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    if hash.starts_with("$2y$") || hash.starts_with("$2b$") || hash.starts_with("$2a$") {
        // Checked now so a damaged entry fails at start, not on every login.
        bcrypt::verify("", hash).map_err(|e| format!("invalid bcrypt hash: {e}"))?;
        return Ok(Hash::Bcrypt(hash.to_string()));
    }
    if let Some(rest) = hash.strip_prefix("{SHA}") {
        let d = b64.decode(rest).map_err(|e| format!("invalid {{SHA}} hash: {e}"))?;
        if d.len() != 20 {
            return Err(format!("invalid {{SHA}} hash: {} bytes, expected 20", d.len()));
        }
        return Ok(Hash::Sha1(d));
    }
    if let Some(rest) = hash.strip_prefix("{SSHA}") {
        let d = b64.decode(rest).map_err(|e| format!("invalid {{SSHA}} hash: {e}"))?;
        if d.len() <= 20 {
            return Err("invalid {SSHA} hash: no salt after the 20-byte digest".to_string());
        }
        let (digest, salt) = d.split_at(20);
        return Ok(Hash::SaltedSha1 { digest: digest.to_vec(), salt: salt.to_vec() });
    }
    let kind = if hash.starts_with("$apr1$") || hash.starts_with("$1$") {
        "MD5 ($apr1$) hashes are not supported"
    } else if hash.starts_with('$') {
        "this crypt hash scheme is not supported"
    } else {
        "plain-text or crypt(3) entries are not supported"
    };
    Err(format!("{kind}; write the entry with `htpasswd -B` (bcrypt) or `htpasswd -s` ({{SHA}})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    // `htpasswd -nbs alice secret`, `htpasswd -nbB bob hunter2` (cost 4 to keep the test fast).
    const SHA_ALICE: &str = "alice:{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=";

    fn bcrypt_line(user: &str, password: &str, prefix: &str) -> String {
        let h = bcrypt::hash(password, 4).unwrap();
        format!("{user}:{prefix}{}", &h[3..])
    }

    #[test]
    fn sha_and_bcrypt_entries_verify() {
        let text = format!(
            "# users\n{SHA_ALICE}\n\n{}\n{}\n",
            bcrypt_line("bob", "hunter2", "$2y"),
            bcrypt_line("carol", "pw", "$2b")
        );
        let t = Htpasswd::parse(&text, "inline").unwrap();
        assert!(t.verify("alice", "secret"));
        assert!(!t.verify("alice", "Secret"));
        assert!(t.verify("bob", "hunter2"));
        assert!(!t.verify("bob", "hunter3"));
        assert!(t.verify("carol", "pw"));
        assert!(!t.verify("dave", "secret"));
        assert!(!t.verify("", ""));
    }

    #[test]
    fn salted_sha() {
        use base64::Engine as _;
        let salt = b"NaCl";
        let mut ctx = digest::Context::new(&digest::SHA1_FOR_LEGACY_USE_ONLY);
        ctx.update(b"pw");
        ctx.update(salt);
        let mut raw = ctx.finish().as_ref().to_vec();
        raw.extend_from_slice(salt);
        let line = format!("u:{{SSHA}}{}", base64::engine::general_purpose::STANDARD.encode(raw));
        let t = Htpasswd::parse(&line, "inline").unwrap();
        assert!(t.verify("u", "pw"));
        assert!(!t.verify("u", "pW"));
    }

    #[test]
    fn unsupported_or_broken_lines_name_the_line() {
        let cases = [
            ("alice:$apr1$abc$def", "f line 1 (alice): MD5 ($apr1$) hashes are not supported"),
            ("\nbob:plain", "f line 2 (bob): plain-text or crypt(3) entries are not supported"),
            ("nocolon", "f line 1: expected user:hash"),
            (":{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=", "f line 1: the user name is empty"),
            ("a:{SHA}AAAA", "f line 1 (a): invalid {SHA} hash: 3 bytes, expected 20"),
            ("a:$2y$04$short", "f line 1 (a): invalid bcrypt hash"),
        ];
        for (text, want) in cases {
            let e = Htpasswd::parse(text, "f").unwrap_err();
            assert!(e.starts_with(want), "{text}: {e}");
        }
    }
}
