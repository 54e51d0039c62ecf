//! Claim checks against the host clock (never the system clock): `exp`/`nbf` with leeway, issuer,
//! audience, required claims, the consumer claim, and the claims copied into upstream headers.

use std::time::{Duration, SystemTime};

use serde_json::{Map, Value};

use super::config::Settings;
use super::JwtRejection;

/// What a token's claims yield once accepted.
#[derive(Debug)]
pub(crate) struct AcceptedClaims {
    pub consumer: String,
    pub headers: Vec<(String, String)>,
    pub expires_at: SystemTime,
}

pub(crate) fn check(
    claims: &Map<String, Value>,
    settings: &Settings,
    now: SystemTime,
) -> Result<AcceptedClaims, JwtRejection> {
    let now_s = now.duration_since(SystemTime::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
    let leeway = settings.leeway_s as f64;
    let exp = match numeric_date(claims, "exp")? {
        Some(exp) => exp,
        // Tokens without an expiry would be valid (and cached) forever.
        None => return Err(JwtRejection::MissingClaim("exp".into())),
    };
    if now_s >= exp + leeway {
        return Err(JwtRejection::Expired);
    }
    if numeric_date(claims, "nbf")?.is_some_and(|nbf| now_s + leeway < nbf) {
        return Err(JwtRejection::NotYetValid);
    }
    if let Some(issuer) = &settings.issuer {
        if claims.get("iss").and_then(Value::as_str) != Some(issuer.as_str()) {
            return Err(JwtRejection::WrongIssuer);
        }
    }
    if !settings.audiences.is_empty() && !audience_matches(claims.get("aud"), &settings.audiences) {
        return Err(JwtRejection::WrongAudience);
    }
    for name in &settings.required_claims {
        if claims.get(name).is_none_or(Value::is_null) {
            return Err(JwtRejection::MissingClaim(name.clone()));
        }
    }
    let consumer = match claims.get(&settings.consumer_claim) {
        None | Some(Value::Null) => return Err(JwtRejection::MissingClaim(settings.consumer_claim.clone())),
        Some(Value::String(s)) if !s.is_empty() && !s.chars().any(char::is_control) => s.clone(),
        Some(_) => return Err(JwtRejection::BadConsumerClaim),
    };
    let headers = settings
        .claims_to_headers
        .iter()
        .filter_map(|(claim, header)| Some((header.clone(), header_value(claims.get(claim)?)?)))
        .collect();
    let expires_at = Duration::try_from_secs_f64(exp)
        .ok()
        .and_then(|d| SystemTime::UNIX_EPOCH.checked_add(d))
        .ok_or(JwtRejection::Malformed("exp is out of range"))?;
    Ok(AcceptedClaims { consumer, headers, expires_at })
}

/// A NumericDate claim (RFC 7519 §2): seconds since the epoch, possibly fractional.
fn numeric_date(claims: &Map<String, Value>, name: &'static str) -> Result<Option<f64>, JwtRejection> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => match n.as_f64() {
            Some(v) if v.is_finite() && v >= 0.0 => Ok(Some(v)),
            _ => Err(JwtRejection::Malformed("a time claim is out of range")),
        },
        Some(_) => Err(JwtRejection::Malformed("a time claim is not a number")),
    }
}

fn audience_matches(aud: Option<&Value>, accepted: &[String]) -> bool {
    match aud {
        Some(Value::String(aud)) => accepted.iter().any(|a| a == aud),
        Some(Value::Array(auds)) => {
            auds.iter().filter_map(Value::as_str).any(|aud| accepted.iter().any(|a| a == aud))
        }
        _ => false,
    }
}

