//! Pages of a list: `?page=N` (from 1), [`PER_PAGE`] rows each, and the
//! previous/next links that keep the list's filters.

/// Rows per page of an admin list.
pub const PER_PAGE: i64 = 50;

/// The page a `page` query value asks for (1 when absent or not a number),
/// capped so the offset stays sane.
pub fn page_number(raw: Option<&str>) -> i64 {
    raw.and_then(|s| s.trim().parse::<i64>().ok()).filter(|n| *n >= 1).unwrap_or(1).min(100_000)
}

/// Previous/next links for `templates/admin/pager.html` (included with a
/// `pager` in scope).
pub struct Pager {
    pub page: i64,
    pub prev: Option<String>,
    pub next: Option<String>,
}

impl Pager {
    /// `path` is the list's path; `filters` the query pairs to keep (empty
    /// values are dropped); `has_next` whether a further row exists (fetch
    /// `PER_PAGE + 1` to know).
    pub fn new(path: &str, filters: &[(&str, &str)], page: i64, has_next: bool) -> Pager {
        let href = |n: i64| {
            let mut q = form_urlencoded::Serializer::new(String::new());
            for (k, v) in filters.iter().filter(|(_, v)| !v.is_empty()) {
                q.append_pair(k, v);
            }
            if n > 1 {
                q.append_pair("page", &n.to_string());
            }
            let q = q.finish();
            if q.is_empty() { path.to_owned() } else { format!("{path}?{q}") }
        };
        Pager { page, prev: (page > 1).then(|| href(page - 1)), next: has_next.then(|| href(page + 1)) }
    }

    pub fn needed(&self) -> bool {
        self.prev.is_some() || self.next.is_some()
    }

    /// The offset of this page's first row.
    pub fn offset(page: i64) -> i64 {
        (page - 1) * PER_PAGE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_keep_filters_and_drop_empty_ones() {
        let p = Pager::new("/admin/orders", &[("status", "paid"), ("q", "")], 2, true);
        assert_eq!(p.prev.as_deref(), Some("/admin/orders?status=paid"));
        assert_eq!(p.next.as_deref(), Some("/admin/orders?status=paid&page=3"));
        assert!(!Pager::new("/admin/orders", &[], 1, false).needed());
        assert_eq!(page_number(Some("x")), 1);
        assert_eq!(page_number(Some("0")), 1);
        assert_eq!(Pager::offset(3), 100);
    }
}
