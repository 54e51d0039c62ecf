use hashbrown::HashMap;
use serde::Deserialize;
use tollgate_core::{header_name, ConfigError, ConfigPath};

use crate::api_keys::{ApiKeys, RawApiKey};
use crate::authenticator::{Auth, ConsumerInfo};
use crate::client_ip::{ClientAddress, RawClientAddress};
use crate::issuers::JwtIssuers;
use crate::jwt::{JwtProviders, RawJwtProvider};
use crate::routes::{check_require, Declared, RawRoute, Require, Route, Routes};
use crate::sources::{CredentialStrip, RawCredentialSource, Source, Sources};

/// The header naming the authenticated consumer, when `consumer_header` is not set.
pub const DEFAULT_CONSUMER_HEADER: &str = "x-tollgate-consumer";

/// The `auth` section as the operator writes it. Every field is optional; with no consumers and no JWT
/// providers, authentication is off.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuthConfig {
    #[serde(default)]
    pub consumers: Vec<RawConsumer>,
    /// Absent: `Authorization: Bearer`, `x-api-key`, `api-key`.
    #[serde(default)]
    pub api_key_sources: Option<Vec<RawCredentialSource>>,
    #[serde(default)]
    pub jwt_providers: Vec<RawJwtProvider>,
    /// Absent: `Authorization: Bearer`.
    #[serde(default)]
    pub jwt_sources: Option<Vec<RawCredentialSource>>,
    /// First match wins; a request no rule matches gets `default`.
    #[serde(default)]
    pub routes: Vec<RawRoute>,
    #[serde(default)]
    pub consumer_header: Option<String>,
    /// Absent: `any` when keys or providers are configured, else `none`.
    #[serde(default)]
    pub default: Option<Require>,
    /// Where route IP rules read the client address. Absent: Envoy's downstream peer (`source.address`).
    #[serde(default)]
    pub client_address: Option<RawClientAddress>,
}

/// A client of the gateway: a name, an optional group that route rules can refer to, and its keys.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConsumer {
    pub name: String,
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub api_keys: Vec<RawApiKey>,
}

impl Auth {
    /// Compiles the `auth` section found at `path`.
    pub fn compile(raw: RawAuthConfig, path: &ConfigPath) -> Result<Auth, ConfigError> {
        let mut consumers = Vec::with_capacity(raw.consumers.len());
        let mut by_name = HashMap::new();
        let mut keys = ApiKeys::default();
        for (i, consumer) in raw.consumers.into_iter().enumerate() {
            let at = path.field("consumers").index(i);
            check_name(&consumer.name, &at.field("name"))?;
            if let Some(group) = &consumer.group {
                check_name(group, &at.field("group"))?;
            }
            if by_name.insert(consumer.name.clone(), i).is_some() {
                return Err(at
                    .field("name")
                    .error(format!("consumer {:?} is declared twice", consumer.name)));
            }
            for (k, key) in consumer.api_keys.into_iter().enumerate() {
                keys.add(key, i, &at.field("api_keys").index(k))?;
            }
            consumers.push(ConsumerInfo::new(consumer.name, consumer.group));
        }

        let issuers =
            JwtIssuers::new(raw.jwt_providers.iter().map(|p| (p.name.clone(), p.issuer.clone())).collect());
        let jwt = JwtProviders::compile(raw.jwt_providers, &path.field("jwt_providers"))?;
        let api_key_sources = Sources::compile(
            raw.api_key_sources,
            vec![Source::bearer(), Source::header("x-api-key"), Source::header("api-key")],
            &path.field("api_key_sources"),
        )?;
        let jwt_sources =
            Sources::compile(raw.jwt_sources, vec![Source::bearer()], &path.field("jwt_sources"))?;

        let consumer_names: Vec<&str> = consumers.iter().map(|c| c.name.as_str()).collect();
        let mut groups: Vec<&str> = consumers.iter().filter_map(|c| c.group.as_deref()).collect();
        groups.sort_unstable();
        groups.dedup();
        let provider_names: Vec<&str> = jwt.names().collect();
        let declared = Declared {
            consumers: &consumer_names,
            groups: &groups,
            jwt_providers: &provider_names,
            has_api_keys: !keys.is_empty(),
        };
        let fallback = match raw.default {
            Some(require) => {
                check_require(require, &declared, &path.field("default"))?;
                require
            }
            None if declared.has_api_keys || !provider_names.is_empty() => Require::Any,
            None => Require::None,
        };
        let rules = raw
            .routes
            .into_iter()
            .enumerate()
            .map(|(i, r)| Route::compile(r, fallback, &declared, &path.field("routes").index(i)))
            .collect::<Result<Vec<_>, _>>()?;

        let client_address = ClientAddress::compile(raw.client_address, &path.field("client_address"))?;
        let consumer_header = consumer_header(raw.consumer_header, &path.field("consumer_header"))?;
        let mut identity_headers = vec![consumer_header.clone()];
        for provider in provider_names.iter().filter_map(|name| jwt.get(name)) {
            identity_headers.extend(provider.claim_header_names().map(str::to_ascii_lowercase));
        }
        identity_headers.sort_unstable();
        identity_headers.dedup();
        let strip = CredentialStrip::new(api_key_sources.iter().chain(jwt_sources.iter()));
        Ok(Auth {
            consumers,
            by_name,
            keys,
            api_key_sources,
            jwt_sources,
            jwt,
            issuers,
            routes: Routes::new(rules, Route::fallback(fallback)),
            client_address,
            consumer_header,
            identity_headers,
            strip,
        })
    }
}

/// Consumer and group names appear in headers, errors and metric names, so they are kept to visible ASCII.
fn check_name(name: &str, path: &ConfigPath) -> Result<(), ConfigError> {
    if name.is_empty() || name.len() > 128 || !name.chars().all(|c| c.is_ascii_graphic()) {
        return Err(path.error("must be 1 to 128 visible ASCII characters"));
    }
    Ok(())
}

fn consumer_header(raw: Option<String>, path: &ConfigPath) -> Result<String, ConfigError> {
    // Credentials travel in these; the consumer name must not overwrite them.
    const CREDENTIAL_FIELDS: [&str; 2] = ["cookie", "authorization"];
    let raw = raw.unwrap_or_else(|| DEFAULT_CONSUMER_HEADER.to_string());
    let name =
        header_name(&raw, path).map_err(|_| path.error(format!("{raw:?} cannot carry the consumer name")))?;
    if CREDENTIAL_FIELDS.contains(&name.as_str()) {
        return Err(path.error(format!("{name:?} cannot carry the consumer name")));
    }
    Ok(name)
}

#[cfg(test)]
mod tests;
