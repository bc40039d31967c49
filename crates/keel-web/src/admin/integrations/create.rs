//! Adding a webhook endpoint or an inbound integration from the overview,
//! and rotating an endpoint's signing secret or an integration's
//! credential. The new secret is shown once, in the POST's own response
//! (no redirect: a secret must not travel in a cookie or a URL).

use super::{auth_words, endpoint_path, integration_path, kind_words, render_overview, when_text};
use crate::admin::{error_page, html, not_found, Layout, StaffForm, StaffUser};
use crate::storefront::form::{Errors, Field, FormData, Problem};
use crate::AppState;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use keel_app::feeds::{AuthMethod, IntegrationKind, IntegrationView, NewIntegration, SIGNATURE_TOLERANCE_SECS};
use keel_app::webhooks::NewWebhookEndpoint;
use keel_app::AppError;

const KINDS: &[(&str, IntegrationKind)] = &[
    ("3pl", IntegrationKind::ThreePl),
    ("erp", IntegrationKind::Erp),
    ("carrier", IntegrationKind::Carrier),
    ("payment_provider", IntegrationKind::PaymentProvider),
    ("other", IntegrationKind::Other),
];
const AUTHS: &[(&str, AuthMethod)] = &[("hmac", AuthMethod::Hmac), ("api_key", AuthMethod::ApiKey)];
/// The freshness SLA in minutes: up to 30 days.
const MAX_SLA_MINUTES: i64 = 30 * 24 * 60;
const MAX_EVENTS_TEXT: usize = 5000;

/// What was typed into the two add forms (empty for the one not sent).
pub struct Values {
    url: String,
    event_types: String,
    description: String,
    name: String,
    kind: String,
    auth: String,
    sla: String,
}

impl Default for Values {
    fn default() -> Values {
        Values {
            url: String::new(),
            event_types: String::new(),
            description: String::new(),
            name: String::new(),
            kind: String::new(),
            auth: "hmac".into(),
            sla: "15".into(),
        }
    }
}

fn bounded(form: &FormData, name: &str, max: usize) -> String {
    form.get(name).chars().take(max).collect()
}

/// The overview's two add forms, with their errors.
pub struct Forms {
    pub(super) problems: Vec<Problem>,
    pub(super) url: Field,
    pub(super) event_types: Field,
    pub(super) description: Field,
    pub(super) name: Field,
    pub(super) kind: Field,
    pub(super) auth: Field,
    pub(super) sla: Field,
}

impl Forms {
    pub fn new(v: Values, errors: &Errors) -> Forms {
        let mut url = Field::new("url", "Endpoint URL", "url", "url")
            .value(v.url)
            .hint("Where Keel sends each event, such as https://example.com/webhooks/keel. Public addresses only.");
        let mut event_types = Field::new("event_types", "Events", "text", "off")
            .value(v.event_types)
            .hint("Event types or families separated by commas or spaces, such as order.* inventory.level_changed. Leave empty for every event.")
            .optional();
        let mut description = Field::new("description", "Description", "text", "off")
            .value(v.description)
            .hint("What receives these events, such as “ERP order import”. At most 500 characters.")
            .optional();
        let mut name = Field::new("name", "Name", "text", "off").value(v.name).hint("Such as “Acme 3PL”. Each integration has its own name.");
        let mut kind = Field::new("kind", "Kind", "select", "off")
            .value(v.kind)
            .options(KINDS.iter().map(|(k, _)| ((*k).to_owned(), kind_words(k).to_owned())).collect());
        let mut auth = Field::new("auth", "Authentication", "select", "off")
            .value(v.auth)
            .options(AUTHS.iter().map(|(a, _)| ((*a).to_owned(), auth_words(a).to_owned())).collect())
            .hint("How the sending system proves it is this integration. Signed requests also protect the body.");
        let mut sla = Field::new("freshness_sla_minutes", "Expected every (minutes)", "number", "off")
            .value(v.sla)
            .inputmode("numeric")
            .hint("The integration is shown as stale when no good feed arrived for this long. 1 to 43200 (30 days).");
        let problems = errors.apply(&mut [&mut url, &mut event_types, &mut description, &mut name, &mut kind, &mut auth, &mut sla]);
        Forms { problems, url, event_types, description, name, kind, auth, sla }
    }
}

