//! The Keel binary: one executable, several roles.

mod backup;
mod tls;

use clap::{Parser, Subcommand};
use keel_app::{App, Location, PoolSizes, Store};
use std::path::PathBuf;
use std::process::ExitCode;
use tokio::sync::watch;

#[derive(Parser)]
#[command(name = "keel", version, about = "Keel: the system of record for online selling")]
struct Cli {
    /// Directory for the embedded SQLite database and other local state.
    #[arg(long, global = true, env = "KEEL_DATA_DIR", default_value = "./keel-data")]
    data_dir: PathBuf,
    /// `postgres://…` to use PostgreSQL instead of the embedded SQLite file.
    #[arg(long, global = true, env = "KEEL_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Where generated image files are kept (default: DATA_DIR/media).
    /// Nodes sharing a PostgreSQL database must share it too.
    #[arg(long, global = true, env = "KEEL_MEDIA_DIR")]
    media_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Migrate, then serve the API (and run background workers).
    Serve {
        /// Address to listen on.
        #[arg(long, env = "KEEL_LISTEN", default_value = "127.0.0.1:7300")]
        listen: String,
        /// Seed a demo shop (idempotent) and print a fresh demo API key.
        #[arg(long)]
        demo: bool,
        /// Serve requests only; leave background jobs to other nodes.
        #[arg(long)]
        no_workers: bool,
        /// Serve HTTPS with this PEM certificate chain (needs --tls-key).
        #[arg(long, env = "KEEL_TLS_CERT", requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The PEM private key for --tls-cert.
        #[arg(long, env = "KEEL_TLS_KEY", requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// Also listen for plain HTTP here and redirect (308) to HTTPS.
        #[arg(long, env = "KEEL_REDIRECT_HTTP", requires = "tls_cert")]
        redirect_http: Option<String>,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Verify the ledger, levels and reservations agree; non-zero exit if not.
    Check,
    /// Write a consistent copy of the SQLite database to FILE (safe while
    /// serving). On PostgreSQL, prints the `pg_dump` command to use.
    Backup {
        file: PathBuf,
        /// Replace FILE if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Replace the SQLite database with the backup FILE (the server must be
    /// stopped; the current database is kept aside). On PostgreSQL, prints
    /// the `pg_restore` command to use.
    Restore {
        file: PathBuf,
        /// The master key file written by `keel backup` (default: FILE.key).
        #[arg(long)]
        key: Option<PathBuf>,
    },
    /// Manage API keys.
    Apikey {
        #[command(subcommand)]
        command: ApikeyCommand,
    },
    /// Manage staff users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a staff user. The password is `KEEL_USER_PASSWORD` if set,
    /// else generated and printed once.
    Create {
        #[arg(long)]
        email: String,
        /// owner, admin, catalog_manager, inventory_manager, fulfillment,
        /// support_agent or analyst.
        #[arg(long)]
        role: String,
    },
    /// List staff users: email, role, two-factor, last sign-in, status
    /// (stale after `KEEL_STAFF_STALE_DAYS`).
    List {
        /// all, active, stale or disabled.
        #[arg(long, default_value = "all")]
        status: String,
    },
    /// Disable a staff user and end their sessions (audited as
    /// `system:cli`; the last active owner cannot be disabled).
    Disable {
        #[arg(long)]
        email: String,
    },
    /// Re-enable a staff user (restarts the stale clock).
    Enable {
        #[arg(long)]
        email: String,
    },
}

#[derive(Subcommand)]
enum ApikeyCommand {
    /// Create a key and print it (only it) on stdout. It is not shown again.
    Create {
        #[arg(long)]
        name: String,
        /// The staff role the key acts as (default: owner, full access), or
        /// `publishable` for a storefront key (`keel_pk_…`: catalog reads,
        /// carts and checkout).
        #[arg(long, default_value = "owner")]
        role: String,
        /// Days until the key stops working (default: never).
        #[arg(long)]
        expires_in_days: Option<i64>,
        /// Requests per minute for this key (secret keys; default: the
        /// server's `KEEL_RATE_LIMIT_API_PER_MIN`, 6000).
        #[arg(long)]
        rate_limit_per_min: Option<i64>,
    },
}

/// The owner `serve --demo` creates (its password is new each start).
const DEMO_OWNER: &str = "owner@demo.keel";

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KEEL_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,tower_http=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            let mut source = std::error::Error::source(&*e);
            while let Some(s) = source {
                eprintln!("  caused by: {s}");
                source = s.source();
            }
            ExitCode::FAILURE
        }
    }
}

