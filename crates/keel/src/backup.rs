//! `keel backup FILE` and `keel restore FILE` for the embedded SQLite
//! database; on PostgreSQL both print the `pg_dump`/`pg_restore` commands to
//! use instead and exit non-zero.
//!
//! Personal data in the database is encrypted with the master key, so a
//! backup without its key cannot be read: `backup` writes the key to
//! `FILE.key` (mode 0600; keep it apart from FILE, where secrets are kept),
//! and `restore` installs it and refuses a file the key in use cannot
//! decrypt, before anything is replaced.

use keel_app::secrets::Secrets;
use keel_app::{Location, PoolSizes, Store};
use keel_store::backup::{inspect_sqlite_file, BackupInfo};
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

type AnyError = Box<dyn std::error::Error + Send + Sync>;

/// Exit code when the command does not apply to this backend.
const NOT_FOR_POSTGRES: u8 = 3;

const PG_HELP: &str = "\
keel backup/restore work on the embedded SQLite database only. For PostgreSQL use its own tools:
  backup (consistent while serving):
    pg_dump --format=custom --no-owner --file=keel.dump \"$KEEL_DATABASE_URL\"
  restore (into an empty database, Keel stopped):
    pg_restore --no-owner --exit-on-error --dbname=\"$KEEL_DATABASE_URL\" keel.dump
    keel migrate && keel check";

/// The lock file beside the database: `serve` holds it shared, `restore`
/// needs it exclusively, so a restore under a running server is refused.
pub fn lock_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".serve-lock");
    PathBuf::from(name)
}

/// Taken by `serve` on SQLite for as long as it runs (released by the OS if
/// the process dies).
pub fn hold_serve_lock(location: &Location) -> Result<Option<File>, AnyError> {
    let Location::SqliteFile(db) = location else { return Ok(None) };
    let file = open_lock(db)?;
    file.try_lock_shared().map_err(|e| format!("cannot lock {}: {e}", lock_path(db).display()))?;
    Ok(Some(file))
}

fn open_lock(db: &Path) -> Result<File, AnyError> {
    if let Some(dir) = db.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    Ok(OpenOptions::new().create(true).truncate(false).write(true).open(lock_path(db))?)
}

fn private_new_file(path: &Path) -> std::io::Result<File> {
    let mut o = OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path)
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn summary(info: &BackupInfo) -> String {
    let counts: Vec<String> = info.counts.iter().map(|(t, n)| format!("{n} {t}")).collect();
    format!("schema version {}, {}", info.schema_version, counts.join(", "))
}

/// Where `backup FILE` writes the master key, and `restore FILE` looks for it.
pub fn key_path(file: &Path) -> PathBuf {
    with_suffix(file, ".key")
}

pub async fn backup(location: &Location, file: &Path, force: bool, master: Option<[u8; 32]>) -> Result<ExitCode, AnyError> {
    let db = match location {
        Location::Postgres(_) => {
            eprintln!("{PG_HELP}");
            return Ok(ExitCode::from(NOT_FOR_POSTGRES));
        }
        Location::SqliteFile(db) => db,
    };
    if !db.exists() {
        return Err(format!("no database at {}", db.display()).into());
    }
    let key_file = key_path(file);
    for f in [file, key_file.as_path()] {
        if f.exists() && !force {
            return Err(format!("{} already exists; pass --force to replace it", f.display()).into());
        }
    }
    let Some(master) = master else {
        return Err("no master key (KEEL_SECRET_KEY or DATA_DIR/secret.key): the backup could not be read back".into());
    };
    // Written next to the target under a temporary name, then renamed: a
    // failed backup never leaves a half-written FILE.
    let partial = with_suffix(file, &format!(".partial-{}", std::process::id()));
    let _ = std::fs::remove_file(&partial);
    drop(private_new_file(&partial)?);
    let store = Store::open(location, PoolSizes { postgres: 1, sqlite_readers: 1 }).await?;
    let taken = store.sqlite_snapshot(&partial).await;
    store.close().await;
    if let Err(e) = taken {
        let _ = std::fs::remove_file(&partial);
        return Err(e.into());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&partial, std::fs::Permissions::from_mode(0o600))?;
    }
    File::open(&partial)?.sync_all()?;
    let partial_key = with_suffix(&key_file, &format!(".partial-{}", std::process::id()));
    let _ = std::fs::remove_file(&partial_key);
    Secrets::write_master(&partial_key, &master)?;
    std::fs::rename(&partial, file)?;
    std::fs::rename(&partial_key, &key_file)?;
    let info = inspect_sqlite_file(file, keel_store::migrate::latest_version()).await?;
    println!("backup written to {} ({})", file.display(), summary(&info));
    println!("master key written to {} — keep it apart from the backup, where secrets are kept", key_file.display());
    Ok(ExitCode::SUCCESS)
}

