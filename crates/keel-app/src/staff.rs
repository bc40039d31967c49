//! Staff users: argon2id passwords, TOTP two-factor (RFC 6238) with one-use
//! recovery codes, database sessions, and sign-in throttling.
//!
//! Sessions mirror the storefront's: the cookie carries a random 256-bit
//! token and the database only its SHA-256. A session ends after
//! [`SESSION_IDLE_MICROS`] without activity or [`SESSION_ABSOLUTE_MICROS`]
//! after sign-in, whichever is first, and every sign-in (and the second
//! factor after it) issues a new token. A password-only session of a user
//! with two-factor grants nothing until the code is given, and lives at most
//! [`PENDING_MICROS`].
//!
//! Every function that depends on the clock takes `now` (µs), so lockouts and
//! timeouts are tested without sleeping.

use crate::customers::{dummy_hash, email as check_email, hash_password, normalise_email, verify_password};
use crate::apikeys::hash_secret;
use crate::{in_tx, App, AppError, Result};
use base64::Engine;
use keel_domain::access::Role;
use keel_domain::ids::StaffUserId;
use keel_domain::passwords::PasswordRule;
use keel_store::staff::{self as db, StaffSessionRow, StaffUserRow};
use crate::security::SecurityEvent;
use crate::throttle::{address_key, Scope};
use rand::RngCore;
use totp_rs::{Algorithm, Builder, Totp};

pub mod accounts;

pub const SESSION_IDLE_MICROS: i64 = 30 * 60 * 1_000_000;
pub const SESSION_ABSOLUTE_MICROS: i64 = 12 * 3600 * 1_000_000;
/// How long a password-only session waits for its second factor.
pub const PENDING_MICROS: i64 = 5 * 60 * 1_000_000;
/// Activity is written at most this often.
const TOUCH_EVERY_MICROS: i64 = 60 * 1_000_000;
pub const MIN_PASSWORD: usize = PasswordRule::STAFF.min_chars;
const MAX_PASSWORD: usize = PasswordRule::STAFF.max_chars;
pub const RECOVERY_CODES: usize = 10;
const TOTP_STEP: u64 = 30;
const ISSUER: &str = "Keel";

/// Staff sign-in and account policy.
#[derive(Debug, Clone)]
pub struct StaffConfig {
    /// Owners and admins must enrol two-factor before they can use anything
    /// (default on).
    pub require_two_factor: bool,
    /// An active account unused for longer than this many days is stale
    /// (default 90, at least 1). See [`accounts`].
    pub stale_after_days: u32,
    /// The hourly stale-accounts job disables stale accounts (default on);
    /// off, they are only listed.
    pub disable_stale: bool,
}

impl Default for StaffConfig {
    fn default() -> Self {
        StaffConfig { require_two_factor: true, stale_after_days: accounts::DEFAULT_STALE_DAYS, disable_stale: true }
    }
}

/// A staff user as the rest of the system sees one (no secrets).
#[derive(Debug, Clone)]
pub struct StaffUser {
    pub id: String,
    pub email: String,
    pub role: Role,
    pub two_factor_enabled: bool,
    pub last_login_at: Option<i64>,
}

impl StaffUser {
    pub fn actor(&self) -> crate::Actor {
        crate::Actor(format!("staff:{}", self.id))
    }
}

pub(crate) fn user_view(r: &StaffUserRow) -> Result<StaffUser> {
    let role = Role::parse("role", &r.role).map_err(|_| keel_store::StoreError::corrupt("a staff user has an unknown role"))?;
    Ok(StaffUser { id: r.id.clone(), email: r.email.clone(), role, two_factor_enabled: r.totp_enabled_at.is_some(), last_login_at: r.last_login_at })
}

/// A user just created; `generated_password` is set when none was given and
/// is shown once.
pub struct CreatedStaffUser {
    pub user: StaffUser,
    pub generated_password: Option<String>,
}

/// What a live session may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    /// Signed in with every factor the user has.
    SignedIn,
    /// Password given; the TOTP or a recovery code is still due.
    SecondFactorDue,
    /// Signed in, but the role requires two-factor and none is enrolled:
    /// only enrolment is open.
    EnrolmentDue,
}

