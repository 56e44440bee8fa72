//! `Time(target, format, location)`: the Collector's ctime-like directives
//! (its `ctimefmt`, which it maps onto Go's `time.ParseInLocation`). The
//! instant is found as Go finds it: an offset in the text (`%z`, `%i`, `%j`,
//! `%k`) wins; else a zone abbreviation (`%Z`) is looked up in the location
//! (`UTC` is always UTC, `GMT+3` is three hours, an unknown name is a zero
//! offset, as Go's fabricated zone); else the wall-clock time is read in the
//! location, with Go's rule for times a transition skips or repeats.

use jiff::tz::TimeZone;
use jiff::Timestamp;

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];
const DAYS: [&str; 7] = ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"];

/// Checks a format at compile time: every directive is known.
pub fn check_format(format: &str) -> Result<(), String> {
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c == '%' {
            match chars.next() {
                Some(d) if "YymoqbhBdegaAHIlpPMSLfszZijkDxFTXrRnt%c".contains(d) => {}
                Some(d) => return Err(format!("unsupported directive %{d}")),
                None => return Err("the format ends with a lone %".into()),
            }
        }
    }
    Ok(())
}

struct Input<'a> {
    s: &'a [u8],
    at: usize,
}

impl<'a> Input<'a> {
    fn digits(&mut self, min: usize, max: usize) -> Result<i64, String> {
        let start = self.at;
        while self.at < self.s.len() && self.at - start < max && self.s[self.at].is_ascii_digit() {
            self.at += 1;
        }
        if self.at - start < min {
            return Err(format!("expected a number at byte {start}"));
        }
        let text = std::str::from_utf8(&self.s[start..self.at]).unwrap_or("0");
        text.parse().map_err(|_| "bad number".to_string())
    }

    fn spaces(&mut self) {
        while self.at < self.s.len() && self.s[self.at] == b' ' {
            self.at += 1;
        }
    }

    fn lit(&mut self, b: u8) -> Result<(), String> {
        if self.s.get(self.at) == Some(&b) {
            self.at += 1;
            Ok(())
        } else {
            Err(format!("expected {:?} at byte {}", b as char, self.at))
        }
    }

    fn name(&mut self, names: &[&str], full: bool) -> Result<usize, String> {
        let rest = &self.s[self.at..];
        for (i, n) in names.iter().enumerate() {
            let want = if full { n.len() } else { 3 };
            if rest.len() >= want && rest[..want].eq_ignore_ascii_case(&n.as_bytes()[..want]) {
                self.at += want;
                return Ok(i);
            }
        }
        Err(format!("expected a name at byte {}", self.at))
    }

    /// A zone abbreviation as Go's `MST` layout element reads it: `UTC`,
    /// `GMT` with an optional signed hour, or three to five letters.
    fn zone(&mut self) -> Result<&'a str, String> {
        let start = self.at;
        while self.at < self.s.len() && self.s[self.at].is_ascii_alphabetic() && self.at - start < 5 {
            self.at += 1;
        }
        if self.at - start < 3 {
            return Err(format!("expected a time zone name at byte {start}"));
        }
        if &self.s[start..self.at] == b"GMT" && matches!(self.s.get(self.at), Some(b'+' | b'-')) {
            self.at += 1;
            let digits = self.at;
            while self.at < self.s.len() && self.s[self.at].is_ascii_digit() && self.at - digits < 2 {
                self.at += 1;
            }
            if self.at == digits {
                return Err(format!("expected an hour after GMT at byte {digits}"));
            }
        }
        std::str::from_utf8(&self.s[start..self.at]).map_err(|_| "bad zone name".to_string())
    }

    fn offset(&mut self, colon: bool, seconds: bool, minutes: bool) -> Result<i64, String> {
        if matches!(self.s.get(self.at), Some(b'Z')) {
            self.at += 1;
            return Ok(0);
        }
        let sign = match self.s.get(self.at) {
            Some(b'+') => 1,
            Some(b'-') => -1,
            _ => return Err(format!("expected a UTC offset at byte {}", self.at)),
        };
        self.at += 1;
        let h = self.digits(2, 2)?;
        let mut secs = h * 3600;
        if minutes {
            if colon {
                self.lit(b':')?;
            }
            secs += self.digits(2, 2)? * 60;
        }
        if seconds {
            if colon {
                self.lit(b':')?;
            }
            secs += self.digits(2, 2)?;
        }
        Ok(sign * secs)
    }
}

