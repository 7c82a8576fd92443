//! flanneld's stored formats, byte for byte:
//!
//! * subnet keys — `MakeSubnetKey`/`ParseSubnetKey` in pkg/subnet/subnet.go:
//!   `10.5.52.0-24`, dual-stack `10.5.52.0-24&fd00:10:5:34::-64`;
//! * lease values — Go's `encoding/json` of `lease.LeaseAttrs`
//!   (pkg/lease/lease.go): `PublicIP` always, `PublicIPv6` always (`null`
//!   when unset, it is a pointer without omitempty), `BackendType`,
//!   `BackendData`, `BackendV6Data` omitted when empty; the vxlan data is
//!   `vxlanLeaseAttrs{VNI uint32; VtepMAC hardwareAddr}` with the MAC as
//!   Go's lowercase `net.HardwareAddr` string (pkg/backend/vxlan), the
//!   wireguard data `wireguardLeaseAttrs{PublicKey string; Port uint16}`
//!   (pkg/backend/wireguard/wireguard_network.go).
//!
//! Reading follows Go's `json.Unmarshal`: member names match in any case and
//! unknown members are ignored; a value flanneld could not decode is an error.

use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};
use serde_json::{Map, Value};

use super::{BackendData, LeaseAttrs, VxlanData, WireguardData};
use crate::json_path::go_field;
use crate::mac::Mac;
use crate::wireguard::key::Key;

/// A problem in a decoded value: the JSON path inside it and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bad {
    pub path: String,
    pub message: String,
}

impl Bad {
    fn new(path: impl Into<String>, message: impl Into<String>) -> Bad {
        Bad { path: path.into(), message: message.into() }
    }
}

/// The key of a lease under `<prefix>/subnets/`.
pub fn subnet_key(v4: Ipv4Net, v6: Option<Ipv6Net>) -> String {
    let mut key = format!("{}-{}", v4.addr(), v4.prefix_len());
    if let Some(v6) = v6 {
        key.push_str(&format!("&{}-{}", v6.addr(), v6.prefix_len()));
    }
    key
}

/// Parses the last segment of a subnet key. Stricter than flanneld's regex
/// only in refusing what flanneld would mis-read: host bits, a bad prefix.
pub fn parse_subnet_key(name: &str) -> Result<(Ipv4Net, Option<Ipv6Net>), String> {
    let (v4, v6) = match name.split_once('&') {
        Some((a, b)) => (a, Some(b)),
        None => (name, None),
    };
    let v4 = parse_part(v4)?;
    let v4 = crate::netaddr::v4(v4).ok_or_else(|| format!("`{name}` does not start with an IPv4 subnet"))?;
    let v6 = match v6 {
        Some(p) => {
            let n = parse_part(p)?;
            Some(crate::netaddr::v6(n).ok_or_else(|| format!("`{p}` after `&` is not an IPv6 subnet"))?)
        }
        None => None,
    };
    Ok((v4, v6))
}

fn parse_part(part: &str) -> Result<ipnet::IpNet, String> {
    let (addr, len) = part
        .rsplit_once('-')
        .ok_or_else(|| format!("`{part}` is not a subnet key (expected ADDR-LEN, e.g. 10.5.52.0-24)"))?;
    crate::netaddr::parse_cidr(&format!("{addr}/{len}"), false).map_err(|e| format!("subnet key `{part}`: {e}"))
}

