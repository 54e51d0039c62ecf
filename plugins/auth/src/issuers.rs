use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Deserialize;

/// Which JWT providers to try for a token, so that with several providers a token is verified by its own
/// issuer's provider and never makes another provider fetch its JWKS for a key it cannot have.
#[derive(Debug, Default)]
pub struct JwtIssuers {
    /// Provider name and its configured `issuer`, in config order.
    providers: Vec<(String, Option<String>)>,
}

/// Tokens are capped well below this by the providers; a larger one is not worth decoding to route it.
const MAX_PEEK_BYTES: usize = 16 * 1024;

#[derive(Deserialize)]
struct UnverifiedClaims {
    #[serde(default)]
    iss: Option<serde_json::Value>,
}

impl JwtIssuers {
    pub fn new(providers: Vec<(String, Option<String>)>) -> Self {
        JwtIssuers { providers }
    }

    pub fn is_empty(&self) -> bool {
        self.providers.is_empty()
    }

    /// Of the `allowed` providers (empty: all), those whose issuer is the token's unverified `iss`, then
    /// those that accept any issuer. If none fits, only the first allowed provider, so that it explains the
    /// rejection. Reading `iss` unverified is safe: it only picks the verifier, which checks `iss` itself.
    pub fn candidates<'a>(&'a self, allowed: &'a [String], token: &str) -> Vec<&'a str> {
        let allowed: Vec<&(String, Option<String>)> =
            self.providers.iter().filter(|(name, _)| allowed.is_empty() || allowed.contains(name)).collect();
        if allowed.len() <= 1 {
            return allowed.iter().map(|(name, _)| name.as_str()).collect();
        }
        let iss = unverified_issuer(token);
        let matching = allowed.iter().filter(|(_, issuer)| issuer.is_some() && *issuer == iss);
        let open = allowed.iter().filter(|(_, issuer)| issuer.is_none());
        let picked: Vec<&str> = matching.chain(open).map(|(name, _)| name.as_str()).collect();
        if picked.is_empty() {
            allowed.first().map(|(name, _)| name.as_str()).into_iter().collect()
        } else {
            picked
        }
    }
}

fn unverified_issuer(token: &str) -> Option<String> {
    if token.len() > MAX_PEEK_BYTES {
        return None;
    }
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    match serde_json::from_slice::<UnverifiedClaims>(&bytes).ok()?.iss? {
        serde_json::Value::String(iss) => Some(iss),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(claims: &str) -> String {
        format!("eyJhbGciOiJIUzI1NiJ9.{}.c2ln", URL_SAFE_NO_PAD.encode(claims))
    }

    fn issuers() -> JwtIssuers {
        JwtIssuers::new(vec![
            ("corp".into(), Some("https://corp.example".into())),
            ("partner".into(), Some("https://partner.example".into())),
            ("any".into(), None),
        ])
    }

    #[test]
    fn the_token_issuer_picks_its_provider_first() {
        let t = token(r#"{"iss":"https://partner.example","sub":"a"}"#);
        assert_eq!(issuers().candidates(&[], &t), ["partner", "any"]);
        let t = token(r#"{"iss":"https://other.example"}"#);
        assert_eq!(issuers().candidates(&[], &t), ["any"]);
    }

    #[test]
    fn route_restrictions_apply_before_issuer_matching() {
        let only_corp = ["corp".to_string()];
        let t = token(r#"{"iss":"https://partner.example"}"#);
        assert_eq!(issuers().candidates(&only_corp, &t), ["corp"]);
        let two = ["corp".to_string(), "partner".to_string()];
        assert_eq!(issuers().candidates(&two, &token(r#"{"iss":"https://nobody"}"#)), ["corp"]);
    }

    #[test]
    fn garbage_never_fails_selection() {
        for t in ["not a token", "a.%%%.c", "a.bm90IGpzb24.c", &token(r#"{"iss":7}"#), &token("[]")] {
            assert_eq!(issuers().candidates(&[], t), ["any"], "{t}");
        }
        assert!(JwtIssuers::default().candidates(&[], "a.b.c").is_empty());
    }
}
