//! AWS Signature Version 4 for the requests Tollgate sends to Bedrock, from static credentials. The secret key
//! only ever feeds the HMAC chain: it is in no header, no error and no `Debug` output.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use tollgate_core::civil_from_days;

/// Static AWS credentials and the region they sign for (`ai.providers[]` of kind `bedrock`).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct AwsCredentials {
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Set for temporary (STS) credentials; sent as `x-amz-security-token`.
    pub session_token: Option<String>,
}

/// Written by hand so that no credential reaches a log line.
impl std::fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsCredentials")
            .field("region", &self.region)
            .field("access_key_id", &"<redacted>")
            .field("secret_access_key", &"<redacted>")
            .field("session_token", &self.session_token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// What is signed of one request. `path` is the path as sent (already percent-encoded, without the query);
/// `headers` are the headers to sign with lowercase names; `query` is the canonical query string.
pub(super) struct SigningInput<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub headers: &'a [(&'a str, &'a str)],
    pub payload_sha256: &'a str,
}

/// The `authorization` header value for a request signed at `amz_date` (`YYYYMMDDTHHMMSSZ`).
pub(super) fn authorization(
    credentials: &AwsCredentials,
    service: &str,
    amz_date: &str,
    input: &SigningInput<'_>,
) -> String {
    let date = amz_date.get(..8).unwrap_or(amz_date);
    let scope = format!("{date}/{}/{service}/aws4_request", credentials.region);
    let (canonical, signed_headers) = canonical_request(input);
    let string_to_sign =
        format!("AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}", sha256_hex(canonical.as_bytes()));
    let mut key = hmac(format!("AWS4{}", credentials.secret_access_key).as_bytes(), date.as_bytes());
    for part in [credentials.region.as_str(), service, "aws4_request"] {
        key = hmac(&key, part.as_bytes());
    }
    let signature = hex(&hmac(&key, string_to_sign.as_bytes()));
    format!(
        "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
        credentials.access_key_id
    )
}

/// The canonical request and its `SignedHeaders` list.
fn canonical_request(input: &SigningInput<'_>) -> (String, String) {
    let mut headers: Vec<(String, String)> = input
        .headers
        .iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), canonical_value(value)))
        .collect();
    headers.sort();
    let signed = headers.iter().map(|(name, _)| name.as_str()).collect::<Vec<_>>().join(";");
    let mut canonical = format!("{}\n{}\n{}\n", input.method, canonical_uri(input.path), input.query);
    for (name, value) in &headers {
        canonical.push_str(name);
        canonical.push(':');
        canonical.push_str(value);
        canonical.push('\n');
    }
    canonical.push('\n');
    canonical.push_str(&signed);
    canonical.push('\n');
    canonical.push_str(input.payload_sha256);
    (canonical, signed)
}

/// A header value trimmed, with runs of spaces collapsed to one.
fn canonical_value(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Services other than S3 sign the path encoded once more: each byte but the unreserved ones and `/` is
/// percent-encoded again, so the `%3A` of a model id is `%253A` here.
pub(super) fn canonical_uri(path: &str) -> String {
    if path.is_empty() {
        return "/".to_string();
    }
    let mut out = String::with_capacity(path.len());
    for byte in path.bytes() {
        if byte == b'/' || unreserved(byte) {
            out.push(char::from(byte));
        } else {
            push_escaped(&mut out, byte);
        }
    }
    out
}

/// Percent-encodes all but RFC 3986's unreserved characters: a model id (`a.b-v1:0`, or an ARN with `/`)
/// becomes one path segment.
pub(super) fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if unreserved(byte) {
            out.push(char::from(byte));
        } else {
            push_escaped(&mut out, byte);
        }
    }
    out
}

fn unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~')
}

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";
const HEX_LOWER: &[u8; 16] = b"0123456789abcdef";

fn push_escaped(out: &mut String, byte: u8) {
    out.push('%');
    for nibble in [byte >> 4, byte & 0x0f] {
        out.push(HEX_UPPER.get(usize::from(nibble)).map_or('0', |b| char::from(*b)));
    }
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        for nibble in [byte >> 4, byte & 0x0f] {
            out.push(HEX_LOWER.get(usize::from(nibble)).map_or('0', |b| char::from(*b)));
        }
    }
    out
}

pub(super) fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC takes a key of any length, so the error branch cannot be taken.
    match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(data);
            mac.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

