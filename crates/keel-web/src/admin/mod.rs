//! The admin console at `/admin`, server-rendered and usable without
//! JavaScript.
//!
//! Every admin route passes one gate ([`gate`], a route layer): it looks the
//! route up in [`crate::access::admin_access`] (deny by default), loads the
//! `keel_admin` session, sends a session that still owes its second factor
//! or enrolment to that step, and checks the route's permission against the
//! user's role. Writes (any method but GET/HEAD) by a signed-in user are
//! appended to the audit log whether they were allowed or refused. Handlers
//! then take [`StaffUser`] (the session the gate admitted) or [`StaffForm`]
//! (that plus a form body that passed the CSRF checks: same origin and the
//! session's masked token) or [`StaffUpload`] (the same for a multipart
//! form with a file), so no state-changing handler can skip them.
//!
//! Pages extend `admin/base.html` and carry a [`Layout`] (title, navigation
//! for the user's role, the one-shot flash message); a handler that changed
//! something answers with [`flash`] (303 to the page to show next, with a
//! message). Lists page with [`paging::Pager`].

mod dashboard;
mod integrations;
mod inventory;
mod orders;
pub mod paging;
mod products;
mod signin;
mod staff;

use crate::access::{admin_access, allows, Access, AdminRoute, Permission};
use crate::storefront::csrf;
use crate::storefront::form::FormData;
use crate::storefront::session::cookie_value;
use crate::AppState;
use askama::Template;
use axum::extract::{FromRequest, FromRequestParts, MatchedPath, Request, State};
use axum::http::header::{self, HeaderValue};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::Engine;
use keel_app::staff::{SessionState, StaffSession};
use keel_app::AppError;
use keel_domain::time::now_micros;
use std::sync::LazyLock;

pub const COOKIE: &str = "keel_admin";
const FLASH_COOKIE: &str = "keel_admin_flash";
const MAX_FORM: usize = 16 * 1024;
const MAX_FLASH: usize = 300;

pub const STYLESHEET: &str = include_str!("../../static/admin.css");

static CSP: LazyLock<HeaderValue> = LazyLock::new(|| {
    let style = crate::storefront::style_source(STYLESHEET);
    HeaderValue::from_str(&format!(
        "default-src 'none'; style-src {style}; img-src 'self' data:; form-action 'self'; \
         frame-ancestors 'none'; base-uri 'none'"
    ))
    .expect("a valid header")
});

/// Every admin route with its access rule, by area; each area keeps its
/// table beside its router.
pub const ROUTES: &[&[AdminRoute]] =
    &[signin::ROUTES, dashboard::ROUTES, products::ROUTES, inventory::ROUTES, orders::ROUTES, integrations::ROUTES, staff::ROUTES];

pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .merge(signin::router())
        .merge(dashboard::router())
        .merge(products::router())
        .merge(inventory::router())
        .merge(orders::router())
        .merge(integrations::router())
        .merge(staff::router())
        .route_layer(axum::middleware::from_fn_with_state(state, gate))
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

// ------------------------------------------------------------------ gate ---

/// What the gate hands to the handler.
#[derive(Clone)]
struct Admitted {
    session: StaffSession,
    token: String,
    path: String,
    flash: Option<String>,
}

/// Routes open while enrolment is due: enrolling, and leaving.
const OPEN_DURING_ENROLMENT: &[&str] = &["/admin/2fa/setup", "/admin/logout"];

async fn gate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned()).unwrap_or_default();
    let Some(access) = admin_access(req.method(), &route) else {
        tracing::error!(route, "admin route has no access rule; refused");
        return message(StatusCode::FORBIDDEN, "Not allowed", "This page is not open to anyone.");
    };
    if access == Access::Public {
        return next.run(req).await;
    }
    let token = cookie_value(req.headers(), COOKIE).unwrap_or_default();
    let session = match state.app.staff_session(&token, now_micros()).await {
        Ok(Some(s)) => s,
        Ok(None) => return see_other("/admin/login"),
        Err(e) => return server_error(&e),
    };
    match session.state {
        SessionState::SignedIn => {}
        SessionState::SecondFactorDue => return see_other("/admin/login/2fa"),
        SessionState::EnrolmentDue if OPEN_DURING_ENROLMENT.contains(&route.as_str()) => {}
        SessionState::EnrolmentDue => return see_other("/admin/2fa/setup"),
    }
    let refusal = match access {
        Access::Needs(perm) if !allows(session.user.role, perm) => Some(perm),
        _ => None,
    };
    let flash = cookie_value(req.headers(), FLASH_COOKIE).and_then(|v| decode_flash(&v));
    let had_flash = cookie_value(req.headers(), FLASH_COOKIE).is_some();
    let actor = session.user.actor().0;
    let role = session.user.role;
    let path = req.uri().path().to_owned();
    req.extensions_mut().insert(Admitted { session, token, path, flash });
    let handle = |req: Request| async move {
        match refusal {
            None => next.run(req).await,
            Some(perm) => forbidden(role, perm),
        }
    };
    let mut res = if matches!(*req.method(), Method::GET | Method::HEAD) {
        handle(req).await
    } else {
        crate::audit::audited(&state, actor, req, handle).await
    };
    // A flash is shown once: by the first page rendered after it was set.
    if had_flash && !res.status().is_redirection() {
        append_cookie(&mut res, flash_cookie("", 0, state.storefront.secure_cookies));
    }
    res
}