/// A live staff session. `Debug` leaves out the CSRF secret.
#[derive(Clone)]
pub struct StaffSession {
    /// Hex SHA-256 of the cookie token.
    pub id: String,
    pub user: StaffUser,
    pub csrf_secret: String,
    pub state: SessionState,
    pub expires_at: i64,
}

impl std::fmt::Debug for StaffSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaffSession").field("user", &self.user).field("state", &self.state).finish_non_exhaustive()
    }
}

/// A session just issued, with the cookie token (shown once).
pub struct IssuedSession {
    pub token: String,
    pub session: StaffSession,
}

/// A TOTP secret waiting for its first code.
pub struct TotpEnrolment {
    /// Base32, for typing into an authenticator by hand.
    pub secret: String,
    pub otpauth_url: String,
    /// The URL as a QR code, an SVG document.
    pub qr_svg: String,
}

fn random_b64(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

/// A recovery code: 10 base32 characters (50 bits) as `xxxxx-xxxxx`.
fn recovery_code() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
    let mut buf = [0u8; 10];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    let s: String = buf.iter().map(|b| ALPHABET[(*b as usize) % ALPHABET.len()] as char).collect();
    format!("{}-{}", &s[..5], &s[5..])
}

fn normalise_code(code: &str) -> String {
    code.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_lowercase()).collect()
}

fn totp_for(secret: Vec<u8>, account: &str) -> Result<Totp> {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_step_duration(TOTP_STEP)
        .with_secret(secret)
        .with_issuer(Some(ISSUER))
        .with_account_name(account.replace(':', "_"))
        .build()
        .map_err(|e| AppError::Store(keel_store::StoreError::Io(format!("TOTP setup failed: {e}"))))
}

/// The time step (±1) at which `code` is valid, if any.
fn totp_step(totp: &Totp, code: &str, now_micros: i64) -> Option<i64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let step = (now_micros / 1_000_000) as u64 / TOTP_STEP;
    let mut found = None;
    for s in [step.saturating_sub(1), step, step + 1] {
        let expected = totp.generate(s * TOTP_STEP).to_string();
        // Compare all three without stopping early.
        let same = expected.len() == code.len() && expected.bytes().zip(code.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0;
        if same && found.is_none() {
            found = Some(s as i64);
        }
    }
    found
}

/// An SVG of a QR code, drawn as one path (dark modules) on white, with a
/// four-module quiet zone.
pub fn qr_svg(text: &str) -> Result<String> {
    use qrcodegen::{QrCode, QrCodeEcc};
    let qr = QrCode::encode_text(text, QrCodeEcc::Medium)
        .map_err(|_| AppError::Store(keel_store::StoreError::Io("the enrolment URL does not fit a QR code".into())))?;
    let border = 4;
    let size = qr.size() + 2 * border;
    let mut path = String::new();
    for y in 0..qr.size() {
        for x in 0..qr.size() {
            if qr.get_module(x, y) {
                path.push_str(&format!("M{},{}h1v1h-1z", x + border, y + border));
            }
        }
    }
    Ok(format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {size} {size}\" width=\"{px}\" height=\"{px}\" \
         role=\"img\" aria-label=\"QR code for the authenticator app\" shape-rendering=\"crispEdges\">\
         <rect width=\"100%\" height=\"100%\" fill=\"#fff\"/><path d=\"{path}\" fill=\"#000\"/></svg>",
        px = size * 6
    ))
}

impl App {
    /// Creates a staff user. Without a password one is generated (and
    /// returned once).
    pub async fn create_staff_user(&self, email: &str, role: Role, password: Option<&str>, now: i64) -> Result<CreatedStaffUser> {
        let (_, email) = check_email("email", email)?;
        let (password, generated) = match password {
            Some(p) => {
                PasswordRule::STAFF.check("password", p, &[email.as_str()])?;
                (p.to_owned(), None)
            }
            None => {
                let p = random_b64(15);
                (p.clone(), Some(p))
            }
        };
        let row = StaffUserRow {
            id: StaffUserId::generate().to_string(),
            email,
            password_hash: hash_password(password).await?,
            role: role.as_str().to_owned(),
            totp_secret: None,
            totp_enabled_at: None,
            totp_last_step: None,
            last_login_at: None,
            disabled_at: None,
            created_at: now,
            updated_at: now,
            reactivated_at: None,
        };
        in_tx!(self, |tx| {
            if db::user_by_email(&mut tx, &row.email).await?.is_some() {
                return Err(AppError::conflict("email_taken", "a staff user with this email exists", Some("email")));
            }
            db::insert_user(&mut tx, &row).await?;
            Ok(())
        })?;
        Ok(CreatedStaffUser { user: user_view(&row)?, generated_password: generated })
    }