type AnyError = Box<dyn std::error::Error + Send + Sync>;

fn env_secret_key() -> Option<String> {
    std::env::var("KEEL_SECRET_KEY").ok()
}

/// Opens the database (migrating it) for `serve` and `migrate`, which may
/// create it.
async fn open(cli: &Cli) -> Result<App, AnyError> {
    open_app(cli, true).await
}

/// Opens an existing database for every other command: a mistyped
/// `--data-dir` must not create an empty database and report it ok.
async fn open_existing(cli: &Cli) -> Result<App, AnyError> {
    open_app(cli, false).await
}

async fn open_app(cli: &Cli, may_create: bool) -> Result<App, AnyError> {
    let location = Location::resolve(cli.database_url.as_deref(), &cli.data_dir);
    if let Location::SqliteFile(path) = &location {
        if !may_create && !path.exists() {
            return Err(format!(
                "no Keel database at {} (is --data-dir right? `keel migrate` or `keel serve` creates one)",
                path.display()
            )
            .into());
        }
    }
    let store = Store::open(&location, PoolSizes::default()).await?;
    let applied = store.migrate().await?;
    if !applied.is_empty() {
        tracing::info!(?applied, database = %location.describe(), "migrations applied");
    }
    let secrets = keel_app::secrets::Secrets::load(env_secret_key().as_deref(), &cli.data_dir)?;
    let outbound = outbound_policy()?;
    let purge = keel_app::purge::PurgeConfig::from_env(&outbound).await?;
    let media_dir = cli.media_dir.clone().unwrap_or_else(|| cli.data_dir.join("media"));
    let mut app = App::new(store, secrets)
        .with_checkout(checkout_config()?)
        .with_outbound(outbound)
        .with_purge_config(purge)
        .with_media_dir(media_dir)
        .with_staff_config(staff_config()?);
    if let Some(payments) = payments_config()? {
        let provider = payments.provider(&app.store)?;
        app = app.with_payments(provider);
    }
    Ok(app)
}

/// `KEEL_STAFF_REQUIRE_2FA`: `1` (default) or `0`; `KEEL_STAFF_STALE_DAYS`:
/// days unused before an account is stale (default 90, at least 1);
/// `KEEL_STAFF_DISABLE_STALE`: `true` (default: the hourly job disables stale
/// accounts) or `false` (they are only listed).
fn staff_config() -> Result<keel_app::staff::StaffConfig, AnyError> {
    use keel_app::staff::accounts::DEFAULT_STALE_DAYS;
    let require_two_factor = flag("KEEL_STAFF_REQUIRE_2FA", true)?;
    let stale_after_days = match env("KEEL_STAFF_STALE_DAYS") {
        None => DEFAULT_STALE_DAYS,
        Some(v) => match v.trim().parse::<u32>() {
            Ok(n) if (1..=36_500).contains(&n) => n,
            _ => return Err(format!("KEEL_STAFF_STALE_DAYS must be a whole number of days from 1 to 36500, not {v:?}").into()),
        },
    };
    let disable_stale = flag("KEEL_STAFF_DISABLE_STALE", true)?;
    Ok(keel_app::staff::StaffConfig { require_two_factor, stale_after_days, disable_stale })
}