fn forbidden(role: keel_domain::access::Role, perm: Permission) -> Response {
    message(StatusCode::FORBIDDEN, "Not allowed", format!("Your role ({}) does not allow {}.", role.as_str(), perm.as_str()))
}

// ------------------------------------------------------------ extractors ---

/// A signed-in staff user the gate admitted to this route. Rejection (only
/// when a handler on a public route asks for one): a 403 page.
pub struct StaffUser {
    pub session: StaffSession,
    /// The cookie token (to sign this session out).
    token: String,
    path: String,
    flash: Option<String>,
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

    pub fn can(&self, perm: Permission) -> bool {
        allows(self.session.user.role, perm)
    }

    /// Whom personal data on a page is shown to.
    pub fn viewer(&self) -> keel_app::privacy::Viewer {
        keel_app::privacy::Viewer::for_role(self.session.user.role)
    }

    /// The page chrome for a page titled `title`.
    pub fn layout(&self, title: impl Into<String>) -> Layout {
        let u = self.user();
        let nav = NAV
            .iter()
            .filter(|item| item.needs.is_none_or(|p| allows(u.role, p)))
            .map(|item| NavLink { href: item.href, label: item.label, current: item.is_current(&self.path) })
            .collect();
        Layout {
            title: title.into(),
            signed_in: true,
            email: u.email.clone(),
            role: u.role.as_str(),
            csrf: self.csrf_token(),
            nav,
            flash: self.flash.clone(),
        }
    }
}

impl FromRequestParts<AppState> for StaffUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &AppState) -> Result<Self, Self::Rejection> {
        match parts.extensions.remove::<Admitted>() {
            Some(a) => Ok(StaffUser { session: a.session, token: a.token, path: a.path, flash: a.flash }),
            None => Err(message(StatusCode::FORBIDDEN, "Not allowed", "This page is not open to anyone.")),
        }
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

/// The largest file a multipart form may carry (product images).
pub const MAX_UPLOAD: usize = keel_domain::images::MAX_UPLOAD_BYTES;
/// The token is short; anything longer is not one.
const MAX_CSRF_PART: usize = 512;

/// The file part of a multipart form.
pub enum UploadedFile {
    /// No file was chosen.
    Missing,
    /// Over [`MAX_UPLOAD`] bytes; reading stopped there.
    TooLarge,
    File { content_type: Option<String>, bytes: Vec<u8> },
}

/// A [`StaffUser`] and a `multipart/form-data` form (text fields and one
/// file) that passed the same CSRF checks as [`StaffForm`]. The token must
/// be the form's first part, so no file is read for a forged request. The
/// route needs a body limit above [`MAX_UPLOAD`].
pub struct StaffUpload {
    pub staff: StaffUser,
    pub form: FormData,
    pub file: UploadedFile,
}

impl FromRequest<AppState> for StaffUpload {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let staff = StaffUser::from_request_parts(&mut parts, state).await?;
        if !csrf::same_origin(&parts.headers, &state.storefront) {
            return Err(refused());
        }
        let unreadable = || message(StatusCode::BAD_REQUEST, "Form not accepted", "The form could not be read. Go back and try again.");
        let mut multipart = axum::extract::Multipart::from_request(Request::from_parts(parts, body), state).await.map_err(|_| unreadable())?;
        let token = match multipart.next_field().await {
            Ok(Some(f)) if f.name() == Some("csrf") => read_part(f, MAX_CSRF_PART).await.map_err(|_| refused())?,
            _ => return Err(refused()),
        };
        if !csrf::verify(&staff.session.csrf_secret, token.trim()) {
            return Err(refused());
        }
        let mut fields = Vec::new();
        let mut budget = MAX_FORM;
        let mut file = UploadedFile::Missing;
        while let Some(mut field) = multipart.next_field().await.map_err(|_| unreadable())? {
            let name = field.name().unwrap_or_default().to_owned();
            if field.file_name().is_none() {
                let text = read_part(field, budget)
                    .await
                    .map_err(|_| message(StatusCode::PAYLOAD_TOO_LARGE, "Form too large", "The form could not be accepted."))?;
                budget -= text.len();
                fields.push((name, text));
                continue;
            }
            if !matches!(file, UploadedFile::Missing) {
                continue; // one file per form; later ones are skipped
            }
            let content_type = field.content_type().map(str::to_owned);
            let mut bytes = Vec::new();
            loop {
                match field.chunk().await {
                    Ok(Some(chunk)) if bytes.len() + chunk.len() <= MAX_UPLOAD => bytes.extend_from_slice(&chunk),
                    Ok(Some(_)) => {
                        file = UploadedFile::TooLarge;
                        break;
                    }
                    Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                        file = UploadedFile::TooLarge;
                        break;
                    }
                    Ok(None) => break,
                    Err(_) => return Err(unreadable()),
                }
            }
            if matches!(file, UploadedFile::TooLarge) {
                break; // what follows is not read
            }
            if !bytes.is_empty() {
                file = UploadedFile::File { content_type, bytes };
            }
        }
        Ok(StaffUpload { staff, form: FormData::from_pairs(fields), file })
    }
}

