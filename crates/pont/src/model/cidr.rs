//! IPv4 prefixes: parsing, containment and overlap.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An IPv4 network prefix with no host bits set, such as `10.77.1.0/24`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Ipv4Net {
    addr: Ipv4Addr,
    prefix_len: u8,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CidrError {
    #[error("invalid CIDR '{0}': expected ADDRESS/PREFIX such as 10.77.1.0/24")]
    Syntax(String),
    #[error("invalid CIDR '{0}': prefix length must be 0..=32")]
    PrefixLength(String),
    #[error("invalid CIDR '{input}': host bits are set (did you mean {network}?)")]
    HostBits { input: String, network: String },
}

impl Ipv4Net {
    /// The prefix that contains `addr`, with host bits cleared.
    pub fn containing(addr: Ipv4Addr, prefix_len: u8) -> Ipv4Net {
        assert!(prefix_len <= 32, "prefix length {prefix_len} > 32");
        Ipv4Net {
            addr: Ipv4Addr::from(u32::from(addr) & mask(prefix_len)),
            prefix_len,
        }
    }

    pub fn network(&self) -> Ipv4Addr {
        self.addr
    }

    pub fn prefix_len(&self) -> u8 {
        self.prefix_len
    }

    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) | !mask(self.prefix_len))
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & mask(self.prefix_len) == u32::from(self.addr)
    }

    pub fn overlaps(&self, other: &Ipv4Net) -> bool {
        self.contains(other.addr) || other.contains(self.addr)
    }

    /// True when `other` lies entirely inside `self`.
    pub fn covers(&self, other: &Ipv4Net) -> bool {
        self.prefix_len <= other.prefix_len && self.contains(other.addr)
    }

    /// Number of addresses in the prefix (2^(32-len)), as u64 so /0 fits.
    pub fn size(&self) -> u64 {
        1u64 << (32 - self.prefix_len)
    }

    /// The `index`-th address of the prefix, if inside it.
    pub fn nth(&self, index: u64) -> Option<Ipv4Addr> {
        (index < self.size()).then(|| Ipv4Addr::from(u32::from(self.addr) + index as u32))
    }

    /// The `index`-th subnet of length `sub_len` inside this prefix.
    pub fn nth_subnet(&self, sub_len: u8, index: u64) -> Option<Ipv4Net> {
        if sub_len < self.prefix_len || sub_len > 32 {
            return None;
        }
        let count = 1u64 << (sub_len - self.prefix_len);
        let step = 1u64 << (32 - sub_len);
        (index < count).then(|| Ipv4Net {
            addr: Ipv4Addr::from((u64::from(u32::from(self.addr)) + index * step) as u32),
            prefix_len: sub_len,
        })
    }
}

fn mask(prefix_len: u8) -> u32 {
    if prefix_len == 0 {
        0
    } else {
        u32::MAX << (32 - prefix_len)
    }
}

impl FromStr for Ipv4Net {
    type Err = CidrError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let (addr, len) = input
            .split_once('/')
            .ok_or_else(|| CidrError::Syntax(input.into()))?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| CidrError::Syntax(input.into()))?;
        if len.is_empty() || !len.bytes().all(|b| b.is_ascii_digit()) || len.len() > 2 {
            return Err(CidrError::Syntax(input.into()));
        }
        let prefix_len: u8 = len.parse().map_err(|_| CidrError::Syntax(input.into()))?;
        if prefix_len > 32 {
            return Err(CidrError::PrefixLength(input.into()));
        }
        let net = Ipv4Net::containing(addr, prefix_len);
        if net.addr != addr {
            return Err(CidrError::HostBits {
                input: input.into(),
                network: net.to_string(),
            });
        }
        Ok(net)
    }
}

impl fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

impl TryFrom<String> for Ipv4Net {
    type Error = CidrError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Ipv4Net> for String {
    fn from(n: Ipv4Net) -> String {
        n.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    #[test]
    fn parses_and_prints() {
        assert_eq!(net("10.77.1.0/24").to_string(), "10.77.1.0/24");
        assert_eq!(net("0.0.0.0/0").size(), 1 << 32);
        assert_eq!(net("10.0.0.5/32").broadcast(), Ipv4Addr::new(10, 0, 0, 5));
    }

    #[test]
    fn rejects_bad_input_naming_it() {
        assert_eq!(
            "10.0.0.0".parse::<Ipv4Net>(),
            Err(CidrError::Syntax("10.0.0.0".into()))
        );
        assert_eq!(
            "10.0.0.0/33".parse::<Ipv4Net>(),
            Err(CidrError::PrefixLength("10.0.0.0/33".into()))
        );
        assert!(matches!(
            "10.0.0.0/+8".parse::<Ipv4Net>(),
            Err(CidrError::Syntax(_))
        ));
        assert!(matches!(
            "300.0.0.0/8".parse::<Ipv4Net>(),
            Err(CidrError::Syntax(_))
        ));
        let err = "10.77.1.5/24".parse::<Ipv4Net>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid CIDR '10.77.1.5/24': host bits are set (did you mean 10.77.1.0/24?)"
        );
    }

    #[test]
    fn overlap_and_cover() {
        assert!(net("10.0.0.0/8").overlaps(&net("10.1.0.0/16")));
        assert!(net("10.1.0.0/16").overlaps(&net("10.0.0.0/8")));
        assert!(!net("10.1.0.0/16").overlaps(&net("10.2.0.0/16")));
        assert!(net("10.0.0.0/8").covers(&net("10.1.0.0/16")));
        assert!(!net("10.1.0.0/16").covers(&net("10.0.0.0/8")));
    }

    #[test]
    fn subnets_step_through_a_pool() {
        let pool = net("192.168.0.0/16");
        assert_eq!(pool.nth_subnet(20, 0), Some(net("192.168.0.0/20")));
        assert_eq!(pool.nth_subnet(20, 1), Some(net("192.168.16.0/20")));
        assert_eq!(pool.nth_subnet(20, 15), Some(net("192.168.240.0/20")));
        assert_eq!(pool.nth_subnet(20, 16), None);
    }
}
