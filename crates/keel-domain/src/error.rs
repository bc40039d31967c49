/// A rejected input: which field, a stable machine code and a human message.
///
/// The web layer turns this into a 4xx with `param` set to `field`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct Invalid {
    pub field: String,
    pub code: &'static str,
    pub message: String,
}

impl Invalid {
    pub fn new(field: impl Into<String>, code: &'static str, message: impl Into<String>) -> Self {
        Self { field: field.into(), code, message: message.into() }
    }

    /// Prefix the field path, e.g. `sku` inside `lines[2]` becomes `lines[2].sku`.
    pub fn within(mut self, parent: impl AsRef<str>) -> Self {
        self.field = format!("{}.{}", parent.as_ref(), self.field);
        self
    }
}