/// A text part of at most `max` bytes.
async fn read_part(mut field: axum::extract::multipart::Field<'_>, max: usize) -> Result<String, ()> {
    let mut bytes = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(|_| ())? {
        if bytes.len() + chunk.len() > max {
            return Err(());
        }
        bytes.extend_from_slice(&chunk);
    }
    String::from_utf8(bytes).map_err(|_| ())
}

fn refused() -> Response {
    message(StatusCode::FORBIDDEN, "Form expired", "This form could not be accepted. Go back, reload the page and try again.")
}

// ---------------------------------------------------------------- layout ---

/// The chrome every admin page renders: `layout` in its template struct.
pub struct Layout {
    pub title: String,
    pub signed_in: bool,
    pub email: String,
    pub role: &'static str,
    pub csrf: String,
    pub nav: Vec<NavLink>,
    pub flash: Option<String>,
}

impl Layout {
    /// For the sign-in pages: no navigation, no user.
    pub fn public(title: impl Into<String>) -> Layout {
        Layout { title: title.into(), signed_in: false, email: String::new(), role: "", csrf: String::new(), nav: Vec::new(), flash: None }
    }
}

pub struct NavLink {
    pub href: &'static str,
    pub label: &'static str,
    pub current: bool,
}

struct NavItem {
    href: &'static str,
    label: &'static str,
    /// Shown only to roles holding this.
    needs: Option<Permission>,
    /// Other path prefixes that belong to this section.
    also: &'static [&'static str],
}

impl NavItem {
    fn is_current(&self, path: &str) -> bool {
        let under = |prefix: &str| path == prefix || path.strip_prefix(prefix).is_some_and(|r| r.starts_with('/'));
        if self.href == "/admin" {
            return path == "/admin";
        }
        under(self.href) || self.also.iter().any(|p| under(p))
    }
}

const NAV: &[NavItem] = &[
    NavItem { href: "/admin", label: "Dashboard", needs: None, also: &[] },
    NavItem { href: "/admin/products", label: "Products", needs: Some(Permission::CatalogRead), also: &[] },
    NavItem { href: "/admin/inventory", label: "Inventory", needs: Some(Permission::InventoryRead), also: &[] },
    NavItem { href: "/admin/orders", label: "Orders", needs: Some(Permission::OrdersRead), also: &[] },
    NavItem {
        href: "/admin/integrations",
        label: "Integrations",
        needs: Some(Permission::IntegrationsRead),
        also: &["/admin/webhook-endpoints", "/admin/webhook-messages", "/admin/sync-batches"],
    },
    NavItem { href: "/admin/users", label: "Users", needs: Some(Permission::StaffManage), also: &[] },
    NavItem { href: "/admin/api-keys", label: "API keys", needs: Some(Permission::ApiKeysManage), also: &[] },
    NavItem { href: "/admin/audit-log", label: "Audit log", needs: Some(Permission::AuditRead), also: &[] },
];