/// `order.*, inventory.level_changed` → the list the use case checks.
fn split_events(raw: &str) -> Vec<String> {
    raw.split(|c: char| c == ',' || c.is_whitespace()).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

/// The add-endpoint form's field a refusal of the use case names.
fn endpoint_problem(invalid: &keel_domain::Invalid) -> (&'static str, String) {
    let field = invalid.field.as_str();
    if field.starts_with("event_types") {
        return ("event_types", format!("Events: {}.", invalid.message.replace('`', "")));
    }
    match (field, invalid.code) {
        ("description", _) => ("description", format!("Description {}.", invalid.message)),
        (_, "url_not_allowed") => ("url", format!("Keel does not send webhooks to this URL: {}. Use a public address.", invalid.message.replace('`', ""))),
        (_, "too_long") => ("url", "The URL must be at most 2048 characters.".into()),
        _ => ("url", format!("Enter a full URL starting with https:// ({}).", invalid.message)),
    }
}

// -------------------------------------------------------- webhook secret ---

#[derive(Template)]
#[template(path = "admin/webhook_secret.html")]
struct WebhookSecretPage {
    layout: Layout,
    heading: &'static str,
    endpoint_id: String,
    endpoint_href: String,
    url: String,
    events: String,
    secret: String,
    /// Rotation: until when the previous secret also signs.
    previous_until: Option<String>,
}

/// Adds a webhook endpoint and shows its signing secret once.
pub async fn create_endpoint(State(state): State<AppState>, StaffForm { staff, form }: StaffForm) -> Response {
    let values = Values {
        url: bounded(&form, "url", 2100),
        event_types: bounded(&form, "event_types", MAX_EVENTS_TEXT + 1),
        description: bounded(&form, "description", 501),
        ..Values::default()
    };
    let mut errors = Errors::default();
    if values.url.trim().is_empty() {
        errors.add("url", "Enter the URL that receives the events.");
    }
    if values.event_types.chars().count() > MAX_EVENTS_TEXT {
        errors.add("event_types", format!("Events must be at most {MAX_EVENTS_TEXT} characters."));
    }
    if values.description.chars().count() > 500 {
        errors.add("description", "Description must be at most 500 characters.");
    }
    if !errors.is_empty() {
        return render_overview(&state, &staff, Forms::new(values, &errors), StatusCode::UNPROCESSABLE_ENTITY).await;
    }
    let description = Some(values.description.trim().to_owned()).filter(|d| !d.is_empty());
    let new = NewWebhookEndpoint {
        url: values.url.trim().to_owned(),
        description,
        event_types: Some(split_events(&values.event_types)),
        enabled: Some(true),
        rate_limit: None,
    };
    match state.app.create_webhook_endpoint(&staff.actor(), new).await {
        Ok(e) => {
            let page = WebhookSecretPage {
                layout: staff.layout("Webhook endpoint added"),
                heading: "Webhook endpoint added",
                endpoint_href: endpoint_path(&e.id),
                endpoint_id: e.id.clone(),
                events: if e.event_types.is_empty() { "Every event".into() } else { e.event_types.join(", ") },
                secret: e.secret.clone().unwrap_or_default(),
                previous_until: None,
                url: e.url,
            };
            let mut res = html(StatusCode::CREATED, &page);
            res.extensions_mut().insert(crate::audit::CreatedId(e.id));
            res
        }
        Err(AppError::Invalid(i)) => {
            let (field, message) = endpoint_problem(&i);
            errors.add(field, message);
            render_overview(&state, &staff, Forms::new(values, &errors), StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(e) => error_page(&e),
    }
}

/// A new signing secret, shown once; the previous one keeps signing
/// beside it for 24 hours.
pub async fn rotate_secret(State(state): State<AppState>, Path(id): Path<String>, StaffForm { staff, .. }: StaffForm) -> Response {
    let rotated = match state.app.rotate_webhook_secret(&staff.actor(), &id).await {
        Ok(s) => s,
        Err(AppError::NotFound { .. } | AppError::Invalid(_)) => return not_found("webhook endpoint"),
        Err(e) => return error_page(&e),
    };
    let e = match state.app.get_webhook_endpoint(&rotated.endpoint_id).await {
        Ok(e) => e,
        Err(e) => return error_page(&e),
    };
    let page = WebhookSecretPage {
        layout: staff.layout("Signing secret rotated"),
        heading: "Signing secret rotated",
        endpoint_href: endpoint_path(&e.id),
        endpoint_id: e.id.clone(),
        events: if e.event_types.is_empty() { "Every event".into() } else { e.event_types.join(", ") },
        secret: rotated.secret.clone(),
        previous_until: Some(when_text(rotated.previous_secret_expires_at.as_deref(), "24 hours from now")),
        url: e.url,
    };
    html(StatusCode::OK, &page)
}

// ---------------------------------------------------- integration secret ---

#[derive(Template)]
#[template(path = "admin/integration_credential.html")]
struct CredentialPage {
    layout: Layout,
    heading: &'static str,
    rotated: bool,
    integration_href: String,
    name: String,
    kind: &'static str,
    auth: &'static str,
    api_key: bool,
    credential: String,
    push_path: String,
    tolerance: i64,
}

fn credential_page(staff: &StaffUser, heading: &'static str, rotated: bool, i: IntegrationView) -> CredentialPage {
    CredentialPage {
        layout: staff.layout(heading),
        heading,
        rotated,
        integration_href: integration_path(&i.id),
        kind: kind_words(&i.kind),
        auth: auth_words(&i.auth),
        api_key: i.auth == "api_key",
        credential: i.credential.clone().unwrap_or_default(),
        push_path: i.push_path.clone(),
        tolerance: SIGNATURE_TOLERANCE_SECS,
        name: i.name,
    }
}

/// Registers an inbound integration and shows its credential once.
pub async fn create_integration(State(state): State<AppState>, StaffForm { staff, form }: StaffForm) -> Response {
    let values = Values {
        name: bounded(&form, "name", 101),
        kind: bounded(&form, "kind", 40),
        auth: bounded(&form, "auth", 40),
        sla: bounded(&form, "freshness_sla_minutes", 20),
        ..Values::default()
    };
    let mut errors = Errors::default();
    let name = values.name.trim();
    if name.is_empty() {
        errors.add("name", "Enter a name for the integration.");
    } else if values.name.chars().count() > 100 {
        errors.add("name", "Name must be at most 100 characters.");
    }
    let kind = KINDS.iter().find(|(k, _)| *k == values.kind).map(|(_, k)| *k);
    if kind.is_none() {
        errors.add("kind", "Choose the kind of system that sends the feeds.");
    }
    let auth = AUTHS.iter().find(|(a, _)| *a == values.auth).map(|(_, a)| *a);
    if auth.is_none() {
        errors.add("auth", "Choose how the integration authenticates.");
    }
    let sla = values.sla.trim().parse::<i64>().ok().filter(|m| (1..=MAX_SLA_MINUTES).contains(m));
    if sla.is_none() {
        errors.add("freshness_sla_minutes", format!("Expected every must be a whole number of minutes from 1 to {MAX_SLA_MINUTES}."));
    }
    let (Some(kind), Some(auth), Some(sla), true) = (kind, auth, sla, errors.is_empty()) else {
        return render_overview(&state, &staff, Forms::new(values, &errors), StatusCode::UNPROCESSABLE_ENTITY).await;
    };
    let new = NewIntegration {
        name: name.to_owned(),
        kind,
        freshness_sla_seconds: Some(sla * 60),
        auth: Some(auth),
        enabled: Some(true),
        pull: None,
    };
    match state.app.create_integration(&staff.actor(), new).await {
        Ok(i) => {
            let id = i.id.clone();
            let mut res = html(StatusCode::CREATED, &credential_page(&staff, "Inbound integration added", false, i));
            res.extensions_mut().insert(crate::audit::CreatedId(id));
            res
        }
        Err(AppError::Conflict { code: "duplicate_name", .. }) => {
            errors.add("name", format!("An integration named “{name}” exists already. Choose another name."));
            render_overview(&state, &staff, Forms::new(values, &errors), StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(AppError::Invalid(i)) => {
            let field = if i.field == "name" { "name" } else { "freshness_sla_minutes" };
            let label = if field == "name" { "Name" } else { "Expected every" };
            errors.add(field, format!("{label} {}.", i.message));
            render_overview(&state, &staff, Forms::new(values, &errors), StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(e) => error_page(&e),
    }
}

/// A new credential of the same kind, shown once; the old one stops
/// working at once.
pub async fn rotate_credential(State(state): State<AppState>, Path(id): Path<String>, StaffForm { staff, .. }: StaffForm) -> Response {
    match state.app.rotate_integration_credential(&staff.actor(), &id).await {
        Ok(i) => html(StatusCode::OK, &credential_page(&staff, "Credential rotated", true, i)),
        Err(AppError::NotFound { .. } | AppError::Invalid(_)) => not_found("integration"),
        Err(e) => error_page(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_on_commas_and_spaces() {
        assert_eq!(split_events(" order.*, inventory.level_changed\nproduct.created,,"), ["order.*", "inventory.level_changed", "product.created"]);
        assert!(split_events("  , ").is_empty());
    }
}