    /// The demo owner: created, or given a fresh password; returns the password.
    pub async fn ensure_demo_owner(&self, email: &str) -> Result<String> {
        let password = random_b64(15);
        let now = keel_domain::time::now_micros();
        let mut conn = self.store.reader().await?;
        let existing = db::user_by_email(&mut conn, &normalise_email(email)).await?;
        drop(conn);
        match existing {
            Some(u) => {
                let hash = hash_password(password.clone()).await?;
                in_tx!(self, |tx| Ok(db::set_password(&mut tx, &u.id, &hash, now).await?))?;
            }
            None => {
                self.create_staff_user(email, Role::Owner, Some(&password), now).await?;
            }
        }
        Ok(password)
    }

    pub async fn staff_user(&self, id: &str) -> Result<Option<StaffUser>> {
        let mut conn = self.store.reader().await?;
        db::user_by_id(&mut conn, id).await?.as_ref().map(user_view).transpose()
    }

    /// Starts a new session for `user` (the old token, if any, is ended:
    /// rotation on every sign-in step).
    async fn issue_session(&self, user: &StaffUserRow, pending: bool, replaces: Option<&str>, now: i64) -> Result<IssuedSession> {
        let token = random_b64(32);
        let row = StaffSessionRow {
            id: hash_secret(&token),
            user_id: user.id.clone(),
            csrf_secret: random_b64(32),
            second_factor_at: (!pending && user.totp_enabled_at.is_some()).then_some(now),
            created_at: now,
            last_seen_at: now,
            idle_expires_at: now + if pending { PENDING_MICROS } else { SESSION_IDLE_MICROS },
            expires_at: now + if pending { PENDING_MICROS } else { SESSION_ABSOLUTE_MICROS },
        };
        let old = replaces.map(hash_secret);
        in_tx!(self, |tx| {
            if let Some(old) = &old {
                db::delete_session(&mut tx, old).await?;
            }
            db::insert_session(&mut tx, &row).await?;
            if !pending {
                db::record_login(&mut tx, &user.id, now).await?;
            }
            Ok(())
        })?;
        let session = self.session_view(&row, user)?;
        Ok(IssuedSession { token, session })
    }

    fn session_view(&self, s: &StaffSessionRow, u: &StaffUserRow) -> Result<StaffSession> {
        let user = user_view(u)?;
        let state = if u.totp_enabled_at.is_some() && s.second_factor_at.is_none() {
            SessionState::SecondFactorDue
        } else if u.totp_enabled_at.is_none() && self.staff.require_two_factor && user.role.requires_two_factor() {
            SessionState::EnrolmentDue
        } else {
            SessionState::SignedIn
        };
        Ok(StaffSession { id: s.id.clone(), user, csrf_secret: s.csrf_secret.clone(), state, expires_at: s.expires_at.min(s.idle_expires_at) })
    }

