//! Customer accounts and addresses.
//!
//! Personal data (email, names, phones, address lines) is encrypted with
//! `App::secrets` before it reaches the store and decrypted only to build
//! views; emails are looked up through a blind index of the normalised
//! (trimmed, lower-cased) address. Events carry ids, kinds, countries and the
//! names of changed fields — never personal values — because webhooks read
//! the outbox.
//!
//! Two kinds of customer share the table: an `account` has a password
//! (argon2id) and an email unique among accounts; a `guest` has neither, and
//! any number of guests may share an email (with each other and with an
//! account).

mod signin;

use crate::views::Page;
use crate::{in_tx, page_limit, Actor, App, AppError, Result};
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use keel_domain::catalog as rules;
use keel_domain::passwords::PasswordRule;
use keel_domain::ids::{AddressId, CustomerId};
use keel_domain::time::{now_micros, to_rfc3339};
use keel_domain::Invalid;
use keel_store::customers::{self as db, AddressRow, CustomerRow};
use keel_store::{outbox, Conn, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::sync::OnceLock;
use utoipa::ToSchema;

pub const KIND_ACCOUNT: &str = "account";
pub const KIND_GUEST: &str = "guest";

pub const MAX_EMAIL: usize = 254;
pub const MAX_NAME: usize = 100;
pub const MAX_ADDRESS_LINE: usize = 200;
pub const MAX_POSTAL_CODE: usize = 20;
pub const MAX_PHONE: usize = 32;
pub const MIN_PASSWORD: usize = PasswordRule::CUSTOMER.min_chars;
pub const MAX_PASSWORD: usize = PasswordRule::CUSTOMER.max_chars;
/// Addresses one customer may keep.
pub const MAX_ADDRESSES: i64 = 100;

// ---------------------------------------------------------------- inputs ---

/// A new customer. With `password` it is a registered account (its email
/// must not belong to another account); without, a guest.
#[derive(Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCustomer {
    #[schema(example = "ada@example.com")]
    pub email: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// Digits, spaces and `+ ( ) -`, at most 32 characters.
    pub phone: Option<String>,
    /// 10–256 characters; makes the customer an account.
    #[schema(format = Password)]
    pub password: Option<String>,
    pub marketing_opt_in: Option<bool>,
}

/// Changes to a customer; absent fields are kept, `""` clears an optional
/// one (`first_name`, `last_name`, `phone`).
#[derive(Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerChanges {
    /// For an account, must not belong to another account.
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone: Option<String>,
    pub marketing_opt_in: Option<bool>,
}

#[derive(Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAddress {
    /// The recipient's full name.
    pub name: String,
    pub line1: String,
    pub line2: Option<String>,
    pub city: String,
    /// State, province or region.
    pub region: Option<String>,
    pub postal_code: Option<String>,
    /// ISO 3166-1 alpha-2.
    #[schema(example = "US")]
    pub country: String,
    pub phone: Option<String>,
    /// Default: true for the customer's first address, else false. Setting
    /// it moves the default from any other address.
    pub is_default_shipping: Option<bool>,
}

/// Changes to an address; absent fields are kept, `""` clears an optional
/// one (`line2`, `region`, `postal_code`, `phone`).
#[derive(Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddressChanges {
    pub name: Option<String>,
    pub line1: Option<String>,
    pub line2: Option<String>,
    pub city: Option<String>,
    pub region: Option<String>,
    pub postal_code: Option<String>,
    pub country: Option<String>,
    pub phone: Option<String>,
    pub is_default_shipping: Option<bool>,
}

// ----------------------------------------------------------------- views ---

/// A customer with its personal fields decrypted. Never includes the
/// password hash. `Debug` prints only the id and kind.
#[derive(Clone, Serialize, ToSchema)]
pub struct CustomerView {
    pub id: String,
    #[schema(example = "customer")]
    pub object: &'static str,
    /// `account` (has a password) or `guest`.
    pub kind: String,
    pub email: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone: Option<String>,
    pub marketing_opt_in: bool,
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
}

