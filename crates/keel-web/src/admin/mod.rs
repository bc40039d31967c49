//! The admin console at `/admin`: staff sign-in (password, then TOTP or a
//! recovery code), two-factor enrolment, sign out (here or everywhere) and a
//! placeholder dashboard.
//!
//! Authorisation lives in extractor types: [`StaffUser`] loads the
//! `keel_admin` session (or redirects to sign-in) and checks the route's
//! [`Access`] from [`crate::access::admin_access`] against the user's role;
//! [`StaffForm`] is a `StaffUser` plus a form body that passed the CSRF
//! checks (same origin and the session's masked token), so no state-changing
//! handler can skip them. The sign-in form, which has no session yet, carries
//! a double-submit token tied to a short-lived `keel_admin_pre` cookie.

use crate::access::{admin_access, allows, Access};
use crate::storefront::csrf;
use crate::storefront::form::FormData;
use crate::storefront::session::cookie_value;
use crate::AppState;
use askama::Template;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, MatchedPath, Request, State};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine;
use keel_app::staff::{IssuedSession, SessionState, StaffSession, SESSION_ABSOLUTE_MICROS};
use keel_app::AppError;
use keel_domain::time::now_micros;
use rand::RngCore;
use std::net::SocketAddr;
use std::sync::LazyLock;

pub const COOKIE: &str = "keel_admin";
const PRE_COOKIE: &str = "keel_admin_pre";
const MAX_FORM: usize = 16 * 1024;

pub const STYLESHEET: &str = include_str!("../../static/admin.css");

static CSP: LazyLock<HeaderValue> = LazyLock::new(|| {
    let style = crate::storefront::style_source(STYLESHEET);
    HeaderValue::from_str(&format!(
        "default-src 'none'; style-src {style}; img-src 'self' data:; form-action 'self'; \
         frame-ancestors 'none'; base-uri 'none'"
    ))
    .expect("a valid header")
});

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin", get(dashboard))
        .route("/admin/login", get(login_page).post(login))
        .route("/admin/login/2fa", get(second_factor_page).post(second_factor))
        .route("/admin/2fa/setup", get(enrol_page).post(enrol))
        .route("/admin/logout", post(logout))
        .route("/admin/sessions/revoke-all", post(revoke_all))
        .layer(axum::middleware::map_response(admin_headers))
}

/// Every admin response: never cached, framed or sniffed; a strict CSP.
async fn admin_headers(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, CSP.clone());
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

// ------------------------------------------------------------- templates ---

#[derive(Template)]
#[template(path = "admin/login.html")]
struct LoginPage {
    title: &'static str,
    csrf: String,
    email: String,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "admin/second_factor.html")]
struct SecondFactorPage {
    title: &'static str,
    csrf: String,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "admin/enrol.html")]
struct EnrolPage {
    title: &'static str,
    csrf: String,
    qr_svg: String,
    secret: String,
    required: bool,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "admin/recovery_codes.html")]
struct RecoveryCodesPage {
    title: &'static str,
    codes: Vec<String>,
}

#[derive(Template)]
#[template(path = "admin/dashboard.html")]
struct DashboardPage {
    title: &'static str,
    email: String,
    role: &'static str,
    two_factor: bool,
    csrf: String,
}

#[derive(Template)]
#[template(path = "admin/message.html")]
struct MessagePage {
    title: &'static str,
    message: String,
    link: &'static str,
    link_text: &'static str,
}

