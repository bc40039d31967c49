//! Validating extractors: a body or query string that does not fit its type
//! is refused with the field path in `param`, never a bare framework error.

use crate::error::ApiError;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use bytes::Bytes;
use serde::de::DeserializeOwned;

/// Largest JSON body accepted; bigger bodies get 413.
pub const MAX_JSON_BODY: usize = 1024 * 1024;

/// A JSON body. An empty body reads as `{}` so action endpoints
/// (`…/release`) need none.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        // The body is read as JSON whatever the Content-Type says, so
        // `curl -d '{…}'` (sent as form-urlencoded) works; anything that is
        // not JSON is refused by the parser with a 400 naming the problem.
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::invalid(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body_too_large",
                    format!("the body exceeds {MAX_JSON_BODY} bytes"),
                    None,
                )
            } else {
                ApiError::invalid(StatusCode::BAD_REQUEST, "invalid_body", "the body could not be read", None)
            }
        })?;
        let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) { b"{}" } else { &bytes };
        parse_json(bytes).map(JsonBody)
    }
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, T>(de) {
        Ok(v) => Ok(v),
        Err(err) => {
            let path = err.path().to_string();
            let inner = err.into_inner();
            let message = inner.to_string();
            let status = if inner.is_syntax() || inner.is_eof() { StatusCode::BAD_REQUEST } else { StatusCode::UNPROCESSABLE_ENTITY };
            let (code, param) = describe_serde_error(&message, &path);
            let code = if status == StatusCode::BAD_REQUEST { "invalid_json" } else { code };
            Err(ApiError::invalid(status, code, strip_position(&message), param))
        }
    }
}

/// Picks a code and the offending field out of a serde message.
fn describe_serde_error(message: &str, path: &str) -> (&'static str, Option<String>) {
    let join = |field: &str| {
        if path.is_empty() || path == "." {
            field.to_owned()
        } else {
            format!("{path}.{field}")
        }
    };
    let quoted = |m: &str, marker: &str| {
        m.find(marker).and_then(|i| {
            let rest = &m[i + marker.len()..];
            rest.find('`').map(|j| rest[..j].to_owned())
        })
    };
    if let Some(f) = quoted(message, "unknown field `") {
        // The path already ends at the unknown field.
        let param = if path == f || path.ends_with(&format!(".{f}")) { path.to_owned() } else { join(&f) };
        return ("unknown_field", Some(param));
    }
    if let Some(f) = quoted(message, "missing field `") {
        return ("missing_field", Some(join(&f)));
    }
    let param = if path.is_empty() || path == "." { None } else { Some(path.to_owned()) };
    if message.starts_with("invalid type") {
        ("invalid_type", param)
    } else {
        ("invalid_value", param)
    }
}

fn strip_position(message: &str) -> String {
    match message.find(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// A query string parsed into `T`; unknown parameters are refused when `T`
/// denies unknown fields.
pub struct QueryParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let q = parts.uri.query().unwrap_or("");
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(q.as_bytes()));
        serde_path_to_error::deserialize::<_, T>(de).map(QueryParams).map_err(|e| {
            let path = e.path().to_string();
            let message = e.into_inner().to_string();
            let (code, param) = describe_serde_error(&message, &path);
            ApiError::invalid(StatusCode::UNPROCESSABLE_ENTITY, code, message, param)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Line {
        sku: String,
        quantity: i64,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        lines: Vec<Line>,
    }

    #[test]
    fn errors_name_the_field() {
        let e = parse_json::<Body>(br#"{"lines":[{"sku":"A","quantity":"x"}]}"#).unwrap_err();
        assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(e.body.param.as_deref(), Some("lines[0].quantity"));
        assert_eq!(e.body.code, "invalid_type");
        let e = parse_json::<Body>(br#"{"lines":[{"sku":"A","quantity":1,"color":"red"}]}"#).unwrap_err();
        assert_eq!((e.body.code.as_str(), e.body.param.as_deref()), ("unknown_field", Some("lines[0].color")));
        let e = parse_json::<Body>(br#"{"lines":[{"sku":"A"}]}"#).unwrap_err();
        assert_eq!((e.body.code.as_str(), e.body.param.as_deref()), ("missing_field", Some("lines[0].quantity")));
        let e = parse_json::<Body>(br#"{"lines": [}"#).unwrap_err();
        assert_eq!((e.status, e.body.code.as_str()), (StatusCode::BAD_REQUEST, "invalid_json"));
    }
}