    /// Step one of sign-in: email and password. `previous` is the browser's
    /// current session token, which is ended. A user with two-factor gets a
    /// [`SessionState::SecondFactorDue`] session. `ip` is the client address
    /// (empty: unknown, only the account is counted). The attempt is counted
    /// before the password is checked (see [`crate::throttle`]). Errors: 429
    /// `TooManyAttempts` (nothing is checked while throttled, or while every
    /// password-check permit is taken) and `BadCredentials` (unknown email,
    /// wrong password, disabled — alike).
    pub async fn staff_sign_in(&self, email: &str, password: &str, ip: &str, previous: Option<&str>, now: i64) -> Result<IssuedSession> {
        let email = normalise_email(email);
        if email.is_empty() || email.len() > 320 {
            return Err(AppError::BadCredentials);
        }
        let address = address_key(ip);
        let keys = [(Scope::StaffAccount, email.as_str()), (Scope::StaffAddress, address.as_str())];
        let attempt = self.reserve_or_record(&keys, SecurityEvent::StaffSignInThrottled, &email, ip, now).await?;
        let mut conn = self.store.reader().await?;
        let user = db::user_by_email(&mut conn, &email).await?;
        drop(conn);
        let hash = match &user {
            Some(u) => u.password_hash.clone(),
            None => dummy_hash().await?,
        };
        let candidate = if password.len() > MAX_PASSWORD { String::new() } else { password.to_owned() };
        let ok = match self.passwords.run(verify_password(candidate, hash)).await {
            Ok(ok) => ok && password.len() <= MAX_PASSWORD,
            Err(e) => {
                self.attempt_not_evaluated(attempt).await?;
                return Err(e);
            }
        };
        let user = match user {
            Some(u) if ok && u.disabled_at.is_none() => u,
            _ => {
                self.record_security_event(SecurityEvent::StaffSignInFailed, &email, ip, None, now).await;
                return Err(AppError::BadCredentials);
            }
        };
        self.attempt_succeeded(attempt, &[Scope::StaffAccount]).await?;
        let pending = user.totp_enabled_at.is_some();
        self.issue_session(&user, pending, previous, now).await
    }

    /// Step two: a TOTP code (±30 s, each time step once) or an unused
    /// recovery code, for a session in [`SessionState::SecondFactorDue`].
    /// On success the pending session is replaced by a signed-in one. Wrong
    /// codes are counted per account in their own scope, which only a
    /// completed sign-in clears (a right password does not).
    pub async fn staff_second_factor(&self, token: &str, code: &str, ip: &str, now: i64) -> Result<IssuedSession> {
        let Some(session) = self.staff_session(token, now).await? else { return Err(AppError::BadCredentials) };
        if session.state != SessionState::SecondFactorDue {
            return Err(AppError::conflict("second_factor_not_due", "this session is not waiting for a code", None));
        }
        let email = session.user.email.clone();
        let address = address_key(ip);
        let keys = [(Scope::SecondFactor, email.as_str()), (Scope::StaffAddress, address.as_str())];
        let attempt = self.reserve_or_record(&keys, SecurityEvent::StaffSignInThrottled, &email, ip, now).await?;
        let mut conn = self.store.reader().await?;
        let Some(user) = db::user_by_id(&mut conn, &session.user.id).await? else { return Err(AppError::BadCredentials) };
        drop(conn);
        if self.verify_second_factor(&user, code, now).await? {
            self.attempt_succeeded(attempt, &[Scope::SecondFactor]).await?;
            self.issue_session(&user, false, Some(token), now).await
        } else {
            self.record_security_event(SecurityEvent::SecondFactorFailed, &email, ip, None, now).await;
            Err(AppError::BadCredentials)
        }
    }

    async fn verify_second_factor(&self, user: &StaffUserRow, code: &str, now: i64) -> Result<bool> {
        let digits: String = code.chars().filter(|c| !c.is_whitespace()).collect();
        if digits.len() == 6 && digits.bytes().all(|b| b.is_ascii_digit()) {
            let Some(totp) = self.user_totp(user)? else { return Ok(false) };
            let Some(step) = totp_step(&totp, &digits, now) else { return Ok(false) };
            return in_tx!(self, |tx| Ok(db::claim_totp_step(&mut tx, &user.id, step).await?));
        }
        let hash = hash_secret(&normalise_code(code));
        in_tx!(self, |tx| Ok(db::use_recovery_code(&mut tx, &user.id, &hash, now).await?))
    }

    fn user_totp(&self, user: &StaffUserRow) -> Result<Option<Totp>> {
        let Some(enc) = user.totp_secret.as_deref() else { return Ok(None) };
        let secret = self.secrets.decrypt(enc).map_err(|_| keel_store::StoreError::corrupt("a TOTP secret does not decrypt"))?;
        let bytes = totp_rs::Secret::try_from_base32(&secret).map_err(|_| keel_store::StoreError::corrupt("a TOTP secret is not base32"))?;
        Ok(Some(totp_for(bytes.as_ref().to_vec(), &user.email)?))
    }