/// `{"VNI":1,"VtepMAC":"0e:4c:aa:01:02:03"}`, as vxlan's `json.Marshal` writes it.
pub fn vxlan_data_json(d: &VxlanData) -> String {
    format!(r#"{{"VNI":{},"VtepMAC":"{}"}}"#, d.vni, d.vtep_mac)
}

/// `{"PublicKey":"…","Port":51820}`, as wireguard's `json.Marshal` writes it
/// (base64 has no character Go escapes).
pub fn wireguard_data_json(d: &WireguardData) -> String {
    format!(r#"{{"PublicKey":"{}","Port":{}}}"#, d.public_key, d.port)
}

pub fn data_json(d: &BackendData) -> String {
    match d {
        BackendData::Vxlan(v) => vxlan_data_json(v),
        BackendData::Wireguard(w) => wireguard_data_json(w),
    }
}

/// A lease value exactly as flanneld's `json.Marshal(attrs)` writes it.
pub fn encode_attrs(a: &LeaseAttrs) -> String {
    let v6 = a.public_ipv6.map_or_else(|| "null".to_string(), |ip| format!("\"{ip}\""));
    let mut out = format!(r#"{{"PublicIP":"{}","PublicIPv6":{v6}"#, a.public_ip);
    if !a.backend_type.is_empty() {
        out.push_str(&format!(r#","BackendType":{}"#, go_string(&a.backend_type)));
    }
    if let Some(d) = &a.backend_data {
        out.push_str(&format!(r#","BackendData":{}"#, data_json(d)));
    }
    if let Some(d) = &a.backend_v6_data {
        out.push_str(&format!(r#","BackendV6Data":{}"#, data_json(d)));
    }
    out.push('}');
    out
}

/// A JSON string as Go's `json.Marshal` writes it: HTML-safe escapes for
/// `<`, `>`, `&` and U+2028/U+2029 on top of the usual ones.
fn go_string(s: &str) -> String {
    let quoted = serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string());
    quoted
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

/// Decodes a lease value the way flanneld does (and the backend data of
/// vxlan and wireguard, as those backends do on every event).
pub fn decode_attrs(text: &str) -> Result<LeaseAttrs, Vec<Bad>> {
    let v: Value = serde_json::from_str(text).map_err(|e| vec![Bad::new("", format!("not JSON: {e}"))])?;
    let Some(obj) = v.as_object() else {
        return Err(vec![Bad::new("", "expected a JSON object (flanneld's lease attributes)")]);
    };
    let mut bad = Vec::new();
    let public_ip = match go_field(obj, "PublicIP") {
        None => Ipv4Addr::UNSPECIFIED,
        Some((k, v)) => ipv4(v).unwrap_or_else(|m| {
            bad.push(Bad::new(k, m));
            Ipv4Addr::UNSPECIFIED
        }),
    };
    let public_ipv6 = match go_field(obj, "PublicIPv6") {
        None | Some((_, Value::Null)) => None,
        Some((k, v)) => ipv6(v).map_err(|m| bad.push(Bad::new(k, m))).ok(),
    };
    let backend_type = match go_field(obj, "BackendType") {
        None | Some((_, Value::Null)) => String::new(),
        Some((_, Value::String(s))) => s.clone(),
        Some((k, v)) => {
            bad.push(Bad::new(k, format!("expected a string, got {v}")));
            String::new()
        }
    };
    let backend_data = data(obj, "BackendData", &backend_type, &mut bad);
    let backend_v6_data = data(obj, "BackendV6Data", &backend_type, &mut bad);
    if !bad.is_empty() {
        return Err(bad);
    }
    Ok(LeaseAttrs { public_ip, public_ipv6, backend_type, backend_data, backend_v6_data })
}

fn data(obj: &Map<String, Value>, key: &str, backend_type: &str, bad: &mut Vec<Bad>) -> Option<BackendData> {
    let (k, v) = go_field(obj, key)?;
    match decode_data(backend_type, v) {
        Ok(d) => d,
        Err(b) => {
            bad.extend(b.into_iter().map(|b| Bad::new(join(k, &b.path), b.message)));
            None
        }
    }
}

/// The data of a backend that carries any (vxlan, wireguard); other
/// backends' data is not read, as flanneld does not.
pub fn decode_data(backend_type: &str, v: &Value) -> Result<Option<BackendData>, Vec<Bad>> {
    match backend_type {
        "vxlan" => Ok(decode_vxlan_data(v)?.map(BackendData::Vxlan)),
        "wireguard" => Ok(decode_wireguard_data(v)?.map(BackendData::Wireguard)),
        _ => Ok(None),
    }
}

/// wireguard's `{"PublicKey":…,"Port":…}`; `null` is no data. flanneld
/// cannot add a peer without a valid key (wgtypes.ParseKey); a missing
/// port is 0, which it reads as its own.
pub fn decode_wireguard_data(v: &Value) -> Result<Option<WireguardData>, Vec<Bad>> {
    let Some(obj) = data_object(v, "wireguard")? else { return Ok(None) };
    let mut bad = Vec::new();
    let port = match go_field(obj, "Port") {
        None | Some((_, Value::Null)) => 0,
        Some((k, v)) => v.as_u64().and_then(|n| u16::try_from(n).ok()).unwrap_or_else(|| {
            bad.push(Bad::new(k, format!("expected a port (an unsigned 16-bit number), got {v}")));
            0
        }),
    };
    let public_key = match go_field(obj, "PublicKey") {
        None | Some((_, Value::Null)) => {
            bad.push(Bad::new("", "no `PublicKey`: flanneld could not add this node as a WireGuard peer"));
            None
        }
        Some((k, v)) => string(v)
            .and_then(|s| s.parse::<Key>().map_err(|e| format!("`{s}`: {e}")))
            .map_err(|m| bad.push(Bad::new(k, m)))
            .ok(),
    };
    match public_key {
        Some(public_key) if bad.is_empty() => Ok(Some(WireguardData { public_key, port })),
        _ => Err(bad),
    }
}

fn join(prefix: &str, path: &str) -> String {
    if path.is_empty() { prefix.to_string() } else { format!("{prefix}.{path}") }
}

/// A backend's lease data: an object, or `null` for none.
fn data_object<'a>(v: &'a Value, backend: &str) -> Result<Option<&'a Map<String, Value>>, Vec<Bad>> {
    match v {
        Value::Null => Ok(None),
        Value::Object(o) => Ok(Some(o)),
        other => Err(vec![Bad::new("", format!("expected the {backend} lease data object, got {other}"))]),
    }
}

/// vxlan's `{"VNI":…,"VtepMAC":…}`; `null` is no data.
pub fn decode_vxlan_data(v: &Value) -> Result<Option<VxlanData>, Vec<Bad>> {
    let Some(obj) = data_object(v, "vxlan")? else { return Ok(None) };
    let mut bad = Vec::new();
    let vni = match go_field(obj, "VNI") {
        None => 0,
        Some((k, v)) => match v.as_u64().and_then(|n| u32::try_from(n).ok()) {
            Some(n) => n,
            None => {
                bad.push(Bad::new(k, format!("expected a VNI (an unsigned 32-bit number), got {v}")));
                0
            }
        },
    };
    let vtep_mac = match go_field(obj, "VtepMAC") {
        None | Some((_, Value::Null)) => {
            bad.push(Bad::new("", "no `VtepMAC`: flanneld could not program this peer's FDB entry"));
            None
        }
        Some((k, v)) => mac(v).map_err(|m| bad.push(Bad::new(k, m))).ok(),
    };
    match vtep_mac {
        Some(vtep_mac) if bad.is_empty() => Ok(Some(VxlanData { vni, vtep_mac })),
        _ => Err(bad),
    }
}

fn string(v: &Value) -> Result<&str, String> {
    v.as_str().ok_or_else(|| format!("expected a string, got {v}"))
}

fn ipv4(v: &Value) -> Result<Ipv4Addr, String> {
    crate::netaddr::parse_ipv4(string(v)?).map_err(|e| e.to_string())
}

fn ipv6(v: &Value) -> Result<Ipv6Addr, String> {
    let s = string(v)?;
    s.parse::<Ipv6Addr>().map_err(|_| format!("`{s}` is not an IPv6 address"))
}

/// Go's `net.ParseMAC` for the 6-octet forms flanneld writes and reads:
/// colon- or hyphen-separated, any case.
fn mac(v: &Value) -> Result<Mac, String> {
    let s = string(v)?;
    let mac: Mac = s.replace('-', ":").parse().map_err(|e| format!("{e}"))?;
    mac.refusal().map_or(Ok(mac), Err)
}

#[cfg(test)]
mod tests;