impl std::fmt::Debug for CustomerView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CustomerView").field("id", &self.id).field("kind", &self.kind).finish_non_exhaustive()
    }
}

/// An address with its personal fields decrypted. `Debug` prints only ids
/// and the country.
#[derive(Clone, Serialize, ToSchema)]
pub struct AddressView {
    pub id: String,
    #[schema(example = "customer_address")]
    pub object: &'static str,
    pub customer_id: String,
    pub name: String,
    pub line1: String,
    pub line2: Option<String>,
    pub city: String,
    pub region: Option<String>,
    pub postal_code: Option<String>,
    pub country: String,
    pub phone: Option<String>,
    pub is_default_shipping: bool,
    pub created_at: String,
    pub updated_at: String,
}

impl std::fmt::Debug for AddressView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AddressView")
            .field("id", &self.id)
            .field("customer_id", &self.customer_id)
            .field("country", &self.country)
            .finish_non_exhaustive()
    }
}

/// What deleting an address returns.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeletedAddressView {
    pub id: String,
    #[schema(example = "customer_address")]
    pub object: &'static str,
    pub deleted: bool,
}

// ------------------------------------------------------------ validation ---

/// Checks an email and returns it trimmed (as given, for display) and
/// normalised (lower-cased, for the blind index).
pub fn email(field: &str, s: &str) -> Result<(String, String), Invalid> {
    let t = s.trim();
    if t.is_empty() {
        return Err(Invalid::new(field, "required", "must not be empty"));
    }
    if t.chars().count() > MAX_EMAIL {
        return Err(Invalid::new(field, "too_long", format!("must be at most {MAX_EMAIL} characters")));
    }
    let bad = || Invalid::new(field, "invalid_email", "must be an email address like name@example.com");
    if t.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad());
    }
    let (local, domain) = t.split_once('@').ok_or_else(bad)?;
    let domain_ok = domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && !domain.contains('@');
    if local.is_empty() || !domain_ok {
        return Err(bad());
    }
    Ok((t.to_owned(), t.to_lowercase()))
}

/// The normalised form an email is indexed under: trimmed, lower-cased.
pub fn normalise_email(s: &str) -> String {
    s.trim().to_lowercase()
}

fn phone(field: &str, s: Option<&str>) -> Result<Option<String>, Invalid> {
    let Some(p) = rules::optional_text(field, s, MAX_PHONE)? else {
        return Ok(None);
    };
    let ok = p.chars().all(|c| c.is_ascii_digit() || " +()-".contains(c)) && p.chars().any(|c| c.is_ascii_digit());
    if ok {
        Ok(Some(p))
    } else {
        Err(Invalid::new(field, "invalid_phone", "may hold only digits, spaces and + ( ) -"))
    }
}

/// A change to an optional text field: `None` keeps it, `Some(None)` clears
/// it (`""`), `Some(Some(v))` sets it.
type Edit = Option<Option<String>>;

fn optional_edit(field: &str, s: Option<&str>, max: usize) -> Result<Edit, Invalid> {
    s.map(|v| rules::optional_text(field, Some(v), max)).transpose()
}

fn phone_edit(field: &str, s: Option<&str>) -> Result<Edit, Invalid> {
    s.map(|v| phone(field, Some(v))).transpose()
}

// --------------------------------------------------------------- hashing ---

fn task_failed(e: tokio::task::JoinError) -> AppError {
    AppError::Store(StoreError::Io(format!("password hashing task failed: {e}")))
}

/// Argon2id (the crate's default parameters) with a random salt, as a PHC
/// string; runs on the blocking pool.
pub(crate) async fn hash_password(password: String) -> Result<String> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| AppError::Store(StoreError::Io(format!("password hashing failed: {e}"))))
    })
    .await
    .map_err(task_failed)?
}

