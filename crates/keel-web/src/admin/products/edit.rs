//! One product's page: its details form, the variants table (a form per
//! variant and one to add a variant), its images, and the archive button.
//! A refused form re-renders the whole page with that form's values and
//! errors; the other forms show the stored values.

use super::{
    field_error, options_text, parse_options, parse_price, parse_status, product_field, product_path, status_options, status_words,
    variant_field,
};
use crate::admin::{error_page, flash, html, not_found, Layout, StaffForm, StaffUser};
use crate::access::Permission;
use crate::media::{picture_html, Picture};
use crate::storefront::form::{Errors, Field, Problem};
use crate::storefront::{decimal_amount, format_money};
use crate::AppState;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use keel_app::catalog::{PriceInput, ProductChanges, ProductOverview, VariantChanges, VariantInput};
use keel_app::views::VariantView;
use keel_app::AppError;
use keel_domain::catalog::ProductStatus;

/// The details form as submitted.
pub struct DetailsValues {
    title: String,
    handle: String,
    description: String,
    status: String,
    seo_title: String,
    seo_description: String,
    /// Ids of the sales channels ticked.
    channels: Vec<String>,
}

/// A variant form as submitted.
#[derive(Default)]
pub struct VariantValues {
    sku: String,
    title: String,
    options: String,
    price: String,
    archived: bool,
}

/// What a refused form left to show again: its values and errors. Errors of
/// the variant, image and upload forms use the names `edit_title`,
/// `edit_price`, `image_alt`, `file` and `alt`.
#[derive(Default)]
pub struct Edits {
    pub details: Option<DetailsValues>,
    /// (variant id, values) of the variant form that was refused.
    pub variant: Option<(String, VariantValues)>,
    pub new_variant: VariantValues,
    /// (image id, alt text) of the alt form that was refused.
    pub image_alt: Option<(String, String)>,
    pub upload_alt: String,
    pub errors: Errors,
}

struct VariantRowView {
    id: String,
    sku: String,
    sku_query: String,
    title: String,
    options: String,
    price: String,
    /// The price input's value (`19.99`).
    price_value: String,
    /// Prices in other currencies, shown beside (`€9.00`).
    other_prices: String,
    available: i64,
    archived: bool,
    title_error: Option<String>,
    options_error: Option<String>,
    price_error: Option<String>,
}

/// A sales channel checkbox.
struct ChannelOption {
    id: String,
    name: String,
    checked: bool,
}

struct ImageRowView {
    id: String,
    picture: String,
    alt: String,
    size: String,
    alt_error: Option<String>,
}

#[derive(Template)]
#[template(path = "admin/product.html")]
struct ProductPage {
    layout: Layout,
    product_id: String,
    heading: String,
    status: &'static str,
    status_class: &'static str,
    store_href: Option<String>,
    archived: bool,
    can_write: bool,
    currency: String,
    problems: Vec<Problem>,
    title: Field,
    handle: Field,
    description: Field,
    product_status: Field,
    seo_title: Field,
    seo_description: Field,
    channels: Vec<ChannelOption>,
    /// The product's channels, in words, for readers.
    channel_names: String,
    variants: Vec<VariantRowView>,
    new_sku: Field,
    new_title: Field,
    new_options: Field,
    new_price: Field,
    images: Vec<ImageRowView>,
    upload_alt: Field,
    file_error: Option<String>,
}

pub async fn overview(state: &AppState, product_id: &str) -> Result<ProductOverview, Response> {
    match state.app.product_overview(product_id).await {
        Ok(o) => Ok(o),
        Err(AppError::NotFound { .. } | AppError::Invalid(_)) => Err(not_found("product")),
        Err(e) => Err(error_page(&e)),
    }
}

fn price_in(v: &VariantView, currency: &str) -> Option<i64> {
    v.prices.iter().find(|p| p.currency == currency).map(|p| p.amount)
}

/// Channels the details form offers: the live ones and any archived one the
/// product is in.
async fn channel_list(state: &AppState, product_channels: &[String]) -> Result<Vec<(String, String)>, Response> {
    let page = state.app.list_channels(None, Some(100)).await.map_err(|e| error_page(&e))?;
    Ok(page
        .data
        .into_iter()
        .filter(|c| !c.archived || product_channels.contains(&c.id))
        .map(|c| (c.id, if c.archived { format!("{} (archived)", c.name) } else { c.name }))
        .collect())
}

