//! Everything checked about a compact JWS before any cryptography: shape, encoding, header and claims.

use std::str::FromStr;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::Algorithm;
use serde_json::{Map, Value};

use super::JwtRejection;

/// Longest `kid` accepted, in bytes.
const MAX_KID_LEN: usize = 256;

/// A token that is well-formed and uses an allowed algorithm; its signature is not checked yet.
#[derive(Debug)]
pub(crate) struct ParsedToken<'a> {
    pub alg: Algorithm,
    pub kid: Option<String>,
    pub claims: Map<String, Value>,
    /// `header.payload`, the bytes the signature covers.
    pub signing_input: &'a str,
    /// The third segment, still base64url (jsonwebtoken decodes it itself).
    pub signature: &'a str,
}

pub(crate) fn parse<'a>(token: &'a str, allowed: &[Algorithm]) -> Result<ParsedToken<'a>, JwtRejection> {
    const SEGMENTS: &str = "expected three dot-separated segments";
    let (signing_input, signature) = token.rsplit_once('.').ok_or(JwtRejection::Malformed(SEGMENTS))?;
    let (header, payload) = signing_input.split_once('.').ok_or(JwtRejection::Malformed(SEGMENTS))?;
    if payload.contains('.') {
        return Err(JwtRejection::Malformed(SEGMENTS));
    }

    let header = decode_object(header, "header is not base64url", "header is not a JSON object")?;
    let alg = allowed_algorithm(&header, allowed)?;
    if header.contains_key("crit") {
        // RFC 7515 §4.1.11: extensions we do not understand must make the token invalid.
        return Err(JwtRejection::Malformed("unsupported critical header parameters"));
    }
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(kid)) if is_valid_kid(kid) => Some(kid.clone()),
        Some(Value::String(_)) => return Err(JwtRejection::Malformed("kid has invalid characters")),
        Some(_) => return Err(JwtRejection::Malformed("kid is not a string")),
    };

    let claims = decode_object(payload, "claims are not base64url", "claims are not a JSON object")?;
    if signature.is_empty() {
        return Err(JwtRejection::Malformed("signature is empty"));
    }
    if URL_SAFE_NO_PAD.decode(signature).is_err() {
        return Err(JwtRejection::Malformed("signature is not base64url"));
    }
    Ok(ParsedToken { alg, kid, claims, signing_input, signature })
}

/// Key ids are matched, logged and used in metrics, never used as paths; anything beyond the characters
/// real identity providers use (base64url, UUIDs, dotted or colon-separated names) is refused, and so are
/// path separators and `..`.
pub(crate) fn is_valid_kid(kid: &str) -> bool {
    !kid.is_empty()
        && kid.len() <= MAX_KID_LEN
        && !kid.contains("..")
        && kid.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:+=~@".contains(&b))
}

/// Parses an algorithm name from config or a JWKS; `none` is never a valid answer.
pub(crate) fn algorithm_from_name(name: &str) -> Option<Algorithm> {
    Algorithm::from_str(name).ok()
}

fn allowed_algorithm(header: &Map<String, Value>, allowed: &[Algorithm]) -> Result<Algorithm, JwtRejection> {
    let name = match header.get("alg") {
        Some(Value::String(name)) => name,
        _ => return Err(JwtRejection::Malformed("header lacks a string alg")),
    };
    if name.eq_ignore_ascii_case("none") {
        return Err(JwtRejection::AlgorithmNotAllowed("none".into()));
    }
    let alg =
        algorithm_from_name(name).ok_or_else(|| JwtRejection::AlgorithmNotAllowed("unsupported".into()))?;
    if allowed.contains(&alg) {
        Ok(alg)
    } else {
        Err(JwtRejection::AlgorithmNotAllowed(format!("{alg:?}")))
    }
}

