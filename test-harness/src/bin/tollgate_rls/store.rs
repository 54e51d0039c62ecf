//! Fixed-window counters, in Redis (shared by every service on it) or in this process. One call checks
//! every counter a request touches and, only if all of them have room for the hits, adds them to all:
//! in Redis that is one Lua script, so it is atomic across service instances too.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// How long one Redis command may take before the request is answered UNAVAILABLE.
const REDIS_RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
const REDIS_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// KEYS: the counters. ARGV: hits, then (max, window in ms) per key. Returns `admitted`, then (value after,
/// ms until reset) per key; a refusal leaves every counter as it was.
const CHECK_AND_ADD: &str = r"
local hits = tonumber(ARGV[1])
local admitted = 1
local values, ttls = {}, {}
for i, key in ipairs(KEYS) do
  values[i] = tonumber(redis.call('GET', key) or '0')
  ttls[i] = redis.call('PTTL', key)
  if values[i] + hits > tonumber(ARGV[2 * i]) then admitted = 0 end
end
local out = {admitted}
for i, key in ipairs(KEYS) do
  local window = tonumber(ARGV[2 * i + 1])
  if admitted == 1 then
    values[i] = redis.call('INCRBY', key, hits)
    if ttls[i] < 0 then
      redis.call('PEXPIRE', key, window)
      ttls[i] = window
    end
  elseif ttls[i] < 0 then
    ttls[i] = window
  end
  table.insert(out, values[i])
  table.insert(out, ttls[i])
end
return out
";

/// One counter to check: its key, its maximum per window, and the window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterSpec {
    pub key: String,
    pub max: u64,
    pub window: Duration,
}

/// A counter after the call: its value (including these hits if admitted) and the time left in its window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CounterState {
    pub value: u64,
    pub resets_in: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub admitted: bool,
    /// One per `CounterSpec`, in order.
    pub counters: Vec<CounterState>,
}

pub enum CounterStore {
    Redis(ConnectionManager),
    Memory(Mutex<HashMap<String, (u64, Instant)>>),
}

impl CounterStore {
    /// Connects now, so an unreachable Redis fails at start rather than on the first request.
    pub async fn redis(url: &str) -> anyhow::Result<Self> {
        let client = redis::Client::open(url).map_err(|err| anyhow::anyhow!("redis URL {url:?}: {err}"))?;
        let config = ConnectionManagerConfig::new()
            .set_number_of_retries(1)
            .set_connection_timeout(REDIS_CONNECT_TIMEOUT)
            .set_response_timeout(REDIS_RESPONSE_TIMEOUT);
        let manager = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(|err| anyhow::anyhow!("redis {url}: {err}"))?;
        Ok(Self::Redis(manager))
    }

    pub fn memory() -> Self {
        Self::Memory(Mutex::new(HashMap::new()))
    }

    /// Adds `hits` to every counter if all stay within their maximum; otherwise changes nothing.
    pub async fn check_and_add(&self, counters: &[CounterSpec], hits: u64) -> Result<Outcome, String> {
        match self {
            Self::Redis(manager) => redis_check_and_add(manager.clone(), counters, hits).await,
            Self::Memory(windows) => {
                let mut windows = windows.lock().unwrap_or_else(PoisonError::into_inner);
                Ok(memory_check_and_add(&mut windows, counters, hits, Instant::now()))
            }
        }
    }
}

async fn redis_check_and_add(
    mut manager: ConnectionManager,
    counters: &[CounterSpec],
    hits: u64,
) -> Result<Outcome, String> {
    let script = redis::Script::new(CHECK_AND_ADD);
    let mut invocation = script.prepare_invoke();
    invocation.arg(hits);
    for counter in counters {
        let window_ms = u64::try_from(counter.window.as_millis()).unwrap_or(u64::MAX);
        invocation.key(&counter.key).arg(counter.max).arg(window_ms);
    }
    let reply: Vec<i64> = invocation.invoke_async(&mut manager).await.map_err(|err| err.to_string())?;
    let (admitted, rest) = reply.split_first().ok_or("empty reply from the counter script")?;
    let states: Vec<CounterState> = rest
        .chunks_exact(2)
        .map(|pair| match pair {
            [value, ttl_ms] => CounterState {
                value: u64::try_from(*value).unwrap_or(0),
                resets_in: Duration::from_millis(u64::try_from(*ttl_ms).unwrap_or(0)),
            },
            _ => CounterState { value: 0, resets_in: Duration::ZERO },
        })
        .collect();
    if states.len() != counters.len() {
        return Err(format!("counter script answered {} counters for {}", states.len(), counters.len()));
    }
    Ok(Outcome { admitted: *admitted == 1, counters: states })
}

fn memory_check_and_add(
    windows: &mut HashMap<String, (u64, Instant)>,
    counters: &[CounterSpec],
    hits: u64,
    now: Instant,
) -> Outcome {
    windows.retain(|_, (_, ends)| *ends > now);
    let before: Vec<(u64, Instant)> = counters
        .iter()
        .map(|counter| windows.get(&counter.key).copied().unwrap_or((0, now + counter.window)))
        .collect();
    let admitted =
        counters.iter().zip(&before).all(|(counter, (value, _))| value.saturating_add(hits) <= counter.max);
    let mut states = Vec::with_capacity(counters.len());
    for (counter, (mut value, ends)) in counters.iter().zip(before) {
        if admitted {
            value = value.saturating_add(hits);
            windows.insert(counter.key.clone(), (value, ends));
        }
        states.push(CounterState { value, resets_in: ends.saturating_duration_since(now) });
    }
    Outcome { admitted, counters: states }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(key: &str, max: u64) -> CounterSpec {
        CounterSpec { key: key.to_string(), max, window: Duration::from_secs(60) }
    }

    #[test]
    fn memory_counters_admit_all_or_nothing_and_reset_with_the_window() {
        let mut windows = HashMap::new();
        let start = Instant::now();
        let both = [spec("a", 3), spec("b", 10)];
        let first = memory_check_and_add(&mut windows, &both, 2, start);
        assert!(first.admitted);
        assert_eq!(first.counters.iter().map(|c| c.value).collect::<Vec<_>>(), [2, 2]);
        assert_eq!(first.counters[0].resets_in, Duration::from_secs(60));

        let refused = memory_check_and_add(&mut windows, &both, 2, start + Duration::from_secs(10));
        assert!(!refused.admitted);
        assert_eq!(refused.counters.iter().map(|c| c.value).collect::<Vec<_>>(), [2, 2]);
        assert_eq!(refused.counters[0].resets_in, Duration::from_secs(50));

        let later = memory_check_and_add(&mut windows, &both, 2, start + Duration::from_secs(61));
        assert!(later.admitted, "a new window starts from zero");
    }
}
