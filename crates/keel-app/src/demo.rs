//! The demo shop behind `keel serve --demo`: three locations, a sales
//! channel, twenty products with variants and prices, a generated image
//! each, stock, one bundle, four collections (one of them `featured`, shown
//! on the home page), US shipping methods and tax for the storefront's
//! checkout, and shoppers' orders in the console's states ([`orders`]).
//! Seeding is idempotent: it does nothing if the demo channel exists.

use crate::catalog::{ComponentInput, NewChannel, NewProduct, PriceInput, VariantInput};
use crate::collections::NewCollection;
use crate::images::NewImage;
use crate::inventory::AdjustmentInput;
use crate::locations::NewLocation;
use crate::{Actor, App, Result};
use keel_domain::catalog::{LocationKind, ProductStatus};
use std::collections::BTreeMap;

mod orders;

const CHANNEL_HANDLE: &str = "online-store";
const KIT_SKU: &str = "KIT-MORNING";

/// (title, description, base price in cents, option name, option values)
const PRODUCTS: &[(&str, &str, i64, &str, &[&str])] = &[
    ("Everyday Tee", "Heavyweight organic cotton tee.", 2800, "Size", &["S", "M", "L", "XL"]),
    ("Linen Shirt", "Breathable linen, relaxed fit.", 6800, "Size", &["S", "M", "L"]),
    ("Merino Sweater", "Fine-gauge merino wool crew neck.", 11900, "Size", &["S", "M", "L"]),
    ("Canvas Tote", "Sturdy 16 oz canvas tote bag.", 3200, "Color", &["Natural", "Black"]),
    ("Stoneware Mug", "Hand-glazed 350 ml mug.", 2200, "Color", &["Sand", "Slate"]),
    ("Wool Beanie", "Ribbed lambswool beanie.", 3400, "Color", &["Charcoal", "Rust", "Navy"]),
    ("Trail Socks", "Cushioned merino hiking socks.", 1900, "Size", &["S/M", "L/XL"]),
    ("Rain Jacket", "Packable waterproof shell.", 18900, "Size", &["S", "M", "L", "XL"]),
    ("Leather Wallet", "Vegetable-tanned bifold.", 7900, "Color", &["Tan", "Brown"]),
    ("Water Bottle", "Insulated steel bottle, 750 ml.", 3600, "Color", &["Moss", "Sky"]),
    ("Notebook", "Dot-grid A5, 192 pages.", 1800, "Paper", &["Dotted", "Lined"]),
    ("Desk Lamp", "Dimmable LED desk lamp.", 8900, "Finish", &["Black", "Brass"]),
    ("Cotton Cap", "Six-panel washed cotton cap.", 2600, "Color", &["Olive", "Stone"]),
    ("Chino Trousers", "Stretch cotton chinos.", 7400, "Waist", &["30", "32", "34", "36"]),
    ("Running Shorts", "Lightweight shorts with liner.", 4200, "Size", &["S", "M", "L"]),
    ("Scented Candle", "Soy wax, 40-hour burn.", 2900, "Scent", &["Cedar", "Fig"]),
    ("Throw Blanket", "Recycled wool throw.", 9900, "Color", &["Oat", "Forest"]),
    ("Enamel Pin", "Hard enamel pin.", 900, "Design", &["Wave", "Peak"]),
    ("Sunglasses", "Polarised acetate frames.", 12900, "Lens", &["Grey", "Green"]),
];

