//! Staff sign-in (password, then TOTP or a recovery code), two-factor
//! enrolment and sign out (here or everywhere). The sign-in form, which has
//! no session yet, carries a double-submit token tied to a short-lived
//! `keel_admin_pre` cookie.

use super::{html, see_other, server_error, session_cookie, too_many, with_cookie, Layout, StaffForm, StaffUser, COOKIE};
use crate::access::{Access, AdminRoute};
use crate::edge::ClientIp;
use crate::storefront::csrf;
use crate::storefront::form::FormData;
use crate::storefront::session::cookie_value;
use crate::AppState;
use askama::Template;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::HeaderMap;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use base64::Engine;
use keel_app::staff::{IssuedSession, SessionState, StaffSession, SESSION_ABSOLUTE_MICROS};
use keel_app::AppError;
use keel_domain::time::now_micros;
use rand::RngCore;

const PRE_COOKIE: &str = "keel_admin_pre";

pub const ROUTES: &[AdminRoute] = &[
    ("GET", "/admin/login", Access::Public),
    ("POST", "/admin/login", Access::Public),
    ("GET", "/admin/login/2fa", Access::Public),
    ("POST", "/admin/login/2fa", Access::Public),
    ("GET", "/admin/2fa/setup", Access::SignedIn),
    ("POST", "/admin/2fa/setup", Access::SignedIn),
    ("POST", "/admin/logout", Access::SignedIn),
    ("POST", "/admin/sessions/revoke-all", Access::SignedIn),
];

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/login", get(login_page).post(login))
        .route("/admin/login/2fa", get(second_factor_page).post(second_factor))
        .route("/admin/2fa/setup", get(enrol_page).post(enrol))
        .route("/admin/logout", post(logout))
        .route("/admin/sessions/revoke-all", post(revoke_all))
}

#[derive(Template)]
#[template(path = "admin/login.html")]
struct LoginPage {
    layout: Layout,
    csrf: String,
    email: String,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "admin/second_factor.html")]
struct SecondFactorPage {
    layout: Layout,
    csrf: String,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "admin/enrol.html")]
struct EnrolPage {
    layout: Layout,
    csrf: String,
    qr_svg: String,
    secret: String,
    required: bool,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "admin/recovery_codes.html")]
struct RecoveryCodesPage {
    layout: Layout,
    codes: Vec<String>,
}

fn pre_cookie(value: &str, max_age: i64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{PRE_COOKIE}={value}; Path=/admin/login; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}")
}

fn random_secret() -> String {
    let mut buf = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

/// Where a session in this state goes next.
fn next_for(state: SessionState) -> &'static str {
    match state {
        SessionState::SignedIn => "/admin",
        SessionState::SecondFactorDue => "/admin/login/2fa",
        SessionState::EnrolmentDue => "/admin/2fa/setup",
    }
}

fn signed_in_response(state: &AppState, issued: &IssuedSession) -> Response {
    let r = see_other(next_for(issued.session.state));
    let r = with_cookie(r, session_cookie(&issued.token, SESSION_ABSOLUTE_MICROS / 1_000_000, state.storefront.secure_cookies));
    with_cookie(r, pre_cookie("", 0, state.storefront.secure_cookies))
}

fn login_form(state: &AppState, status: StatusCode, email: String, error: Option<String>) -> Response {
    let secret = random_secret();
    let page = LoginPage { layout: Layout::public("Sign in"), csrf: csrf::token(&secret), email, error };
    with_cookie(html(status, &page), pre_cookie(&secret, 3600, state.storefront.secure_cookies))
}

async fn login_page(State(state): State<AppState>) -> Response {
    login_form(&state, StatusCode::OK, String::new(), None)
}

async fn login(State(state): State<AppState>, headers: HeaderMap, ip: ClientIp, body: Bytes) -> Response {
    let form = FormData::parse(&body);
    let pre = cookie_value(&headers, PRE_COOKIE).unwrap_or_default();
    if !csrf::same_origin(&headers, &state.storefront) || !csrf::verify(&pre, form.get("csrf")) {
        return super::refused();
    }
    let previous = cookie_value(&headers, COOKIE).filter(|t| !t.is_empty());
    let email = form.get("email").to_owned();
    match state.app.staff_sign_in(&email, form.raw("password"), &ip.text(), previous.as_deref(), now_micros()).await {
        Ok(issued) => signed_in_response(&state, &issued),
        Err(AppError::BadCredentials) => {
            login_form(&state, StatusCode::UNAUTHORIZED, email, Some("The email or password is not correct.".into()))
        }
        Err(AppError::TooManyAttempts { retry_after_secs }) => too_many(retry_after_secs),
        Err(e) => server_error(&e),
    }
}

