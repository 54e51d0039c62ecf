//! Client addresses and per-route IP rules: where the address comes from (`auth.client_address`), and the
//! `allow`/`deny` CIDR lists of `auth.routes[i].ip`.
//!
//! IPv4-mapped IPv6 addresses (`::ffff:10.1.2.3`, what a dual-stack listener reports for an IPv4 client) are
//! treated as the IPv4 address they carry, and so are rules written in that form (`::ffff:10.0.0.0/104` is
//! `10.0.0.0/8`): an operator writes IPv4 rules once, whichever way the listener is bound. The other side
//! of that choice: an IPv6 block never matches an IPv4 client, so `::/0` alone does not admit everyone.

use std::net::{IpAddr, SocketAddr};

use serde::Deserialize;
use tollgate_core::{ConfigError, ConfigPath, RequestHead};

/// `auth.client_address`, as written in config.
#[derive(Debug, Deserialize)]
#[serde(tag = "from", rename_all = "snake_case", deny_unknown_fields)]
pub enum RawClientAddress {
    /// Envoy's downstream peer (`source.address`). A struct variant, so that stray fields are refused.
    Source {},
    /// The `trusted_hops`-th entry of `X-Forwarded-For`, counted from the right.
    XForwardedFor { trusted_hops: usize },
}

/// Where the client address of a request is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAddress {
    Source,
    XForwardedFor { trusted_hops: usize },
}

impl ClientAddress {
    pub fn compile(raw: Option<RawClientAddress>, path: &ConfigPath) -> Result<Self, ConfigError> {
        match raw.unwrap_or(RawClientAddress::Source {}) {
            RawClientAddress::Source {} => Ok(ClientAddress::Source),
            RawClientAddress::XForwardedFor { trusted_hops: 0 } => {
                Err(path.field("trusted_hops").error("must be at least 1"))
            }
            RawClientAddress::XForwardedFor { trusted_hops } => {
                Ok(ClientAddress::XForwardedFor { trusted_hops })
            }
        }
    }

    /// The client's address, or `None` when it cannot be known: no or an unparsable peer address, too few
    /// `X-Forwarded-For` entries, or an unparsable entry at the trusted position.
    pub fn resolve(self, head: &RequestHead, source: Option<&str>) -> Option<IpAddr> {
        match self {
            ClientAddress::Source => parse_address(source?),
            ClientAddress::XForwardedFor { trusted_hops } => {
                forwarded_for(head, trusted_hops).as_deref().and_then(parse_address)
            }
        }
    }
}

/// The entry `trusted_hops` from the right of all `X-Forwarded-For` headers joined in order. Each trusted
/// proxy appends the address it saw, so entries further left were written by the client and are ignored.
fn forwarded_for(head: &RequestHead, trusted_hops: usize) -> Option<String> {
    let joined = head.headers.get_all("x-forwarded-for").collect::<Vec<_>>().join(",");
    let entry = joined.split(',').map(str::trim).rev().nth(trusted_hops.checked_sub(1)?)?;
    Some(entry.to_string())
}

/// An address as proxies write it: `1.2.3.4`, `1.2.3.4:5`, `2001:db8::1`, `[2001:db8::1]` or
/// `[2001:db8::1]:443`. IPv4-mapped IPv6 comes back as IPv4.
pub fn parse_address(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    let ip = match text.parse::<SocketAddr>() {
        Ok(socket) => socket.ip(),
        Err(_) => match text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
            Some(inner) => inner.parse::<IpAddr>().ok()?,
            None => text.parse::<IpAddr>().ok()?,
        },
    };
    Some(ip.to_canonical())
}

/// A CIDR block. Host bits below the prefix are cleared when parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpBlock {
    V4 { network: u32, prefix: u32 },
    V6 { network: u128, prefix: u32 },
}

impl IpBlock {
    /// `10.0.0.0/8`, `2001:db8::/32`, or a bare address (`/32` or `/128`).
    pub fn parse(text: &str) -> Option<Self> {
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) if prefix.bytes().all(|b| b.is_ascii_digit()) => {
                (address, Some(prefix.parse::<u32>().ok()?))
            }
            Some(_) => return None,
            None => (text, None),
        };
        match address.parse::<IpAddr>().ok()? {
            IpAddr::V4(v4) => {
                let prefix = prefix.unwrap_or(32);
                (prefix <= 32).then(|| IpBlock::V4 { network: u32::from(v4) & mask32(prefix), prefix })
            }
            IpAddr::V6(v6) => {
                let prefix = prefix.unwrap_or(128);
                if prefix > 128 {
                    return None;
                }
                match v6.to_ipv4_mapped() {
                    Some(v4) if prefix >= 96 => {
                        let prefix = prefix - 96;
                        Some(IpBlock::V4 { network: u32::from(v4) & mask32(prefix), prefix })
                    }
                    _ => Some(IpBlock::V6 { network: u128::from(v6) & mask128(prefix), prefix }),
                }
            }
        }
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (*self, ip.to_canonical()) {
            (IpBlock::V4 { network, prefix }, IpAddr::V4(v4)) => u32::from(v4) & mask32(prefix) == network,
            (IpBlock::V6 { network, prefix }, IpAddr::V6(v6)) => u128::from(v6) & mask128(prefix) == network,
            _ => false,
        }
    }
}

fn mask32(prefix: u32) -> u32 {
    u32::MAX.checked_shl(32 - prefix.min(32)).unwrap_or(0)
}

fn mask128(prefix: u32) -> u128 {
    u128::MAX.checked_shl(128 - prefix.min(128)).unwrap_or(0)
}

/// `auth.routes[i].ip`, as written in config.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIpRules {
    /// Empty: every address not denied.
    #[serde(default)]
    pub allow: Vec<String>,
    #[serde(default)]
    pub deny: Vec<String>,
}

/// The compiled IP rules of a route: deny wins, then a non-empty `allow` must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpRules {
    allow: Vec<IpBlock>,
    deny: Vec<IpBlock>,
}

/// Why the IP rules refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpDenial {
    /// The route has IP rules but the client address is not known: refused, failing closed.
    UnknownAddress,
    NotAllowed,
}

impl IpRules {
    pub fn compile(raw: RawIpRules, path: &ConfigPath) -> Result<Self, ConfigError> {
        if raw.allow.is_empty() && raw.deny.is_empty() {
            return Err(path.error("needs at least one address in allow or deny"));
        }
        Ok(IpRules {
            allow: blocks(raw.allow, &path.field("allow"))?,
            deny: blocks(raw.deny, &path.field("deny"))?,
        })
    }

    pub fn check(&self, client: Option<IpAddr>) -> Result<(), IpDenial> {
        let ip = client.ok_or(IpDenial::UnknownAddress)?;
        let denied = self.deny.iter().any(|b| b.contains(ip));
        let allowed = self.allow.is_empty() || self.allow.iter().any(|b| b.contains(ip));
        if denied || !allowed {
            return Err(IpDenial::NotAllowed);
        }
        Ok(())
    }
}

fn blocks(raw: Vec<String>, path: &ConfigPath) -> Result<Vec<IpBlock>, ConfigError> {
    raw.iter()
        .enumerate()
        .map(|(i, text)| {
            IpBlock::parse(text)
                .ok_or_else(|| path.index(i).error(format!("{text:?} is not an IP address or CIDR")))
        })
        .collect()
}

#[cfg(test)]
mod tests;
