//! Python-style `%g` number formatting, so messages read the same from both SDKs.

/// `format(value, ".{precision}g")` as Python writes it (`0.0001235`, `1.235e+05`, `inf`, `nan`).
pub(crate) fn fmt_g(value: f64, precision: usize) -> String {
    if value.is_nan() {
        return "nan".into();
    }
    if value.is_infinite() {
        return if value > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let p = precision.max(1);
    if value == 0.0 {
        return if value.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    // Round to p significant digits first; the exponent of the rounded value picks the style.
    let sci = format!("{:.*e}", p - 1, value);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if exp < -4 || exp >= p as i32 {
        let m = strip_zeros(mantissa);
        format!("{}e{}{:02}", m, if exp < 0 { '-' } else { '+' }, exp.abs())
    } else {
        let decimals = (p as i32 - 1 - exp).max(0) as usize;
        strip_zeros(&format!("{:.*}", decimals, value))
    }
}

fn strip_zeros(s: &str) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::fmt_g;

    #[test]
    fn matches_python() {
        // Expected values from Python: format(v, '.4g') / format(v, 'g').
        let cases4 = [
            (0.0, "0"),
            (1.0, "1"),
            (0.5, "0.5"),
            (1.0 / 3.0, "0.3333"),
            (123456.0, "1.235e+05"),
            (0.00012345, "0.0001234"),
            (0.000012345, "1.234e-05"),
            (-2.5, "-2.5"),
            (1234.0, "1234"),
            (f64::INFINITY, "inf"),
        ];
        for (v, want) in cases4 {
            assert_eq!(fmt_g(v, 4), want, "{}", v);
        }
        assert_eq!(fmt_g(0.1, 6), "0.1");
        assert_eq!(fmt_g(6.0, 6), "6");
        assert_eq!(fmt_g(0.001, 6), "0.001");
        assert_eq!(fmt_g(1e-300, 6), "1e-300");
    }
}
