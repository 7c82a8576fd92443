//! The instance metadata service (IMDSv2), last in the credential and
//! region chain as in the AWS SDKs: on an EC2 node, its instance role's
//! credentials and its region. `AWS_EC2_METADATA_SERVICE_ENDPOINT` moves it,
//! `AWS_EC2_METADATA_DISABLED=true` turns it off (the SDKs' variables).

use std::time::Duration;

use serde::Deserialize;

const DEFAULT_ENDPOINT: &str = "http://169.254.169.254";
/// Off EC2 nothing answers; the SDKs wait one second too.
const TIMEOUT: Duration = Duration::from_secs(1);
const TOKEN_TTL: &str = "21600";

pub struct Imds {
    agent: ureq::Agent,
    endpoint: String,
    token: String,
}

/// The role credentials document (`security-credentials/<role>`).
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RoleCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub token: Option<String>,
}

impl Imds {
    /// A session with the service, or why there is none (disabled, not on EC2).
    pub fn connect() -> Result<Imds, String> {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        if env("AWS_EC2_METADATA_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            return Err("the instance metadata service is disabled (AWS_EC2_METADATA_DISABLED)".into());
        }
        let endpoint = env("AWS_EC2_METADATA_SERVICE_ENDPOINT").unwrap_or_else(|| DEFAULT_ENDPOINT.into());
        let endpoint = endpoint.trim_end_matches('/').to_string();
        let config = ureq::Agent::config_builder().timeout_global(Some(TIMEOUT)).build();
        let agent = ureq::Agent::new_with_config(config);
        let token = agent
            .put(format!("{endpoint}/latest/api/token"))
            .header("X-aws-ec2-metadata-token-ttl-seconds", TOKEN_TTL)
            .send_empty()
            .and_then(|mut r| r.body_mut().read_to_string())
            .map_err(|e| format!("no instance metadata service at {endpoint}: {e}"))?;
        Ok(Imds { agent, endpoint, token: token.trim().to_string() })
    }

    fn get(&self, path: &str) -> Result<String, String> {
        self.agent
            .get(format!("{}/latest/meta-data/{path}", self.endpoint))
            .header("X-aws-ec2-metadata-token", &self.token)
            .call()
            .and_then(|mut r| r.body_mut().read_to_string())
            .map_err(|e| format!("instance metadata {path}: {e}"))
    }

    pub fn region(&self) -> Result<String, String> {
        Ok(self.get("placement/region")?.trim().to_string())
    }

    /// The instance role's credentials.
    pub fn credentials(&self) -> Result<RoleCredentials, String> {
        let roles = self.get("iam/security-credentials/")?;
        let role = roles.lines().next().map(str::trim).filter(|r| !r.is_empty()).ok_or("the instance has no role")?;
        let doc = self.get(&format!("iam/security-credentials/{role}"))?;
        serde_json::from_str(&doc).map_err(|e| format!("instance role {role}: not a credentials document: {e}"))
    }
}
