//! Docker's RFC 3339 timestamps → CRI nanoseconds since the epoch.

/// "2026-11-28T11:28:14.093512995Z" → ns. Docker's zero time
/// ("0001-01-01T00:00:00Z") and anything unparsable → 0.
pub fn rfc3339_to_nanos(text: &str) -> i64 {
    parse(text).unwrap_or(0).max(0)
}

/// Like [`rfc3339_to_nanos`], but `None` for what does not parse.
pub fn rfc3339_nanos(text: &str) -> Option<i64> {
    parse(text)
}

fn parse(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    // ASCII only: the slicing below must not split a character (log file
    // tails are parsed with this too).
    if b.len() < 20 || !b.is_ascii() || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' {
        return None;
    }
    let num = |s: &str| s.parse::<i64>().ok();
    let year = num(&text[0..4])?;
    let month = num(&text[5..7])?;
    let day = num(&text[8..10])?;
    let hour = num(&text[11..13])?;
    let minute = num(&text[14..16])?;
    let second = num(&text[17..19])?;
    let mut rest = &text[19..];
    let mut nanos = 0i64;
    if let Some(frac) = rest.strip_prefix('.') {
        // Without allocating: this runs for every log line.
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        nanos = frac
            .bytes()
            .take(9)
            .take_while(u8::is_ascii_digit)
            .fold(0i64, |n, d| n * 10 + i64::from(d - b'0'))
            * 10i64.pow(9 - digits.min(9) as u32);
        rest = &frac[digits..];
    }
    let offset_secs = match rest {
        "Z" | "z" => 0,
        tz if tz.len() == 6 && (tz.starts_with('+') || tz.starts_with('-')) => {
            let sign = if tz.starts_with('-') { -1 } else { 1 };
            sign * (num(&tz[1..3])? * 3600 + num(&tz[4..6])? * 60)
        }
        _ => return None,
    };
    if year < 1970 || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let secs = days * 86400 + hour * 3600 + minute * 60 + second - offset_secs;
    secs.checked_mul(1_000_000_000)?.checked_add(nanos)
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let cases = [
            ("1970-01-01T00:00:00Z", 0),
            ("1970-01-01T00:00:01.5Z", 1_500_000_000),
            ("2026-11-28T11:28:14.093512995Z", 1_795_865_294_093_512_995),
            ("2000-02-29T00:00:00Z", 951_782_400_000_000_000),
            ("2000-02-29T01:00:00+01:00", 951_782_400_000_000_000),
            ("0001-01-01T00:00:00Z", 0),
            ("garbage", 0),
            ("2026-11-28T11:28:14.Z", 1_795_865_294_000_000_000),
            ("2026-11-28T11:28:14.1234567891Z", 1_795_865_294_123_456_789),
            ("2026-11-2éT11:28:14Z", 0),
            ("2026-11-28T1é:28:14.000000000Z", 0),
            ("", 0),
        ];
        for (text, want) in cases {
            assert_eq!(rfc3339_to_nanos(text), want, "{text}");
        }
    }
}