pub async fn render(state: &AppState, staff: &StaffUser, o: ProductOverview, edits: Edits, status: StatusCode) -> Response {
    let channel_list = match channel_list(state, &o.product.channel_ids).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let currency = state.storefront.currency.as_str();
    let p = &o.product;
    let product_status = ProductStatus::from_db(&p.status);
    let errors = &edits.errors;
    let d = edits.details.unwrap_or_else(|| DetailsValues {
        title: p.title.clone(),
        handle: p.handle.clone(),
        description: p.description.clone().unwrap_or_default(),
        status: p.status.clone(),
        seo_title: p.seo_title.clone().unwrap_or_default(),
        seo_description: p.seo_description.clone().unwrap_or_default(),
        channels: p.channel_ids.clone(),
    });
    let channel_names = channel_list.iter().filter(|(id, _)| p.channel_ids.contains(id)).map(|(_, n)| n.clone()).collect::<Vec<_>>().join(", ");
    let channels = channel_list.into_iter().map(|(id, name)| ChannelOption { checked: d.channels.contains(&id), id, name }).collect();
    let mut title = Field::new("title", "Title", "text", "off").value(d.title);
    let mut handle = Field::new("handle", "Handle", "text", "off")
        .value(d.handle)
        .hint("Its store address, /products/handle; old links break if it changes.");
    let mut description = Field::new("description", "Description", "textarea", "off").value(d.description).optional();
    let mut status_field = Field::new("status", "Status", "select", "off")
        .value(d.status)
        .options(status_options(true))
        .hint("Only active products are shown and sold in the store.");
    let mut seo_title = Field::new("seo_title", "SEO title", "text", "off")
        .value(d.seo_title)
        .optional()
        .hint("The page title search engines show; the title when empty.");
    let mut seo_description = Field::new("seo_description", "SEO description", "textarea", "off")
        .value(d.seo_description)
        .optional()
        .hint("The summary search engines show; at most 1000 characters.");
    let nv = edits.new_variant;
    let mut new_sku = Field::new("sku", "SKU", "text", "off").value(nv.sku).hint("Fixed once saved; stock is kept under it.");
    let mut new_title = Field::new("variant_title", "Variant title", "text", "off").value(nv.title).optional().hint("Such as Large or Red.");
    let mut new_options = Field::new("options", "Options", "text", "off")
        .value(nv.options)
        .optional()
        .hint("Up to three, such as Size: L, Color: Red.");
    let mut new_price = Field::new("price", "Price", "text", "off").value(nv.price).inputmode("decimal").hint("Such as 19.99.");
    let mut upload_alt = Field::new("alt", "Alt text", "text", "off")
        .value(edits.upload_alt)
        .optional()
        .hint("What the picture shows, for people who cannot see it; empty for a purely decorative picture.");
    // The summary lists problems in page order.
    let mut problems =
        errors.apply(&mut [&mut title, &mut handle, &mut description, &mut status_field, &mut seo_title, &mut seo_description]);
    problems.extend(errors.entry("channel_ids"));
    let variants: Vec<VariantRowView> = p
        .variants
        .iter()
        .map(|v| {
            let stored = price_in(v, currency);
            let mut row = VariantRowView {
                id: v.id.clone(),
                sku: v.sku.clone(),
                sku_query: form_urlencoded::byte_serialize(v.sku.as_bytes()).collect(),
                title: v.title.clone(),
                options: options_text(&v.options),
                price: stored.map_or_else(|| "No price".to_owned(), |a| format_money(a, currency)),
                price_value: stored.map(|a| decimal_amount(a, currency)).unwrap_or_default(),
                other_prices: v
                    .prices
                    .iter()
                    .filter(|pr| pr.currency != currency)
                    .map(|pr| format_money(pr.amount, &pr.currency))
                    .collect::<Vec<_>>()
                    .join(", "),
                available: o.available.get(&v.id).copied().unwrap_or(0),
                archived: v.archived,
                title_error: None,
                options_error: None,
                price_error: None,
            };
            if let Some((id, values)) = &edits.variant {
                if *id == v.id {
                    row.title = values.title.clone();
                    row.options = values.options.clone();
                    row.price_value = values.price.clone();
                    row.archived = values.archived;
                    row.title_error = errors.get("edit_title");
                    row.options_error = errors.get("edit_options");
                    row.price_error = errors.get("edit_price");
                }
            }
            row
        })
        .collect();
    for v in &variants {
        for (error, which) in [(&v.title_error, "title"), (&v.options_error, "options"), (&v.price_error, "price")] {
            if let Some(m) = error {
                problems.push(Problem { href: format!("#v-{}-{which}", v.id), message: m.clone() });
            }
        }
    }
    problems.extend(errors.apply(&mut [&mut new_sku, &mut new_title, &mut new_options, &mut new_price]));
    let images: Vec<ImageRowView> = o
        .images
        .iter()
        .map(|img| {
            let mut alt = img.alt.clone();
            let mut alt_error = None;
            if let Some((id, value)) = &edits.image_alt {
                if *id == img.id {
                    alt = value.clone();
                    alt_error = errors.get("image_alt");
                }
            }
            ImageRowView {
                id: img.id.clone(),
                // The alt text is beside the picture, in its own field.
                picture: Picture::from_image(img).map(|pic| picture_html(&pic.with_alt(""), "10rem", false)).unwrap_or_default(),
                alt,
                size: format!("{} × {} px, {}", img.width, img.height, img.format.to_uppercase()),
                alt_error,
            }
        })
        .collect();
    for img in &images {
        if let Some(m) = &img.alt_error {
            problems.push(Problem { href: format!("#alt-{}", img.id), message: m.clone() });
        }
    }
    let file_error = errors.get("file");
    problems.extend(errors.entry("file"));
    problems.extend(errors.apply(&mut [&mut upload_alt]));
    let (status_text, status_class) = status_words(product_status);
    let page = ProductPage {
        layout: staff.layout(p.title.clone()),
        product_id: p.id.clone(),
        heading: p.title.clone(),
        status: status_text,
        status_class,
        store_href: (product_status == ProductStatus::Active).then(|| format!("/products/{}", p.handle)),
        archived: product_status == ProductStatus::Archived,
        can_write: staff.can(Permission::CatalogWrite),
        currency: currency.to_owned(),
        problems,
        title,
        handle,
        description,
        product_status: status_field,
        seo_title,
        seo_description,
        channels,
        channel_names,
        variants,
        new_sku,
        new_title,
        new_options,
        new_price,
        images,
        upload_alt,
        file_error,
    };
    html(status, &page)
}

