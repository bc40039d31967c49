//! The OpenAPI 3.1 description of `/api/v1`, generated from the handlers.

use super::{apikeys, audit, carts, channels, collections, customers, events, health, images, inventory, locations, integrations, orders, products, reservations, shipping, webhooks};
use crate::error::{ErrorBody, ErrorEnvelope};
use axum::response::IntoResponse;
use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "Keel API", description = "The system of record for online selling. All POSTs accept an \
        `Idempotency-Key` header; lists use cursor pagination (`limit`, `starting_after`, `has_more`); errors \
        share one shape. URLs Keel will fetch (webhook endpoint `url`, integration `pull.url`) must be public http(s) \
        targets: others are refused with `422 url_not_allowed` on the field.", version = "1"),
    servers((url = "/api/v1")),
    paths(
        products::create, products::list, products::show, products::update, products::archive,
        products::add_variant, products::update_variant,
        channels::create, channels::list, channels::show, channels::update,
        locations::create, locations::list, locations::show, locations::update,
        inventory::adjust, inventory::transfer, inventory::levels, inventory::ledger,
        reservations::create, reservations::list, reservations::show, reservations::release, reservations::commit,
        events::list, events::show,
    ),
    components(schemas(ErrorEnvelope, ErrorBody)),
    modifiers(&BearerAuth),
    security(("api_key" = [])),
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("keel_sk_…").build()),
        );
    }
}

/// The whole document: the core paths above plus each later module's own
/// `Doc`, so modules add their paths without editing one shared list.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.merge(customers::Doc::openapi());
    doc.merge(carts::Doc::openapi());
    doc.merge(health::Doc::openapi());
    doc.merge(orders::Doc::openapi());
    doc.merge(shipping::Doc::openapi());
    doc.merge(webhooks::Doc::openapi());
    doc.merge(integrations::Doc::openapi());
    doc.merge(images::Doc::openapi());
    doc.merge(collections::Doc::openapi());
    doc.merge(apikeys::Doc::openapi());
    doc.merge(audit::Doc::openapi());
    name_operations(&mut doc);
    doc
}

/// Operation ids unique across the document, named for the resource path
/// and the handler: `products.list`, `products.images.create`,
/// `carts.complete` (handler names repeat from one resource to the next).
fn name_operations(doc: &mut utoipa::openapi::OpenApi) {
    for (path, item) in doc.paths.paths.iter_mut() {
        let literals: Vec<&str> = path.split('/').filter(|s| !s.is_empty() && !s.starts_with('{')).collect();
        let last = literals.last().map(|l| l.replace('-', "_"));
        for op in [&mut item.get, &mut item.post, &mut item.put, &mut item.delete, &mut item.patch, &mut item.head].into_iter().flatten() {
            let handler = op.operation_id.take().unwrap_or_default();
            let mut parts: Vec<String> = literals.iter().map(|s| s.to_string()).collect();
            if last.as_deref() != Some(handler.as_str()) {
                parts.push(handler);
            }
            op.operation_id = Some(parts.join("."));
        }
    }
}

pub async fn serve() -> impl IntoResponse {
    Json(document())
}
