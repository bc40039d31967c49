//! Reading the outbox: the events API is its first consumer.

use crate::views::{EventView, Page};
use crate::{page_limit, App, AppError, Result};
use keel_domain::ids::EventId;
use keel_domain::Invalid;
use keel_store::outbox::{self, Cursor, Filter};

impl App {
    /// Events in commit order after `starting_after`, optionally filtered by
    /// type (`product.created`) or family (`inventory.*`).
    pub async fn list_events(
        &self,
        types: &[String],
        starting_after: Option<&str>,
        limit: Option<i64>,
    ) -> Result<Page<EventView>> {
        if types.len() > 20 {
            return Err(Invalid::new("type", "too_many_types", "at most 20 types").into());
        }
        for t in types {
            let ok = (1..=100).contains(&t.len())
                && t.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'*'))
                && t.find('*').is_none_or(|i| i == t.len() - 1);
            if !ok {
                return Err(Invalid::new("type", "invalid_type", format!("`{t}` is not an event type or `family.*`")).into());
            }
        }
        let limit = page_limit(limit);
        let mut conn = self.store.reader().await?;
        let after = match starting_after {
            None => Cursor::default(),
            Some(id) => {
                EventId::parse("starting_after", id)?;
                outbox::get(&mut conn, id)
                    .await?
                    .ok_or_else(|| AppError::not_found_at("event", id, "starting_after"))?
                    .cursor
            }
        };
        let filter = Filter { types: types.to_vec(), aggregate_id: None };
        let rows = outbox::read(&mut conn, after, &filter, limit + 1).await?;
        Ok(Page::from_overfetch(rows.into_iter().map(EventView::from).collect(), limit))
    }

    pub async fn get_event(&self, id: &str) -> Result<EventView> {
        EventId::parse("id", id).map_err(|_| AppError::not_found("event", id))?;
        let mut conn = self.store.reader().await?;
        Ok(outbox::get(&mut conn, id).await?.ok_or_else(|| AppError::not_found("event", id))?.into())
    }
}
