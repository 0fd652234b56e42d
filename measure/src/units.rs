//! The one way the reports write durations: milliseconds as an `f64`,
//! rounded to a fixed number of decimals.

use std::time::Duration;

/// `value` rounded to `decimals` decimal places.
///
/// ```
/// assert_eq!(rpcplugin_measure::units::round(2.34567, 2), 2.35);
/// ```
pub fn round(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

/// `d` in milliseconds, rounded to `decimals` decimal places.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(rpcplugin_measure::units::ms_to(Duration::from_micros(12_345), 1), 12.3);
/// ```
pub fn ms_to(d: Duration, decimals: i32) -> f64 {
    round(d.as_secs_f64() * 1e3, decimals)
}

/// `d` in milliseconds to the microsecond (three decimals), as the
/// benchmark reports write it.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(rpcplugin_measure::units::ms(Duration::from_nanos(1_234_567)), 1.235);
/// ```
pub fn ms(d: Duration) -> f64 {
    ms_to(d, 3)
}

/// `d` in milliseconds to a tenth, as the matrix report writes it.
pub fn ms_tenths(d: Duration) -> f64 {
    ms_to(d, 1)
}

/// `d` in seconds, rounded to a tenth, as the reports write job durations.
pub fn seconds_tenths(d: Duration) -> f64 {
    round(d.as_secs_f64(), 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_half_away_from_zero() {
        assert_eq!(ms(Duration::from_nanos(1_500)), 0.002);
        assert_eq!(ms_to(Duration::from_micros(150), 1), 0.2);
        assert_eq!(seconds_tenths(Duration::from_millis(12_345)), 12.3);
        assert_eq!(round(-1.25, 1), -1.3);
    }
}
