//! The messages of Envoy's rate limit service API (`envoy.service.ratelimit.v3`) that Tollgate sends and
//! reads, declared with prost's derive so no protoc runs at build time. Field numbers follow
//! `envoy/service/ratelimit/v3/rls.proto` and `envoy/extensions/common/ratelimit/v3/ratelimit.proto`;
//! fields Tollgate does not use are left out (prost skips them when decoding).

/// The gRPC service and method Tollgate calls.
pub const SERVICE: &str = "envoy.service.ratelimit.v3.RateLimitService";
pub const METHOD: &str = "ShouldRateLimit";

/// `RateLimitResponse.Code`.
pub const CODE_OK: i32 = 1;
pub const CODE_OVER_LIMIT: i32 = 2;

#[derive(Clone, PartialEq, prost::Message)]
pub struct RateLimitRequest {
    #[prost(string, tag = "1")]
    pub domain: String,
    #[prost(message, repeated, tag = "2")]
    pub descriptors: Vec<RateLimitDescriptor>,
    /// How much the request adds to each counter; 0 means 1.
    #[prost(uint32, tag = "3")]
    pub hits_addend: u32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct RateLimitDescriptor {
    #[prost(message, repeated, tag = "1")]
    pub entries: Vec<Entry>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Entry {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct RateLimitResponse {
    #[prost(int32, tag = "1")]
    pub overall_code: i32,
    #[prost(message, repeated, tag = "2")]
    pub statuses: Vec<DescriptorStatus>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct DescriptorStatus {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(message, optional, tag = "2")]
    pub current_limit: Option<RateLimit>,
    #[prost(uint32, tag = "3")]
    pub limit_remaining: u32,
    #[prost(message, optional, tag = "4")]
    pub duration_until_reset: Option<Duration>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct RateLimit {
    #[prost(uint32, tag = "1")]
    pub requests_per_unit: u32,
    /// `RateLimitResponse.RateLimit.Unit`: 1 second, 2 minute, 3 hour, 4 day, 5 month, 6 year.
    #[prost(int32, tag = "2")]
    pub unit: i32,
    #[prost(string, tag = "3")]
    pub name: String,
}

/// `google.protobuf.Duration`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Duration {
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

impl RateLimit {
    /// The unit's length in seconds (a month as 30 days, a year as 365), `None` when unknown.
    pub fn unit_seconds(&self) -> Option<u64> {
        match self.unit {
            1 => Some(1),
            2 => Some(60),
            3 => Some(3_600),
            4 => Some(86_400),
            5 => Some(30 * 86_400),
            6 => Some(365 * 86_400),
            _ => None,
        }
    }
}

impl RateLimitResponse {
    /// An answer with one descriptor status: `OK`, or `OVER_LIMIT` when `over` (for tests and mock services).
    pub fn single(over: bool, limit: Option<(u32, i32)>, remaining: u32, reset_secs: i64) -> Self {
        let code = if over { CODE_OVER_LIMIT } else { CODE_OK };
        let status = DescriptorStatus {
            code,
            current_limit: limit.map(|(requests_per_unit, unit)| RateLimit {
                requests_per_unit,
                unit,
                name: String::new(),
            }),
            limit_remaining: remaining,
            duration_until_reset: Some(Duration { seconds: reset_secs, nanos: 0 }),
        };
        RateLimitResponse { overall_code: code, statuses: vec![status] }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        prost::Message::encode_to_vec(self)
    }
}

impl RateLimitRequest {
    /// Decodes a request as a service receives it.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, prost::DecodeError> {
        prost::Message::decode(bytes)
    }

    /// The first descriptor's entries as (key, value) pairs.
    pub fn entries(&self) -> Vec<(&str, &str)> {
        let first = self.descriptors.first().map(|d| d.entries.as_slice()).unwrap_or_default();
        first.iter().map(|e| (e.key.as_str(), e.value.as_str())).collect()
    }
}