// ------------------------------------------------------------- responses ---

#[derive(Template)]
#[template(path = "admin/message.html")]
struct MessagePage {
    layout: Layout,
    message: String,
}

/// Renders a page (a template struct with a `layout`) with `status`.
pub fn html(status: StatusCode, t: &impl Template) -> Response {
    match t.render() {
        Ok(body) => (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "rendering an admin page failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// A page with just a heading, a message and a way back.
pub fn message(status: StatusCode, title: &'static str, message: impl Into<String>) -> Response {
    html(status, &MessagePage { layout: Layout::public(title), message: message.into() })
}

pub fn server_error(e: &AppError) -> Response {
    if let Some(outage) = e.outage() {
        return outage_page(outage, e);
    }
    tracing::error!(error = %e, cause = ?std::error::Error::source(e), "admin request failed");
    message(StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong", "The error has been logged. Try again.")
}

/// The database is full or unreachable: say so, with `Retry-After`.
fn outage_page(outage: keel_app::Outage, e: &AppError) -> Response {
    let (status, code, _, retry) = crate::error::outage_answer(outage);
    tracing::warn!(error = %e, cause = ?std::error::Error::source(e), code, "database outage");
    let text = match outage {
        keel_app::Outage::StorageFull => "The database has no space left, so nothing was saved. Try again once space is freed.",
        _ => "The database is unavailable, so nothing was saved. Try again shortly.",
    };
    let mut r = message(status, "Service unavailable", text);
    r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry));
    r
}

/// The page for an error a handler does not answer with a re-rendered form:
/// 404, 422 naming the field, 409, 403; anything else is logged as a 500.
pub fn error_page(e: &AppError) -> Response {
    match e {
        AppError::NotFound { resource, .. } => message(StatusCode::NOT_FOUND, "Not found", format!("There is no such {resource}.")),
        AppError::Invalid(i) => message(StatusCode::UNPROCESSABLE_ENTITY, "Not saved", format!("{}: {}", i.field, i.message)),
        AppError::Conflict { message: m, .. } | AppError::InProgress { message: m, .. } => {
            message(StatusCode::CONFLICT, "Not saved", m.clone())
        }
        AppError::Forbidden { message: m } => message(StatusCode::FORBIDDEN, "Not allowed", m.clone()),
        AppError::TooManyAttempts { retry_after_secs } => too_many(*retry_after_secs),
        _ => server_error(e),
    }
}

pub fn not_found(what: &str) -> Response {
    message(StatusCode::NOT_FOUND, "Not found", format!("There is no such {what}."))
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

pub fn see_other(location: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// After a change: 303 to `location`, whose page shows `text` once.
pub fn flash(state: &AppState, location: &str, text: &str) -> Response {
    let mut r = see_other(location);
    let text: String = text.chars().take(MAX_FLASH).collect();
    let value = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text.as_bytes());
    append_cookie(&mut r, flash_cookie(&value, 60, state.storefront.secure_cookies));
    r
}

fn decode_flash(v: &str) -> Option<String> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(v).ok()?;
    let s = String::from_utf8(bytes).ok()?;
    (!s.is_empty()).then(|| s.chars().take(MAX_FLASH).collect())
}

fn flash_cookie(value: &str, max_age: i64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{FLASH_COOKIE}={value}; Path=/admin; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}")
}

fn append_cookie(r: &mut Response, cookie: String) {
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
}

fn with_cookie(mut r: Response, cookie: String) -> Response {
    append_cookie(&mut r, cookie);
    r
}

/// `keel_admin`: HttpOnly, SameSite=Strict, only sent to `/admin`, Secure
/// under https.
fn session_cookie(value: &str, max_age: i64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE}={value}; Path=/admin; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}")
}

/// Formats a timestamp (µs since the epoch) for tables: `2026-12-02 07:51 UTC`.
pub fn when(micros: i64) -> String {
    keel_domain::time::format_utc_minutes(micros)
}

/// To the second, where several events may fall in one minute (delivery
/// attempts, audit entries): `2026-12-02 07:51:09 UTC`.
pub fn when_seconds(micros: i64) -> String {
    keel_domain::time::format_utc_seconds(micros)
}

/// A GET form's fields (a list's filters and `page`) from the query string.
pub fn query(raw: Option<String>) -> FormData {
    FormData::parse(raw.unwrap_or_default().as_bytes())
}