/// Unix seconds as SigV4's `x-amz-date` (`YYYYMMDDTHHMMSSZ`, UTC).
pub(super) fn amz_date(unix_seconds: u64) -> String {
    let days = unix_seconds / 86_400;
    let seconds = unix_seconds % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!("{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z", seconds / 3600, seconds % 3600 / 60, seconds % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> AwsCredentials {
        AwsCredentials {
            region: "us-east-1".into(),
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            session_token: None,
        }
    }

    /// The AWS SigV4 test suite's get-vanilla and post-vanilla cases (service `service`, no body).
    #[test]
    fn the_aws_test_suite_vanilla_cases_sign_as_published() {
        let headers = [("Host", "example.amazonaws.com"), ("X-Amz-Date", "20150830T123600Z")];
        let empty = sha256_hex(b"");
        assert_eq!(empty, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        let sign = |method| {
            let input =
                SigningInput { method, path: "/", query: "", headers: &headers, payload_sha256: &empty };
            authorization(&example(), "service", "20150830T123600Z", &input)
        };
        let scope = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
                     SignedHeaders=host;x-amz-date, Signature=";
        assert_eq!(
            sign("GET"),
            format!("{scope}5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")
        );
        assert_eq!(
            sign("POST"),
            format!("{scope}5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b")
        );
    }

    /// A Bedrock Converse request with a session token; the expected value was computed with botocore's
    /// `SigV4Auth` (botocore 1.43) for the same request, independently of this code.
    #[test]
    fn a_bedrock_request_signs_as_botocore_does() {
        let credentials = AwsCredentials { session_token: Some("session-token-example".into()), ..example() };
        let body = br#"{"messages":[{"content":[{"text":"Hello"}],"role":"user"}]}"#;
        let hash = sha256_hex(body);
        let headers = [
            ("host", "bedrock-runtime.us-east-1.amazonaws.com"),
            ("x-amz-date", "20231114T221320Z"),
            ("x-amz-content-sha256", hash.as_str()),
            ("content-type", "application/json"),
            ("x-amz-security-token", "session-token-example"),
        ];
        let input = SigningInput {
            method: "POST",
            path: "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse",
            query: "",
            headers: &headers,
            payload_sha256: &hash,
        };
        let (canonical, signed) = canonical_request(&input);
        assert_eq!(signed, "content-type;host;x-amz-content-sha256;x-amz-date;x-amz-security-token");
        assert!(
            canonical.starts_with("POST\n/model/anthropic.claude-3-5-sonnet-20240620-v1%253A0/converse\n\n")
        );
        assert_eq!(
            authorization(&credentials, "bedrock", "20231114T221320Z", &input),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20231114/us-east-1/bedrock/aws4_request, \
             SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date;x-amz-security-token, \
             Signature=40b953aaefff01738bbcc682a870ca1c5b3cf75198b0a944d1b6ea05a3a62b9b"
        );
    }

    #[test]
    fn paths_are_encoded_for_the_canonical_request() {
        assert_eq!(encode_segment("anthropic.claude-v2:1"), "anthropic.claude-v2%3A1");
        assert_eq!(
            encode_segment("arn:aws:bedrock:us-east-1:1:inference-profile/us.x"),
            "arn%3Aaws%3Abedrock%3Aus-east-1%3A1%3Ainference-profile%2Fus.x"
        );
        assert_eq!(encode_segment("a b~é"), "a%20b~%C3%A9");
        assert_eq!(canonical_uri("/model/a%3A0/converse"), "/model/a%253A0/converse");
        assert_eq!(canonical_uri(""), "/");
        assert_eq!(canonical_value("  a   b  "), "a b");
    }

    #[test]
    fn unix_seconds_become_amz_dates() {
        assert_eq!(amz_date(0), "19700101T000000Z");
        assert_eq!(amz_date(1_440_938_160), "20150830T123600Z");
        assert_eq!(amz_date(1_700_000_000), "20231114T221320Z");
        // Leap days, the end of a century that is not a leap year, and one that is.
        assert_eq!(amz_date(951_782_400), "20000229T000000Z");
        assert_eq!(amz_date(1_709_164_799), "20240228T235959Z");
        assert_eq!(amz_date(1_709_164_800), "20240229T000000Z");
        assert_eq!(amz_date(4_107_542_400), "21000301T000000Z");
        assert_eq!(amz_date(4_107_542_399), "21000228T235959Z");
        assert_eq!(amz_date(253_402_300_799), "99991231T235959Z");
        // Every day of 1970..2100 against a plain day-by-day count.
        let mut date = (1970, 1, 1);
        for days in 0..47_847 {
            assert_eq!(civil_from_days(days), date, "day {days}");
            let leap = date.0 % 4 == 0 && (date.0 % 100 != 0 || date.0 % 400 == 0);
            let length =
                [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][date.1 as usize - 1];
            date = if date.2 < length {
                (date.0, date.1, date.2 + 1)
            } else if date.1 < 12 {
                (date.0, date.1 + 1, 1)
            } else {
                (date.0 + 1, 1, 1)
            };
        }
    }

    #[test]
    fn credentials_never_print() {
        let credentials = AwsCredentials { session_token: Some("tok-secret".into()), ..example() };
        let printed = format!("{credentials:?}");
        assert!(!printed.contains("EXAMPLE") && !printed.contains("tok-secret"), "{printed}");
        assert!(printed.contains("us-east-1"));
    }
}