    /// The live session behind a cookie token: not past its idle or absolute
    /// timeout, its user not disabled. Restarts the idle timeout (written at
    /// most once a minute).
    pub async fn staff_session(&self, token: &str, now: i64) -> Result<Option<StaffSession>> {
        if token.len() != 43 {
            return Ok(None);
        }
        let id = hash_secret(token);
        let mut conn = self.store.reader().await?;
        let Some(s) = db::session_by_id(&mut conn, &id).await? else { return Ok(None) };
        if s.expires_at <= now || s.idle_expires_at <= now {
            return Ok(None);
        }
        let Some(u) = db::user_by_id(&mut conn, &s.user_id).await? else { return Ok(None) };
        drop(conn);
        if u.disabled_at.is_some() {
            // Disabling deletes the user's sessions in its transaction; one
            // issued by a sign-in racing with it ends here.
            in_tx!(self, |tx| Ok(db::delete_session(&mut tx, &id).await?))?;
            return Ok(None);
        }
        let pending = u.totp_enabled_at.is_some() && s.second_factor_at.is_none();
        if !pending && now - s.last_seen_at >= TOUCH_EVERY_MICROS {
            let idle = (now + SESSION_IDLE_MICROS).min(s.expires_at);
            in_tx!(self, |tx| Ok(db::touch_session(&mut tx, &id, now, idle).await?))?;
        }
        Ok(Some(self.session_view(&s, &u)?))
    }

    /// Replaces a signed-in session's token with a new one (after a change
    /// of privilege such as enabling two-factor); `None` if it is not live.
    pub async fn staff_rotate_session(&self, token: &str, now: i64) -> Result<Option<IssuedSession>> {
        let Some(s) = self.staff_session(token, now).await? else { return Ok(None) };
        if s.state == SessionState::SecondFactorDue {
            return Ok(None);
        }
        let mut conn = self.store.reader().await?;
        let Some(user) = db::user_by_id(&mut conn, &s.user.id).await? else { return Ok(None) };
        drop(conn);
        Ok(Some(self.issue_session(&user, false, Some(token), now).await?))
    }

    pub async fn staff_sign_out(&self, token: &str) -> Result<()> {
        let id = hash_secret(token);
        in_tx!(self, |tx| Ok(db::delete_session(&mut tx, &id).await?))
    }

    /// Ends every session of the user (this one included); returns how many.
    pub async fn staff_sign_out_everywhere(&self, user_id: &str) -> Result<u64> {
        in_tx!(self, |tx| Ok(db::delete_user_sessions(&mut tx, user_id).await?))
    }

    /// Starts (or restarts) TOTP enrolment: a new secret, stored encrypted
    /// and off until [`App::confirm_totp_enrolment`].
    pub async fn begin_totp_enrolment(&self, user_id: &str, now: i64) -> Result<TotpEnrolment> {
        let mut conn = self.store.reader().await?;
        let Some(user) = db::user_by_id(&mut conn, user_id).await? else { return Err(AppError::not_found("staff_user", user_id)) };
        drop(conn);
        if user.totp_enabled_at.is_some() {
            return Err(AppError::conflict("two_factor_enabled", "two-factor is already enabled", None));
        }
        let mut raw = [0u8; 20];
        rand::rngs::OsRng.fill_bytes(&mut raw);
        let totp = totp_for(raw.to_vec(), &user.email)?;
        let secret = totp_rs::Secret::from(raw).to_base32();
        let url = totp.to_url().map_err(|e| AppError::Store(keel_store::StoreError::Io(format!("TOTP URL failed: {e}"))))?;
        let encrypted = self.secrets.encrypt(&secret);
        in_tx!(self, |tx| Ok(db::set_totp_secret(&mut tx, user_id, &encrypted, now).await?))?;
        Ok(TotpEnrolment { qr_svg: qr_svg(&url)?, secret, otpauth_url: url })
    }

