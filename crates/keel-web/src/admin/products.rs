//! Products: the list with search and status filter, the new-product form,
//! and (in `edit`, `images`) the product page with its variants and images.
//!
//! Prices are typed and shown in the shop currency (`KEEL_STORE_CURRENCY`);
//! prices a variant has in other currencies (set through the API) are kept
//! when its price is edited here.

mod edit;
mod images;

use super::paging::{page_number, Pager, PER_PAGE};
use super::{error_page, flash, html, query, Layout, StaffForm, StaffUser, MAX_UPLOAD};
use crate::access::{Access, AdminRoute, Permission};
use crate::media::{picture_html, Picture};
use crate::storefront::form::{Errors, Field, Problem};
use crate::storefront::{format_money, parse_amount};
use crate::AppState;
use askama::Template;
use axum::extract::{DefaultBodyLimit, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use keel_app::catalog::{NewProduct, PriceInput, ProductSummary, VariantInput, MAX_SEARCH_CHARS};
use keel_app::images::ImageView;
use keel_app::AppError;
use keel_domain::catalog::ProductStatus;
use std::collections::BTreeMap;

pub const ROUTES: &[AdminRoute] = &[
    ("GET", "/admin/products", Access::Needs(Permission::CatalogRead)),
    ("GET", "/admin/products/new", Access::Needs(Permission::CatalogWrite)),
    ("POST", "/admin/products/new", Access::Needs(Permission::CatalogWrite)),
    ("GET", "/admin/products/{product_id}", Access::Needs(Permission::CatalogRead)),
    ("POST", "/admin/products/{product_id}", Access::Needs(Permission::CatalogWrite)),
    ("POST", "/admin/products/{product_id}/archive", Access::Needs(Permission::CatalogWrite)),
    ("POST", "/admin/products/{product_id}/variants", Access::Needs(Permission::CatalogWrite)),
    ("POST", "/admin/products/{product_id}/variants/{variant_id}", Access::Needs(Permission::CatalogWrite)),
    ("POST", "/admin/products/{product_id}/images", Access::Needs(Permission::CatalogWrite)),
    ("POST", "/admin/products/{product_id}/images/{image_id}", Access::Needs(Permission::CatalogWrite)),
    ("POST", "/admin/products/{product_id}/images/{image_id}/delete", Access::Needs(Permission::CatalogWrite)),
];

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/products", get(list))
        .route("/admin/products/new", get(new_form).post(create))
        .route("/admin/products/{product_id}", get(edit::show).post(edit::update))
        .route("/admin/products/{product_id}/archive", post(edit::archive))
        .route("/admin/products/{product_id}/variants", post(edit::add_variant))
        .route("/admin/products/{product_id}/variants/{variant_id}", post(edit::update_variant))
        // The file plus the form's text fields.
        .route("/admin/products/{product_id}/images", post(images::upload).layer(DefaultBodyLimit::max(MAX_UPLOAD + 64 * 1024)))
        .route("/admin/products/{product_id}/images/{image_id}", post(images::update))
        .route("/admin/products/{product_id}/images/{image_id}/delete", post(images::delete))
}

/// The admin page of one product.
pub fn product_path(product_id: &str) -> String {
    format!("/admin/products/{product_id}")
}

/// The status in words, with its badge class.
fn status_words(status: ProductStatus) -> (&'static str, &'static str) {
    match status {
        ProductStatus::Active => ("Active", "ok"),
        ProductStatus::Draft => ("Draft", "muted"),
        ProductStatus::Archived => ("Archived", "bad"),
    }
}

fn parse_status(s: &str) -> Option<ProductStatus> {
    match s {
        "active" => Some(ProductStatus::Active),
        "draft" => Some(ProductStatus::Draft),
        "archived" => Some(ProductStatus::Archived),
        _ => None,
    }
}

/// The choices of a product's status select.
fn status_options(with_archived: bool) -> Vec<(String, String)> {
    let mut o = vec![("draft".to_owned(), "Draft".to_owned()), ("active".to_owned(), "Active".to_owned())];
    if with_archived {
        o.push(("archived".to_owned(), "Archived".to_owned()));
    }
    o
}

/// A small decorative thumbnail: the title stands beside it.
fn thumbnail(img: &ImageView) -> Option<String> {
    Picture::from_image(img).map(|p| picture_html(&p.with_alt(""), "4rem", false))
}

