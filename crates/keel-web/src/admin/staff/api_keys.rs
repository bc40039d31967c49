//! API keys: the list (newest first, paged by cursor), the create form
//! (the `keel_sk_…` secret shown once, in the POST's response) and revoking.

use super::{grantable_roles, is_staff_id, query, role_label, role_name_label, sentence, when_or};
use crate::admin::{error_page, flash, html, not_found, when, Layout, StaffForm, StaffUser};
use crate::storefront::form::{Errors, Field, Problem};
use crate::AppState;
use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use keel_app::apikeys::{scope_of, KeyScope, NewApiKey, MAX_EXPIRY_DAYS};
use keel_app::AppError;
use keel_domain::access::Role;
use keel_domain::ids::ApiKeyId;
use keel_domain::time::now_micros;
use keel_store::apikeys::ApiKeyRow;

const PER_PAGE: i64 = crate::admin::paging::PER_PAGE;
const PUBLISHABLE_LABEL: &str = "Publishable (storefront)";

/// The role select: the grantable roles, then publishable.
fn key_scopes(by: Role) -> Vec<(String, String)> {
    let mut options = grantable_roles(by);
    options.push(("publishable".to_owned(), PUBLISHABLE_LABEL.to_owned()));
    options
}
const DAY_MICROS: i64 = 86_400_000_000;

struct KeyRowView {
    id: String,
    name: String,
    prefix: String,
    role: String,
    created_by: String,
    created: String,
    last_used: String,
    expires: String,
    status: &'static str,
    status_class: &'static str,
    revoked: String,
    /// Live, and the signed-in user may revoke its role.
    can_revoke: bool,
    /// Live, but its role is one the signed-in user may not grant.
    owner_only: bool,
}

#[derive(Template)]
#[template(path = "admin/api_keys.html")]
struct ListPage {
    layout: Layout,
    rows: Vec<KeyRowView>,
    /// The first page's link, when this is a later one.
    newest: Option<String>,
    older: Option<String>,
    problems: Vec<Problem>,
    name: Field,
    role: Field,
    expires: Field,
}

/// Who created a key: a staff user's email, another key, or the command line.
fn creator(created_by: Option<&str>, emails: &std::collections::HashMap<String, String>, keys: &[ApiKeyRow]) -> String {
    match created_by {
        None => "Command line".to_owned(),
        Some(id) => match (emails.get(id), keys.iter().find(|k| k.id == id)) {
            (Some(email), _) => email.clone(),
            (None, Some(k)) => format!("API key “{}” ({})", k.name, k.prefix),
            (None, None) if ApiKeyId::parse("created_by", id).is_ok() => format!("API key {id}"),
            (None, None) => id.to_owned(),
        },
    }
}

#[derive(Default)]
struct KeyValues {
    name: String,
    role: String,
    expires: String,
}

async fn render_list(state: &AppState, staff: &StaffUser, after: Option<&str>, values: KeyValues, errors: &Errors, status: StatusCode) -> Response {
    let mut keys = match state.app.list_api_keys(PER_PAGE + 1, after).await {
        Ok(k) => k,
        Err(e) => return error_page(&e),
    };
    let has_more = keys.len() as i64 > PER_PAGE;
    keys.truncate(PER_PAGE as usize);
    let creators: Vec<String> = keys.iter().filter_map(|k| k.created_by.clone()).filter(|c| is_staff_id(c)).collect();
    let emails = match state.app.staff_emails(&creators).await {
        Ok(e) => e,
        Err(e) => return error_page(&e),
    };
    let by = staff.user().role;
    let now = now_micros();
    let rows = keys
        .iter()
        .map(|k| {
            let expired = k.expires_at.is_some_and(|e| e <= now);
            let (status, status_class) = match (k.revoked_at, expired) {
                (Some(_), _) => ("Revoked", "muted"),
                (None, true) => ("Expired", "warn"),
                (None, false) => ("Active", "ok"),
            };
            let live = k.revoked_at.is_none() && !expired;
            let grantable = match scope_of(k) {
                Some(KeyScope::Role(r)) => by.can_grant(r),
                Some(KeyScope::Storefront) => true,
                None => false,
            };
            KeyRowView {
                id: k.id.clone(),
                name: k.name.clone(),
                prefix: k.prefix.clone(),
                role: if scope_of(k) == Some(KeyScope::Storefront) { PUBLISHABLE_LABEL.to_owned() } else { role_name_label(&k.role) },
                created_by: creator(k.created_by.as_deref(), &emails, &keys),
                created: when(k.created_at),
                last_used: when_or(k.last_used_at, "Never"),
                expires: when_or(k.expires_at, "Never"),
                status,
                revoked: when_or(k.revoked_at, "No"),
                status_class,
                can_revoke: live && grantable,
                owner_only: live && !grantable,
            }
        })
        .collect();
    let older = has_more.then(|| keys.last().map(|k| format!("/admin/api-keys?starting_after={}", k.id))).flatten();
    let mut name = Field::new("name", "Name", "text", "off").value(values.name).hint("What the key is for, such as “Warehouse sync”.");
    let mut role = Field::new("role", "Role", "select", "off")
        .value(values.role)
        .options(key_scopes(by))
        .hint("A secret key may do exactly what its role allows (only the roles you may grant are listed). A publishable key is safe in a browser: it reads the catalog and uses carts and checkout, limited per shopper address.");
    let mut expires = Field::new("expires_in_days", "Expires after (days)", "number", "off")
        .value(values.expires)
        .inputmode("numeric")
        .hint("1 to 3650. Leave empty for a key that does not expire.")
        .optional();
    let problems = errors.apply(&mut [&mut name, &mut role, &mut expires]);
    let page = ListPage {
        layout: staff.layout("API keys"),
        rows,
        newest: after.map(|_| "/admin/api-keys".to_owned()),
        older,
        problems,
        name,
        role,
        expires,
    };
    html(status, &page)
}

