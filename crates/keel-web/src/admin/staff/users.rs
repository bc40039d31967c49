//! Staff users: the list with its status filter, adding a user (the
//! generated password shown once, in the POST's response), and one user's
//! page with its actions: change role, disable, enable, reset two-factor,
//! sign out everywhere.

use super::{grantable_roles, query, role_label, sentence, user_path, when_or};
use crate::admin::{error_page, flash, html, message, not_found, see_other, when, Layout, StaffForm, StaffUser};
use crate::storefront::form::{Errors, Field, Problem};
use crate::AppState;
use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use keel_app::staff::accounts::{StaffAccount, StaffAccountDetail, StaffFilter};
use keel_app::AppError;
use keel_domain::access::Role;
use keel_domain::time::now_micros;

/// What the add form says about a refused email.
fn email_message(invalid: &keel_domain::Invalid) -> String {
    match invalid.code {
        "required" => "Enter the new user's email address.".to_owned(),
        "invalid_email" => "Enter an email address like name@example.com.".to_owned(),
        _ => sentence("email", &format!("email {}", invalid.message)),
    }
}

/// "Active" / "Stale" / "Disabled", with its badge class.
fn status_words(a: &StaffAccount) -> (&'static str, &'static str) {
    if !a.is_active() {
        ("Disabled", "bad")
    } else if a.stale {
        ("Stale", "warn")
    } else {
        ("Active", "ok")
    }
}

fn filter_label(f: StaffFilter) -> &'static str {
    match f {
        StaffFilter::All => "All users",
        StaffFilter::Active => "Active",
        StaffFilter::Stale => "Stale (active but unused)",
        StaffFilter::Disabled => "Disabled",
    }
}

struct UserRowView {
    href: String,
    email: String,
    role: &'static str,
    two_factor: &'static str,
    last_sign_in: String,
    status: &'static str,
    status_class: &'static str,
    you: bool,
}

#[derive(Template)]
#[template(path = "admin/staff_users.html")]
struct ListPage {
    layout: Layout,
    filter: Field,
    filtered: bool,
    rows: Vec<UserRowView>,
    stale_days: u32,
    problems: Vec<Problem>,
    email: Field,
    role: Field,
}

async fn render_list(state: &AppState, staff: &StaffUser, filter: StaffFilter, email: String, role: String, errors: &Errors, status: StatusCode) -> Response {
    let accounts = match state.app.list_staff_users(filter, now_micros()).await {
        Ok(a) => a,
        Err(e) => return error_page(&e),
    };
    let me = &staff.user().id;
    let rows = accounts
        .iter()
        .map(|a| {
            let (status, status_class) = status_words(a);
            UserRowView {
                href: user_path(&a.user.id),
                email: a.user.email.clone(),
                role: role_label(a.user.role),
                two_factor: if a.user.two_factor_enabled { "On" } else { "Off" },
                last_sign_in: when_or(a.user.last_login_at, "Never"),
                status,
                status_class,
                you: a.user.id == *me,
            }
        })
        .collect();
    let filter_field = Field::new("status", "Show", "select", "off")
        .value(filter.as_str())
        .options(StaffFilter::ALL.into_iter().map(|f| (f.as_str().to_owned(), filter_label(f).to_owned())).collect())
        .optional();
    let mut email = Field::new("email", "Email", "email", "off").value(email);
    let mut role = Field::new("role", "Role", "select", "off")
        .value(role)
        .options(grantable_roles(staff.user().role))
        .hint("Only the roles you may grant are listed. See what each role may do on the Roles page.");
    let problems = errors.apply(&mut [&mut email, &mut role]);
    let page = ListPage {
        layout: staff.layout("Users"),
        filter: filter_field,
        filtered: filter != StaffFilter::All,
        rows,
        stale_days: state.app.staff.stale_after_days.max(1),
        problems,
        email,
        role,
    };
    html(status, &page)
}

pub async fn list(State(state): State<AppState>, staff: StaffUser, RawQuery(raw): RawQuery) -> Response {
    let q = query(raw);
    // An unknown filter value shows everyone rather than an error.
    let filter = StaffFilter::parse("status", q.get("status")).unwrap_or_default();
    render_list(&state, &staff, filter, String::new(), String::new(), &Errors::default(), StatusCode::OK).await
}

#[derive(Template)]
#[template(path = "admin/staff_user_added.html")]
struct AddedPage {
    layout: Layout,
    email: String,
    role: &'static str,
    href: String,
    password: String,
    two_factor_required: bool,
}