pub async fn show(State(state): State<AppState>, staff: StaffUser, Path(product_id): Path<String>) -> Response {
    match overview(&state, &product_id).await {
        Ok(o) => render(&state, &staff, o, Edits::default(), StatusCode::OK).await,
        Err(r) => r,
    }
}

/// Re-reads the product and shows the page with a refused form.
pub async fn refused(state: &AppState, staff: &StaffUser, product_id: &str, edits: Edits, status: StatusCode) -> Response {
    match overview(state, product_id).await {
        Ok(o) => render(state, staff, o, edits, status).await,
        Err(r) => r,
    }
}

pub async fn update(State(state): State<AppState>, Path(product_id): Path<String>, StaffForm { staff, form }: StaffForm) -> Response {
    let d = DetailsValues {
        title: form.get("title").to_owned(),
        handle: form.get("handle").to_owned(),
        description: form.get("description").to_owned(),
        status: form.get("status").to_owned(),
        seo_title: form.get("seo_title").to_owned(),
        seo_description: form.get("seo_description").to_owned(),
        channels: form.all("channel_ids").map(str::to_owned).collect(),
    };
    let mut errors = Errors::default();
    if d.title.is_empty() {
        errors.add("title", "Enter a title");
    }
    if d.handle.is_empty() {
        errors.add("handle", "Enter a handle");
    }
    let status = parse_status(&d.status);
    if status.is_none() {
        errors.add("status", "Choose a status");
    }
    if !errors.is_empty() {
        return refused(&state, &staff, &product_id, Edits { details: Some(d), errors, ..Default::default() }, StatusCode::UNPROCESSABLE_ENTITY).await;
    }
    // Channels the form offered are set as ticked; any it did not offer
    // (past the first 100) are kept.
    let shown: Vec<&str> = form.all("channel_shown").collect();
    let channel_ids = if shown.is_empty() {
        None
    } else {
        let current = match overview(&state, &product_id).await {
            Ok(o) => o.product.channel_ids,
            Err(r) => return r,
        };
        let mut ids: Vec<String> = current.into_iter().filter(|c| !shown.contains(&c.as_str())).collect();
        ids.extend(d.channels.iter().filter(|c| shown.contains(&c.as_str())).cloned());
        Some(ids)
    };
    let changes = ProductChanges {
        title: Some(d.title.clone()),
        handle: Some(d.handle.clone()),
        description: Some(d.description.clone()),
        status,
        seo_title: Some(d.seo_title.clone()),
        seo_description: Some(d.seo_description.clone()),
        channel_ids,
    };
    match state.app.update_product(&staff.actor(), &product_id, changes).await {
        Ok(p) => flash(&state, &product_path(&p.id), "Product saved."),
        Err(AppError::NotFound { resource: "product", .. }) => not_found("product"),
        Err(e) => match field_error(&e, product_field) {
            Some((field, message, status)) => {
                errors.add(field, message);
                refused(&state, &staff, &product_id, Edits { details: Some(d), errors, ..Default::default() }, status).await
            }
            None => error_page(&e),
        },
    }
}