/// Days from 1970-01-01 to the given civil date (proleptic Gregorian).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Parses `text` by `format` in UTC: Unix nanoseconds.
pub fn parse(text: &str, format: &str) -> Result<i64, String> {
    parse_in(text, format, None)
}

/// Parses `text` by `format`, a time without an offset read in `location`
/// (UTC when `None`): Unix nanoseconds.
pub fn parse_in(text: &str, format: &str, location: Option<&TimeZone>) -> Result<i64, String> {
    // Expand the composite directives first.
    let format = format
        .replace("%D", "%m/%d/%y")
        .replace("%x", "%m/%d/%y")
        .replace("%F", "%Y-%m-%d")
        .replace("%T", "%H:%M:%S")
        .replace("%X", "%H:%M:%S")
        .replace("%r", "%I:%M:%S %p")
        .replace("%R", "%H:%M")
        .replace("%c", "%a %b %d %H:%M:%S %Y");
    let mut inp = Input { s: text.as_bytes(), at: 0 };
    let (mut year, mut month, mut day) = (1970i64, 1i64, 1i64);
    let (mut hour, mut min, mut sec, mut nanos) = (0i64, 0i64, 0i64, 0i64);
    let mut pm: Option<bool> = None;
    let mut offset: Option<i64> = None;
    let mut zone: Option<&str> = None;
    let mut f = format.chars().peekable();
    while let Some(c) = f.next() {
        if c != '%' {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                inp.lit(b)?;
            }
            continue;
        }
        let Some(d) = f.next() else { return Err("the format ends with a lone %".into()) };
        match d {
            'Y' => year = inp.digits(4, 4)?,
            'y' => {
                let y = inp.digits(2, 2)?;
                // Go: 69..99 are 19xx, 00..68 are 20xx.
                year = if y >= 69 { 1900 + y } else { 2000 + y };
            }
            'm' => month = inp.digits(2, 2)?,
            'o' => {
                inp.spaces();
                month = inp.digits(1, 2)?
            }
            'q' => month = inp.digits(1, 2)?,
            'b' | 'h' => month = inp.name(&MONTHS, false)? as i64 + 1,
            'B' => month = inp.name(&MONTHS, true)? as i64 + 1,
            'd' => day = inp.digits(2, 2)?,
            'e' => {
                inp.spaces();
                day = inp.digits(1, 2)?
            }
            'g' => day = inp.digits(1, 2)?,
            'a' => {
                inp.name(&DAYS, false)?;
            }
            'A' => {
                inp.name(&DAYS, true)?;
            }
            'H' => hour = inp.digits(2, 2)?,
            'I' => hour = inp.digits(2, 2)?,
            'l' => {
                inp.spaces();
                hour = inp.digits(1, 2)?
            }
            'p' | 'P' => {
                let rest = &inp.s[inp.at..];
                if rest.len() >= 2 && rest[..2].eq_ignore_ascii_case(b"am") {
                    pm = Some(false);
                } else if rest.len() >= 2 && rest[..2].eq_ignore_ascii_case(b"pm") {
                    pm = Some(true);
                } else {
                    return Err(format!("expected AM or PM at byte {}", inp.at));
                }
                inp.at += 2;
            }
            'M' => min = inp.digits(2, 2)?,
            'S' => {
                sec = inp.digits(2, 2)?;
                // As Go's time.Parse: a fraction may follow the seconds even
                // when the layout does not name it.
                if matches!(inp.s.get(inp.at), Some(b'.' | b',')) && f.peek() != Some(&'.') && f.peek() != Some(&',') {
                    inp.at += 1;
                    let start = inp.at;
                    let v = inp.digits(1, 9)?;
                    nanos = v * 10i64.pow(9 - (inp.at - start) as u32);
                }
            }
            'L' => nanos = inp.digits(3, 3)? * 1_000_000,
            'f' => nanos = inp.digits(6, 6)? * 1_000,
            's' => nanos = inp.digits(9, 9)?,
            'z' => offset = Some(inp.offset(false, false, true)?),
            'i' => offset = Some(inp.offset(false, false, false)?),
            'j' => offset = Some(inp.offset(true, false, true)?),
            'k' => offset = Some(inp.offset(true, true, true)?),
            'Z' => zone = Some(inp.zone()?),
            'n' => inp.lit(b'\n')?,
            't' => inp.lit(b'\t')?,
            '%' => inp.lit(b'%')?,
            other => return Err(format!("unsupported directive %{other}")),
        }
    }
    if inp.at != inp.s.len() {
        return Err(format!("extra text at byte {}", inp.at));
    }
    match pm {
        Some(true) if hour < 12 => hour += 12,
        Some(false) if hour == 12 => hour = 0,
        _ => {}
    }
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return Err("day or month out of range".into());
    }
    if hour > 23 || min > 59 || sec > 59 {
        return Err("time of day out of range".into());
    }
    // The wall-clock time as if it were UTC (Go's `Date(..., UTC)`).
    let local = days_from_civil(year, month, day) * 86_400 + hour * 3600 + min * 60 + sec;
    let secs = match (offset, zone, location) {
        (Some(o), _, _) => local - o,
        (None, Some(name), loc) => local - zone_offset(name, local, loc),
        (None, None, Some(tz)) => local_to_utc(tz, local),
        (None, None, None) => local,
    };
    secs.checked_mul(1_000_000_000).and_then(|n| n.checked_add(nanos)).ok_or_else(|| "time out of range".to_string())
}