/// Whether `password` matches the PHC string `hash`; on the blocking pool.
pub(crate) async fn verify_password(password: String, hash: String) -> Result<bool> {
    tokio::task::spawn_blocking(move || {
        let parsed = PasswordHash::new(&hash).map_err(|_| StoreError::corrupt("a stored password hash is not a PHC string"))?;
        Ok(Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
    })
    .await
    .map_err(task_failed)?
}

/// A hash of a random password with the current parameters, verified when
/// the email is unknown so a miss costs about as much as a wrong password.
pub(crate) async fn dummy_hash() -> Result<String> {
    static DUMMY: OnceLock<String> = OnceLock::new();
    if let Some(h) = DUMMY.get() {
        return Ok(h.clone());
    }
    let h = hash_password(hex::encode(rand::random::<[u8; 16]>())).await?;
    Ok(DUMMY.get_or_init(|| h).clone())
}

// ---------------------------------------------------------------- events ---

fn customer_ref(row: &CustomerRow) -> Value {
    json!({ "id": row.id, "object": "customer", "kind": row.kind, "version": row.version })
}

fn address_ref(a: &AddressRow) -> Value {
    json!({
        "id": a.id,
        "object": "customer_address",
        "customer_id": a.customer_id,
        "country": a.country,
        "is_default_shipping": a.is_default_shipping,
    })
}

/// Appends a customer-aggregate event. Payloads carry ids, kinds, countries
/// and changed field names only: never personal values.
async fn emit(conn: &mut Conn, kind: &str, customer_id: &str, seq: i64, payload: Value) -> Result<()> {
    outbox::append(conn, outbox::NewEvent { kind, aggregate_type: "customer", aggregate_id: customer_id, aggregate_seq: seq, payload })
        .await?;
    Ok(())
}

fn email_taken(e: StoreError) -> AppError {
    if e.is_unique_violation("customers", "account_email_index") {
        AppError::conflict("email_taken", "an account with this email already exists", Some("email"))
    } else {
        e.into()
    }
}

fn undecryptable(_: crate::secrets::SecretsError) -> AppError {
    AppError::Store(StoreError::corrupt("stored customer data cannot be decrypted with this key"))
}

fn customer_not_found(id: &str) -> AppError {
    AppError::not_found("customer", id)
}

fn check_customer_id(id: &str) -> Result<()> {
    CustomerId::parse("id", id).map(|_| ()).map_err(|_| customer_not_found(id))
}

fn check_address_id(id: &str) -> Result<()> {
    AddressId::parse("address_id", id).map(|_| ()).map_err(|_| AppError::not_found("customer_address", id))
}

/// Plaintext of a customer's personal fields, for comparisons.
struct CustomerPlain {
    email: String,
    first_name: Option<String>,
    last_name: Option<String>,
    phone: Option<String>,
}

struct AddressPlain {
    name: String,
    line1: String,
    line2: Option<String>,
    city: String,
    region: Option<String>,
    postal_code: Option<String>,
    phone: Option<String>,
}

impl App {
    fn decrypt_customer(&self, row: &CustomerRow) -> Result<CustomerPlain> {
        let s = &self.secrets;
        Ok(CustomerPlain {
            email: s.decrypt(&row.email_enc).map_err(undecryptable)?,
            first_name: s.decrypt_opt(row.first_name_enc.as_deref()).map_err(undecryptable)?,
            last_name: s.decrypt_opt(row.last_name_enc.as_deref()).map_err(undecryptable)?,
            phone: s.decrypt_opt(row.phone_enc.as_deref()).map_err(undecryptable)?,
        })
    }

    fn customer_view(&self, row: CustomerRow) -> Result<CustomerView> {
        let p = self.decrypt_customer(&row)?;
        Ok(CustomerView {
            id: row.id,
            object: "customer",
            kind: row.kind,
            email: p.email,
            first_name: p.first_name,
            last_name: p.last_name,
            phone: p.phone,
            marketing_opt_in: row.marketing_opt_in,
            version: row.version,
            created_at: to_rfc3339(row.created_at),
            updated_at: to_rfc3339(row.updated_at),
        })
    }

    fn decrypt_address(&self, a: &AddressRow) -> Result<AddressPlain> {
        let s = &self.secrets;
        Ok(AddressPlain {
            name: s.decrypt(&a.name_enc).map_err(undecryptable)?,
            line1: s.decrypt(&a.line1_enc).map_err(undecryptable)?,
            line2: s.decrypt_opt(a.line2_enc.as_deref()).map_err(undecryptable)?,
            city: s.decrypt(&a.city_enc).map_err(undecryptable)?,
            region: s.decrypt_opt(a.region_enc.as_deref()).map_err(undecryptable)?,
            postal_code: s.decrypt_opt(a.postal_code_enc.as_deref()).map_err(undecryptable)?,
            phone: s.decrypt_opt(a.phone_enc.as_deref()).map_err(undecryptable)?,
        })
    }

    fn address_view(&self, a: AddressRow) -> Result<AddressView> {
        let p = self.decrypt_address(&a)?;
        Ok(AddressView {
            id: a.id,
            object: "customer_address",
            customer_id: a.customer_id,
            name: p.name,
            line1: p.line1,
            line2: p.line2,
            city: p.city,
            region: p.region,
            postal_code: p.postal_code,
            country: a.country,
            phone: p.phone,
            is_default_shipping: a.is_default_shipping,
            created_at: to_rfc3339(a.created_at),
            updated_at: to_rfc3339(a.updated_at),
        })
    }

    /// Creates an account (with `password`) or a guest. `409 email_taken`
    /// (param `email`) when an account already has the email, compared
    /// case-insensitively.
    pub async fn create_customer(&self, actor: &Actor, input: NewCustomer) -> Result<CustomerView> {
        let (email, normalised) = email("email", &input.email)?;
        let first_name = rules::optional_text("first_name", input.first_name.as_deref(), MAX_NAME)?;
        let last_name = rules::optional_text("last_name", input.last_name.as_deref(), MAX_NAME)?;
        let phone = phone("phone", input.phone.as_deref())?;
        if let Some(p) = &input.password {
            let names = [input.email.as_str(), first_name.as_deref().unwrap_or(""), last_name.as_deref().unwrap_or("")];
            PasswordRule::CUSTOMER.check("password", p, &names)?;
        }
        // Hash before the transaction: it is slow, and a retry must not redo it.
        let password_hash = match input.password {
            Some(p) => Some(self.passwords.run(hash_password(p)).await?),
            None => None,
        };
        let s = &self.secrets;
        let now = now_micros();
        let row = CustomerRow {
            id: CustomerId::generate().to_string(),
            kind: if password_hash.is_some() { KIND_ACCOUNT } else { KIND_GUEST }.to_owned(),
            email_index: s.blind_index(&normalised),
            email_enc: s.encrypt(&email),
            first_name_enc: s.encrypt_opt(first_name.as_deref()),
            last_name_enc: s.encrypt_opt(last_name.as_deref()),
            phone_enc: s.encrypt_opt(phone.as_deref()),
            password_hash,
            marketing_opt_in: input.marketing_opt_in.unwrap_or(false),
            version: 1,
            created_at: now,
            updated_at: now,
        };
        self.insert_customer(actor, row).await
    }

    async fn insert_customer(&self, actor: &Actor, row: CustomerRow) -> Result<CustomerView> {
        in_tx!(self, |tx| {
            db::insert(&mut tx, &row).await.map_err(email_taken)?;
            emit(&mut tx, "customer.created", &row.id, row.version, json!({ "object": customer_ref(&row), "actor": actor.0 }))
                .await?;
            Ok(())
        })?;
        self.customer_view(row)
    }

    pub async fn get_customer(&self, id: &str) -> Result<CustomerView> {
        check_customer_id(id)?;
        let mut conn = self.store.reader().await?;
        let row = db::get(&mut conn, id).await?.ok_or_else(|| customer_not_found(id))?;
        self.customer_view(row)
    }

    /// Customers newest first; with `email`, only those with that email
    /// (exact match after trimming and lower-casing, through the blind
    /// index): at most one account, and any number of guests.
    pub async fn list_customers(&self, email: Option<&str>, starting_after: Option<&str>, limit: Option<i64>) -> Result<Page<CustomerView>> {
        if let Some(c) = starting_after {
            CustomerId::parse("starting_after", c)?;
        }
        let index = match email {
            Some(e) => {
                let n = normalise_email(e);
                if n.is_empty() {
                    return Err(Invalid::new("email", "required", "must not be empty").into());
                }
                Some(self.secrets.blind_index(&n))
            }
            None => None,
        };
        let limit = page_limit(limit);
        let mut conn = self.store.reader().await?;
        let rows = db::list(&mut conn, index.as_deref(), starting_after, limit + 1).await?;
        let views = rows.into_iter().map(|r| self.customer_view(r)).collect::<Result<Vec<_>>>()?;
        Ok(Page::from_overfetch(views, limit))
    }

    /// Changes names, phone, marketing consent or email. Emits
    /// `customer.updated` with the names of the changed fields; a request
    /// that changes nothing writes nothing.
    pub async fn update_customer(&self, actor: &Actor, id: &str, changes: CustomerChanges) -> Result<CustomerView> {
        check_customer_id(id)?;
        let new_email = changes.email.as_deref().map(|e| email("email", e)).transpose()?;
        let first_name = optional_edit("first_name", changes.first_name.as_deref(), MAX_NAME)?;
        let last_name = optional_edit("last_name", changes.last_name.as_deref(), MAX_NAME)?;
        let phone = phone_edit("phone", changes.phone.as_deref())?;
        let s = &self.secrets;
        let row = in_tx!(self, |tx| {
            let mut row = db::get_for_update(&mut tx, id).await?.ok_or_else(|| customer_not_found(id))?;
            let old = self.decrypt_customer(&row)?;
            let mut changed: Vec<&str> = Vec::new();
            if let Some((display, normalised)) = &new_email {
                if *display != old.email {
                    row.email_index = s.blind_index(normalised);
                    row.email_enc = s.encrypt(display);
                    changed.push("email");
                }
            }
            for (field, edit, old, slot) in [
                ("first_name", &first_name, &old.first_name, &mut row.first_name_enc),
                ("last_name", &last_name, &old.last_name, &mut row.last_name_enc),
                ("phone", &phone, &old.phone, &mut row.phone_enc),
            ] {
                if let Some(v) = edit {
                    if v != old {
                        *slot = s.encrypt_opt(v.as_deref());
                        changed.push(field);
                    }
                }
            }
            if let Some(m) = changes.marketing_opt_in {
                if m != row.marketing_opt_in {
                    row.marketing_opt_in = m;
                    changed.push("marketing_opt_in");
                }
            }
            if !changed.is_empty() {
                row.updated_at = now_micros();
                row.version =
                    db::update(&mut tx, &row).await.map_err(email_taken)?.ok_or_else(|| customer_not_found(id))?;
                let payload = json!({ "object": customer_ref(&row), "changed": changed, "actor": actor.0 });
                emit(&mut tx, "customer.updated", &row.id, row.version, payload).await?;
            }
            Ok(row)
        })?;
        self.customer_view(row)
    }

    /// The account with this email if `password` matches its argon2id
    /// hash, else `None` (unknown email, guest, or wrong password —
    /// indistinguishable to the caller). An unknown email is checked against
    /// a dummy hash so it takes about as long as a wrong password. Not
    /// throttled: the storefront signs in through [`App::customer_sign_in`].
    pub async fn verify_customer_password(&self, email: &str, password: &str) -> Result<Option<CustomerView>> {
        let n = normalise_email(email);
        let account = if n.is_empty() || n.chars().count() > MAX_EMAIL {
            None
        } else {
            let mut conn = self.store.reader().await?;
            db::account_by_email_index(&mut conn, &self.secrets.blind_index(&n)).await?
        };
        let stored = account.as_ref().and_then(|a| a.password_hash.clone());
        let known = stored.is_some();
        let hash = match stored {
            Some(h) => h,
            None => dummy_hash().await?,
        };
        // No password longer than any we accept can match; it is still
        // verified (as an empty one) so the refusal takes the usual time.
        let too_long = password.chars().count() > MAX_PASSWORD;
        let candidate = if too_long { String::new() } else { password.to_owned() };
        let ok = self.passwords.run(verify_password(candidate, hash)).await? && known && !too_long;
        match account {
            Some(row) if ok => Ok(Some(self.customer_view(row)?)),
            _ => Ok(None),
        }
    }

    /// Guest checkout: the customer an order with this email belongs to.
    ///
    /// Returns the registered account with this email if there is one (left
    /// unchanged); else reuses the most recently created guest with this
    /// email (also left unchanged: the names given here are not written over
    /// what an earlier checkout stored, since anyone can type any email);
    /// else creates a guest with the given names (`customer.created`). Two
    /// simultaneous first checkouts with one email may create two guests,
    /// which is allowed. The view holds stored personal data: callers must
    /// not echo it to an unauthenticated shopper.
    pub async fn find_or_create_guest(&self, email: &str, first_name: Option<&str>, last_name: Option<&str>) -> Result<CustomerView> {
        let (email, normalised) = self::email("email", email)?;
        let first_name = rules::optional_text("first_name", first_name, MAX_NAME)?;
        let last_name = rules::optional_text("last_name", last_name, MAX_NAME)?;
        let s = &self.secrets;
        let index = s.blind_index(&normalised);
        let actor = Actor::system("guest_checkout");
        let row = in_tx!(self, |tx| {
            let existing = match db::account_by_email_index(&mut tx, &index).await? {
                Some(account) => Some(account),
                None => db::latest_guest_by_email_index(&mut tx, &index).await?,
            };
            if let Some(row) = existing {
                Ok(row)
            } else {
                let now = now_micros();
                let row = CustomerRow {
                    id: CustomerId::generate().to_string(),
                    kind: KIND_GUEST.to_owned(),
                    email_index: index.clone(),
                    email_enc: s.encrypt(&email),
                    first_name_enc: s.encrypt_opt(first_name.as_deref()),
                    last_name_enc: s.encrypt_opt(last_name.as_deref()),
                    phone_enc: None,
                    password_hash: None,
                    marketing_opt_in: false,
                    version: 1,
                    created_at: now,
                    updated_at: now,
                };
                db::insert(&mut tx, &row).await?;
                emit(&mut tx, "customer.created", &row.id, row.version, json!({ "object": customer_ref(&row), "actor": actor.0 }))
                    .await?;
                Ok(row)
            }
        })?;
        self.customer_view(row)
    }

    // ------------------------------------------------------------ addresses

    /// Adds an address (`customer.address_created`). The first address of a
    /// customer becomes the default shipping address unless told otherwise.
    pub async fn create_customer_address(&self, actor: &Actor, customer_id: &str, input: NewAddress) -> Result<AddressView> {
        check_customer_id(customer_id)?;
        let name = rules::text("name", &input.name, MAX_NAME)?;
        let line1 = rules::text("line1", &input.line1, MAX_ADDRESS_LINE)?;
        let line2 = rules::optional_text("line2", input.line2.as_deref(), MAX_ADDRESS_LINE)?;
        let city = rules::text("city", &input.city, MAX_NAME)?;
        let region = rules::optional_text("region", input.region.as_deref(), MAX_NAME)?;
        let postal_code = rules::optional_text("postal_code", input.postal_code.as_deref(), MAX_POSTAL_CODE)?;
        let country = rules::country("country", &input.country)?;
        let phone = phone("phone", input.phone.as_deref())?;
        let s = &self.secrets;
        let row = in_tx!(self, |tx| {
            db::get_for_update(&mut tx, customer_id).await?.ok_or_else(|| customer_not_found(customer_id))?;
            let count = db::count_addresses(&mut tx, customer_id).await?;
            if count >= MAX_ADDRESSES {
                return Err(AppError::conflict(
                    "too_many_addresses",
                    format!("a customer may keep at most {MAX_ADDRESSES} addresses"),
                    None,
                ));
            }
            let now = now_micros();
            let row = AddressRow {
                id: AddressId::generate().to_string(),
                customer_id: customer_id.to_owned(),
                name_enc: s.encrypt(&name),
                line1_enc: s.encrypt(&line1),
                line2_enc: s.encrypt_opt(line2.as_deref()),
                city_enc: s.encrypt(&city),
                region_enc: s.encrypt_opt(region.as_deref()),
                postal_code_enc: s.encrypt_opt(postal_code.as_deref()),
                country: country.clone(),
                phone_enc: s.encrypt_opt(phone.as_deref()),
                is_default_shipping: input.is_default_shipping.unwrap_or(count == 0),
                created_at: now,
                updated_at: now,
            };
            if row.is_default_shipping {
                db::clear_default_shipping(&mut tx, customer_id, None, now).await?;
            }
            db::insert_address(&mut tx, &row).await?;
            let seq = db::touch(&mut tx, customer_id).await?.ok_or_else(|| customer_not_found(customer_id))?;
            emit(&mut tx, "customer.address_created", customer_id, seq, json!({ "object": address_ref(&row), "actor": actor.0 }))
                .await?;
            Ok(row)
        })?;
        self.address_view(row)
    }

    pub async fn get_customer_address(&self, customer_id: &str, address_id: &str) -> Result<AddressView> {
        check_customer_id(customer_id)?;
        check_address_id(address_id)?;
        let mut conn = self.store.reader().await?;
        db::get(&mut conn, customer_id).await?.ok_or_else(|| customer_not_found(customer_id))?;
        let row = db::get_address(&mut conn, customer_id, address_id)
            .await?
            .ok_or_else(|| AppError::not_found("customer_address", address_id))?;
        self.address_view(row)
    }

    /// A customer's addresses, newest first.
    pub async fn list_customer_addresses(&self, customer_id: &str, starting_after: Option<&str>, limit: Option<i64>) -> Result<Page<AddressView>> {
        check_customer_id(customer_id)?;
        if let Some(c) = starting_after {
            AddressId::parse("starting_after", c)?;
        }
        let limit = page_limit(limit);
        let mut conn = self.store.reader().await?;
        db::get(&mut conn, customer_id).await?.ok_or_else(|| customer_not_found(customer_id))?;
        let rows = db::list_addresses(&mut conn, customer_id, starting_after, limit + 1).await?;
        let views = rows.into_iter().map(|r| self.address_view(r)).collect::<Result<Vec<_>>>()?;
        Ok(Page::from_overfetch(views, limit))
    }

    /// Changes an address (`customer.address_updated` with the changed field
    /// names); a request that changes nothing writes nothing.
    pub async fn update_customer_address(
        &self,
        actor: &Actor,
        customer_id: &str,
        address_id: &str,
        changes: AddressChanges,
    ) -> Result<AddressView> {
        check_customer_id(customer_id)?;
        check_address_id(address_id)?;
        let name = changes.name.as_deref().map(|v| rules::text("name", v, MAX_NAME)).transpose()?;
        let line1 = changes.line1.as_deref().map(|v| rules::text("line1", v, MAX_ADDRESS_LINE)).transpose()?;
        let line2 = optional_edit("line2", changes.line2.as_deref(), MAX_ADDRESS_LINE)?;
        let city = changes.city.as_deref().map(|v| rules::text("city", v, MAX_NAME)).transpose()?;
        let region = optional_edit("region", changes.region.as_deref(), MAX_NAME)?;
        let postal_code = optional_edit("postal_code", changes.postal_code.as_deref(), MAX_POSTAL_CODE)?;
        let country = changes.country.as_deref().map(|c| rules::country("country", c)).transpose()?;
        let phone = phone_edit("phone", changes.phone.as_deref())?;
        let s = &self.secrets;
        let row = in_tx!(self, |tx| {
            db::get_for_update(&mut tx, customer_id).await?.ok_or_else(|| customer_not_found(customer_id))?;
            let mut a = db::get_address(&mut tx, customer_id, address_id)
                .await?
                .ok_or_else(|| AppError::not_found("customer_address", address_id))?;
            let old = self.decrypt_address(&a)?;
            let mut changed: Vec<&str> = Vec::new();
            for (field, new, old, slot) in [
                ("name", &name, &old.name, &mut a.name_enc),
                ("line1", &line1, &old.line1, &mut a.line1_enc),
                ("city", &city, &old.city, &mut a.city_enc),
            ] {
                if let Some(v) = new {
                    if v != old {
                        *slot = s.encrypt(v);
                        changed.push(field);
                    }
                }
            }
            for (field, edit, old, slot) in [
                ("line2", &line2, &old.line2, &mut a.line2_enc),
                ("region", &region, &old.region, &mut a.region_enc),
                ("postal_code", &postal_code, &old.postal_code, &mut a.postal_code_enc),
                ("phone", &phone, &old.phone, &mut a.phone_enc),
            ] {
                if let Some(v) = edit {
                    if v != old {
                        *slot = s.encrypt_opt(v.as_deref());
                        changed.push(field);
                    }
                }
            }
            if let Some(c) = &country {
                if *c != a.country {
                    a.country = c.clone();
                    changed.push("country");
                }
            }
            let now = now_micros();
            if let Some(d) = changes.is_default_shipping {
                if d != a.is_default_shipping {
                    if d {
                        db::clear_default_shipping(&mut tx, customer_id, Some(address_id), now).await?;
                    }
                    a.is_default_shipping = d;
                    changed.push("is_default_shipping");
                }
            }
            if !changed.is_empty() {
                a.updated_at = now;
                if !db::update_address(&mut tx, &a).await? {
                    return Err(AppError::not_found("customer_address", address_id));
                }
                let seq = db::touch(&mut tx, customer_id).await?.ok_or_else(|| customer_not_found(customer_id))?;
                let payload = json!({ "object": address_ref(&a), "changed": changed, "actor": actor.0 });
                emit(&mut tx, "customer.address_updated", customer_id, seq, payload).await?;
            }
            Ok(a)
        })?;
        self.address_view(row)
    }

    /// Removes an address (`customer.address_deleted`). Deleting the default
    /// shipping address leaves the customer without one.
    pub async fn delete_customer_address(&self, actor: &Actor, customer_id: &str, address_id: &str) -> Result<DeletedAddressView> {
        check_customer_id(customer_id)?;
        check_address_id(address_id)?;
        in_tx!(self, |tx| {
            db::get_for_update(&mut tx, customer_id).await?.ok_or_else(|| customer_not_found(customer_id))?;
            let a = db::get_address(&mut tx, customer_id, address_id)
                .await?
                .ok_or_else(|| AppError::not_found("customer_address", address_id))?;
            db::delete_address(&mut tx, customer_id, address_id).await?;
            let seq = db::touch(&mut tx, customer_id).await?.ok_or_else(|| customer_not_found(customer_id))?;
            emit(&mut tx, "customer.address_deleted", customer_id, seq, json!({ "object": address_ref(&a), "actor": actor.0 }))
                .await?;
            Ok(())
        })?;
        Ok(DeletedAddressView { id: address_id.to_owned(), object: "customer_address", deleted: true })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_checked_and_normalised() {
        assert_eq!(email("email", "  Ada@Example.COM ").unwrap(), ("Ada@Example.COM".into(), "ada@example.com".into()));
        for bad in ["", "ada", "ada@", "@example.com", "ada@example", "a@b@c.com", "ada @x.com", "ada@.com", "ada@x.com.", "ada@x..com"] {
            assert!(email("email", bad).is_err(), "{bad:?} accepted");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert_eq!(email("email", &long).unwrap_err().code, "too_long");
    }

    #[test]
    fn phones() {
        assert_eq!(phone("phone", Some(" +1 (555) 010-9999 ")).unwrap().as_deref(), Some("+1 (555) 010-9999"));
        assert_eq!(phone("phone", Some("")).unwrap(), None);
        assert!(phone("phone", Some("call me")).is_err());
        assert!(phone("phone", Some("+-()")).is_err());
        assert!(phone("phone", Some(&"1".repeat(33))).is_err());
    }
}