/// (handle, title, description, product titles); `featured` is what the
/// home page shows.
const COLLECTIONS: &[(&str, &str, &str, &[&str])] = &[
    ("featured", "Featured", "A few favourites, picked this week.", &[
        "Everyday Tee", "Merino Sweater", "Stoneware Mug", "Rain Jacket", "Leather Wallet", "Morning Kit", "Desk Lamp", "Sunglasses",
    ]),
    ("clothing", "Clothing", "Tees, shirts, knitwear and outerwear.", &[
        "Everyday Tee", "Linen Shirt", "Merino Sweater", "Rain Jacket", "Chino Trousers", "Running Shorts", "Trail Socks",
        "Wool Beanie", "Cotton Cap",
    ]),
    ("home", "Home", "Things for the kitchen, the desk and the sofa.", &[
        "Stoneware Mug", "Desk Lamp", "Scented Candle", "Throw Blanket", "Notebook", "Morning Kit",
    ]),
    ("accessories", "Accessories", "Bags, bottles and small things that last.", &[
        "Canvas Tote", "Leather Wallet", "Water Bottle", "Enamel Pin", "Sunglasses", "Wool Beanie", "Cotton Cap", "Trail Socks",
    ]),
];

fn sku_of(title: &str, value: &str) -> String {
    let t: String = title.split_whitespace().map(|w| w.chars().take(3).collect::<String>()).collect::<Vec<_>>().join("-");
    let v: String = value.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    format!("{}-{}", t.to_ascii_uppercase(), v.to_ascii_uppercase())
}

impl App {
    async fn add_demo_image(&self, actor: &Actor, product_id: &str, title: &str, n: usize) -> Result<()> {
        let png = tokio::task::spawn_blocking(move || keel_imaging::placeholder_png(n, PRODUCTS.len() + 1))
            .await
            .map_err(|_| crate::AppError::Store(keel_store::StoreError::Io("demo image generation stopped".into())))?;
        let input = NewImage { alt: Some(title.to_owned()), ..Default::default() };
        self.add_product_image(actor, product_id, keel_domain::images::SourceFormat::Png, png, input).await?;
        Ok(())
    }

