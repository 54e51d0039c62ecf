//! Numeric values and wire formats of proxy-wasm ABI 0.2.1, shared by the hostcalls and the driver.

/// `proxy_status_t`: what every hostcall returns (the full list, though not every code is used).
#[allow(dead_code)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum Status {
    Ok = 0,
    NotFound = 1,
    BadArgument = 2,
    SerializationFailure = 3,
    ParseFailure = 4,
    InvalidMemoryAccess = 6,
    Empty = 7,
    CasMismatch = 8,
    InternalFailure = 10,
    Unimplemented = 12,
}

impl Status {
    pub fn code(self) -> i32 {
        self as i32
    }
}

/// Lets hostcall bodies use `?` on fallible steps and still return a status code to the guest.
pub type HostResult<T = ()> = Result<T, Status>;

pub fn status_of(result: HostResult) -> i32 {
    match result {
        Ok(()) => Status::Ok.code(),
        Err(status) => status.code(),
    }
}

/// `proxy_log_level_t`.
pub fn log_level_name(level: u32) -> &'static str {
    match level {
        0 => "trace",
        1 => "debug",
        2 => "info",
        3 => "warn",
        4 => "error",
        _ => "critical",
    }
}

/// `proxy_map_type_t`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapType {
    RequestHeaders,
    RequestTrailers,
    ResponseHeaders,
    ResponseTrailers,
    GrpcInitialMetadata,
    GrpcTrailingMetadata,
    CallResponseHeaders,
    CallResponseTrailers,
}

impl MapType {
    pub fn from_raw(raw: i32) -> HostResult<Self> {
        Ok(match raw {
            0 => Self::RequestHeaders,
            1 => Self::RequestTrailers,
            2 => Self::ResponseHeaders,
            3 => Self::ResponseTrailers,
            4 => Self::GrpcInitialMetadata,
            5 => Self::GrpcTrailingMetadata,
            6 => Self::CallResponseHeaders,
            7 => Self::CallResponseTrailers,
            _ => return Err(Status::BadArgument),
        })
    }
}

/// `proxy_buffer_type_t`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BufferType {
    RequestBody,
    ResponseBody,
    DownstreamData,
    UpstreamData,
    CallResponseBody,
    GrpcReceive,
    VmConfiguration,
    PluginConfiguration,
    CallData,
}

impl BufferType {
    pub fn from_raw(raw: i32) -> HostResult<Self> {
        Ok(match raw {
            0 => Self::RequestBody,
            1 => Self::ResponseBody,
            2 => Self::DownstreamData,
            3 => Self::UpstreamData,
            4 => Self::CallResponseBody,
            5 => Self::GrpcReceive,
            6 => Self::VmConfiguration,
            7 => Self::PluginConfiguration,
            8 => Self::CallData,
            _ => return Err(Status::BadArgument),
        })
    }
}

/// `proxy_stream_type_t`.
pub const STREAM_HTTP_REQUEST: i32 = 0;
pub const STREAM_HTTP_RESPONSE: i32 = 1;
pub const STREAM_DOWNSTREAM: i32 = 2;
pub const STREAM_UPSTREAM: i32 = 3;

/// `proxy_action_t` as returned by the HTTP callbacks; anything non-zero stops iteration.
pub const ACTION_CONTINUE: i32 = 0;

/// gRPC status used when a call's deadline passes without an answer.
pub const GRPC_DEADLINE_EXCEEDED: u32 = 4;
/// gRPC status UNAVAILABLE: what Envoy reports for a call whose cluster cannot be reached.
pub const GRPC_UNAVAILABLE: u32 = 14;

/// Header map pairs as the guest sees them: names and values are bytes (Envoy keeps names lower-case).
pub type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// Serializes pairs in the ABI's layout: count, then (name len, value len) for each pair, then each
/// name and value followed by a NUL byte. All integers are little-endian u32.
pub fn serialize_pairs(pairs: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + pairs.iter().map(|(k, v)| 10 + k.len() + v.len()).sum::<usize>());
    out.extend_from_slice(&len_u32(pairs.len()).to_le_bytes());
    for (name, value) in pairs {
        out.extend_from_slice(&len_u32(name.len()).to_le_bytes());
        out.extend_from_slice(&len_u32(value.len()).to_le_bytes());
    }
    for (name, value) in pairs {
        out.extend_from_slice(name);
        out.push(0);
        out.extend_from_slice(value);
        out.push(0);
    }
    out
}

/// Parses the layout [`serialize_pairs`] writes; a truncated or inconsistent map is a guest bug,
/// reported as `BadArgument` rather than read past its end.
pub fn deserialize_pairs(bytes: &[u8]) -> HostResult<Pairs> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let count = read_u32(bytes, 0)? as usize;
    let mut sizes = Vec::with_capacity(count.min(1024));
    for i in 0..count {
        let at = 4 + i * 8;
        sizes.push((read_u32(bytes, at)? as usize, read_u32(bytes, at + 4)? as usize));
    }
    let mut pos = 4 + count * 8;
    let mut pairs = Vec::with_capacity(sizes.len());
    for (name_len, value_len) in sizes {
        let name = bytes.get(pos..pos + name_len).ok_or(Status::BadArgument)?.to_vec();
        pos += name_len + 1;
        let value = bytes.get(pos..pos + value_len).ok_or(Status::BadArgument)?.to_vec();
        pos += value_len + 1;
        pairs.push((name, value));
    }
    Ok(pairs)
}

/// Property paths are the segments joined by NUL bytes (`["request", "path"]` → `request\0path`).
pub fn split_property_path(bytes: &[u8]) -> Vec<String> {
    bytes.split(|b| *b == 0).map(|s| String::from_utf8_lossy(s).into_owned()).collect()
}

fn read_u32(bytes: &[u8], at: usize) -> HostResult<u32> {
    let raw: [u8; 4] = bytes.get(at..at + 4).and_then(|s| s.try_into().ok()).ok_or(Status::BadArgument)?;
    Ok(u32::from_le_bytes(raw))
}

/// Wasm32 sizes are u32; anything larger cannot have come from or be handed to the guest.
pub fn len_u32(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_round_trip_in_the_sdk_layout() {
        let pairs: Pairs = vec![(b":method".to_vec(), b"GET".to_vec()), (b"x".to_vec(), Vec::new())];
        let bytes = serialize_pairs(&pairs);
        assert_eq!(&bytes[..12], &[2, 0, 0, 0, 7, 0, 0, 0, 3, 0, 0, 0]);
        assert_eq!(deserialize_pairs(&bytes).unwrap(), pairs);
    }

    #[test]
    fn truncated_map_is_a_bad_argument() {
        assert_eq!(deserialize_pairs(&[1, 0, 0, 0, 9, 0]), Err(Status::BadArgument));
    }
}
