//! WireGuard keys: Curve25519, 32 bytes, written as base64 (44 characters),
//! as `wg genkey`/`wg pubkey` and flanneld's lease `PublicKey` have them.
//! A private key is made and kept on its node only (`wireguard keygen`);
//! the lock, plans and rendered files carry public keys.

use std::fmt;
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// A 32-byte key. `Debug` never prints it (a private key may be one).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key([u8; 32]);

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(..)")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("not base64 (a WireGuard key is 44 characters of base64, as `wg genkey` writes it)")]
    NotBase64,
    #[error("{0} bytes; a WireGuard key is 32 (44 characters of base64)")]
    Length(usize),
}

impl FromStr for Key {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Key, KeyError> {
        let bytes = STANDARD.decode(s.trim()).map_err(|_| KeyError::NotBase64)?;
        let array: [u8; 32] = bytes.as_slice().try_into().map_err(|_| KeyError::Length(bytes.len()))?;
        Ok(Key(array))
    }
}

impl fmt::Display for Key {
    /// Base64, as `wg` prints keys (the private key's too: callers decide
    /// where it may go).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&STANDARD.encode(self.0))
    }
}

impl serde::Serialize for Key {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Key {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Key, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl Key {
    /// All zeros: the UAPI's "no pre-shared key".
    pub const ZERO: Key = Key([0; 32]);

    /// The key as lowercase hex: the form of wireguard's UAPI.
    pub fn hex(&self) -> String {
        use std::fmt::Write;
        self.0.iter().fold(String::with_capacity(64), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
    }

    /// A key from the UAPI's 64 hex digits.
    pub fn from_hex(h: &str) -> Option<Key> {
        if h.len() != 64 || !h.is_ascii() {
            return None;
        }
        let mut k = [0u8; 32];
        for (i, b) in k.iter_mut().enumerate() {
            *b = u8::from_str_radix(&h[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(Key(k))
    }

    /// A new private key from the kernel's random source, clamped as
    /// Curve25519 wants (RFC 7748 §5; `wg genkey` does the same).
    pub fn generate() -> std::io::Result<Key> {
        let mut k = [0u8; 32];
        let mut filled = 0;
        while filled < k.len() {
            // SAFETY: the pointer and length describe the unfilled tail of `k`.
            let n = unsafe { libc::getrandom(k[filled..].as_mut_ptr().cast(), k.len() - filled, 0) };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            filled += n as usize;
        }
        k[0] &= 248;
        k[31] &= 127;
        k[31] |= 64;
        Ok(Key(k))
    }

    /// The public key of this private key.
    pub fn public(&self) -> Key {
        Key(x25519_dalek::x25519(self.0, x25519_dalek::X25519_BASEPOINT_BYTES))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(k: &Key) -> String {
        k.hex()
    }

    fn from_hex(h: &str) -> Key {
        Key::from_hex(h).unwrap()
    }

    /// RFC 7748 §6.1: Alice's private key and her public key.
    #[test]
    fn public_keys_follow_rfc_7748() {
        let alice = from_hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
        assert_eq!(hex(&alice.public()), "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
        let bob = from_hex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
        assert_eq!(hex(&bob.public()), "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
    }

    #[test]
    fn keys_read_back_and_bad_ones_are_named() {
        let k = Key::generate().unwrap();
        assert_eq!(k.to_string().len(), 44);
        assert_eq!(k.to_string().parse::<Key>(), Ok(k));
        assert_eq!(k.0[0] & 7, 0, "clamped");
        assert_ne!(Key::generate().unwrap(), k);
        assert_eq!("not base64!".parse::<Key>(), Err(KeyError::NotBase64));
        assert_eq!(STANDARD.encode([1u8; 31]).parse::<Key>(), Err(KeyError::Length(31)));
        assert_eq!(format!("{k:?}"), "Key(..)");
        assert_eq!(Key::from_hex(&k.hex()), Some(k));
        assert_eq!(Key::from_hex("zz"), None);
        assert_eq!(Key::from_hex(&"g".repeat(64)), None);
    }
}
