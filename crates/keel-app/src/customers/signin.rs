//! The storefront's customer sign-in and registration, behind the same
//! throttle as staff sign-in ([`crate::throttle`]): per account (the email's
//! blind index, so no plain email is stored) and per client address, with
//! a growing delay and a lock; registrations per address, every one
//! counted. Failures and refusals go to the security log.

use super::{normalise_email, NewCustomer};
use crate::security::SecurityEvent;
use crate::throttle::{address_key, Scope};
use crate::{Actor, App, AppError, Result};
use crate::customers::CustomerView;

impl App {
    /// Signs a customer in: `Some` if `password` is the account's, `None`
    /// for every kind of failure (indistinguishable). `ip` is the client
    /// address (empty: unknown). Errors: 429 `TooManyAttempts` while the
    /// account or the address must wait (nothing is checked then).
    pub async fn customer_sign_in(&self, email: &str, password: &str, ip: &str, now: i64) -> Result<Option<CustomerView>> {
        let normalised = normalise_email(email);
        let account = self.secrets.blind_index(&normalised);
        let address = address_key(ip);
        let keys = [(Scope::CustomerAccount, account.as_str()), (Scope::CustomerAddress, address.as_str())];
        let attempt = self.reserve_or_record(&keys, SecurityEvent::CustomerSignInThrottled, &normalised, ip, now).await?;
        match self.verify_customer_password(email, password).await {
            Ok(Some(c)) => {
                self.attempt_succeeded(attempt, &[Scope::CustomerAccount]).await?;
                Ok(Some(c))
            }
            Ok(None) => {
                self.record_security_event(SecurityEvent::CustomerSignInFailed, &normalised, ip, None, now).await;
                Ok(None)
            }
            Err(e @ AppError::TooManyAttempts { .. }) => {
                // No permit to check the password: this attempt never ran.
                self.attempt_not_evaluated(attempt).await?;
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    /// Storefront registration: [`App::create_customer`] after counting
    /// the attempt against the client address (whatever its outcome, since
    /// each one costs a password hash and says whether an email has an
    /// account).
    pub async fn register_customer(&self, actor: &Actor, input: NewCustomer, ip: &str, now: i64) -> Result<CustomerView> {
        let address = address_key(ip);
        let attempt = self.reserve_attempt(&[(Scope::Registration, address.as_str())], now).await?;
        match self.create_customer(actor, input).await {
            Err(e @ AppError::TooManyAttempts { .. }) => {
                self.attempt_not_evaluated(attempt).await?;
                Err(e)
            }
            other => {
                drop(attempt);
                other
            }
        }
    }
}