fn decode_object(
    segment: &str,
    not_base64: &'static str,
    not_object: &'static str,
) -> Result<Map<String, Value>, JwtRejection> {
    let bytes = URL_SAFE_NO_PAD.decode(segment).map_err(|_| JwtRejection::Malformed(not_base64))?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(JwtRejection::Malformed(not_object)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        URL_SAFE_NO_PAD.encode(s)
    }

    fn token(header: &str, claims: &str, sig: &str) -> String {
        format!("{}.{}.{sig}", b64(header), b64(claims))
    }

    const RS: &[Algorithm] = &[Algorithm::RS256];

    fn rejection(token: &str) -> JwtRejection {
        parse(token, RS).unwrap_err()
    }

    #[test]
    fn a_well_formed_token_parses() {
        let t = token(r#"{"alg":"RS256","kid":"k-1"}"#, r#"{"sub":"a"}"#, "c2ln");
        let parsed = parse(&t, RS).unwrap();
        assert_eq!(parsed.alg, Algorithm::RS256);
        assert_eq!(parsed.kid.as_deref(), Some("k-1"));
        assert_eq!(parsed.claims["sub"], "a");
        assert_eq!(parsed.signature, "c2ln");
        assert_eq!(format!("{}.c2ln", parsed.signing_input), t);
    }

    #[test]
    fn wrong_segment_counts_are_malformed() {
        let good = token(r#"{"alg":"RS256"}"#, "{}", "c2ln");
        for t in ["", "abc", "a.b", "a.b.c.d", "a.b.c.d.e", ".."] {
            assert!(matches!(rejection(t), JwtRejection::Malformed(_)), "{t:?}");
        }
        assert!(matches!(rejection(&format!("{good}.x")), JwtRejection::Malformed(_)));
    }

    #[test]
    fn bad_base64_anywhere_is_malformed() {
        let h = b64(r#"{"alg":"RS256"}"#);
        let c = b64("{}");
        assert_eq!(rejection(&format!("{h}=.{c}.c2ln")), JwtRejection::Malformed("header is not base64url"));
        assert_eq!(rejection(&format!("{h}.{c}!.c2ln")), JwtRejection::Malformed("claims are not base64url"));
        assert_eq!(
            rejection(&format!("{h}.{c}.c2l+")),
            JwtRejection::Malformed("signature is not base64url")
        );
        assert_eq!(rejection(&format!("{h}.{c}.")), JwtRejection::Malformed("signature is empty"));
    }

    #[test]
    fn header_and_claims_must_be_json_objects() {
        let not_json = token("not json", "{}", "c2ln");
        assert_eq!(rejection(&not_json), JwtRejection::Malformed("header is not a JSON object"));
        let array = token(r#"{"alg":"RS256"}"#, "[1,2]", "c2ln");
        assert_eq!(rejection(&array), JwtRejection::Malformed("claims are not a JSON object"));
        let string = token(r#"{"alg":"RS256"}"#, r#""sub""#, "c2ln");
        assert_eq!(rejection(&string), JwtRejection::Malformed("claims are not a JSON object"));
        let no_alg = token(r#"{"typ":"JWT"}"#, "{}", "c2ln");
        assert_eq!(rejection(&no_alg), JwtRejection::Malformed("header lacks a string alg"));
    }

    #[test]
    fn none_and_unlisted_algorithms_are_refused() {
        for none in ["none", "None", "NONE"] {
            let t = format!("{}.{}.", b64(&format!(r#"{{"alg":"{none}"}}"#)), b64("{}"));
            assert_eq!(rejection(&t), JwtRejection::AlgorithmNotAllowed("none".into()));
        }
        let hs = token(r#"{"alg":"HS256"}"#, "{}", "c2ln");
        assert_eq!(rejection(&hs), JwtRejection::AlgorithmNotAllowed("HS256".into()));
        let odd = token(r#"{"alg":"XX999"}"#, "{}", "c2ln");
        assert_eq!(rejection(&odd), JwtRejection::AlgorithmNotAllowed("unsupported".into()));
    }

    #[test]
    fn odd_kids_and_critical_headers_are_refused() {
        for kid in [r#""../../etc/passwd""#, r#""a/b""#, r#""a b""#, r#""""#, r#""k\n""#, "7"] {
            let t = token(&format!(r#"{{"alg":"RS256","kid":{kid}}}"#), "{}", "c2ln");
            assert!(matches!(rejection(&t), JwtRejection::Malformed(_)), "{kid}");
        }
        let long = token(&format!(r#"{{"alg":"RS256","kid":"{}"}}"#, "k".repeat(300)), "{}", "c2ln");
        assert!(matches!(rejection(&long), JwtRejection::Malformed(_)));
        let crit = token(r#"{"alg":"RS256","crit":["exp"]}"#, "{}", "c2ln");
        assert!(matches!(rejection(&crit), JwtRejection::Malformed(_)));
        assert!(is_valid_kid("nOo3ZDrODXEK1jKWhXslHR_KXEg"));
        assert!(is_valid_kid("2f0a6c1e-9d4b-4f5e-8a7b-1c2d3e4f5a6b"));
    }
}
