//! A browser without JavaScript for the admin console's HTML tests, and a
//! way to get one signed in as a staff user of any role.

use keel_testkit::TestApp;
use keel_web::access::Role;
use reqwest::StatusCode;

const SEC: i64 = 1_000_000;

/// The RFC 6238 code for `now` (µs).
pub fn code_at(secret_b32: &str, now: i64) -> String {
    let bytes = totp_rs::Secret::try_from_base32(secret_b32).unwrap();
    let totp = totp_rs::Builder::new().with_secret(bytes.as_ref().to_vec()).build().unwrap();
    totp.generate((now / SEC) as u64).to_string()
}

/// A browser signed in as a new staff user `{role}@example.com` (password
/// `{role} password 1`). Owners and admins enrol two-factor first, as the
/// default policy requires, and sign in with the next time step's code.
pub async fn signed_in(t: &TestApp, role: Role) -> Browser {
    let email = format!("{}@example.com", role.as_str());
    let password = format!("{} password 1", role.as_str());
    let now = keel_domain::time::now_micros();
    let user = t.app.create_staff_user(&email, role, Some(&password), now).await.expect("create staff user").user;
    let mut secret = None;
    if role.requires_two_factor() {
        let e = t.app.begin_totp_enrolment(&user.id, now).await.expect("enrolment");
        t.app.confirm_totp_enrolment(&user.id, &code_at(&e.secret, now), None, now).await.expect("confirm enrolment");
        secret = Some(e.secret);
    }
    let mut b = Browser::new(t);
    b.user_id = user.id.clone();
    let p = b.get("/admin/login").await;
    let r = b.post("/admin/login", &[("csrf", &p.csrf()), ("email", &email), ("password", &password)]).await;
    if let Some(secret) = secret {
        assert_eq!(r.location(), "/admin/login/2fa");
        let p = b.get("/admin/login/2fa").await;
        let r = b.post("/admin/login/2fa", &[("csrf", &p.csrf()), ("code", &code_at(&secret, now + 30 * SEC))]).await;
        assert_eq!(r.location(), "/admin", "{}", r.body);
    } else {
        assert_eq!(r.location(), "/admin", "{}", r.body);
    }
    b
}

/// A browser without JavaScript: keeps cookies, does not follow redirects,
/// sends `Origin` like a real form post.
pub struct Browser {
    http: reqwest::Client,
    base: String,
    pub cookies: std::collections::BTreeMap<String, String>,
    /// The staff user signed in by [`signed_in`].
    pub user_id: String,
}

pub struct Page {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Page {
    pub fn location(&self) -> &str {
        self.headers.get("location").and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    pub fn csrf(&self) -> String {
        between(&self.body, "name=\"csrf\" value=\"", "\"").expect("a csrf field")
    }
}

pub fn between(s: &str, start: &str, end: &str) -> Option<String> {
    let i = s.find(start)? + start.len();
    let j = s[i..].find(end)? + i;
    Some(s[i..j].to_owned())
}

impl Browser {
    pub fn new(t: &TestApp) -> Browser {
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Browser { http, base: t.base.clone(), cookies: Default::default(), user_id: String::new() }
    }

    fn cookie_header(&self) -> String {
        self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    async fn finish(&mut self, res: reqwest::Response) -> Page {
        for v in res.headers().get_all("set-cookie") {
            let v = v.to_str().unwrap();
            let (pair, _) = v.split_once(';').unwrap_or((v, ""));
            let (k, val) = pair.split_once('=').unwrap();
            if val.is_empty() {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_owned(), val.to_owned());
            }
        }
        let status = res.status();
        let headers = res.headers().clone();
        Page { status, headers, body: res.text().await.unwrap() }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let res = self.http.get(format!("{}{path}", self.base)).header("cookie", self.cookie_header()).send().await.unwrap();
        self.finish(res).await
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let body = serde_urlencoded::to_string(form).unwrap();
        self.post_body(path, "application/x-www-form-urlencoded", body.into_bytes()).await
    }

    /// A form post with a body already encoded (e.g. `multipart/form-data`).
    pub async fn post_body(&mut self, path: &str, content_type: &str, body: Vec<u8>) -> Page {
        let res = self
            .http
            .post(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .header("origin", &self.base)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        self.finish(res).await
    }
}

