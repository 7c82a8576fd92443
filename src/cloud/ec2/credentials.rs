//! Credentials, region and endpoint, found the way the AWS SDKs and CLI find
//! them: flags, then the environment (`AWS_ACCESS_KEY_ID`, `AWS_REGION`,
//! `AWS_ENDPOINT_URL_EC2`, ...), then the shared files of the profile
//! (`AWS_PROFILE`, `~/.aws/credentials`, `~/.aws/config`), then the
//! instance metadata service (the node's instance role and region). Not
//! supported: SSO and web identity; export such credentials first
//! (`aws configure export-credentials --format env`).

use std::path::PathBuf;

use aws_smithy_runtime_api::client::identity::Identity;

use super::imds::Imds;

#[derive(Clone)]
pub struct Credentials {
    pub access_key_id: String,
    secret_access_key: String,
    session_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, secret hidden)", self.access_key_id)
    }
}

impl Credentials {
    pub fn identity(&self) -> Identity {
        aws_credential_types::Credentials::new(
            &self.access_key_id,
            &self.secret_access_key,
            self.session_token.clone(),
            None,
            "flannel-gen",
        )
        .into()
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub endpoint: String,
    pub region: String,
    pub credentials: Credentials,
}

impl Settings {
    /// Resolve everything before the first request; the error says what was looked at.
    pub fn resolve(endpoint: Option<String>, region: Option<String>) -> Result<Settings, String> {
        let profile = env("AWS_PROFILE").unwrap_or_else(|| "default".into());
        let files = SharedFiles::read(&profile);
        let mut imds = LazyImds::default();
        let region = match region
            .or_else(|| env("AWS_REGION"))
            .or_else(|| env("AWS_DEFAULT_REGION"))
            .or_else(|| files.get("region"))
        {
            Some(r) => r,
            None => imds.get().and_then(Imds::region).map_err(|why| {
                format!("no region: give --region, or set AWS_REGION or the profile's region ({why})")
            })?,
        };
        if !region.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') || region.is_empty() {
            return Err(format!("`{region}` is not an AWS region"));
        }
        let endpoint = endpoint
            .or_else(|| env("AWS_ENDPOINT_URL_EC2"))
            .or_else(|| env("AWS_ENDPOINT_URL"))
            .unwrap_or_else(|| format!("https://ec2.{region}.amazonaws.com"));
        if !(endpoint.starts_with("https://") || endpoint.starts_with("http://")) {
            return Err(format!("endpoint `{endpoint}` is not an http(s) URL"));
        }
        let credentials = match from_env().or_else(|| files.credentials()) {
            Some(c) => c,
            None => imds.get().and_then(Imds::credentials).map(Credentials::from).map_err(|why| {
                format!(
                    "no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, give profile `{profile}` keys in {}, \
                     or run on an instance with a role ({why})",
                    files.credentials.display()
                )
            })?,
        };
        Ok(Settings { endpoint, region, credentials })
    }
}

fn env(k: &str) -> Option<String> {
    std::env::var(k).ok().filter(|v| !v.is_empty())
}

fn from_env() -> Option<Credentials> {
    Some(Credentials {
        access_key_id: env("AWS_ACCESS_KEY_ID")?,
        secret_access_key: env("AWS_SECRET_ACCESS_KEY")?,
        session_token: env("AWS_SESSION_TOKEN"),
    })
}

impl From<super::imds::RoleCredentials> for Credentials {
    fn from(r: super::imds::RoleCredentials) -> Credentials {
        Credentials { access_key_id: r.access_key_id, secret_access_key: r.secret_access_key, session_token: r.token }
    }
}

/// The metadata service, asked at most once and only when the rest of the
/// chain has no answer.
#[derive(Default)]
struct LazyImds(Option<Result<Imds, String>>);

impl LazyImds {
    fn get(&mut self) -> Result<&Imds, String> {
        self.0.get_or_insert_with(Imds::connect).as_ref().map_err(Clone::clone)
    }
}

/// The profile's keys in `~/.aws/credentials` (`[name]`) and `~/.aws/config`
/// (`[profile name]`, `[default]`), credentials file first.
struct SharedFiles {
    credentials: PathBuf,
    values: Vec<(String, String)>,
}

impl SharedFiles {
    fn read(profile: &str) -> SharedFiles {
        let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
        let path =
            |var: &str, name: &str| std::env::var_os(var).map_or_else(|| home.join(".aws").join(name), PathBuf::from);
        let credentials = path("AWS_SHARED_CREDENTIALS_FILE", "credentials");
        let config = path("AWS_CONFIG_FILE", "config");
        let mut values = section(&std::fs::read_to_string(&credentials).unwrap_or_default(), profile);
        let config_name = if profile == "default" { "default".to_string() } else { format!("profile {profile}") };
        values.extend(section(&std::fs::read_to_string(&config).unwrap_or_default(), &config_name));
        SharedFiles { credentials, values }
    }

    fn get(&self, key: &str) -> Option<String> {
        self.values.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
    }

    fn credentials(&self) -> Option<Credentials> {
        Some(Credentials {
            access_key_id: self.get("aws_access_key_id")?,
            secret_access_key: self.get("aws_secret_access_key")?,
            session_token: self.get("aws_session_token"),
        })
    }
}

/// `key = value` lines of the INI section `[name]`.
fn section(text: &str, name: &str) -> Vec<(String, String)> {
    let mut inside = false;
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        if let Some(h) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = h.trim() == name;
        } else if inside
            && !line.starts_with(['#', ';'])
            && let Some((k, v)) = line.split_once('=')
        {
            out.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::section;

    #[test]
    fn a_profile_section_is_read_alone() {
        let text = "[default]\naws_access_key_id = A\n[profile ci]\n# c\naws_access_key_id=B\nregion = eu-west-1\n";
        assert_eq!(section(text, "default"), [("aws_access_key_id".to_string(), "A".to_string())]);
        let ci = section(text, "profile ci");
        assert_eq!(ci.len(), 2);
        assert_eq!(ci[1], ("region".to_string(), "eu-west-1".to_string()));
    }
}
