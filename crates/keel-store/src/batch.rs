//! Several writes sent to the database in one round trip.
//!
//! Each statement is written with its own `$1…$n`; `run` renumbers them into
//! one argument list. SQLite executes the statements as one script; on
//! PostgreSQL they become data-modifying CTEs of a single statement. Only
//! statements without results (plain INSERT/UPDATE/DELETE) belong here.
//! Round trips matter because a write transaction holds the SQLite writer,
//! or a contended PostgreSQL row lock, for its whole duration.

use crate::{Backend, Result};
use sqlx::AnyConnection;

#[derive(Debug, Clone)]
pub enum Bind {
    Int(Option<i64>),
    Text(Option<String>),
}

impl From<i64> for Bind {
    fn from(v: i64) -> Self {
        Bind::Int(Some(v))
    }
}

impl From<Option<i64>> for Bind {
    fn from(v: Option<i64>) -> Self {
        Bind::Int(v)
    }
}

impl From<&str> for Bind {
    fn from(v: &str) -> Self {
        Bind::Text(Some(v.to_owned()))
    }
}

impl From<String> for Bind {
    fn from(v: String) -> Self {
        Bind::Text(Some(v))
    }
}

impl From<&String> for Bind {
    fn from(v: &String) -> Self {
        Bind::Text(Some(v.clone()))
    }
}

impl From<Option<&str>> for Bind {
    fn from(v: Option<&str>) -> Self {
        Bind::Text(v.map(str::to_owned))
    }
}

impl From<Option<String>> for Bind {
    fn from(v: Option<String>) -> Self {
        Bind::Text(v)
    }
}

impl From<&Option<String>> for Bind {
    fn from(v: &Option<String>) -> Self {
        Bind::Text(v.clone())
    }
}

#[derive(Debug, Default)]
pub struct Batch {
    statements: Vec<(String, Vec<Bind>)>,
}

impl Batch {
    pub fn new() -> Batch {
        Batch::default()
    }

    pub fn push(&mut self, sql: impl Into<String>, binds: Vec<Bind>) {
        self.statements.push((sql.into(), binds));
    }

    pub fn is_empty(&self) -> bool {
        self.statements.is_empty()
    }

    pub async fn run(self, conn: &mut AnyConnection) -> Result<()> {
        if self.statements.is_empty() {
            return Ok(());
        }
        let backend = Backend::of(conn);
        let mut parts = Vec::with_capacity(self.statements.len());
        let mut binds = Vec::new();
        for (sql, args) in self.statements {
            parts.push(renumber(&sql, binds.len()));
            binds.extend(args);
        }
        let sql = match backend {
            Backend::Sqlite => parts.join(";\n"),
            Backend::Postgres => {
                let ctes: Vec<String> = parts.iter().enumerate().map(|(i, p)| format!("s{i} AS ({p})")).collect();
                format!("WITH {} SELECT 1", ctes.join(", "))
            }
        };
        let mut q = sqlx::query(&sql);
        for b in binds {
            q = match b {
                Bind::Int(v) => q.bind(v),
                Bind::Text(v) => q.bind(v),
            };
        }
        q.execute(conn).await?;
        Ok(())
    }
}

/// `$3` → `$(3 + offset)`. Keel's SQL has no `$` inside string literals.
fn renumber(sql: &str, offset: usize) -> String {
    if offset == 0 {
        return sql.to_owned();
    }
    let mut out = String::with_capacity(sql.len() + 8);
    let mut chars = sql.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        if c == '$' {
            let mut digits = String::new();
            while let Some((_, d)) = chars.peek().copied().filter(|(_, d)| d.is_ascii_digit()) {
                digits.push(d);
                chars.next();
            }
            match digits.parse::<usize>() {
                Ok(n) => out.push_str(&format!("${}", n + offset)),
                Err(_) => out.push('$'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::renumber;

    #[test]
    fn placeholders_are_shifted() {
        assert_eq!(renumber("VALUES ($1, $2, $10)", 3), "VALUES ($4, $5, $13)");
        assert_eq!(renumber("x = $1 OR $1 IS NULL", 0), "x = $1 OR $1 IS NULL");
        assert_eq!(renumber("a $ b", 2), "a $ b");
    }
}
