//! Address pools that networks made without `--subnet` are carved from.

use std::fmt;

use crate::model::Ipv4Net;

/// Docker's defaults: 172.17.0.0/16 to 172.31.0.0/16, then 192.168.0.0/16 in /20 steps.
/// Syntax: comma-separated `BASE/LEN:SIZE` (carve /SIZE subnets out of BASE/LEN).
pub const DEFAULT_POOLS: &str = "172.17.0.0/16:16,172.18.0.0/15:16,172.20.0.0/14:16,\
                                 172.24.0.0/13:16,192.168.0.0/16:20";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddressPool {
    pub base: Ipv4Net,
    pub size: u8,
}

impl AddressPool {
    pub fn subnets(&self) -> impl Iterator<Item = Ipv4Net> + '_ {
        (0u64..).map_while(|i| self.base.nth_subnet(self.size, i))
    }
}

impl fmt::Display for AddressPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.base, self.size)
    }
}

pub fn parse_pools(spec: &str) -> Result<Vec<AddressPool>, String> {
    spec.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|item| {
            let bad = || format!("invalid address pool '{item}': expected BASE/LEN:SIZE");
            let (base, size) = item.split_once(':').ok_or_else(bad)?;
            let base: Ipv4Net = base.parse().map_err(|e| format!("{e}"))?;
            let size: u8 = size.parse().map_err(|_| bad())?;
            if size < base.prefix_len() || size > 30 {
                return Err(format!(
                    "invalid address pool '{item}': size /{size} must be between /{} and /30",
                    base.prefix_len()
                ));
            }
            Ok(AddressPool { base, size })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_pools_enumerate_like_docker() {
        let pools = parse_pools(DEFAULT_POOLS).unwrap();
        let subnets: Vec<String> = pools
            .iter()
            .flat_map(|p| p.subnets())
            .map(|s| s.to_string())
            .collect();
        assert_eq!(subnets[0], "172.17.0.0/16");
        assert_eq!(subnets[14], "172.31.0.0/16");
        assert_eq!(subnets[15], "192.168.0.0/20");
        assert_eq!(subnets.len(), 15 + 16);
    }

    #[test]
    fn bad_pools() {
        assert!(parse_pools("10.0.0.0/8").is_err());
        assert!(parse_pools("10.0.0.0/8:4").is_err());
        assert!(parse_pools("10.0.0.0/8:x").is_err());
        assert_eq!(
            parse_pools("10.0.0.0/8:24").unwrap()[0].subnets().count(),
            65536
        );
    }
}