pub async fn archive(State(state): State<AppState>, Path(product_id): Path<String>, StaffForm { staff, .. }: StaffForm) -> Response {
    match state.app.archive_product(&staff.actor(), &product_id).await {
        Ok(p) => flash(&state, &product_path(&p.id), &format!("{} is archived: it is no longer shown or sold in the store.", p.title)),
        Err(AppError::NotFound { .. }) => not_found("product"),
        Err(e) => error_page(&e),
    }
}

pub async fn add_variant(State(state): State<AppState>, Path(product_id): Path<String>, StaffForm { staff, form }: StaffForm) -> Response {
    let currency = state.storefront.currency.clone();
    let v = VariantValues {
        sku: form.get("sku").to_owned(),
        title: form.get("variant_title").to_owned(),
        options: form.get("options").to_owned(),
        price: form.get("price").to_owned(),
        archived: false,
    };
    let mut errors = Errors::default();
    if v.sku.is_empty() {
        errors.add("sku", "Enter a SKU");
    }
    let options = parse_options(&v.options).map_err(|m| errors.add("options", m)).unwrap_or_default();
    let price = parse_price(&v.price, &currency).map_err(|m| errors.add("price", m)).ok();
    let Some(amount) = price.filter(|_| errors.is_empty()) else {
        return refused(&state, &staff, &product_id, Edits { new_variant: v, errors, ..Default::default() }, StatusCode::UNPROCESSABLE_ENTITY).await;
    };
    let input = VariantInput {
        sku: v.sku.clone(),
        title: Some(v.title.clone()).filter(|t| !t.is_empty()),
        options,
        prices: vec![PriceInput { currency, amount }],
        components: None,
    };
    match state.app.add_variant(&staff.actor(), &product_id, input).await {
        Ok(p) => flash(&state, &product_path(&p.id), &format!("Variant {} added.", v.sku)),
        Err(AppError::NotFound { resource: "product", .. }) => not_found("product"),
        Err(e) => match field_error(&e, variant_field) {
            Some((field, message, status)) => {
                errors.add(field, message);
                refused(&state, &staff, &product_id, Edits { new_variant: v, errors, ..Default::default() }, status).await
            }
            None => error_page(&e),
        },
    }
}

pub async fn update_variant(
    State(state): State<AppState>,
    Path((product_id, variant_id)): Path<(String, String)>,
    StaffForm { staff, form }: StaffForm,
) -> Response {
    let currency = state.storefront.currency.clone();
    let o = match overview(&state, &product_id).await {
        Ok(o) => o,
        Err(r) => return r,
    };
    let Some(current) = o.product.variants.iter().find(|v| v.id == variant_id) else {
        return not_found("variant");
    };
    let v = VariantValues {
        sku: current.sku.clone(),
        title: form.get("title").to_owned(),
        options: form.get("options").to_owned(),
        price: form.get("price").to_owned(),
        archived: form.get("archived") == "1",
    };
    let mut errors = Errors::default();
    if v.title.is_empty() {
        errors.add("edit_title", "Enter a title for this variant");
    }
    let options = parse_options(&v.options).map_err(|m| errors.add("edit_options", m)).unwrap_or_default();
    // Empty: no price in the shop currency (the variant cannot be bought).
    let amount = if v.price.is_empty() { Ok(None) } else { parse_price(&v.price, &currency).map(Some) };
    let amount = amount.map_err(|m| errors.add("edit_price", m)).ok();
    let Some(amount) = amount.filter(|_| errors.is_empty()) else {
        let edits = Edits { variant: Some((variant_id, v)), errors, ..Default::default() };
        return render(&state, &staff, o, edits, StatusCode::UNPROCESSABLE_ENTITY).await;
    };
    // The price list is replaced whole: keep the other currencies' prices.
    let mut prices: Vec<PriceInput> = current
        .prices
        .iter()
        .filter(|p| p.currency != currency)
        .map(|p| PriceInput { currency: p.currency.clone(), amount: p.amount })
        .collect();
    if let Some(a) = amount {
        prices.push(PriceInput { currency: currency.clone(), amount: a });
    }
    let changes = VariantChanges {
        title: Some(v.title.clone()),
        options: Some(options),
        prices: Some(prices),
        archived: Some(v.archived),
        ..Default::default()
    };
    match state.app.update_variant(&staff.actor(), &product_id, &variant_id, changes).await {
        Ok(p) => flash(&state, &product_path(&p.id), &format!("Variant {} saved.", v.sku)),
        Err(AppError::NotFound { .. }) => not_found("variant"),
        Err(e) => {
            let Some((field, message, status)) = field_error(&e, variant_field) else { return error_page(&e) };
            let field = match field {
                "price" => "edit_price",
                "options" => "edit_options",
                _ => "edit_title",
            };
            errors.add(field, message);
            refused(&state, &staff, &product_id, Edits { variant: Some((variant_id, v)), errors, ..Default::default() }, status).await
        }
    }
}