/// `KEEL_ALLOW_PRIVATE_TARGETS=1` (or the older `KEEL_WEBHOOKS_ALLOW_PRIVATE`)
/// lets webhooks, feed pulls and the CDN purge reach loopback, private and
/// link-local addresses: development only, off by default (the SSRF guard).
fn outbound_policy() -> Result<keel_app::outbound::Outbound, AnyError> {
    use keel_app::outbound::{ALLOW_PRIVATE_TARGETS_ENV, ALLOW_PRIVATE_TARGETS_ENV_ALIAS};
    let allow = match env(ALLOW_PRIVATE_TARGETS_ENV) {
        Some(_) => flag(ALLOW_PRIVATE_TARGETS_ENV, false)?,
        None => flag(ALLOW_PRIVATE_TARGETS_ENV_ALIAS, false)?,
    };
    Ok(keel_app::outbound::Outbound::default().allowing_private_targets(allow))
}

/// A yes/no setting: `1`/`true` or `0`/`false`.
fn flag(name: &str, default: bool) -> Result<bool, AnyError> {
    match env(name).as_deref().map(str::trim) {
        None => Ok(default),
        Some("1") | Some("true") => Ok(true),
        Some("0") | Some("false") => Ok(false),
        Some(other) => Err(format!("{name} must be true or false (1 or 0), not {other:?}").into()),
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// `KEEL_PAYMENTS=stripe` with `KEEL_STRIPE_SECRET_KEY`,
/// `KEEL_STRIPE_WEBHOOK_SECRET` (and, for tests, `KEEL_STRIPE_API_BASE`);
/// the built-in `test` provider otherwise.
fn payments_config() -> Result<Option<keel_app::payments::PaymentsConfig>, AnyError> {
    match env("KEEL_PAYMENTS").as_deref() {
        None | Some("test") => Ok(None),
        Some("stripe") => {
            let secret_key = env("KEEL_STRIPE_SECRET_KEY").ok_or("KEEL_PAYMENTS=stripe needs KEEL_STRIPE_SECRET_KEY")?;
            let webhook_secret = env("KEEL_STRIPE_WEBHOOK_SECRET").ok_or("KEEL_PAYMENTS=stripe needs KEEL_STRIPE_WEBHOOK_SECRET")?;
            Ok(Some(keel_app::payments::PaymentsConfig::Stripe { secret_key, webhook_secret, api_base: env("KEEL_STRIPE_API_BASE") }))
        }
        Some(other) => Err(format!("KEEL_PAYMENTS must be `test` or `stripe`, not `{other}`").into()),
    }
}

/// `KEEL_CAPTURE=order|fulfillment`, `KEEL_CHECKOUT_LEASE_SECONDS`, and the
/// test-only crash switch `KEEL_FAULT=after_reserve|after_authorize|after_order`.
fn checkout_config() -> Result<keel_app::checkout::CheckoutConfig, AnyError> {
    use keel_app::checkout::{CaptureMode, CheckoutConfig, Fault};
    let capture = match env("KEEL_CAPTURE").as_deref() {
        None | Some("order") => CaptureMode::Order,
        Some("fulfillment") => CaptureMode::Fulfillment,
        Some(other) => return Err(format!("KEEL_CAPTURE must be `order` or `fulfillment`, not `{other}`").into()),
    };
    let mut c = CheckoutConfig { capture, ..CheckoutConfig::default() };
    if let Some(secs) = env("KEEL_CHECKOUT_LEASE_SECONDS") {
        let secs: i64 = secs.parse().map_err(|_| "KEEL_CHECKOUT_LEASE_SECONDS must be a number of seconds")?;
        c.lease_micros = secs.clamp(1, 3600) * 1_000_000;
    }
    c.fault = match env("KEEL_FAULT").as_deref() {
        None => None,
        Some("after_reserve") => Some(Fault::AfterReserve),
        Some("after_authorize") => Some(Fault::AfterAuthorize),
        Some("after_order") => Some(Fault::AfterOrder),
        Some(other) => return Err(format!("unknown KEEL_FAULT `{other}`").into()),
    };
    if c.fault.is_some() {
        tracing::warn!("KEEL_FAULT is set: this process will crash on purpose during checkout (testing only)");
    }
    Ok(c)
}

/// `KEEL_PUBLIC_URL` (the shop's address: canonical URLs, the origin forms
/// must come from, `https://` makes the session cookie `Secure`; default: the
/// listen address, for canonical URLs only) and `KEEL_STORE_CURRENCY` (default
/// USD).
fn storefront_settings(listen_base: &str) -> Result<keel_web::storefront::Settings, AnyError> {
    let mut s = keel_web::storefront::Settings::default();
    s = match env("KEEL_PUBLIC_URL") {
        Some(url) => s.with_public_url(&url)?,
        None => s.with_base_url(listen_base)?,
    };
    if let Some(currency) = env("KEEL_STORE_CURRENCY") {
        s = s.with_currency(&currency)?;
    }
    Ok(s)
}

/// `KEEL_TRUST_PROXY=1`: client addresses come from `X-Forwarded-For`
/// (only behind a proxy that sets it).
fn edge_settings() -> Result<keel_web::edge::EdgeSettings, AnyError> {
    use keel_web::ratelimit::Limits;
    let trust_proxy = match env("KEEL_TRUST_PROXY").as_deref() {
        None | Some("0") | Some("false") => false,
        Some("1") | Some("true") => true,
        Some(other) => return Err(format!("KEEL_TRUST_PROXY must be 1 or 0, not `{other}`").into()),
    };
    let rate_limits = Limits {
        per_ip_per_min: per_min("KEEL_RATE_LIMIT_IP_PER_MIN", Limits::SERVE_DEFAULT.per_ip_per_min)?,
        per_key_per_min: per_min("KEEL_RATE_LIMIT_API_PER_MIN", Limits::SERVE_DEFAULT.per_key_per_min)?,
    };
    Ok(keel_web::edge::EdgeSettings { trust_proxy, https: false, rate_limits })
}

/// A requests-per-minute setting; `0` turns the limit off.
fn per_min(name: &str, default: Option<u32>) -> Result<Option<u32>, AnyError> {
    match env(name) {
        None => Ok(default),
        Some(v) => match v.trim().parse::<u32>() {
            Ok(0) => Ok(None),
            Ok(n) => Ok(Some(n)),
            Err(_) => Err(format!("{name} must be a number of requests per minute (0 = no limit)").into()),
        },
    }
}

async fn run(cli: Cli) -> Result<ExitCode, AnyError> {
    match &cli.command {
        Command::Migrate => {
            let app = open(&cli).await?;
            app.store.close().await;
            println!("migrations up to date");
            Ok(ExitCode::SUCCESS)
        }
        Command::Check => {
            let app = open_existing(&cli).await?;
            let report = app.check().await?;
            app.store.close().await;
            println!(
                "checked {} inventory levels and {} ledger movements",
                report.levels_checked, report.movements_checked
            );
            if report.problems.is_empty() {
                println!("ok: ledger, levels, reservations and feed batches agree");
                Ok(ExitCode::SUCCESS)
            } else {
                for p in &report.problems {
                    println!("FAIL [{}] {}: {}", p.check, p.subject, p.detail);
                }
                println!("{} problem(s) found", report.problems.len());
                Ok(ExitCode::from(2))
            }
        }
        Command::Backup { file, force } => {
            let location = Location::resolve(cli.database_url.as_deref(), &cli.data_dir);
            let master = match location {
                Location::SqliteFile(_) => keel_app::secrets::Secrets::read_master(env_secret_key().as_deref(), &cli.data_dir)?,
                Location::Postgres(_) => None,
            };
            backup::backup(&location, file, *force, master).await
        }
        Command::Restore { file, key } => {
            let location = Location::resolve(cli.database_url.as_deref(), &cli.data_dir);
            backup::restore(&location, file, key.as_deref(), &cli.data_dir, env_secret_key().as_deref()).await
        }
        Command::Apikey { command: ApikeyCommand::Create { name, role, expires_in_days, rate_limit_per_min } } => {
            let scope = keel_app::apikeys::KeyScope::parse("role", role)?;
            if expires_in_days.is_some_and(|d| !(1..=keel_app::apikeys::MAX_EXPIRY_DAYS).contains(&d)) {
                return Err(format!("--expires-in-days must be between 1 and {}", keel_app::apikeys::MAX_EXPIRY_DAYS).into());
            }
            let app = open_existing(&cli).await?;
            let new = keel_app::apikeys::NewApiKey {
                name: name.clone(),
                scope,
                expires_at: expires_in_days.map(|d| keel_domain::time::now_micros() + d * 86_400_000_000),
                rate_limit_per_min: *rate_limit_per_min,
                created_by: None,
                creator_role: keel_domain::access::Role::Owner,
            };
            let (_, secret) = app.create_scoped_api_key(new).await?;
            app.store.close().await;
            println!("{secret}");
            Ok(ExitCode::SUCCESS)
        }
        Command::User { command: UserCommand::Create { email, role } } => {
            let role = keel_domain::access::Role::parse("role", role)?;
            let password = std::env::var("KEEL_USER_PASSWORD").ok().filter(|p| !p.is_empty());
            let app = open_existing(&cli).await?;
            let created = app.create_staff_user(email, role, password.as_deref(), keel_domain::time::now_micros()).await;
            app.store.close().await;
            let created = created?;
            println!("created {} ({}) {}", created.user.email, created.user.role.as_str(), created.user.id);
            if let Some(p) = created.generated_password {
                println!("password: {p}");
            }
            if role.requires_two_factor() {
                println!("two-factor enrolment is required at first sign-in");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::User { command: UserCommand::List { status } } => {
            let filter = keel_app::staff::accounts::StaffFilter::parse("status", status)?;
            let app = open_existing(&cli).await?;
            let users = app.list_staff_users(filter, keel_domain::time::now_micros()).await;
            app.store.close().await;
            let users = users?;
            println!("{:<36} {:<18} {:<4} {:<20} {:<8} id", "email", "role", "2fa", "last sign-in", "status");
            for a in &users {
                let status = match (a.is_active(), a.stale) {
                    (false, _) => "disabled",
                    (true, true) => "stale",
                    (true, false) => "active",
                };
                let last = a.user.last_login_at.map(keel_domain::time::to_rfc3339).unwrap_or_else(|| "never".into());
                let last = last.get(..19).unwrap_or(&last).replace('T', " ");
                let tfa = if a.user.two_factor_enabled { "on" } else { "off" };
                println!("{:<36} {:<18} {:<4} {:<20} {:<8} {}", a.user.email, a.user.role.as_str(), tfa, last, status, a.user.id);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::User { command: UserCommand::Disable { email } } => {
            let app = open_existing(&cli).await?;
            let done = app.operator_disable_staff_user(email, keel_domain::time::now_micros()).await;
            app.store.close().await;
            let a = done?;
            println!("disabled {} ({}); their sessions are ended", a.user.email, a.user.id);
            Ok(ExitCode::SUCCESS)
        }
        Command::User { command: UserCommand::Enable { email } } => {
            let app = open_existing(&cli).await?;
            let done = app.operator_enable_staff_user(email, keel_domain::time::now_micros()).await;
            app.store.close().await;
            let a = done?;
            println!("enabled {} ({})", a.user.email, a.user.id);
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve { listen, demo, no_workers, tls_cert, tls_key, redirect_http } => {
            let _serve_lock = backup::hold_serve_lock(&Location::resolve(cli.database_url.as_deref(), &cli.data_dir))?;
            let app = open(&cli).await?;
            if app.store.backend() == keel_app::Backend::Sqlite {
                app.end_other_leases().await?;
            }
            if app.outbound().allows_private_targets() {
                let warning = "private outbound targets are allowed (KEEL_ALLOW_PRIVATE_TARGETS): webhooks, feed pulls and \
                    the CDN purge may reach loopback, private and cloud-metadata addresses; for development only";
                tracing::warn!("{warning}");
            }
            let mut demo_key = None;
            let mut demo_owner = None;
            if *demo {
                if app.seed_demo().await? {
                    tracing::info!("demo data created");
                }
                app.revoke_api_keys_named("demo").await?;
                demo_key = Some(app.create_api_key("demo").await?.1);
                demo_owner = Some(app.ensure_demo_owner(DEMO_OWNER).await?);
            }
            let tls = match (tls_cert, tls_key) {
                (Some(cert), Some(key)) => Some(tls::config(cert, key).await?),
                _ => None,
            };
            let listener = tokio::net::TcpListener::bind(listen).await?;
            let addr = listener.local_addr()?;
            let redirect = match redirect_http {
                Some(a) => Some(tokio::net::TcpListener::bind(a).await?),
                None => None,
            };
            let (shutdown_tx, shutdown_rx) = watch::channel(false);
            let workers = if *no_workers { Vec::new() } else { keel_app::workers::spawn_all(app.clone(), shutdown_rx.clone()) };
            let base = format!("{}://{addr}", if tls.is_some() { "https" } else { "http" });
            let storefront = storefront_settings(&base)?.with_tls(tls.is_some());
            println!("Keel {} is serving on {base}", env!("CARGO_PKG_VERSION"));
            println!("  Shop      {}/", storefront.public_url);
            println!("  API       {base}/api/v1");
            println!("  OpenAPI   {base}/api/v1/openapi.json");
            if let Some(r) = &redirect {
                println!("  Redirect  http://{} → https", r.local_addr()?);
            }
            println!("  Database  {}", Location::resolve(cli.database_url.as_deref(), &cli.data_dir).describe());
            if let Some(key) = &demo_key {
                println!("  Demo key  {key}");
                println!("  Try:      curl -H 'Authorization: Bearer {key}' {base}/api/v1/products");
            }
            if let Some(password) = &demo_owner {
                let note = if app.staff.require_two_factor { "  (two-factor enrolment at first sign-in)" } else { "" };
                println!("  Admin     {base}/admin  {DEMO_OWNER} / {password}{note}");
            }
            let mut edge = edge_settings()?;
            edge.https = tls.is_some();
            let public_origin = storefront.public_origin.clone();
            let state = keel_web::AppState::new(app.clone()).with_storefront(storefront).with_edge(edge);
            let service = keel_web::router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
            if let Some(r) = redirect {
                let mut stop = shutdown_rx.clone();
                let router = tls::redirect_router(addr.port(), public_origin);
                tokio::spawn(async move {
                    let served = axum::serve(r, router)
                        .with_graceful_shutdown(async move {
                            let _ = stop.wait_for(|s| *s).await;
                        })
                        .await;
                    if let Err(e) = served {
                        tracing::error!(error = %e, "the HTTP redirect listener stopped");
                    }
                });
            }
            match tls {
                None => {
                    axum::serve(listener, service)
                        .with_graceful_shutdown(async move {
                            shutdown_signal().await;
                            let _ = shutdown_tx.send(true);
                        })
                        .await?
                }
                Some(config) => {
                    let handle = axum_server::Handle::new();
                    let stopper = handle.clone();
                    tokio::spawn(async move {
                        shutdown_signal().await;
                        let _ = shutdown_tx.send(true);
                        stopper.graceful_shutdown(Some(std::time::Duration::from_secs(30)));
                    });
                    axum_server::from_tcp_rustls(listener.into_std()?, config).handle(handle).serve(service).await?
                }
            }
            for w in workers {
                let _ = w.await;
            }
            if let Err(e) = app.release_node_lease().await {
                tracing::warn!(error = %e, "could not give up this process's lease; it expires by itself");
            }
            app.store.close().await;
            tracing::info!("stopped");
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutting down");
}
