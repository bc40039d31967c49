//! Stored health states, and the outbox consumers whose lag is monitored.

use crate::Result;
use sqlx::{AnyConnection, Row};

#[derive(Debug, Clone)]
pub struct StoredState {
    pub component: String,
    pub kind: String,
    pub state: String,
    pub since: i64,
    pub version: i64,
}

pub async fn states(conn: &mut AnyConnection) -> Result<Vec<StoredState>> {
    let rows = sqlx::query("SELECT component, kind, state, since, version FROM health_states").fetch_all(conn).await?;
    rows.iter()
        .map(|r| {
            Ok(StoredState {
                component: r.try_get("component")?,
                kind: r.try_get("kind")?,
                state: r.try_get("state")?,
                since: r.try_get("since")?,
                version: r.try_get("version")?,
            })
        })
        .collect()
}

/// Records a component's state; returns the new version.
pub async fn set_state(conn: &mut AnyConnection, component: &str, kind: &str, state: &str, now: i64) -> Result<i64> {
    let row = sqlx::query(
        "INSERT INTO health_states (component, kind, state, since, version, updated_at) VALUES ($1, $2, $3, $4, 1, $4) \
         ON CONFLICT (component) DO UPDATE SET state = excluded.state, since = excluded.since, \
         version = health_states.version + 1, updated_at = excluded.updated_at RETURNING version",
    )
    .bind(component)
    .bind(kind)
    .bind(state)
    .bind(now)
    .fetch_one(conn)
    .await?;
    Ok(row.try_get("version")?)
}

/// Names of every consumer that keeps a cursor.
pub async fn consumers(conn: &mut AnyConnection) -> Result<Vec<String>> {
    let rows = sqlx::query("SELECT name FROM consumer_cursors ORDER BY name").fetch_all(conn).await?;
    rows.iter().map(|r| Ok(r.try_get("name")?)).collect()
}