/// A price range in the shop currency: `$10.00`, `$10.00 – $25.00`, or
/// `No price`.
fn price_range(range: Option<(i64, i64)>, currency: &str) -> String {
    match range {
        None => "No price".to_owned(),
        Some((lo, hi)) if lo == hi => format_money(lo, currency),
        Some((lo, hi)) => format!("{} – {}", format_money(lo, currency), format_money(hi, currency)),
    }
}

/// A price as typed (`19.99`) in minor units, or the field's error.
fn parse_price(text: &str, currency: &str) -> Result<i64, String> {
    if text.is_empty() {
        return Err("Enter a price, such as 19.99".into());
    }
    parse_amount(text, currency).ok_or_else(|| format!("Enter a price in {currency} such as 19.99: digits, and at most the currency's decimals"))
}

/// Capitalises the first letter of a rule's message.
fn sentence(label: &str, invalid: &keel_domain::Invalid) -> String {
    match invalid.code {
        "required" => format!("Enter a {}", label.to_lowercase()),
        _ => format!("{label} {}", invalid.message),
    }
}

/// The form field, its label and the status for an error a catalog use case
/// returned; `field_of` maps the error's parameter to a form field. `None`
/// for errors no field explains.
fn field_error(e: &AppError, field_of: impl Fn(&str) -> (&'static str, &'static str)) -> Option<(&'static str, String, StatusCode)> {
    match e {
        AppError::Invalid(i) => {
            let (field, label) = field_of(&i.field);
            Some((field, sentence(label, i), StatusCode::UNPROCESSABLE_ENTITY))
        }
        AppError::Conflict { code: "duplicate_sku", param, .. } => {
            let (field, _) = field_of(param.as_deref().unwrap_or("sku"));
            Some((field, "This SKU is already used by another variant: enter a different one".into(), StatusCode::CONFLICT))
        }
        AppError::NotFound { resource: "sales_channel", param, .. } => {
            let (field, _) = field_of(param.as_deref().unwrap_or("channel_ids"));
            Some((field, "A chosen sales channel no longer exists: reload the page and choose again".into(), StatusCode::UNPROCESSABLE_ENTITY))
        }
        AppError::Conflict { code: "duplicate_handle", .. } => {
            Some(("handle", "This handle is already used by another product: enter a different one".into(), StatusCode::CONFLICT))
        }
        _ => None,
    }
}

/// A new variant's fields by the parameter a use case names (`sku`,
/// `prices[0].amount`, `title`, with or without a `variants[0].` prefix).
fn variant_field(param: &str) -> (&'static str, &'static str) {
    let p = param.strip_prefix("variants[0]").map_or(param, |r| r.trim_start_matches('.'));
    if p.starts_with("sku") {
        ("sku", "SKU")
    } else if p.starts_with("options") {
        ("options", "Options")
    } else if p.starts_with("prices") {
        ("price", "Price")
    } else {
        ("variant_title", "Variant title")
    }
}

/// A product's fields by parameter.
fn product_field(param: &str) -> (&'static str, &'static str) {
    if param.starts_with("variants") {
        return variant_field(param);
    }
    match param {
        "handle" => ("handle", "Handle"),
        "description" => ("description", "Description"),
        "status" => ("status", "Status"),
        "seo_title" => ("seo_title", "SEO title"),
        "seo_description" => ("seo_description", "SEO description"),
        p if p.starts_with("channel_ids") => ("channel_ids", "Sales channel"),
        _ => ("title", "Title"),
    }
}

/// Options as typed, `Size: M, Color: Blue`, or the field's error. The
/// use case bounds their number and lengths.
fn parse_options(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((name, value)) = part.split_once(':').map(|(n, v)| (n.trim(), v.trim())).filter(|(n, v)| !n.is_empty() && !v.is_empty()) else {
            return Err("Write each option as Name: value, separated by commas, such as Size: M, Color: Blue".into());
        };
        if out.insert(name.to_owned(), value.to_owned()).is_some() {
            return Err(format!("Give the option {name} once"));
        }
    }
    Ok(out)
}

/// Options as the form shows them: `Color: Blue, Size: M`.
fn options_text(options: &BTreeMap<String, String>) -> String {
    options.iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join(", ")
}

// ------------------------------------------------------------------ list ---

struct ProductRowView {
    href: String,
    thumbnail: Option<String>,
    title: String,
    handle: String,
    status: &'static str,
    status_class: &'static str,
    variants: usize,
    price: String,
    available: i64,
}