    /// The enrolment in progress (its secret kept), or a new one.
    pub async fn totp_enrolment(&self, user_id: &str, now: i64) -> Result<TotpEnrolment> {
        let mut conn = self.store.reader().await?;
        let Some(user) = db::user_by_id(&mut conn, user_id).await? else { return Err(AppError::not_found("staff_user", user_id)) };
        drop(conn);
        if user.totp_enabled_at.is_none() {
            if let (Some(totp), Some(enc)) = (self.user_totp(&user)?, user.totp_secret.as_deref()) {
                let secret = self.secrets.decrypt(enc).map_err(|_| keel_store::StoreError::corrupt("a TOTP secret does not decrypt"))?;
                let url = totp.to_url().map_err(|e| AppError::Store(keel_store::StoreError::Io(format!("TOTP URL failed: {e}"))))?;
                return Ok(TotpEnrolment { qr_svg: qr_svg(&url)?, secret, otpauth_url: url });
            }
        }
        self.begin_totp_enrolment(user_id, now).await
    }

    /// Confirms enrolment with a current code; returns the recovery codes
    /// (shown once; stored as SHA-256). Refused (`BadCredentials`) if the
    /// code is wrong. `session_id` (the enrolling session) counts as having
    /// given the second factor; the user's other sessions must give it.
    pub async fn confirm_totp_enrolment(&self, user_id: &str, code: &str, session_id: Option<&str>, now: i64) -> Result<Vec<String>> {
        let mut conn = self.store.reader().await?;
        let Some(user) = db::user_by_id(&mut conn, user_id).await? else { return Err(AppError::not_found("staff_user", user_id)) };
        drop(conn);
        if user.totp_enabled_at.is_some() {
            return Err(AppError::conflict("two_factor_enabled", "two-factor is already enabled", None));
        }
        let Some(totp) = self.user_totp(&user)? else {
            return Err(AppError::conflict("enrolment_not_started", "start enrolment first", None));
        };
        let Some(step) = totp_step(&totp, code, now) else { return Err(AppError::BadCredentials) };
        let codes: Vec<String> = (0..RECOVERY_CODES).map(|_| recovery_code()).collect();
        let hashes: Vec<String> = codes.iter().map(|c| hash_secret(&normalise_code(c))).collect();
        in_tx!(self, |tx| {
            if !db::claim_totp_step(&mut tx, user_id, step).await? {
                return Err(AppError::BadCredentials);
            }
            db::enable_totp(&mut tx, user_id, now).await?;
            db::replace_recovery_codes(&mut tx, user_id, &hashes, now).await?;
            if let Some(sid) = session_id {
                db::mark_second_factor(&mut tx, sid, now).await?;
            }
            Ok(())
        })?;
        Ok(codes)
    }

    pub async fn unused_recovery_codes(&self, user_id: &str) -> Result<i64> {
        let mut conn = self.store.reader().await?;
        Ok(db::unused_recovery_codes(&mut conn, user_id).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qr_is_an_svg_and_codes_have_a_shape() {
        let svg = qr_svg("otpauth://totp/Keel:a%40b.c?secret=JBSWY3DPEHPK3PXP&issuer=Keel").unwrap();
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>") && svg.contains("<path d=\"M"));
        let c = recovery_code();
        assert_eq!(c.len(), 11);
        assert_eq!(normalise_code(&c.to_uppercase()).len(), 10);
    }

    #[test]
    fn totp_accepts_one_step_either_side() {
        let totp = totp_for(vec![7u8; 20], "a@b.c").unwrap();
        let now = 1_700_000_000_000_000i64;
        let step = 1_700_000_000u64 / 30;
        let code = totp.generate(step * 30).to_string();
        assert_eq!(totp_step(&totp, &code, now), Some(step as i64));
        let next = totp.generate((step + 1) * 30).to_string();
        assert_eq!(totp_step(&totp, &next, now), Some(step as i64 + 1));
        let far = totp.generate((step + 3) * 30).to_string();
        assert_eq!(totp_step(&totp, &far, now), None);
        assert_eq!(totp_step(&totp, "12345", now), None);
    }
}
