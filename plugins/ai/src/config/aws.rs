//! The fields of a `bedrock` provider: its region and static AWS credentials, checked without ever quoting a
//! credential, and refused on every other kind of provider.

use tollgate_core::{ConfigError, ConfigPath};

use super::checks::check_header_value;
use super::RawProvider;
use crate::providers::{AwsCredentials, ProviderKind};

/// Bedrock Runtime's endpoint in a region.
pub fn default_base_url(region: &str) -> String {
    format!("https://bedrock-runtime.{region}.amazonaws.com")
}

/// The credentials of a `bedrock` provider (`None` for other kinds, which must not set the fields).
pub fn credentials(raw: &RawProvider, at: &ConfigPath) -> Result<Option<AwsCredentials>, ConfigError> {
    let aws_fields = [
        ("region", raw.region.is_some()),
        ("aws_access_key_id", raw.aws_access_key_id.is_some()),
        ("aws_secret_access_key", raw.aws_secret_access_key.is_some()),
        ("aws_session_token", raw.aws_session_token.is_some()),
    ];
    if raw.kind != ProviderKind::Bedrock {
        return match aws_fields.iter().find(|(_, set)| *set) {
            Some((name, _)) => Err(at.field(name).error("is only used by providers of kind bedrock")),
            None => Ok(None),
        };
    }
    let unused = [
        ("api_key", raw.api_key.is_some()),
        ("api_keys", !raw.api_keys.is_empty()),
        ("api_version", raw.api_version.is_some()),
        ("deployments", !raw.deployments.is_empty()),
    ];
    if let Some((name, _)) = unused.iter().find(|(_, set)| *set) {
        return Err(at.field(name).error(
            "is not used by a bedrock provider, which signs its requests with aws_access_key_id and \
             aws_secret_access_key",
        ));
    }
    let required = |value: &Option<String>, name: &str| {
        value.clone().ok_or_else(|| at.field(name).error("is required for a bedrock provider"))
    };
    let region = required(&raw.region, "region")?;
    if region.is_empty()
        || region.len() > 64
        || !region.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(at.field("region").error(format!(
            "{region:?} is not an AWS region name (lowercase letters, digits and '-', like us-east-1)"
        )));
    }
    let access_key_id = required(&raw.aws_access_key_id, "aws_access_key_id")?;
    check_header_value(&access_key_id, &at.field("aws_access_key_id"), false)?;
    if access_key_id.contains([' ', '\t', '/', ',']) {
        return Err(at.field("aws_access_key_id").error("the value must not contain whitespace, '/' or ','"));
    }
    let secret_access_key = required(&raw.aws_secret_access_key, "aws_secret_access_key")?;
    check_header_value(&secret_access_key, &at.field("aws_secret_access_key"), false)?;
    if let Some(token) = &raw.aws_session_token {
        check_header_value(token, &at.field("aws_session_token"), false)?;
    }
    Ok(Some(AwsCredentials {
        region,
        access_key_id,
        secret_access_key,
        session_token: raw.aws_session_token.clone(),
    }))
}
