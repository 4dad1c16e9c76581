//! Names, MAC addresses and MTUs supplied by users.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A request field that failed validation. The message names the value and the rule.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InputError {
    #[error("invalid {kind} name '{name}': {reason}")]
    Name {
        kind: &'static str,
        name: String,
        reason: &'static str,
    },
    #[error("invalid MTU {0}: must be between 68 and 65535")]
    Mtu(u32),
    #[error("invalid MAC address '{0}': expected six hex pairs such as 02:42:ac:11:00:02")]
    Mac(String),
    #[error("invalid MAC address '{0}': {1}")]
    MacKind(String, &'static str),
}

pub const MAX_NAME_LEN: usize = 64;

/// Names of networks and containers: 1-64 characters from `[A-Za-z0-9_.-]`,
/// starting with a letter or digit (so a name never looks like an option or a path).
pub fn validate_name(kind: &'static str, name: &str) -> Result<(), InputError> {
    let fail = |reason| {
        Err(InputError::Name {
            kind,
            name: name.into(),
            reason,
        })
    };
    if name.is_empty() {
        return fail("must not be empty");
    }
    if name.len() > MAX_NAME_LEN {
        return fail("longer than 64 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
    {
        return fail("only letters, digits, '_', '.' and '-' are allowed");
    }
    if !name.as_bytes()[0].is_ascii_alphanumeric() {
        return fail("must start with a letter or digit");
    }
    Ok(())
}

/// 68 is the IPv4 minimum (RFC 791); 65535 the largest the kernel accepts on a bridge.
pub fn validate_mtu(mtu: u32) -> Result<u32, InputError> {
    if (68..=65535).contains(&mtu) {
        Ok(mtu)
    } else {
        Err(InputError::Mtu(mtu))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// A random, locally administered, unicast address (bit 1 of the first octet set,
    /// bit 0 clear: IEEE 802 "LAA unicast").
    pub fn random() -> MacAddr {
        let mut bytes = [0u8; 6];
        crate::random_bytes(&mut bytes);
        bytes[0] = (bytes[0] | 0x02) & !0x01;
        MacAddr(bytes)
    }

    /// 02:42 and the IPv4 address: the MAC an endpoint gets by default (see
    /// `engine::mac_for`, which says why).
    pub fn derived_from(ipv4: Ipv4Addr) -> MacAddr {
        let [a, b, c, d] = ipv4.octets();
        MacAddr([0x02, 0x42, a, b, c, d])
    }

    /// The address this MAC is [`MacAddr::derived_from`], if it has that form.
    pub fn derived_ipv4(&self) -> Option<Ipv4Addr> {
        let [x, y, a, b, c, d] = self.0;
        ([x, y] == [0x02, 0x42]).then_some(Ipv4Addr::new(a, b, c, d))
    }
}

pub fn validate_mac(input: &str) -> Result<MacAddr, InputError> {
    let mac: MacAddr = input.parse()?;
    if mac.0[0] & 0x01 != 0 {
        return Err(InputError::MacKind(
            input.into(),
            "multicast addresses cannot be assigned",
        ));
    }
    if mac.0 == [0; 6] {
        return Err(InputError::MacKind(
            input.into(),
            "the all-zero address cannot be assigned",
        ));
    }
    Ok(mac)
}

impl FromStr for MacAddr {
    type Err = InputError;
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = input.split(':').collect();
        if parts.len() != 6 {
            return Err(InputError::Mac(input.into()));
        }
        let mut bytes = [0u8; 6];
        for (byte, part) in bytes.iter_mut().zip(parts) {
            // from_str_radix alone would take "+c" for 0x0c (found by fuzz/names).
            if part.len() != 2 || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(InputError::Mac(input.into()));
            }
            *byte = u8::from_str_radix(part, 16).map_err(|_| InputError::Mac(input.into()))?;
        }
        Ok(MacAddr(bytes))
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl TryFrom<String> for MacAddr {
    type Error = InputError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<MacAddr> for String {
    fn from(m: MacAddr) -> String {
        m.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(validate_name("network", "web").is_ok());
        assert!(validate_name("network", "a.b_c-1").is_ok());
        assert!(validate_name("network", &"x".repeat(64)).is_ok());
        let long = "x".repeat(65);
        assert_eq!(
            validate_name("network", &long).unwrap_err().to_string(),
            format!("invalid network name '{long}': longer than 64 characters")
        );
        assert!(validate_name("container", "").is_err());
        assert!(validate_name("container", "a b").is_err());
        assert!(validate_name("container", "a/b").is_err());
        assert!(validate_name("container", "-x").is_err());
        assert!(validate_name("container", "ü").is_err());
    }

    #[test]
    fn mtu_bounds() {
        assert!(validate_mtu(68).is_ok());
        assert!(validate_mtu(65535).is_ok());
        assert_eq!(validate_mtu(67), Err(InputError::Mtu(67)));
        assert_eq!(validate_mtu(65536), Err(InputError::Mtu(65536)));
    }

    #[test]
    fn macs() {
        assert_eq!(
            validate_mac("02:42:AC:11:00:02").unwrap().to_string(),
            "02:42:ac:11:00:02"
        );
        assert!(validate_mac("01:00:5e:00:00:01").is_err());
        assert!(validate_mac("00:00:00:00:00:00").is_err());
        assert!(validate_mac("02:42:ac:11:00").is_err());
        assert!(validate_mac("02:42:ac:11:00:zz").is_err());
        // Regression (fuzz/names): a sign is not a hex digit.
        assert!("22:42:AC:11:+C:12".parse::<MacAddr>().is_err());
        assert!("+2:42:ac:11:0c:12".parse::<MacAddr>().is_err());
        for _ in 0..100 {
            let m = MacAddr::random();
            assert_eq!(m.0[0] & 0x03, 0x02, "{m} must be local unicast");
        }
    }
}
