//! The `--names FILE` of `import`: which node a public IP belongs to, in
//! /etc/hosts style — `IP[/PREFIX] NAME [INSTANCE]` a line, `#` comments. The
//! prefix, when given, is that node's on-link underlay prefix; the instance
//! (aws-vpc: `i-…`, gce: `ZONE/NAME`) is what flanneld read from the cloud's
//! instance metadata, which no lease records.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

use crate::diag::{Diagnostic, Diagnostics, Pos};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameEntry {
    pub name: String,
    pub prefix: Option<u8>,
    /// aws-vpc `i-…` or gce `ZONE/NAME`.
    pub instance: Option<String>,
    pub line: u64,
}

/// Public IP -> node name (and prefix), read from a names file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Names(pub BTreeMap<IpAddr, NameEntry>);

impl Names {
    pub fn get(&self, ip: IpAddr) -> Option<&NameEntry> {
        self.0.get(&ip)
    }
}

pub fn parse(file: &Path, text: &str) -> Result<Names, Diagnostics> {
    let mut names = BTreeMap::new();
    let mut problems = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i as u64 + 1;
        let content = raw.split('#').next().unwrap_or_default();
        let fields: Vec<&str> = content.split_whitespace().collect();
        if fields.is_empty() {
            continue;
        }
        let col = |f: &str| Pos::new(line, (f.as_ptr() as usize - raw.as_ptr() as usize) as u64 + 1);
        let mut fail = |f: &str, m: String| problems.push(Diagnostic::new(file, col(f), "", m));
        if !(2..=3).contains(&fields.len()) {
            fail(fields[0], format!("expected `IP[/PREFIX] NAME [INSTANCE]`, got {} fields", fields.len()));
            continue;
        }
        let instance = fields.get(2).map(|i| i.to_string());
        if let Some(i) = fields.get(2).filter(|i| !is_instance(i)) {
            fail(i, format!("`{i}` is not an instance: an EC2 id (i-…) or a GCE ZONE/NAME"));
            continue;
        }
        let (ip, prefix) = match parse_address(fields[0]) {
            Ok(v) => v,
            Err(m) => {
                fail(fields[0], m);
                continue;
            }
        };
        let entry = NameEntry { name: fields[1].to_string(), prefix, instance, line };
        if let Some(first) = names.insert(ip, entry) {
            fail(fields[0], format!("{ip} is named twice (first on line {})", first.line));
        }
    }
    if problems.is_empty() { Ok(Names(names)) } else { Err(Diagnostics(problems)) }
}

fn is_instance(s: &str) -> bool {
    use crate::topology::validate::cloud::{is_ec2_id, is_gce_name, is_gce_zone};
    match s.split_once('/') {
        Some((zone, name)) => is_gce_zone(zone) && is_gce_name(name),
        None => is_ec2_id(s, "i"),
    }
}

fn parse_address(s: &str) -> Result<(IpAddr, Option<u8>), String> {
    if s.contains('/') {
        let net = crate::netaddr::parse_cidr(s, true).map_err(|e| e.to_string())?;
        return Ok((net.addr(), Some(net.prefix_len())));
    }
    crate::netaddr::parse_ip(s).map(|ip| (ip, None)).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_style_lines_with_optional_prefix() {
        let n = parse(Path::new("names"), "# comment\n10.0.0.11 node-a\n\n 10.0.1.12/23\tnode-b # rack 2\n")
            .expect("parses");
        let a = n.get("10.0.0.11".parse().expect("ip")).expect("a");
        assert_eq!((a.name.as_str(), a.prefix, a.line), ("node-a", None, 2));
        let b = n.get("10.0.1.12".parse().expect("ip")).expect("b");
        assert_eq!((b.name.as_str(), b.prefix, b.line), ("node-b", Some(23), 4));
        let c = parse(Path::new("names"), "10.0.0.13 node-c i-0123abcd\n10.0.0.14 node-d us-central1-a/node-d\n")
            .expect("parses");
        assert_eq!(c.get("10.0.0.13".parse().expect("ip")).and_then(|e| e.instance.as_deref()), Some("i-0123abcd"));
    }

    #[test]
    fn bad_lines_are_located() {
        let e = parse(Path::new("names"), "10.0.0.11 a\n10.0.0.300 b\n  10.0.0.11 c\nx y z w\n10.0.0.12 d i-1\n")
            .expect_err("refused");
        let got: Vec<String> = e.0.iter().map(ToString::to_string).collect();
        assert_eq!(got.len(), 4, "{got:?}");
        assert!(got[0].starts_with("names:2:1: error: "), "{got:?}");
        assert!(got[1].starts_with("names:3:3: error: 10.0.0.11 is named twice (first on line 1)"), "{got:?}");
        assert!(
            got[2].starts_with("names:4:1: error: expected `IP[/PREFIX] NAME [INSTANCE]`, got 4 fields"),
            "{got:?}"
        );
        assert!(got[3].starts_with("names:5:13: error: `i-1` is not an instance"), "{got:?}");
    }
}