/// The session waiting for its second factor, if the cookie holds one.
async fn pending(state: &AppState, headers: &HeaderMap) -> Result<(String, StaffSession), Response> {
    let token = cookie_value(headers, COOKIE).unwrap_or_default();
    match state.app.staff_session(&token, now_micros()).await {
        Ok(Some(s)) if s.state == SessionState::SecondFactorDue => Ok((token, s)),
        Ok(Some(s)) => Err(see_other(next_for(s.state))),
        Ok(None) => Err(see_other("/admin/login")),
        Err(e) => Err(server_error(&e)),
    }
}

fn second_factor_form(status: StatusCode, session: &StaffSession, error: Option<String>) -> Response {
    html(status, &SecondFactorPage { layout: Layout::public("Two-factor code"), csrf: csrf::token(&session.csrf_secret), error })
}

async fn second_factor_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match pending(&state, &headers).await {
        Ok((_, s)) => second_factor_form(StatusCode::OK, &s, None),
        Err(r) => r,
    }
}

async fn second_factor(State(state): State<AppState>, headers: HeaderMap, ip: ClientIp, body: Bytes) -> Response {
    let (token, session) = match pending(&state, &headers).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let form = FormData::parse(&body);
    if !csrf::same_origin(&headers, &state.storefront) || !csrf::verify(&session.csrf_secret, form.get("csrf")) {
        return super::refused();
    }
    match state.app.staff_second_factor(&token, form.get("code"), &ip.text(), now_micros()).await {
        Ok(issued) => signed_in_response(&state, &issued),
        Err(AppError::BadCredentials) => {
            second_factor_form(StatusCode::UNAUTHORIZED, &session, Some("That code is not correct, or was already used.".into()))
        }
        Err(AppError::TooManyAttempts { retry_after_secs }) => too_many(retry_after_secs),
        Err(e) => server_error(&e),
    }
}

async fn enrol_form(state: &AppState, staff: &StaffUser, status: StatusCode, error: Option<String>) -> Response {
    let required = staff.session.state == SessionState::EnrolmentDue;
    // While enrolment is due nothing else is open, so no navigation either.
    let layout = if required { Layout::public("Set up two-factor sign-in") } else { staff.layout("Set up two-factor sign-in") };
    match state.app.totp_enrolment(&staff.user().id, now_micros()).await {
        Ok(e) => html(status, &EnrolPage { layout, csrf: staff.csrf_token(), qr_svg: e.qr_svg, secret: e.secret, required, error }),
        Err(e) => server_error(&e),
    }
}

async fn enrol_page(State(state): State<AppState>, staff: StaffUser) -> Response {
    if staff.user().two_factor_enabled {
        return see_other("/admin");
    }
    enrol_form(&state, &staff, StatusCode::OK, None).await
}

async fn enrol(State(state): State<AppState>, StaffForm { staff, form }: StaffForm) -> Response {
    match state.app.confirm_totp_enrolment(&staff.user().id, form.get("code"), Some(&staff.session.id), now_micros()).await {
        Ok(codes) => {
            // A new token for the now two-factor session.
            let page = html(StatusCode::OK, &RecoveryCodesPage { layout: Layout::public("Two-factor is on"), codes });
            match state.app.staff_rotate_session(&staff.token, now_micros()).await {
                Ok(Some(issued)) => with_cookie(
                    page,
                    session_cookie(&issued.token, SESSION_ABSOLUTE_MICROS / 1_000_000, state.storefront.secure_cookies),
                ),
                Ok(None) => page,
                Err(e) => server_error(&e),
            }
        }
        Err(AppError::BadCredentials) => {
            enrol_form(&state, &staff, StatusCode::UNPROCESSABLE_ENTITY, Some("That code is not correct. Try the current one.".into())).await
        }
        Err(AppError::Conflict { .. }) => see_other("/admin"),
        Err(e) => server_error(&e),
    }
}

fn signed_out(state: &AppState) -> Response {
    with_cookie(see_other("/admin/login"), session_cookie("", 0, state.storefront.secure_cookies))
}

async fn logout(State(state): State<AppState>, StaffForm { staff, .. }: StaffForm) -> Response {
    match state.app.staff_sign_out(&staff.token).await {
        Ok(()) => signed_out(&state),
        Err(e) => server_error(&e),
    }
}

async fn revoke_all(State(state): State<AppState>, StaffForm { staff, .. }: StaffForm) -> Response {
    match state.app.staff_sign_out_everywhere(&staff.user().id).await {
        Ok(_) => signed_out(&state),
        Err(e) => server_error(&e),
    }
}
