//! A small EC2 Query API client: the five actions aws-vpc routes need,
//! signed by the AWS SDK's own SigV4 signer (aws-sigv4), sent with ureq,
//! answers read as XML. Throttling and server errors are retried with
//! exponential backoff and jitter, as the SDK's standard retry mode does.

mod credentials;
mod imds;
pub(crate) mod xml;

use std::time::{Duration, SystemTime};

use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;

pub use credentials::Settings;
pub use xml::{Instance, Table, instances as xml_instances, route_tables as xml_route_tables};

/// The EC2 API version flanneld's SDK spoke, and every SDK still does.
const API_VERSION: &str = "2016-11-15";
/// Attempts per call when EC2 throttles (the SDK's standard mode has 3; a
/// reconcile of many routes under an account-wide throttle deserves more),
/// and when it cannot be reached or fails inside (the SDK's 3).
const MAX_ATTEMPTS_THROTTLED: u32 = 8;
const MAX_ATTEMPTS: u32 = 3;
const BASE_DELAY: Duration = Duration::from_millis(200);
const MAX_DELAY: Duration = Duration::from_secs(20);
const TIMEOUT: Duration = Duration::from_secs(30);

/// Error codes EC2 answers when a caller must slow down.
const THROTTLING: &[&str] = &["RequestLimitExceeded", "Throttling", "ThrottlingException", "RequestThrottled"];

#[derive(Debug, thiserror::Error)]
pub enum Ec2Error {
    #[error("{action}: {code}: {message}")]
    Api { action: String, code: String, message: String },
    #[error("{action}: cannot reach {endpoint}: {message}")]
    Transport { action: String, endpoint: String, message: String },
    #[error("{action}: cannot sign the request: {0}", action = .1)]
    Sign(String, String),
    #[error("{action}: the answer is not EC2's XML: {message}")]
    Answer { action: String, message: String },
}

pub struct Ec2 {
    agent: ureq::Agent,
    endpoint: String,
    host: String,
    settings: Settings,
}

impl Ec2 {
    pub fn new(settings: Settings) -> Ec2 {
        let config = ureq::Agent::config_builder().timeout_global(Some(TIMEOUT)).http_status_as_error(false).build();
        let endpoint = settings.endpoint.trim_end_matches('/').to_string() + "/";
        let host = endpoint.split("://").nth(1).and_then(|r| r.split('/').next()).unwrap_or_default().to_string();
        Ec2 { agent: ureq::Agent::new_with_config(config), endpoint, host, settings }
    }

    /// One action, with its parameters (`InstanceId.1`, `Filter.1.Name`, ...);
    /// the answer's XML text.
    pub fn call(&self, action: &str, params: &[(String, String)]) -> Result<String, Ec2Error> {
        let mut body = format!("Action={action}&Version={API_VERSION}");
        for (k, v) in params {
            body.push('&');
            body.push_str(&encode(k));
            body.push('=');
            body.push_str(&encode(v));
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.once(action, &body) {
                Err(e) if attempt < attempts(&e) => std::thread::sleep(backoff(attempt)),
                r => return r,
            }
        }
    }

    fn once(&self, action: &str, body: &str) -> Result<String, Ec2Error> {
        let content_type = "application/x-www-form-urlencoded; charset=utf-8";
        let headers = self.sign(action, body, content_type)?;
        let mut req = self.agent.post(&self.endpoint).header("content-type", content_type);
        for (k, v) in &headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let transport =
            |message: String| Ec2Error::Transport { action: action.into(), endpoint: self.endpoint.clone(), message };
        let mut resp = req.send(body).map_err(|e| transport(e.to_string()))?;
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().map_err(|e| transport(e.to_string()))?;
        if status == 200 {
            return Ok(text);
        }
        let (code, message) = xml::error(&text).unwrap_or_else(|| (format!("HTTP {status}"), text.trim().to_string()));
        Err(Ec2Error::Api { action: action.into(), code, message })
    }

    /// The SigV4 headers (authorization, x-amz-date, the session token).
    fn sign(&self, action: &str, body: &str, content_type: &str) -> Result<Vec<(String, String)>, Ec2Error> {
        let fail = |e: &dyn std::fmt::Display| Ec2Error::Sign(e.to_string(), action.to_string());
        let identity = self.settings.credentials.identity();
        let params: aws_sigv4::http_request::SigningParams = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.settings.region)
            .name("ec2")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| fail(&e))?
            .into();
        let headers = [("host", self.host.as_str()), ("content-type", content_type)];
        let signable = SignableRequest::new(
            "POST",
            self.endpoint.as_str(),
            headers.into_iter(),
            SignableBody::Bytes(body.as_bytes()),
        )
        .map_err(|e| fail(&e))?;
        let (instructions, _) = sign(signable, &params).map_err(|e| fail(&e))?.into_parts();
        Ok(instructions.headers().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }
}

/// How many attempts an error allows (1: it is final).
fn attempts(e: &Ec2Error) -> u32 {
    match e {
        Ec2Error::Api { code, .. } if THROTTLING.contains(&code.as_str()) => MAX_ATTEMPTS_THROTTLED,
        Ec2Error::Api { code, .. }
            if code.starts_with("HTTP 5") || code == "InternalError" || code == "Unavailable" =>
        {
            MAX_ATTEMPTS
        }
        Ec2Error::Transport { .. } => MAX_ATTEMPTS,
        Ec2Error::Api { .. } | Ec2Error::Sign(..) | Ec2Error::Answer { .. } => 1,
    }
}

/// Full jitter: a random wait up to BASE * 2^attempt, capped.
fn backoff(attempt: u32) -> Duration {
    let cap = BASE_DELAY.saturating_mul(1 << attempt.min(10)).min(MAX_DELAY);
    let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    cap.mul_f64(f64::from(nanos % 1000) / 1000.0)
}

/// RFC 3986 percent-encoding of everything but the unreserved characters
/// (what SigV4's canonical form expects of a form body).
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `Name.1=a&Name.2=b`.
pub fn list(name: &str, values: &[String]) -> Vec<(String, String)> {
    values.iter().enumerate().map(|(i, v)| (format!("{name}.{}", i + 1), v.clone())).collect()
}

/// `Filter.N.Name=name&Filter.N.Value.1=value` for each filter.
pub fn filters(fs: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (i, (name, value)) in fs.iter().enumerate() {
        out.push((format!("Filter.{}.Name", i + 1), name.to_string()));
        out.push((format!("Filter.{}.Value.1", i + 1), value.to_string()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_values_are_percent_encoded() {
        assert_eq!(encode("10.244.1.0/24"), "10.244.1.0%2F24");
        assert_eq!(encode("a b&c=d~_-."), "a%20b%26c%3Dd~_-.");
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        for attempt in 1..20 {
            assert!(backoff(attempt) <= MAX_DELAY);
        }
        assert!(BASE_DELAY.saturating_mul(1 << 3) > BASE_DELAY.saturating_mul(1 << 1));
    }

    #[test]
    fn throttling_and_server_errors_are_retried_refusals_are_not() {
        let api = |code: &str| Ec2Error::Api { action: "A".into(), code: code.into(), message: String::new() };
        assert_eq!(attempts(&api("RequestLimitExceeded")), MAX_ATTEMPTS_THROTTLED);
        assert_eq!(attempts(&api("HTTP 503")), MAX_ATTEMPTS);
        assert_eq!(attempts(&api("InvalidRouteTableID.NotFound")), 1);
        assert_eq!(attempts(&api("UnauthorizedOperation")), 1);
    }
}
