use super::*;

fn head(pairs: &[(&str, &str)]) -> RequestHead {
    RequestHead::from_pairs(pairs.iter().copied())
}

fn source(json: &str) -> Result<Source, ConfigError> {
    Source::compile(serde_json::from_str(json).unwrap(), &ConfigPath::root().field("s"))
}

fn extract<'h>(json: &str, head: &'h RequestHead) -> Option<Cow<'h, str>> {
    source(json).unwrap().extract(head)
}

#[test]
fn bearer_scheme_is_case_insensitive_and_required() {
    let src = r#"{"header":"Authorization","scheme":"Bearer"}"#;
    let h = head(&[(":path", "/"), ("authorization", "bearer  tg_abc ")]);
    assert_eq!(extract(src, &h).as_deref(), Some("tg_abc"));
    assert_eq!(extract(src, &head(&[("authorization", "Basic dXNlcjpwdw==")])), None);
    assert_eq!(extract(src, &head(&[("authorization", "Bearer ")])), None);
    assert_eq!(extract(src, &head(&[("authorization", "Bearer")])), None);
}

#[test]
fn plain_headers_take_the_whole_value() {
    assert_eq!(
        extract(r#"{"header":"x-api-key"}"#, &head(&[("X-Api-Key", " tg_k ")])).as_deref(),
        Some("tg_k")
    );
    assert_eq!(extract(r#"{"header":"api-key"}"#, &head(&[("api-key", "tg_k")])).as_deref(), Some("tg_k"));
    assert_eq!(extract(r#"{"header":"api-key"}"#, &head(&[("api-key", "")])), None);
}

#[test]
fn query_parameters_are_decoded() {
    let src = r#"{"query":"api_key"}"#;
    let h = head(&[(":path", "/v1/x?a=1&api_key=tg_%41b%zz&b=2")]);
    assert_eq!(extract(src, &h).as_deref(), Some("tg_Ab%zz"));
    assert_eq!(extract(src, &head(&[(":path", "/v1/x?xapi_key=1")])), None);
    assert_eq!(extract(src, &head(&[(":path", "/v1/x")])), None);
}

#[test]
fn cookies_are_found_across_headers() {
    let src = r#"{"cookie":"tollgate_key"}"#;
    let h = head(&[("cookie", "a=1"), ("cookie", "b=2; tollgate_key=\"tg_c\"")]);
    assert_eq!(extract(src, &h).as_deref(), Some("tg_c"));
    assert_eq!(extract(src, &head(&[("cookie", "Tollgate_key=tg_c")])), None);
}

#[test]
fn sources_need_exactly_one_place() {
    let err = |json| source(json).unwrap_err().to_string();
    assert_eq!(err(r#"{}"#), "s: must have exactly one of `header`, `query` or `cookie`");
    assert_eq!(
        err(r#"{"header":"a","query":"b"}"#),
        "s: must have exactly one of `header`, `query` or `cookie`"
    );
    assert_eq!(err(r#"{"query":"k","scheme":"Bearer"}"#), r#"s.scheme: "Bearer" only applies to a header"#);
    assert_eq!(err(r#"{"header":"bad name"}"#), r#"s.header: "bad name" is not a valid header name"#);
    assert_eq!(err(r#"{"header":":path"}"#), r#"s.header: ":path" is not a valid header name"#);
    assert_eq!(err(r#"{"query":"a&b"}"#), r#"s.query: "a&b" is not a valid query parameter"#);
    assert_eq!(err(r#"{"cookie":"a;b"}"#), r#"s.cookie: "a;b" is not a valid cookie name"#);
    assert!(serde_json::from_str::<RawCredentialSource>(r#"{"heder":"x"}"#).is_err());
    let empty = Sources::compile(Some(vec![]), vec![], &ConfigPath::root().field("srcs")).unwrap_err();
    assert_eq!(empty.to_string(), "srcs: must list at least one source (omit it for the defaults)");
}

#[test]
fn jwt_shape_is_three_base64url_segments() {
    assert!(looks_like_jwt("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln-_"));
    assert!(!looks_like_jwt("tg_abcdef"));
    assert!(!looks_like_jwt("a.b"));
    assert!(!looks_like_jwt("a.b.c.d"));
    assert!(!looks_like_jwt("a..c"));
    assert!(!looks_like_jwt("a.b+/.c"));
}

fn stripped(strip: &CredentialStrip, h: &RequestHead) -> HeaderEdits {
    let mut edits = HeaderEdits::default();
    strip.edits(h, &mut edits);
    edits
}

#[test]
fn stripping_covers_default_and_configured_headers() {
    let strip = CredentialStrip::new(&[Source::bearer(), Source::header("x-custom-key")]);
    let every = [
        (":path", "/v1/x?q=1"),
        ("Authorization", "Bearer a"),
        ("x-api-key", "b"),
        ("api-key", "c"),
        ("x-custom-key", "d"),
        ("x-other", "e"),
    ];
    let edits = stripped(&strip, &head(&every));
    assert_eq!(edits.remove, ["authorization", "x-api-key", "api-key", "x-custom-key"]);
    assert!(edits.set.is_empty());
    // Only what the request carries is removed (each removal is a host call).
    let edits = stripped(&strip, &head(&[(":path", "/v1/x"), ("x-custom-key", "d")]));
    assert_eq!(edits.remove, ["x-custom-key"]);
    assert!(stripped(&strip, &head(&[(":path", "/v1/x")])).remove.is_empty());
}

#[test]
fn stripping_rewrites_the_query() {
    let strip = CredentialStrip::new(&[Source::Query("api_key".into())]);
    let edits = stripped(&strip, &head(&[(":path", "/v1/x?a=1&api_key=tg_k&b&api_key")]));
    assert_eq!(edits.set, [(":path".to_string(), "/v1/x?a=1&b".to_string())]);
    let edits = stripped(&strip, &head(&[(":path", "/v1/x?api_key=tg_k")]));
    assert_eq!(edits.set, [(":path".to_string(), "/v1/x".to_string())]);
    assert!(stripped(&strip, &head(&[(":path", "/v1/x?a=1")])).set.is_empty());
}

#[test]
fn stripping_rewrites_cookies() {
    let strip = CredentialStrip::new(&[Source::Cookie("tollgate_key".into())]);
    let edits = stripped(&strip, &head(&[("cookie", "a=1; tollgate_key=tg_k"), ("cookie", "b=2")]));
    assert_eq!(edits.set, [("cookie".to_string(), "a=1; b=2".to_string())]);
    let edits = stripped(&strip, &head(&[("cookie", "tollgate_key=tg_k")]));
    assert!(edits.remove.contains(&"cookie".to_string()));
    assert!(stripped(&strip, &head(&[("cookie", "a=1")])).set.is_empty());
}