/// Adds a user with a generated password and shows that password once, in
/// this response (no redirect: it must not travel in a cookie or a URL).
pub async fn add(State(state): State<AppState>, StaffForm { staff, form }: StaffForm) -> Response {
    let email = form.get("email").to_owned();
    let role_raw = form.get("role").to_owned();
    let mut errors = Errors::default();
    if let Err(invalid) = keel_app::customers::email("email", &email) {
        errors.add("email", email_message(&invalid));
    }
    let role = match Role::parse("role", &role_raw) {
        Ok(r) => Some(r),
        Err(_) => {
            errors.add("role", "Choose a role.");
            None
        }
    };
    let Some(role) = role.filter(|_| errors.is_empty()) else {
        return render_list(&state, &staff, StaffFilter::All, email, role_raw, &errors, StatusCode::UNPROCESSABLE_ENTITY).await;
    };
    match state.app.add_staff_user(staff.user(), &email, role, now_micros()).await {
        Ok(created) => {
            let Some(password) = created.generated_password else {
                tracing::error!(user = %created.user.id, "a user added without a password has no generated one");
                return message(StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong", "The error has been logged.");
            };
            let page = AddedPage {
                layout: staff.layout("User added"),
                email: created.user.email.clone(),
                role: role_label(created.user.role),
                href: user_path(&created.user.id),
                password,
                two_factor_required: created.user.role.requires_two_factor() && state.app.staff.require_two_factor,
            };
            let mut res = html(StatusCode::CREATED, &page);
            res.extensions_mut().insert(crate::audit::CreatedId(created.user.id.clone()));
            res
        }
        Err(e) => {
            let (field, status, message) = match &e {
                AppError::Invalid(i) if i.field == "email" => ("email", StatusCode::UNPROCESSABLE_ENTITY, email_message(i)),
                AppError::Invalid(i) => ("role", StatusCode::UNPROCESSABLE_ENTITY, sentence(&i.field, &i.message)),
                AppError::Conflict { code: "email_taken", .. } => {
                    ("email", StatusCode::CONFLICT, "A staff user with this email already exists.".to_owned())
                }
                AppError::Forbidden { message } => ("role", StatusCode::FORBIDDEN, sentence("role", message)),
                _ => return error_page(&e),
            };
            errors.add(field, message);
            render_list(&state, &staff, StaffFilter::All, email, role_raw, &errors, status).await
        }
    }
}

// ------------------------------------------------------------ one user ---

#[derive(Template)]
#[template(path = "admin/staff_user.html")]
struct UserPage {
    layout: Layout,
    user_id: String,
    email: String,
    role: &'static str,
    status: &'static str,
    status_class: &'static str,
    two_factor: bool,
    unused_recovery_codes: i64,
    created: String,
    last_sign_in: String,
    reactivated: Option<String>,
    disabled: Option<String>,
    live_sessions: i64,
    stale_days: u32,
    is_self: bool,
    /// The signed-in user may grant this account's current role.
    can_manage: bool,
    active: bool,
    problems: Vec<Problem>,
    role_field: Field,
}

async fn detail(state: &AppState, user_id: &str) -> Result<StaffAccountDetail, Response> {
    match state.app.staff_account(user_id, now_micros()).await {
        Ok(Some(d)) => Ok(d),
        Ok(None) => Err(not_found("staff user")),
        Err(e) => Err(error_page(&e)),
    }
}

fn render_user(state: &AppState, staff: &StaffUser, d: StaffAccountDetail, role_value: Option<String>, errors: &Errors, status: StatusCode) -> Response {
    let a = &d.account;
    let by = staff.user().role;
    let (status_text, status_class) = status_words(a);
    let mut role_field = Field::new("role", "New role", "select", "off")
        .value(role_value.unwrap_or_else(|| a.user.role.as_str().to_owned()))
        .options(grantable_roles(by));
    let mut problems = errors.apply(&mut [&mut role_field]);
    problems.extend(errors.links());
    let page = UserPage {
        layout: staff.layout(format!("User {}", a.user.email)),
        user_id: a.user.id.clone(),
        email: a.user.email.clone(),
        role: role_label(a.user.role),
        status: status_text,
        status_class,
        two_factor: a.user.two_factor_enabled,
        unused_recovery_codes: d.unused_recovery_codes,
        created: when(a.created_at),
        last_sign_in: when_or(a.user.last_login_at, "Never"),
        reactivated: a.reactivated_at.map(when),
        disabled: a.disabled_at.map(when),
        live_sessions: d.live_sessions,
        stale_days: state.app.staff.stale_after_days.max(1),
        is_self: a.user.id == staff.user().id,
        can_manage: by.can_grant(a.user.role),
        active: a.is_active(),
        problems,
        role_field,
    };
    html(status, &page)
}

pub async fn show(State(state): State<AppState>, staff: StaffUser, Path(user_id): Path<String>) -> Response {
    match detail(&state, &user_id).await {
        Ok(d) => render_user(&state, &staff, d, None, &Errors::default(), StatusCode::OK),
        Err(r) => r,
    }
}

/// Where on the user page a refusal about `param` points.
fn anchor(param: &str) -> &'static str {
    match param {
        "role" => "#f-role",
        "two_factor" => "#two-factor",
        "sessions" => "#sessions",
        _ => "#status",
    }
}

