//! What makes a password acceptable, for staff and shoppers alike: a length,
//! not one of the passwords every attacker tries first, and hard to guess
//! by the `zxcvbn` estimate (score 3 of 4 or better, knowing the account's
//! own email and name).

use crate::Invalid;
use zxcvbn::Score;

/// The bounds of one kind of account's passwords.
#[derive(Debug, Clone, Copy)]
pub struct PasswordRule {
    pub min_chars: usize,
    pub max_chars: usize,
}

impl PasswordRule {
    pub const STAFF: PasswordRule = PasswordRule { min_chars: 12, max_chars: 1024 };
    pub const CUSTOMER: PasswordRule = PasswordRule { min_chars: 10, max_chars: 256 };

    /// Refuses `password` for the account described by `context` (its email,
    /// names: words an attacker would try), naming `field`.
    pub fn check(&self, field: &str, password: &str, context: &[&str]) -> Result<(), Invalid> {
        let n = password.chars().count();
        if n < self.min_chars {
            return Err(Invalid::new(field, "password_too_short", format!("must be at least {} characters", self.min_chars)));
        }
        if n > self.max_chars {
            return Err(Invalid::new(field, "too_long", format!("must be at most {} characters", self.max_chars)));
        }
        if is_common(password) {
            return Err(Invalid::new(
                field,
                "password_too_common",
                "is one of the most common passwords; choose a phrase of several unrelated words",
            ));
        }
        // The estimate's cost grows with length; the start of a very long
        // password is what it would be guessed by.
        let head: String = password.chars().take(ESTIMATE_CHARS).collect();
        let inputs = context_words(context);
        let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        let estimate = zxcvbn::zxcvbn(&head, &inputs);
        if estimate.score() < Score::Three {
            let why = estimate.feedback().and_then(|f| f.warning()).map(|w| format!(" ({w})")).unwrap_or_default();
            return Err(Invalid::new(
                field,
                "password_too_weak",
                format!("is too easy to guess{why}; choose a longer phrase of several unrelated words"),
            ));
        }
        Ok(())
    }
}

const ESTIMATE_CHARS: usize = 100;

/// The account's own words: the email, its local part and domain pieces,
/// and the names, as given.
fn context_words(context: &[&str]) -> Vec<String> {
    let mut words = Vec::new();
    for c in context.iter().map(|c| c.trim().to_lowercase()).filter(|c| !c.is_empty()) {
        if let Some((local, domain)) = c.split_once('@') {
            words.push(local.to_owned());
            words.extend(local.split(['.', '_', '-', '+']).filter(|w| w.len() > 2).map(str::to_owned));
            words.extend(domain.split('.').filter(|w| w.len() > 2).map(str::to_owned));
        }
        words.extend(c.split_whitespace().filter(|w| w.len() > 2).map(str::to_owned));
        words.push(c);
    }
    words.extend(["keel", "admin", "shop", "store"].map(str::to_owned));
    words
}

/// Passwords long enough to pass the length rule that still head every
/// list of breached passwords, compared case-insensitively and ignoring
/// spaces.
const COMMON: &str = include_str!("passwords/common.txt");

fn is_common(password: &str) -> bool {
    let p: String = password.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_lowercase();
    COMMON.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).any(|l| l == p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(rule: PasswordRule, p: &str, context: &[&str]) -> Option<&'static str> {
        rule.check("password", p, context).err().map(|e| e.code)
    }

    #[test]
    fn length_bounds_come_first() {
        assert_eq!(code(PasswordRule::STAFF, "short", &[]), Some("password_too_short"));
        assert_eq!(code(PasswordRule::CUSTOMER, &"x".repeat(257), &[]), Some("too_long"));
        assert_eq!(code(PasswordRule::STAFF, "eleven char", &[]), Some("password_too_short"));
    }

    #[test]
    fn the_common_list_is_refused_whatever_the_case_or_spaces() {
        for p in ["password1234", "Password1234", "QWERTYUIOP12", "1q2w3e4r5t6y", "iloveyou123", "1234567890"] {
            assert_eq!(code(PasswordRule::CUSTOMER, p, &[]), Some("password_too_common"), "{p}");
        }
        assert_eq!(code(PasswordRule::CUSTOMER, "pass word 1234", &[]), Some("password_too_common"));
        let listed = COMMON.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('#')).count();
        assert!(listed >= 200, "{listed} common passwords listed");
        for l in COMMON.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('#')) {
            assert!(l.chars().count() >= PasswordRule::CUSTOMER.min_chars, "{l}: shorter ones fail the length rule anyway");
            assert_eq!(l, l.to_lowercase().trim(), "listed in the form compared");
        }
    }

    #[test]
    fn guessable_passwords_are_refused_with_a_reason() {
        for p in ["aaaaaaaaaaaaaaaa", "abcdefghijklmnop", "qwertyuiopasdf", "password12345678", "1111111111111"] {
            let err = PasswordRule::STAFF.check("password", p, &[]).unwrap_err();
            assert!(matches!(err.code, "password_too_weak" | "password_too_common"), "{p}: {}", err.code);
            assert!(err.message.contains("guess") || err.message.contains("common"), "{}", err.message);
        }
    }

    #[test]
    fn the_accounts_own_words_make_a_password_weak() {
        let p = "ada.lovelace1815";
        let context = ["ada.lovelace@example.com", "Ada", "Lovelace"];
        assert_eq!(code(PasswordRule::CUSTOMER, p, &context), Some("password_too_weak"));
    }

    #[test]
    fn strong_passwords_and_passphrases_pass() {
        for p in ["correct horse battery staple", "tangerine-velvet-orbit-91", "Xq7#mP2v!Lr9wZ4k", "owner password 1 for keel tests"] {
            assert_eq!(code(PasswordRule::STAFF, p, &["owner@example.com"]), None, "{p}");
        }
    }
}