fn html(status: StatusCode, t: &impl Template) -> Response {
    match t.render() {
        Ok(body) => (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "rendering an admin page failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

fn message(status: StatusCode, title: &'static str, message: impl Into<String>) -> Response {
    html(status, &MessagePage { title, message: message.into(), link: "/admin", link_text: "Back to the admin" })
}

fn server_error(e: &AppError) -> Response {
    tracing::error!(error = %e, cause = ?std::error::Error::source(e), "admin request failed");
    message(StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong", "The error has been logged. Try again.")
}

fn too_many(retry_after_secs: u64) -> Response {
    let mut r = message(
        StatusCode::TOO_MANY_REQUESTS,
        "Too many attempts",
        format!("Too many failed attempts. Try again in {retry_after_secs} seconds."),
    );
    r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
    r
}

fn see_other(location: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

fn with_cookie(mut r: Response, cookie: String) -> Response {
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

/// `keel_admin`: HttpOnly, SameSite=Strict, only sent to `/admin`, Secure
/// under https.
fn session_cookie(value: &str, max_age: i64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE}={value}; Path=/admin; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}")
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

fn client_ip(parts_ext: &axum::http::Extensions) -> String {
    parts_ext.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_string()).unwrap_or_default()
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

// ------------------------------------------------------------ extractors ---

/// A signed-in staff user allowed on this route (see the module docs).
/// Rejections: a redirect to sign-in (or to the second factor or enrolment
/// still due), or a 403 page.
pub struct StaffUser {
    pub session: StaffSession,
    /// The cookie token (to sign this session out).
    token: String,
}

impl StaffUser {
    pub fn user(&self) -> &keel_app::staff::StaffUser {
        &self.session.user
    }

    /// A fresh masked CSRF token for this session's forms.
    pub fn csrf_token(&self) -> String {
        csrf::token(&self.session.csrf_secret)
    }

    pub fn actor(&self) -> keel_app::Actor {
        self.session.user.actor()
    }
}

impl FromRequestParts<AppState> for StaffUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let path = parts.extensions.get::<MatchedPath>().map(|p| p.as_str().to_owned()).unwrap_or_default();
        let Some(access) = admin_access(&parts.method, &path) else {
            tracing::error!(route = path, "admin route has no access rule; refused");
            return Err(message(StatusCode::FORBIDDEN, "Not allowed", "This page is not open to anyone."));
        };
        let token = cookie_value(&parts.headers, COOKIE).unwrap_or_default();
        let session = match state.app.staff_session(&token, now_micros()).await {
            Ok(Some(s)) => s,
            Ok(None) => return Err(see_other("/admin/login")),
            Err(e) => return Err(server_error(&e)),
        };
        match session.state {
            SessionState::SignedIn => {}
            SessionState::SecondFactorDue => return Err(see_other("/admin/login/2fa")),
            SessionState::EnrolmentDue if path == "/admin/2fa/setup" => {}
            SessionState::EnrolmentDue => return Err(see_other("/admin/2fa/setup")),
        }
        if let Access::Needs(perm) = access {
            if !allows(session.user.role, perm) {
                return Err(message(
                    StatusCode::FORBIDDEN,
                    "Not allowed",
                    format!("Your role ({}) does not allow {}.", session.user.role.as_str(), perm.as_str()),
                ));
            }
        }
        Ok(StaffUser { session, token })
    }
}

/// A [`StaffUser`] and a form that passed both CSRF checks.
pub struct StaffForm {
    pub staff: StaffUser,
    pub form: FormData,
}

impl FromRequest<AppState> for StaffForm {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let staff = StaffUser::from_request_parts(&mut parts, state).await?;
        let body = axum::body::to_bytes(body, MAX_FORM)
            .await
            .map_err(|_| message(StatusCode::PAYLOAD_TOO_LARGE, "Form too large", "The form could not be accepted."))?;
        let form = FormData::parse(&body);
        if !csrf::same_origin(&parts.headers, &state.storefront) || !csrf::verify(&staff.session.csrf_secret, form.get("csrf")) {
            return Err(refused());
        }
        Ok(StaffForm { staff, form })
    }
}

fn refused() -> Response {
    message(StatusCode::FORBIDDEN, "Form expired", "This form could not be accepted. Go back, reload the page and try again.")
}

// -------------------------------------------------------------- handlers ---

fn login_form(state: &AppState, status: StatusCode, email: String, error: Option<String>) -> Response {
    let secret = random_secret();
    let page = LoginPage { title: "Sign in", csrf: csrf::token(&secret), email, error };
    with_cookie(html(status, &page), pre_cookie(&secret, 3600, state.storefront.secure_cookies))
}

async fn login_page(State(state): State<AppState>) -> Response {
    login_form(&state, StatusCode::OK, String::new(), None)
}

async fn login(State(state): State<AppState>, headers: HeaderMap, ext: axum::http::Extensions, body: Bytes) -> Response {
    let form = FormData::parse(&body);
    let pre = cookie_value(&headers, PRE_COOKIE).unwrap_or_default();
    if !csrf::same_origin(&headers, &state.storefront) || !csrf::verify(&pre, form.get("csrf")) {
        return refused();
    }
    let previous = cookie_value(&headers, COOKIE).filter(|t| !t.is_empty());
    let email = form.get("email").to_owned();
    match state.app.staff_sign_in(&email, form.raw("password"), &client_ip(&ext), previous.as_deref(), now_micros()).await {
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

async fn second_factor_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match pending(&state, &headers).await {
        Ok((_, s)) => html(StatusCode::OK, &SecondFactorPage { title: "Two-factor code", csrf: csrf::token(&s.csrf_secret), error: None }),
        Err(r) => r,
    }
}

async fn second_factor(State(state): State<AppState>, headers: HeaderMap, ext: axum::http::Extensions, body: Bytes) -> Response {
    let (token, session) = match pending(&state, &headers).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let form = FormData::parse(&body);
    if !csrf::same_origin(&headers, &state.storefront) || !csrf::verify(&session.csrf_secret, form.get("csrf")) {
        return refused();
    }
    match state.app.staff_second_factor(&token, form.get("code"), &client_ip(&ext), now_micros()).await {
        Ok(issued) => signed_in_response(&state, &issued),
        Err(AppError::BadCredentials) => html(
            StatusCode::UNAUTHORIZED,
            &SecondFactorPage {
                title: "Two-factor code",
                csrf: csrf::token(&session.csrf_secret),
                error: Some("That code is not correct, or was already used.".into()),
            },
        ),
        Err(AppError::TooManyAttempts { retry_after_secs }) => too_many(retry_after_secs),
        Err(e) => server_error(&e),
    }
}

async fn enrol_form(state: &AppState, staff: &StaffUser, status: StatusCode, error: Option<String>) -> Response {
    match state.app.totp_enrolment(&staff.user().id, now_micros()).await {
        Ok(e) => html(
            status,
            &EnrolPage {
                title: "Set up two-factor sign-in",
                csrf: staff.csrf_token(),
                qr_svg: e.qr_svg,
                secret: e.secret,
                required: staff.session.state == SessionState::EnrolmentDue,
                error,
            },
        ),
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
            let page = html(StatusCode::OK, &RecoveryCodesPage { title: "Two-factor is on", codes });
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

async fn dashboard(staff: StaffUser) -> Response {
    let u = staff.user();
    html(
        StatusCode::OK,
        &DashboardPage { title: "Dashboard", email: u.email.clone(), role: u.role.as_str(), two_factor: u.two_factor_enabled, csrf: staff.csrf_token() },
    )
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