    /// Seeds the demo shop; returns false when it was already there.
    pub async fn seed_demo(&self) -> Result<bool> {
        {
            let mut conn = self.store.reader().await?;
            if keel_store::catalog::channel_by_handle(&mut conn, CHANNEL_HANDLE).await?.is_some() {
                return Ok(false);
            }
        }
        let actor = Actor::system("demo");
        let mk = |name: &str, kind, priority, country: &str| NewLocation {
            name: name.into(),
            kind,
            priority: Some(priority),
            country: country.into(),
        };
        let warehouse = self.create_location(&actor, mk("Main Warehouse", LocationKind::Warehouse, 10, "US")).await?;
        let store = self.create_location(&actor, mk("Brooklyn Store", LocationKind::Store, 20, "US")).await?;
        let tpl = self.create_location(&actor, mk("EU Fulfilment (3PL)", LocationKind::ThirdParty, 30, "NL")).await?;
        // Created after the locations so "channel exists" means "fully seeded"
        // except for stock, which follows.
        let mut stock_plan = Vec::new();
        let mut product_count = 0usize;
        let mut ids_by_title: BTreeMap<&str, String> = BTreeMap::new();
        for (i, (title, description, price, option, values)) in PRODUCTS.iter().enumerate() {
            let variants = values
                .iter()
                .map(|v| VariantInput {
                    sku: sku_of(title, v),
                    title: None,
                    options: BTreeMap::from([(option.to_string(), v.to_string())]),
                    prices: vec![
                        PriceInput { currency: "USD".into(), amount: *price },
                        PriceInput { currency: "EUR".into(), amount: price * 92 / 100 },
                    ],
                    components: None,
                })
                .collect::<Vec<_>>();
            for (j, v) in variants.iter().enumerate() {
                // Varied stock so listings show in-stock, low and sold-out.
                let base = ((i * 7 + j * 13) % 40) as i64;
                stock_plan.push((v.sku.clone(), warehouse.id.clone(), base * 3));
                if (i + j) % 3 == 0 {
                    stock_plan.push((v.sku.clone(), store.id.clone(), (base % 7) + 1));
                }
                if i % 4 == 1 {
                    stock_plan.push((v.sku.clone(), tpl.id.clone(), base + 5));
                }
            }
            let product = self
                .create_product(
                    &actor,
                    NewProduct {
                        title: title.to_string(),
                        handle: None,
                        description: Some(description.to_string()),
                        status: Some(ProductStatus::Active),
                        seo_title: None,
                        seo_description: Some(description.to_string()),
                        channel_ids: Vec::new(),
                        variants,
                    },
                )
                .await?;
            self.add_demo_image(&actor, &product.id, title, i).await?;
            ids_by_title.insert(title, product.id);
            product_count += 1;
        }
        // A kit sharing stock with its parts.
        let kit = self.create_product(
            &actor,
            NewProduct {
                title: "Morning Kit".into(),
                handle: None,
                description: Some("An Everyday Tee (M) and a Stoneware Mug (Sand), boxed.".into()),
                status: Some(ProductStatus::Active),
                seo_title: None,
                seo_description: None,
                channel_ids: Vec::new(),
                variants: vec![VariantInput {
                    sku: KIT_SKU.into(),
                    title: Some("Kit".into()),
                    options: BTreeMap::new(),
                    prices: vec![PriceInput { currency: "USD".into(), amount: 4500 }],
                    components: Some(vec![
                        ComponentInput { sku: sku_of("Everyday Tee", "M"), quantity: 1 },
                        ComponentInput { sku: sku_of("Stoneware Mug", "Sand"), quantity: 1 },
                    ]),
                }],
            },
        )
        .await?;
        self.add_demo_image(&actor, &kit.id, &kit.title, PRODUCTS.len()).await?;
        ids_by_title.insert("Morning Kit", kit.id);
        product_count += 1;
        for (position, (handle, title, description, members)) in COLLECTIONS.iter().enumerate() {
            let product_ids = members.iter().filter_map(|t| ids_by_title.get(t).cloned()).collect();
            self.create_collection(
                &actor,
                NewCollection {
                    title: title.to_string(),
                    handle: Some(handle.to_string()),
                    description: Some(description.to_string()),
                    seo_title: None,
                    seo_description: None,
                    position: Some(position as i64),
                    published: Some(true),
                    product_ids,
                },
            )
            .await?;
        }
        for (sku, location_id, qty) in stock_plan.into_iter().filter(|(_, _, q)| *q > 0) {
            self.adjust_inventory(
                &actor,
                AdjustmentInput {
                    sku,
                    location_id,
                    quantity_delta: Some(qty),
                    set_on_hand: None,
                    kind: Some("receive".into()),
                    reason: Some("demo opening stock".into()),
                    expected_on_hand: None,
                    occurred_at: None,
                },
            )
            .await?;
        }
        // What the storefront's checkout needs: shipping and tax for the US.
        for (name, amount, countries) in [("Standard (3–5 business days)", 500, vec!["US", "CA"]), ("Express (1–2 business days)", 1500, vec!["US"])] {
            self.create_shipping_method(
                &actor,
                crate::shipping::NewShippingMethod {
                    name: name.into(),
                    currency: "USD".into(),
                    amount,
                    countries: countries.into_iter().map(str::to_owned).collect(),
                },
            )
            .await?;
        }
        self.set_tax_rate(
            &actor,
            crate::shipping::TaxRateInput { country: "US".into(), region: None, rate_bps: 800, inclusive: false, shipping_taxable: true },
        )
        .await?;
        let channel = self.create_channel(&actor, NewChannel { name: "Online Store".into(), handle: Some(CHANNEL_HANDLE.into()) }).await?;
        let mut conn = self.store.reader().await?;
        let ids: Vec<String> = keel_store::catalog::list_products(&mut conn, None, None, 1000).await?.into_iter().map(|p| p.id).collect();
        drop(conn);
        for id in ids {
            self.update_product(
                &actor,
                &id,
                crate::catalog::ProductChanges { channel_ids: Some(vec![channel.id.clone()]), ..Default::default() },
            )
            .await?;
        }
        let orders = self.seed_demo_orders(&actor).await?;
        tracing::info!(products = product_count, orders, "demo shop seeded");
        Ok(true)
    }
}
