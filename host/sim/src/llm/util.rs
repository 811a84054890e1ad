//! Small formats the real servers use: Go durations, RFC 3339 timestamps,
//! `name:tag` model names and sha256-looking digests.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

/// `x` and `x:latest` name the same model, as in Ollama.
pub(crate) fn canonical(name: &str) -> String {
    if name.contains(':') { name.to_string() } else { format!("{name}:latest") }
}

/// RFC 3339 in UTC with nanoseconds, like Go's `time.RFC3339Nano`.
pub(crate) fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, day) = civil_from_days(days);
    let (hh, mm, ss) = (rem / 3600, rem % 3600 / 60, rem % 60);
    format!("{y:04}-{m:02}-{day:02}T{hh:02}:{mm:02}:{ss:02}.{:09}Z", d.subsec_nanos())
}

/// Howard Hinnant's days-to-civil conversion.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Seconds since the epoch, for OpenAI's `created`.
pub(crate) fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

/// A stable fake sha256 digest, so `/api/tags` looks real and stays the same.
pub(crate) fn digest(name: &str) -> String {
    (0u64..4)
        .map(|seed| {
            let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
            for b in name.bytes() {
                h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
            }
            format!("{h:016x}")
        })
        .collect()
}

/// How long a model stays loaded after a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeepAlive {
    /// Unload when this long has passed (zero: right after the request).
    For(Duration),
    /// Never unload (a negative keep_alive).
    Forever,
}

impl KeepAlive {
    /// When a model kept this way expires, counted from now (None: never).
    pub(crate) fn deadline(self) -> Option<SystemTime> {
        match self {
            KeepAlive::For(d) => Some(SystemTime::now() + d),
            KeepAlive::Forever => None,
        }
    }
}

/// Parses `keep_alive` as Ollama does: a number of seconds or a Go duration
/// string; negative means forever.
pub(crate) fn keep_alive(v: &Value) -> Result<KeepAlive, String> {
    let secs = match v {
        Value::Number(n) => n.as_f64().unwrap_or(0.0),
        Value::String(s) => match s.trim().parse::<f64>() {
            Ok(n) => n,
            Err(_) => go_duration(s).ok_or_else(|| format!("time: invalid duration {s:?}"))?,
        },
        _ => return Err(format!("invalid keep_alive: {v}")),
    };
    Ok(if secs < 0.0 { KeepAlive::Forever } else { KeepAlive::For(Duration::from_secs_f64(secs.min(1e12))) })
}

/// Go's `time.ParseDuration`, in seconds (e.g. "1h30m", "-1m", "250ms").
pub(crate) fn go_duration(s: &str) -> Option<f64> {
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Some(0.0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total = 0.0;
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let num: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += num * scale;
    }
    Some(if neg { -total } else { total })
}

/// The first `n` characters of `s` (never splitting a character).
pub(crate) fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses() {
        assert_eq!(rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400)), "2000-02-29T00:00:00.000000000Z");
        assert_eq!(go_duration("1h30m"), Some(5400.0));
        assert_eq!(go_duration("-1m"), Some(-60.0));
        assert_eq!(go_duration("250ms"), Some(0.25));
        assert_eq!(go_duration("5x"), None);
        assert_eq!(keep_alive(&Value::from(-1)), Ok(KeepAlive::Forever));
        assert_eq!(keep_alive(&Value::from("10m")), Ok(KeepAlive::For(Duration::from_secs(600))));
        assert_eq!(keep_alive(&Value::from("0")), Ok(KeepAlive::For(Duration::ZERO)));
        assert!(keep_alive(&Value::from("soon")).is_err());
        assert_eq!(canonical("a"), "a:latest");
        assert_eq!(digest("a").len(), 64);
    }
}
