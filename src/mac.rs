//! Ethernet MAC addresses (VTEP MACs), written as `0e:4c:aa:01:02:03`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Mac(pub [u8; 6]);

impl Mac {
    /// Unicast: the I/G bit (bit 0 of the first octet) is clear.
    pub fn is_unicast(&self) -> bool {
        self.0[0] & 0x01 == 0
    }

    pub fn is_zero(&self) -> bool {
        self.0 == [0; 6]
    }

    /// Why this MAC cannot be a VTEP MAC, if it cannot.
    pub fn refusal(&self) -> Option<String> {
        (!self.is_unicast() || self.is_zero()).then(|| {
            format!("{self} is not a unicast address (the first octet's lowest bit must be 0, and not all zero)")
        })
    }

    /// A locally administered unicast MAC from the first six bytes of `bytes`.
    pub fn local_unicast(bytes: [u8; 6]) -> Mac {
        let mut b = bytes;
        b[0] = (b[0] & 0xfc) | 0x02;
        Mac(b)
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(f, "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2], b[3], b[4], b[5])
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a MAC address (expected six hex octets like 0e:4c:aa:01:02:03)")]
pub struct MacParseError(String);

impl FromStr for Mac {
    type Err = MacParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || MacParseError(s.to_string());
        let mut out = [0u8; 6];
        let mut parts = s.split(':');
        for slot in &mut out {
            let p = parts.next().ok_or_else(err)?;
            if p.len() != 2 {
                return Err(err());
            }
            *slot = u8::from_str_radix(p, 16).map_err(|_| err())?;
        }
        if parts.next().is_some() {
            return Err(err());
        }
        Ok(Mac(out))
    }
}

impl Serialize for Mac {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Mac {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let m: Mac = "0E:4c:aa:01:02:03".parse().expect("valid");
        assert_eq!(m.to_string(), "0e:4c:aa:01:02:03");
        assert!(m.is_unicast());
    }

    #[test]
    fn rejects_malformed() {
        for bad in
            ["", "0e:4c:aa:01:02", "0e:4c:aa:01:02:03:04", "0e-4c-aa-01-02-03", "zz:4c:aa:01:02:03", "e:4c:aa:01:02:03"]
        {
            assert!(bad.parse::<Mac>().is_err(), "{bad}");
        }
    }

    #[test]
    fn local_unicast_sets_the_bits() {
        let m = Mac::local_unicast([0xff; 6]);
        assert_eq!(m.0[0], 0xfe);
        assert!(m.is_unicast());
    }
}