impl ProductRowView {
    fn new(p: ProductSummary, currency: &str) -> ProductRowView {
        let (status, status_class) = status_words(p.status);
        ProductRowView {
            href: product_path(&p.id),
            thumbnail: p.image.as_ref().and_then(thumbnail),
            title: p.title,
            handle: p.handle,
            status,
            status_class,
            variants: p.variant_count,
            price: price_range(p.price_range, currency),
            available: p.available,
        }
    }
}

#[derive(Template)]
#[template(path = "admin/products.html")]
struct ListPage {
    layout: Layout,
    can_create: bool,
    search: Field,
    status: Field,
    filtered: bool,
    currency: String,
    rows: Vec<ProductRowView>,
    pager: Pager,
}

async fn list(State(state): State<AppState>, staff: StaffUser, RawQuery(raw): RawQuery) -> Response {
    let q = query(raw);
    let page = page_number(Some(q.get("page")));
    let search: String = q.get("q").chars().take(MAX_SEARCH_CHARS).collect();
    // An unknown status shows every status, as "all" does.
    let status = parse_status(q.get("status"));
    let currency = state.storefront.currency.clone();
    let products = match state.app.product_summaries(status, &search, &currency, Pager::offset(page), PER_PAGE + 1).await {
        Ok(p) => p,
        Err(e) => return error_page(&e),
    };
    let has_next = products.len() as i64 > PER_PAGE;
    let rows = products.into_iter().take(PER_PAGE as usize).map(|p| ProductRowView::new(p, &currency)).collect();
    let status_value = status.map_or("", ProductStatus::as_str);
    let pager = Pager::new("/admin/products", &[("q", &search), ("status", status.map_or("", ProductStatus::as_str))], page, has_next);
    let mut options = vec![(String::new(), "All statuses".to_owned())];
    options.extend([("active", "Active"), ("draft", "Draft"), ("archived", "Archived")].map(|(v, l)| (v.to_owned(), l.to_owned())));
    let page = ListPage {
        layout: staff.layout("Products"),
        can_create: staff.can(Permission::CatalogWrite),
        search: Field::new("q", "Title, SKU or handle", "search", "off").value(search.clone()).optional(),
        status: Field::new("status", "Status", "select", "off").value(status_value).options(options).optional(),
        filtered: status.is_some() || !search.is_empty(),
        currency,
        rows,
        pager,
    };
    html(StatusCode::OK, &page)
}

// ------------------------------------------------------------------- new ---

#[derive(Default)]
struct NewValues {
    title: String,
    handle: String,
    description: String,
    status: String,
    sku: String,
    price: String,
    variant_title: String,
    options: String,
}

#[derive(Template)]
#[template(path = "admin/product_new.html")]
struct NewPage {
    layout: Layout,
    currency: String,
    problems: Vec<Problem>,
    title: Field,
    handle: Field,
    description: Field,
    status: Field,
    sku: Field,
    price: Field,
    variant_title: Field,
    options: Field,
}

fn render_new(state: &AppState, staff: &StaffUser, v: NewValues, errors: &Errors, status: StatusCode) -> Response {
    let mut title = Field::new("title", "Title", "text", "off").value(v.title);
    let mut handle = Field::new("handle", "Handle", "text", "off")
        .value(v.handle)
        .optional()
        .hint("Its store address, /products/handle. Made from the title when empty.");
    let mut description = Field::new("description", "Description", "textarea", "off").value(v.description).optional();
    let mut status_field = Field::new("status", "Status", "select", "off")
        .value(if v.status.is_empty() { "draft".to_owned() } else { v.status })
        .options(status_options(false))
        .hint("Draft: not in the store yet. Active: for sale.");
    let mut sku = Field::new("sku", "SKU", "text", "off")
        .value(v.sku)
        .hint("Letters, digits, '-', '_', '.', '/'; at most 64. Stock is kept under it; it cannot be changed later.");
    let mut price = Field::new("price", "Price", "text", "off").value(v.price).inputmode("decimal").hint("Such as 19.99.");
    let mut variant_title =
        Field::new("variant_title", "Variant title", "text", "off").value(v.variant_title).optional().hint("Such as Small; made from the options, or \"Default\", when empty.");
    let mut options =
        Field::new("options", "Options", "text", "off").value(v.options).optional().hint("Up to three, such as Size: S, Color: Blue.");
    let problems = errors.apply(&mut [
        &mut title,
        &mut handle,
        &mut description,
        &mut status_field,
        &mut sku,
        &mut price,
        &mut variant_title,
        &mut options,
    ]);
    let page = NewPage {
        layout: staff.layout("New product"),
        currency: state.storefront.currency.clone(),
        problems,
        title,
        handle,
        description,
        status: status_field,
        sku,
        price,
        variant_title,
        options,
    };
    html(status, &page)
}