/// The offset of `tz` at Unix second `s`, in seconds (0 out of range).
fn offset_at(tz: &TimeZone, s: i64) -> i64 {
    Timestamp::from_second(s).map_or(0, |ts| i64::from(tz.to_offset_info(ts).offset().seconds()))
}

/// Go's `time.Date` in a location: the offset in force at the wall-clock
/// time taken as UTC; if the instant that gives lies outside that offset's
/// span, the offset in force at that instant instead. So a time a
/// transition repeats, or skips, resolves as Go resolves it (which of the
/// two depends on the side of UTC the zone is on).
fn local_to_utc(tz: &TimeZone, local: i64) -> i64 {
    let first = offset_at(tz, local);
    let utc = local - first;
    let second = offset_at(tz, utc);
    if second == first {
        utc
    } else {
        local - second
    }
}

/// Go's `time.Parse` for a zone abbreviation: `UTC` is UTC; a name the
/// location used (in force at that time first, else any time near it) has
/// that offset; `GMT+h`/`GMT-h` is that many hours; anything else is a zero
/// offset (Go makes up a zone of that name at UTC).
fn zone_offset(name: &str, local: i64, location: Option<&TimeZone>) -> i64 {
    if name == "UTC" {
        return 0;
    }
    if let Some(tz) = location {
        // The offsets the location gave this name around that time.
        let mut candidates: Vec<i64> = Vec::new();
        if let Ok(ts) = Timestamp::from_second(local) {
            let info = tz.to_offset_info(ts);
            if info.abbreviation() == name {
                candidates.push(i64::from(info.offset().seconds()));
            }
            for t in tz.preceding(ts).take(8).chain(tz.following(ts).take(8)) {
                let o = i64::from(t.offset().seconds());
                if t.abbreviation() == name && !candidates.contains(&o) {
                    candidates.push(o);
                }
            }
        }
        // Go's lookupName: first a zone whose name is in force at that time.
        for &o in &candidates {
            if let Ok(ts) = Timestamp::from_second(local - o) {
                if tz.to_offset_info(ts).abbreviation() == name {
                    return o;
                }
            }
        }
        if let Some(&o) = candidates.first() {
            return o;
        }
    }
    match name.strip_prefix("GMT").and_then(|h| h.parse::<i64>().ok()) {
        Some(h) => h * 3600,
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_collector_examples() {
        // 2023-05-26T12:34:56Z = 1685104496 s since the epoch.
        assert_eq!(parse("2023-05-26 12:34:56", "%Y-%m-%d %H:%M:%S"), Ok(1_685_104_496_000_000_000));
        assert_eq!(parse("2023-05-26 12:34:56.123", "%Y-%m-%d %H:%M:%S.%L"), Ok(1_685_104_496_123_000_000));
        // A fraction after the seconds is read even when the format lacks it, as Go does.
        assert_eq!(parse("2023-05-26 12:34:56.5", "%Y-%m-%d %H:%M:%S"), Ok(1_685_104_496_500_000_000));
        // -0700: seven hours later in UTC.
        assert_eq!(parse("26/May/2023:05:34:56 -0700", "%d/%b/%Y:%H:%M:%S %z"), Ok(1_685_104_496_000_000_000));
        assert_eq!(parse("Fri May 26 12:34:56 2023", "%c"), Ok(1_685_104_496_000_000_000));
        assert_eq!(parse("05/26/23 12:34:56 PM", "%D %r"), Ok(1_685_104_496_000_000_000));
        assert_eq!(parse("1970-01-01", "%F"), Ok(0));
        assert!(parse("2023-02-30", "%F").is_err());
        assert!(parse("2023-05-26x", "%F").is_err());
        // Go: an abbreviation the location does not know is a zero offset.
        assert_eq!(parse("12:00 EST", "%H:%M %Z"), Ok(43_200_000_000_000));
        assert_eq!(parse("12:00 GMT+3", "%H:%M %Z"), Ok(32_400_000_000_000));
        assert!(check_format("%Y-%Q").is_err());
    }

    /// Go's `time.ParseInLocation`, which the Collector's `Time(..., location)` calls.
    #[test]
    fn reads_wall_clock_times_in_a_location_as_go_does() {
        let ny = TimeZone::get("America/New_York").unwrap();
        let berlin = TimeZone::get("Europe/Berlin").unwrap();
        let f = "%Y-%m-%d %H:%M:%S";
        // 2023-05-26 12:34:56 EDT (-4) is 16:34:56 UTC.
        assert_eq!(parse_in("2023-05-26 12:34:56", f, Some(&ny)), Ok(1_685_118_896_000_000_000));
        // In winter, EST (-5).
        assert_eq!(parse_in("2023-01-26 12:34:56", f, Some(&ny)), Ok(1_674_754_496_000_000_000));
        // An offset in the text wins over the location.
        assert_eq!(
            parse_in("2023-05-26 12:34:56 +0000", "%Y-%m-%d %H:%M:%S %z", Some(&ny)),
            Ok(1_685_104_496_000_000_000)
        );
        // A repeated hour (New York, 2023-11-05 01:30): Go takes the first, EDT: 05:30 UTC.
        assert_eq!(parse_in("2023-11-05 01:30:00", f, Some(&ny)), Ok(1_699_162_200_000_000_000));
        // A skipped hour (New York, 2023-03-12 02:30): Go lands on 06:30 UTC (01:30 EST).
        assert_eq!(parse_in("2023-03-12 02:30:00", f, Some(&ny)), Ok(1_678_602_600_000_000_000));
        // East of UTC the same rule picks the other side. Berlin, 2023-10-29 02:30
        // is repeated: Go takes CET (+1), 01:30 UTC.
        assert_eq!(parse_in("2023-10-29 02:30:00", f, Some(&berlin)), Ok(1_698_543_000_000_000_000));
        // Berlin, 2023-03-26 02:30 is skipped: Go lands on 01:30 UTC (03:30 CEST).
        assert_eq!(parse_in("2023-03-26 02:30:00", f, Some(&berlin)), Ok(1_679_794_200_000_000_000));
        // An abbreviation the location uses: EST in July is still -5 (Go's second pass);
        // EDT is -4; UTC is UTC whatever the location.
        let z = "%Y-%m-%d %H:%M %Z";
        assert_eq!(parse_in("2023-07-01 12:00 EST", z, Some(&ny)), Ok(1_688_230_800_000_000_000));
        assert_eq!(parse_in("2023-07-01 12:00 EDT", z, Some(&ny)), Ok(1_688_227_200_000_000_000));
        assert_eq!(parse_in("2023-07-01 12:00 UTC", z, Some(&ny)), Ok(1_688_212_800_000_000_000));
        // A name the location never used: zero offset.
        assert_eq!(parse_in("2023-07-01 12:00 JST", z, Some(&ny)), Ok(1_688_212_800_000_000_000));
    }
}
