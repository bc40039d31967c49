//! Storefront forms: the submitted fields, the model a template renders a
//! labelled field from, the error summary, and the guard every form POST of
//! the cart, checkout and account pages passes.

use super::session::Visitor;
use super::{csrf, respond, Cache, Page, Shell};
use crate::AppState;
use askama::Template;
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use keel_app::sessions::Session;

/// An `application/x-www-form-urlencoded` body.
pub struct FormData(Vec<(String, String)>);

impl FormData {
    pub fn parse(body: &[u8]) -> FormData {
        FormData(form_urlencoded::parse(body).into_owned().collect())
    }

    /// Fields read some other way (the text parts of a multipart form).
    pub fn from_pairs(pairs: Vec<(String, String)>) -> FormData {
        FormData(pairs)
    }

    /// The first value of `name`, trimmed; `""` when absent.
    pub fn get(&self, name: &str) -> &str {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.trim()).unwrap_or("")
    }

    /// The raw first value (passwords are not trimmed).
    pub fn raw(&self, name: &str) -> &str {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).unwrap_or("")
    }

    /// Every value of `name` (checkboxes sharing a name), trimmed.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0.iter().filter(move |(k, _)| k == name).map(|(_, v)| v.trim())
    }

    pub fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(k, _)| k == name)
    }
}

/// One labelled input (or select) with its hint and error.
pub struct Field {
    pub name: &'static str,
    pub label: &'static str,
    /// `text`, `email`, `password`, `number`, … or `select`.
    pub kind: &'static str,
    pub autocomplete: &'static str,
    pub value: String,
    pub required: bool,
    pub hint: Option<&'static str>,
    pub error: Option<String>,
    /// For a select: (value, label).
    pub options: Vec<(String, String)>,
    pub inputmode: &'static str,
}

impl Field {
    pub fn new(name: &'static str, label: &'static str, kind: &'static str, autocomplete: &'static str) -> Field {
        Field { name, label, kind, autocomplete, value: String::new(), required: true, hint: None, error: None, options: Vec::new(), inputmode: "" }
    }

    pub fn optional(mut self) -> Field {
        self.required = false;
        self
    }

    pub fn hint(mut self, hint: &'static str) -> Field {
        self.hint = Some(hint);
        self
    }

    pub fn value(mut self, value: impl Into<String>) -> Field {
        self.value = value.into();
        self
    }

    pub fn inputmode(mut self, mode: &'static str) -> Field {
        self.inputmode = mode;
        self
    }

    pub fn options(mut self, options: Vec<(String, String)>) -> Field {
        self.options = options;
        self
    }

    pub fn id(&self) -> String {
        format!("f-{}", self.name)
    }

    /// The ids of the hint and the error, for `aria-describedby`.
    pub fn describedby(&self) -> String {
        let mut ids = Vec::new();
        if self.hint.is_some() {
            ids.push(format!("f-{}-hint", self.name));
        }
        if self.error.is_some() {
            ids.push(format!("f-{}-error", self.name));
        }
        ids.join(" ")
    }

    pub fn is_selected(&self, option: &str) -> bool {
        self.value == option
    }

    /// Whether the options name their own "nothing chosen" (a filter's
    /// "All locations"), so the select needs no "Choose…" placeholder.
    pub fn has_blank_option(&self) -> bool {
        self.options.iter().any(|(v, _)| v.is_empty())
    }
}

/// One entry of the error summary: a message and where it points.
pub struct Problem {
    pub href: String,
    pub message: String,
}

/// The errors of one submitted form: by field, plus page-level ones that
/// link elsewhere (e.g. back to the cart).
#[derive(Default)]
pub struct Errors {
    fields: Vec<(String, String)>,
    links: Vec<Problem>,
}

impl Errors {
    pub fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        let field = field.into();
        if !self.fields.iter().any(|(f, _)| *f == field) {
            self.fields.push((field, message.into()));
        }
    }

    pub fn link(&mut self, href: impl Into<String>, message: impl Into<String>) {
        self.links.push(Problem { href: href.into(), message: message.into() });
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty() && self.links.is_empty()
    }

    pub fn get(&self, field: &str) -> Option<String> {
        self.fields.iter().find(|(f, _)| f == field).map(|(_, m)| m.clone())
    }

    /// Sets each field's error and returns their summary entries in field
    /// order.
    pub fn apply(&self, fields: &mut [&mut Field]) -> Vec<Problem> {
        let mut summary = Vec::new();
        for f in fields.iter_mut() {
            if let Some(m) = self.get(f.name) {
                summary.push(Problem { href: format!("#{}", f.id()), message: m.clone() });
                f.error = Some(m);
            }
        }
        summary
    }

    /// The summary entry for a field rendered by hand (a radio group).
    pub fn entry(&self, field: &str) -> Option<Problem> {
        self.get(field).map(|m| Problem { href: format!("#f-{field}"), message: m })
    }

    /// The page-level entries.
    pub fn links(&self) -> impl Iterator<Item = Problem> + '_ {
        self.links.iter().map(|p| Problem { href: p.href.clone(), message: p.message.clone() })
    }
}

/// A message for a refused value of the field labelled `label`.
pub fn message(label: &str, invalid: &keel_domain::Invalid) -> String {
    let lower = label.to_lowercase();
    match invalid.code {
        "required" => format!("Enter your {lower}"),
        "invalid_email" => "Enter an email address like name@example.com".into(),
        "invalid_country" => "Choose a country".into(),
        _ => format!("{label} {}", invalid.message),
    }
}

#[derive(Template)]
#[template(path = "storefront/form_refused.html")]
struct Refused {
    shell: Shell,
}

/// `403` for a form that failed the CSRF checks.
pub fn refused(headers: &HeaderMap) -> Response {
    let mut shell = Shell::new("Form expired", "This form could not be accepted.");
    shell.noindex = true;
    respond(headers, Page::render(&Refused { shell }, Cache::Private).status(StatusCode::FORBIDDEN))
}

/// Both CSRF checks for a form on the cart, checkout or account pages: the
/// request is same-origin and carries the session's token in `csrf`.
// The error is the refusal page the handler returns as is; it is built only
// on the refused path, so its size costs nothing on the accepted one.
#[allow(clippy::result_large_err)]
pub fn guard<'v>(state: &AppState, visitor: &'v Visitor, headers: &HeaderMap, form: &FormData) -> Result<&'v Session, Response> {
    if !csrf::same_origin(headers, &state.storefront) {
        return Err(refused(headers));
    }
    match visitor.session() {
        Some(s) if csrf::verify(&s.csrf_secret, form.get("csrf")) => Ok(s),
        _ => Err(refused(headers)),
    }
}

/// `303 See Other` to `location` (every successful POST ends with one).
pub fn see_other(location: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    r
}