/// `data_dir` gets `secret.key` from the backup's key file (`key`, else
/// `FILE.key`) unless `KEEL_SECRET_KEY` (`env_key`) names the key.
pub async fn restore(
    location: &Location,
    file: &Path,
    key: Option<&Path>,
    data_dir: &Path,
    env_key: Option<&str>,
) -> Result<ExitCode, AnyError> {
    let db = match location {
        Location::Postgres(_) => {
            eprintln!("{PG_HELP}");
            return Ok(ExitCode::from(NOT_FOR_POSTGRES));
        }
        Location::SqliteFile(db) => db,
    };
    let info = inspect_sqlite_file(file, keel_store::migrate::latest_version())
        .await
        .map_err(|e| format!("{} cannot be restored: {e}", file.display()))?;
    // The key that will read the restored data: the backup's own, else the
    // one already in use here. Refuse before replacing anything if it
    // cannot decrypt the file.
    let key_file = key.map(Path::to_path_buf).unwrap_or_else(|| key_path(file));
    let backup_key = match std::fs::read_to_string(&key_file) {
        Ok(text) => Some(Secrets::parse_master(&text).map_err(|e| format!("{}: {e}", key_file.display()))?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && key.is_none() => None,
        Err(e) => return Err(format!("cannot read the key file {}: {e}", key_file.display()).into()),
    };
    let in_use = Secrets::read_master(env_key, data_dir)?;
    let master = match (env_key.filter(|k| !k.trim().is_empty()), backup_key, in_use) {
        (Some(_), _, Some(k)) => k,
        (None, Some(k), _) => k,
        (None, None, Some(k)) => k,
        _ => return Err(format!("no master key for {}: expected {} (written by `keel backup`) or KEEL_SECRET_KEY", file.display(), key_file.display()).into()),
    };
    let secrets = Secrets::from_master(master);
    if let Some((table, _)) = info.encrypted.iter().find(|(_, v)| secrets.decrypt(v).is_err()) {
        return Err(format!(
            "{} cannot be decrypted with this master key ({table}); restore it with the key written beside it by `keel backup` (--key FILE.key)",
            file.display()
        )
        .into());
    }
    let lock = open_lock(db)?;
    if lock.try_lock().is_err() {
        return Err(format!("{} is in use by a running `keel serve`; stop it first", db.display()).into());
    }
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
    let mut aside = with_suffix(db, &format!(".before-restore-{stamp}"));
    let mut n = 1;
    while aside.exists() {
        n += 1;
        aside = with_suffix(db, &format!(".before-restore-{stamp}-{n}"));
    }
    let mut moved = false;
    if db.exists() {
        // Move the WAL and shared-memory files along so the set stays whole.
        for suffix in ["", "-wal", "-shm"] {
            let from = with_suffix(db, suffix);
            if from.exists() {
                std::fs::rename(&from, with_suffix(&aside, suffix))?;
            }
        }
        moved = true;
    }
    let incoming = with_suffix(db, ".restoring");
    let _ = std::fs::remove_file(&incoming);
    {
        let mut out = private_new_file(&incoming)?;
        let mut src = File::open(file)?;
        std::io::copy(&mut src, &mut out)?;
        out.sync_all()?;
    }
    std::fs::rename(&incoming, db)?;
    if env_key.filter(|k| !k.trim().is_empty()).is_none() && in_use != Some(master) {
        let target = data_dir.join("secret.key");
        if target.exists() {
            std::fs::rename(&target, with_suffix(&aside, ".secret.key"))?;
        }
        Secrets::write_master(&target, &master)?;
        println!("master key installed as {}", target.display());
    }
    let store = Store::open(location, PoolSizes { postgres: 1, sqlite_readers: 1 }).await?;
    let applied = store.migrate().await;
    store.close().await;
    let applied = applied?;
    drop(lock);
    println!("restored {} into {} ({})", file.display(), db.display(), summary(&info));
    if !applied.is_empty() {
        println!("migrations applied after restore: {}", applied.join(", "));
    }
    if moved {
        println!("the previous database was kept as {}", aside.display());
    }
    println!("next: `keel check` to verify ledger, levels and reservations");
    Ok(ExitCode::SUCCESS)
}