/// Scalars as text, arrays of scalars comma-joined; anything that could smuggle a line break into the
/// upstream request, or has no sensible text form, is left out.
fn header_value(value: &Value) -> Option<String> {
    let text = match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Array(items) => items
            .iter()
            .map(|item| header_value(item).filter(|_| !item.is_array()))
            .collect::<Option<Vec<_>>>()?
            .join(","),
        Value::Null | Value::Object(_) => return None,
    };
    (!text.chars().any(char::is_control)).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings {
            name: "corp".into(),
            issuer: Some("https://idp".into()),
            audiences: vec!["tollgate".into(), "other".into()],
            algorithms: vec![],
            leeway_s: 60,
            required_claims: vec!["scope".into()],
            consumer_claim: "sub".into(),
            claims_to_headers: vec![("email".into(), "x-email".into()), ("groups".into(), "x-groups".into())],
            token_cache_size: 0,
            max_token_bytes: 8192,
        }
    }

    const NOW: u64 = 1_700_000_000;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn claims(extra: Value) -> Map<String, Value> {
        let mut base = serde_json::json!({
            "iss": "https://idp", "aud": "tollgate", "sub": "alice", "scope": "read", "exp": NOW + 600
        });
        if let (Value::Object(base), Value::Object(extra)) = (&mut base, extra) {
            base.extend(extra);
        }
        match base {
            Value::Object(map) => map,
            _ => unreachable!(),
        }
    }

    fn check_at(extra: Value, now: u64) -> Result<AcceptedClaims, JwtRejection> {
        check(&claims(extra), &settings(), at(now))
    }

    #[test]
    fn good_claims_yield_consumer_headers_and_expiry() {
        let ok = check_at(serde_json::json!({"email": "a@x", "groups": ["a", "b"]}), NOW).unwrap();
        assert_eq!(ok.consumer, "alice");
        assert_eq!(
            ok.headers,
            [("x-email".to_string(), "a@x".to_string()), ("x-groups".into(), "a,b".into())]
        );
        assert_eq!(ok.expires_at, at(NOW + 600));
    }

    #[test]
    fn expiry_and_not_before_honour_leeway_on_both_sides() {
        let exp = serde_json::json!({"exp": NOW});
        assert!(check_at(exp.clone(), NOW + 59).is_ok());
        assert_eq!(check_at(exp.clone(), NOW + 60).unwrap_err(), JwtRejection::Expired);
        let nbf = serde_json::json!({"nbf": NOW + 60});
        assert!(check_at(nbf.clone(), NOW).is_ok());
        assert_eq!(check_at(nbf, NOW - 1).unwrap_err(), JwtRejection::NotYetValid);
        let fractional = serde_json::json!({"exp": (NOW as f64) - 59.5});
        assert!(check_at(fractional, NOW).is_ok());
    }

    #[test]
    fn issuer_audience_and_required_claims_are_enforced() {
        assert_eq!(
            check_at(serde_json::json!({"iss": "https://evil"}), NOW).unwrap_err(),
            JwtRejection::WrongIssuer
        );
        assert_eq!(
            check_at(serde_json::json!({"aud": "nope"}), NOW).unwrap_err(),
            JwtRejection::WrongAudience
        );
        assert!(check_at(serde_json::json!({"aud": ["nope", "other"]}), NOW).is_ok());
        assert_eq!(check_at(serde_json::json!({"aud": 7}), NOW).unwrap_err(), JwtRejection::WrongAudience);
        let missing = check_at(serde_json::json!({"scope": null}), NOW).unwrap_err();
        assert_eq!(missing, JwtRejection::MissingClaim("scope".into()));
    }

    #[test]
    fn exp_is_mandatory_and_numeric() {
        let mut no_exp = claims(serde_json::json!({}));
        no_exp.remove("exp");
        assert_eq!(
            check(&no_exp, &settings(), at(NOW)).unwrap_err(),
            JwtRejection::MissingClaim("exp".into())
        );
        assert!(matches!(check_at(serde_json::json!({"exp": "soon"}), NOW), Err(JwtRejection::Malformed(_))));
        assert!(matches!(check_at(serde_json::json!({"exp": -5}), NOW), Err(JwtRejection::Malformed(_))));
        assert!(matches!(check_at(serde_json::json!({"exp": 1e300}), NOW), Err(JwtRejection::Malformed(_))));
    }

    #[test]
    fn consumer_claim_must_be_a_plain_string() {
        for bad in [
            serde_json::json!(42),
            serde_json::json!(""),
            serde_json::json!(["a"]),
            serde_json::json!("a\nb"),
        ] {
            let err = check_at(serde_json::json!({"sub": bad}), NOW).unwrap_err();
            assert_eq!(err, JwtRejection::BadConsumerClaim);
        }
        let err = check_at(serde_json::json!({"sub": null}), NOW).unwrap_err();
        assert_eq!(err, JwtRejection::MissingClaim("sub".into()));
    }

    #[test]
    fn header_values_never_carry_line_breaks_or_objects() {
        let ok = check_at(serde_json::json!({"email": "a\r\nx-admin: 1", "groups": {"a": 1}}), NOW).unwrap();
        assert!(ok.headers.is_empty());
        let ok = check_at(serde_json::json!({"email": true, "groups": [1, [2]]}), NOW).unwrap();
        assert_eq!(ok.headers, [("x-email".to_string(), "true".to_string())]);
    }
}