async fn new_form(State(state): State<AppState>, staff: StaffUser) -> Response {
    render_new(&state, &staff, NewValues::default(), &Errors::default(), StatusCode::OK)
}

async fn create(State(state): State<AppState>, StaffForm { staff, form }: StaffForm) -> Response {
    let v = NewValues {
        title: form.get("title").to_owned(),
        handle: form.get("handle").to_owned(),
        description: form.get("description").to_owned(),
        status: form.get("status").to_owned(),
        sku: form.get("sku").to_owned(),
        price: form.get("price").to_owned(),
        variant_title: form.get("variant_title").to_owned(),
        options: form.get("options").to_owned(),
    };
    let currency = state.storefront.currency.clone();
    let mut errors = Errors::default();
    if v.title.is_empty() {
        errors.add("title", "Enter a title");
    }
    let status = parse_status(&v.status).filter(|s| *s != ProductStatus::Archived);
    if status.is_none() {
        errors.add("status", "Choose draft or active");
    }
    if v.sku.is_empty() {
        errors.add("sku", "Enter a SKU");
    }
    let price = parse_price(&v.price, &currency).map_err(|m| errors.add("price", m)).ok();
    let options = parse_options(&v.options).map_err(|m| errors.add("options", m)).unwrap_or_default();
    let (Some(status), Some(amount)) = (status, price) else {
        return render_new(&state, &staff, v, &errors, StatusCode::UNPROCESSABLE_ENTITY);
    };
    if !errors.is_empty() {
        return render_new(&state, &staff, v, &errors, StatusCode::UNPROCESSABLE_ENTITY);
    }
    let input = NewProduct {
        title: v.title.clone(),
        handle: Some(v.handle.clone()).filter(|h| !h.is_empty()),
        description: Some(v.description.clone()),
        status: Some(status),
        seo_title: None,
        seo_description: None,
        channel_ids: Vec::new(),
        variants: vec![VariantInput {
            sku: v.sku.clone(),
            title: Some(v.variant_title.clone()).filter(|t| !t.is_empty()),
            options,
            prices: vec![PriceInput { currency: currency.clone(), amount }],
            components: None,
        }],
    };
    match state.app.create_product(&staff.actor(), input).await {
        Ok(p) => flash(&state, &product_path(&p.id), &format!("Product created: {}.", p.title)),
        Err(e) => match field_error(&e, product_field) {
            Some((field, message, status)) => {
                errors.add(field, message);
                render_new(&state, &staff, v, &errors, status)
            }
            None => error_page(&e),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_and_fields_read_as_people_write_them() {
        assert_eq!(price_range(Some((1000, 1000)), "USD"), "$10.00");
        assert_eq!(price_range(Some((1000, 2550)), "USD"), "$10.00 – $25.50");
        assert_eq!(price_range(None, "USD"), "No price");
        assert_eq!(parse_price("19.99", "USD"), Ok(1999));
        assert!(parse_price("", "USD").is_err());
        assert!(parse_price("19.999", "USD").is_err());
        assert_eq!(product_field("variants[0].prices[0].amount").0, "price");
        assert_eq!(product_field("variants[0].sku").0, "sku");
        assert_eq!(product_field("variants[0].title").0, "variant_title");
        assert_eq!(product_field("handle").0, "handle");
        assert_eq!(variant_field("prices[0].currency").0, "price");
        assert_eq!(parse_status("archived"), Some(ProductStatus::Archived));
        assert_eq!(parse_status("all"), None);
        let o = parse_options(" Size: M , Color:Blue,").unwrap();
        assert_eq!(options_text(&o), "Color: Blue, Size: M");
        assert!(parse_options("").unwrap().is_empty());
        assert!(parse_options("Size M").is_err());
        assert!(parse_options("Size: M, Size: L").is_err());
        assert_eq!(variant_field("options.Size").0, "options");
    }
}
