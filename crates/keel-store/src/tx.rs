//! Write transactions whose `BEGIN`, `COMMIT` and `ROLLBACK` Keel issues
//! itself rather than through `sqlx::Transaction`.
//!
//! Why: sqlx counts transaction depth per connection and only lowers the
//! count when `COMMIT`/`ROLLBACK` succeeds. When SQLite fails a statement
//! or a commit with `SQLITE_FULL` it may roll the transaction back on its
//! own; the queued `ROLLBACK` then fails ("no transaction is active"), the
//! count stays at one, and every later `begin()` on that pooled connection
//! became a `SAVEPOINT` whose `RELEASE` never reached disk — writes were
//! acknowledged and lost. Here a connection that saw any error while
//! ending a transaction, or whose transaction was abandoned (a dropped
//! future), is closed rather than returned to the pool, and `BEGIN` is
//! never nested: if a connection were somehow still inside a transaction,
//! SQLite refuses the `BEGIN` loudly instead of nesting silently.

use crate::{Result, StoreError};
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, Executor};
use std::ops::{Deref, DerefMut};

/// An open write transaction. Dereferences to the connection, so
/// `&mut tx` is accepted wherever a `&mut Conn` is. Dropped without
/// [`Tx::commit`] or [`Tx::rollback`], its connection is closed, which rolls
/// the transaction back.
pub struct Tx {
    conn: Option<PoolConnection<Any>>,
}

impl Tx {
    pub(crate) async fn begin(mut conn: PoolConnection<Any>) -> Result<Tx> {
        if let Err(e) = conn.execute(sqlx::raw_sql("BEGIN")).await {
            conn.close_on_drop();
            return Err(e.into());
        }
        Ok(Tx { conn: Some(conn) })
    }

    /// Commits; `Ok` only once the database has reported the commit done.
    /// On error the connection is discarded (after a best-effort rollback),
    /// so nothing of this transaction can reach disk later.
    pub async fn commit(mut self) -> Result<()> {
        self.finish("COMMIT").await
    }

    pub async fn rollback(mut self) -> Result<()> {
        self.finish("ROLLBACK").await
    }

    async fn finish(&mut self, sql: &'static str) -> Result<()> {
        let mut conn = self.conn.take().ok_or(StoreError::Unsupported("transaction already ended"))?;
        match conn.execute(sqlx::raw_sql(sql)).await {
            Ok(_) => Ok(()),
            Err(e) => {
                // The transaction may still be open (SQLite keeps it after
                // some commit failures) or already gone: either way this
                // connection's state is unknown, so it never serves again.
                let _ = conn.execute(sqlx::raw_sql("ROLLBACK")).await;
                conn.close_on_drop();
                Err(e.into())
            }
        }
    }
}

impl Drop for Tx {
    fn drop(&mut self) {
        if let Some(mut conn) = self.conn.take() {
            conn.close_on_drop();
        }
    }
}

impl Deref for Tx {
    type Target = AnyConnection;

    fn deref(&self) -> &AnyConnection {
        self.conn.as_deref().expect("a transaction is used only while open")
    }
}

impl DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        self.conn.as_deref_mut().expect("a transaction is used only while open")
    }
}