pub async fn list(State(state): State<AppState>, staff: StaffUser, RawQuery(raw): RawQuery) -> Response {
    let q = query(raw);
    // A cursor that is not a key id is ignored (the first page is shown).
    let after = Some(q.get("starting_after")).filter(|a| ApiKeyId::parse("starting_after", a).is_ok());
    render_list(&state, &staff, after, KeyValues::default(), &Errors::default(), StatusCode::OK).await
}

#[derive(Template)]
#[template(path = "admin/api_key_created.html")]
struct CreatedPage {
    layout: Layout,
    name: String,
    role: &'static str,
    expires: String,
    secret: String,
}

/// Creates a key and shows its secret once, in this response (no
/// redirect: the secret must not travel in a cookie or a URL).
pub async fn create(State(state): State<AppState>, StaffForm { staff, form }: StaffForm) -> Response {
    let values = KeyValues {
        name: form.get("name").to_owned(),
        role: form.get("role").to_owned(),
        expires: form.get("expires_in_days").to_owned(),
    };
    let mut errors = Errors::default();
    if values.name.is_empty() {
        errors.add("name", "Enter a name for the key.");
    } else if values.name.chars().count() > 100 {
        errors.add("name", "Name must be at most 100 characters.");
    }
    let scope = KeyScope::parse("role", &values.role).ok();
    if scope.is_none() {
        errors.add("role", "Choose a role, or Publishable.");
    }
    let days = if values.expires.is_empty() {
        None
    } else {
        match values.expires.parse::<i64>() {
            Ok(d) if (1..=MAX_EXPIRY_DAYS).contains(&d) => Some(d),
            _ => {
                errors.add("expires_in_days", format!("Expires after must be a whole number of days from 1 to {MAX_EXPIRY_DAYS}, or empty."));
                None
            }
        }
    };
    let Some(scope) = scope.filter(|_| errors.is_empty()) else {
        return render_list(&state, &staff, None, values, &errors, StatusCode::UNPROCESSABLE_ENTITY).await;
    };
    let new = NewApiKey {
        name: values.name.clone(),
        scope,
        expires_at: days.map(|d| now_micros() + d * DAY_MICROS),
        rate_limit_per_min: None,
        created_by: Some(staff.user().id.clone()),
        creator_role: staff.user().role,
    };
    match state.app.create_scoped_api_key(new).await {
        Ok((row, secret)) => {
            let page = CreatedPage {
                layout: staff.layout("API key created"),
                name: row.name.clone(),
                role: scope.role().map_or("none (a publishable key: catalog, carts and checkout)", role_label),
                expires: when_or(row.expires_at, "Never"),
                secret,
            };
            let mut res = html(StatusCode::CREATED, &page);
            res.extensions_mut().insert(crate::audit::CreatedId(row.id.clone()));
            res
        }
        Err(e) => {
            let (field, status, message) = match &e {
                AppError::Invalid(i) if i.field == "name" => ("name", StatusCode::UNPROCESSABLE_ENTITY, sentence("name", &format!("name {}", i.message))),
                AppError::Forbidden { message } => ("role", StatusCode::FORBIDDEN, sentence("role", message)),
                _ => return error_page(&e),
            };
            errors.add(field, message);
            render_list(&state, &staff, None, values, &errors, status).await
        }
    }
}

pub async fn revoke(State(state): State<AppState>, Path(key_id): Path<String>, StaffForm { staff, .. }: StaffForm) -> Response {
    match state.app.revoke_api_key(&key_id, staff.user().role).await {
        Ok(row) => {
            // Requests with this key stop at once, not when the cache expires.
            state.keys.evict(&row.id);
            flash(&state, "/admin/api-keys", &format!("API key “{}” ({}) is revoked.", row.name, row.prefix))
        }
        Err(AppError::NotFound { .. }) => not_found("API key"),
        Err(e) => error_page(&e),
    }
}