/// The user page again after a refused action, with the refusal and its
/// status: 403 (not allowed), 409 (own account, last owner), 422.
async fn refused(state: &AppState, staff: &StaffUser, user_id: &str, e: AppError, param: &str, role_value: Option<String>) -> Response {
    let (status, field, message) = match &e {
        AppError::NotFound { .. } => return not_found("staff user"),
        AppError::Forbidden { message } => (StatusCode::FORBIDDEN, param.to_owned(), sentence(param, message)),
        AppError::Conflict { message, param: p, .. } => {
            let field = p.clone().unwrap_or_else(|| param.to_owned());
            (StatusCode::CONFLICT, field.clone(), sentence(&field, message))
        }
        AppError::Invalid(i) => (StatusCode::UNPROCESSABLE_ENTITY, param.to_owned(), sentence(&i.field, &i.message)),
        _ => return error_page(&e),
    };
    let message = format!("{message} Nothing was changed.");
    let d = match detail(state, user_id).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    // Without the action forms (one's own account, a role one may not
    // grant) the refusal points at the account's facts.
    let forms_shown = d.account.user.id != staff.user().id && staff.user().role.can_grant(d.account.user.role);
    let mut errors = Errors::default();
    match field.as_str() {
        "role" if forms_shown => errors.add("role", message),
        f if forms_shown => errors.link(anchor(f), message),
        _ => errors.link("#account", message),
    }
    render_user(state, staff, d, role_value, &errors, status)
}

pub async fn change_role(State(state): State<AppState>, Path(user_id): Path<String>, StaffForm { staff, form }: StaffForm) -> Response {
    let role_raw = form.get("role").to_owned();
    let role = match Role::parse("role", &role_raw) {
        Ok(r) => r,
        Err(_) => {
            let d = match detail(&state, &user_id).await {
                Ok(d) => d,
                Err(r) => return r,
            };
            let mut errors = Errors::default();
            errors.add("role", "Choose a role.");
            return render_user(&state, &staff, d, Some(role_raw), &errors, StatusCode::UNPROCESSABLE_ENTITY);
        }
    };
    match state.app.change_staff_role(staff.user(), &user_id, role, now_micros()).await {
        Ok(a) => flash(&state, &user_path(&a.user.id), &format!("{} is now {}.", a.user.email, role_label(a.user.role))),
        Err(e) => refused(&state, &staff, &user_id, e, "role", Some(role_raw)).await,
    }
}

pub async fn disable(State(state): State<AppState>, Path(user_id): Path<String>, StaffForm { staff, .. }: StaffForm) -> Response {
    match state.app.disable_staff_user(staff.user(), &user_id, now_micros()).await {
        Ok(a) => flash(&state, &user_path(&a.user.id), &format!("{} is disabled and signed out everywhere.", a.user.email)),
        Err(e) => refused(&state, &staff, &user_id, e, "status", None).await,
    }
}

pub async fn enable(State(state): State<AppState>, Path(user_id): Path<String>, StaffForm { staff, .. }: StaffForm) -> Response {
    match state.app.enable_staff_user(staff.user(), &user_id, now_micros()).await {
        Ok(a) => flash(&state, &user_path(&a.user.id), &format!("{} is enabled and can sign in again.", a.user.email)),
        Err(e) => refused(&state, &staff, &user_id, e, "status", None).await,
    }
}

pub async fn reset_two_factor(State(state): State<AppState>, Path(user_id): Path<String>, StaffForm { staff, .. }: StaffForm) -> Response {
    match state.app.reset_staff_two_factor(staff.user(), &user_id, now_micros()).await {
        Ok(a) => flash(
            &state,
            &user_path(&a.user.id),
            &format!("Two-factor of {} is reset: they set it up again at their next sign-in.", a.user.email),
        ),
        Err(e) => refused(&state, &staff, &user_id, e, "two_factor", None).await,
    }
}

pub async fn sign_out(State(state): State<AppState>, Path(user_id): Path<String>, StaffForm { staff, .. }: StaffForm) -> Response {
    match state.app.end_staff_sessions(staff.user(), &user_id, now_micros()).await {
        // One's own sessions include this one: back to the sign-in page.
        Ok(a) if a.user.id == staff.user().id => see_other("/admin/login"),
        Ok(a) => flash(&state, &user_path(&a.user.id), &format!("{} is signed out everywhere.", a.user.email)),
        Err(e) => refused(&state, &staff, &user_id, e, "sessions", None).await,
    }
}
