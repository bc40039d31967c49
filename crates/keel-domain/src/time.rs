//! Timestamps are stored as microseconds since the Unix epoch (UTC) so both
//! databases compare and sort them as plain integers; JSON shows RFC 3339.

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};

pub type Micros = i64;

pub fn now_micros() -> Micros {
    Utc::now().timestamp_micros()
}

pub fn to_rfc3339(micros: Micros) -> String {
    Utc.timestamp_micros(micros)
        .single()
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// For people reading a table: `2026-12-02 07:51 UTC`.
pub fn format_utc_minutes(micros: Micros) -> String {
    Utc.timestamp_micros(micros).single().unwrap_or_default().format("%Y-%m-%d %H:%M UTC").to_string()
}

/// To the second: `2026-12-02 07:51:09 UTC`.
pub fn format_utc_seconds(micros: Micros) -> String {
    Utc.timestamp_micros(micros).single().unwrap_or_default().format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// A date typed into a filter (`2026-12-02`) as the start of that day, UTC.
pub fn parse_date_start(s: &str) -> Option<Micros> {
    let d = chrono::NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok()?;
    Some(d.and_hms_opt(0, 0, 0)?.and_utc().timestamp_micros())
}

pub fn parse_rfc3339(s: &str) -> Option<Micros> {
    DateTime::parse_from_rfc3339(s).ok().map(|d| d.with_timezone(&Utc).timestamp_micros())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let t = 1_764_000_000_123_456;
        assert_eq!(parse_rfc3339(&to_rfc3339(t)), Some(t));
        assert_eq!(parse_rfc3339("2026-11-25T10:00:00+01:00"), parse_rfc3339("2026-11-25T09:00:00Z"));
        assert_eq!(parse_rfc3339("yesterday"), None);
        assert_eq!(format_utc_minutes(parse_rfc3339("2026-12-02T07:51:59Z").unwrap()), "2026-12-02 07:51 UTC");
        assert_eq!(parse_date_start("2026-12-02"), parse_rfc3339("2026-12-02T00:00:00Z"));
        assert_eq!(parse_date_start("02/12/2026"), None);
    }
}
