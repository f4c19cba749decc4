//! UTC timestamps from `SystemTime`, formatted without a date crate.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch as a float (negative before 1970).
pub(crate) fn unix_seconds(t: SystemTime) -> f64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    }
}

/// Whole seconds and microseconds since the epoch, floored (so pre-1970 times stay ordered).
fn split_micros(t: SystemTime) -> (i64, u32) {
    let micros: i128 = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_micros() as i128,
        Err(e) => -(e.duration().as_micros() as i128),
    };
    let secs = micros.div_euclid(1_000_000) as i64;
    let frac = micros.rem_euclid(1_000_000) as u32;
    (secs, frac)
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar.
/// Algorithm from Howard Hinnant's `civil_from_days`.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn parts(t: SystemTime) -> (i64, u32, u32, u32, u32, u32, u32) {
    let (secs, micros) = split_micros(t);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400) as u32;
    let (y, mo, d) = civil_from_days(days);
    (y, mo, d, sod / 3600, (sod % 3600) / 60, sod % 60, micros)
}

/// `2026-01-01T00:00:00.000000Z`: the metrics/heartbeat timestamp format.
pub fn iso_utc(t: SystemTime) -> String {
    let (y, mo, d, h, mi, s, us) = parts(t);
    format!("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z", y, mo, d, h, mi, s, us)
}

/// `2026-01-01 00:00:00`: the `logs.txt` timestamp format.
pub(crate) fn log_stamp(t: SystemTime) -> String {
    let (y, mo, d, h, mi, s, _) = parts(t);
    format!("{:04}-{:02}-{:02} {:02}:{:02}:{:02}", y, mo, d, h, mi, s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64, micros: u32) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_micros(micros as u64)
    }

    #[test]
    fn formats_known_instants() {
        assert_eq!(iso_utc(UNIX_EPOCH), "1970-01-01T00:00:00.000000Z");
        assert_eq!(iso_utc(at(1_767_225_600, 0)), "2026-01-01T00:00:00.000000Z");
        // 2024-02-29 (leap day) 23:59:59.999999
        assert_eq!(iso_utc(at(1_709_251_199, 999_999)), "2024-02-29T23:59:59.999999Z");
        assert_eq!(iso_utc(at(951_782_400, 123_456)), "2000-02-29T00:00:00.123456Z");
        assert_eq!(log_stamp(at(4_102_444_799, 5)), "2099-12-31 23:59:59");
    }

    #[test]
    fn before_epoch_is_floored() {
        let t = UNIX_EPOCH - Duration::from_micros(1);
        assert_eq!(iso_utc(t), "1969-12-31T23:59:59.999999Z");
        assert!(unix_seconds(t) < 0.0);
    }

    #[test]
    fn every_day_of_four_centuries_round_trips() {
        // days_from_civil is the inverse; check monotonic, gap-free dates across 1900..2300.
        let mut prev = civil_from_days(-25_567 - 1);
        for day in -25_567..120_000 {
            let cur = civil_from_days(day);
            let next_expected = if cur.2 == 1 {
                assert!(prev.2 >= 28, "month started after day {:?}", prev);
                true
            } else {
                assert_eq!(cur.2, prev.2 + 1);
                false
            };
            if next_expected && cur.1 == 1 {
                assert_eq!(cur.0, prev.0 + 1);
            }
            prev = cur;
        }
    }
}
