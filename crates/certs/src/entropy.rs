//! Notices a slow first random draw, the sign of an aws-lc built without
//! `AWS_LC_SYS_NO_JITTER_ENTROPY`.
//!
//! aws-lc seeds its random generator on the first draw of a process. By
//! default it gathers CPU-jitter entropy for that, which costs tens of
//! milliseconds; built with `AWS_LC_SYS_NO_JITTER_ENTROPY=1` it asks the
//! operating system, which takes microseconds. The setting is read when
//! aws-lc-sys is compiled, so a library cannot choose it for the programs
//! that use it: this module tells the program instead, once.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A first random draw slower than this is reported. Seeding from the
/// operating system stays far below it even on a loaded machine; jitter
/// seeding measured 30 to 90 ms.
pub const SLOW_FIRST_DRAW: Duration = Duration::from_millis(20);

/// How long the first draw took, once measured.
static FIRST_DRAW: OnceLock<Duration> = OnceLock::new();

/// How long this process's first random draw through this crate took, if
/// an identity has been generated yet.
///
/// [`Identity::generate`](crate::Identity::generate) times it (the draw that
/// seeds aws-lc's generator, unless something in the process drew earlier)
/// and logs the fix at `info` level when it took over [`SLOW_FIRST_DRAW`]. A
/// program that installs its log subscriber only after generating its first
/// identity can log [`slow_first_draw_notice`] itself.
///
/// ```
/// use rpcplugin_certs::{Identity, KeyType, first_random_draw};
///
/// let _identity = Identity::generate(KeyType::EcP256)?;
/// assert!(first_random_draw().is_some());
/// # Ok::<(), rpcplugin_certs::CertError>(())
/// ```
pub fn first_random_draw() -> Option<Duration> {
    FIRST_DRAW.get().copied()
}

/// The notice for a first random draw that took `elapsed`, or `None` when it
/// was fast enough.
///
/// ```
/// use std::time::Duration;
/// use rpcplugin_certs::slow_first_draw_notice;
///
/// assert!(slow_first_draw_notice(Duration::from_micros(40)).is_none());
/// let notice = slow_first_draw_notice(Duration::from_millis(70)).unwrap();
/// assert!(notice.contains("AWS_LC_SYS_NO_JITTER_ENTROPY"));
/// ```
pub fn slow_first_draw_notice(elapsed: Duration) -> Option<String> {
    if elapsed <= SLOW_FIRST_DRAW {
        return None;
    }
    Some(format!(
        "slow start: aws-lc's first random draw took {:.0} ms because this program was built \
         without AWS_LC_SYS_NO_JITTER_ENTROPY=1 (aws-lc then seeds from CPU jitter at every \
         start); add `AWS_LC_SYS_NO_JITTER_ENTROPY = \"1\"` under `[env]` in the project's \
         .cargo/config.toml and rebuild to seed from the operating system instead",
        elapsed.as_secs_f64() * 1e3
    ))
}

/// Times the first random draw of the process, once, and logs the notice
/// when it was slow.
///
/// `info`, not `warn`: the program works, only its start is slower, and a
/// clean start must not print a warning.
pub(crate) fn check_first_draw() {
    FIRST_DRAW.get_or_init(|| {
        let started = Instant::now();
        // A failure here shows up again, as an error, in the draws that
        // follow; this one only measures.
        let _ = aws_lc_rs::rand::fill(&mut [0u8; 1]);
        let elapsed = started.elapsed();
        if let Some(notice) = slow_first_draw_notice(elapsed) {
            tracing::info!(elapsed_us = elapsed.as_micros() as u64, "{notice}");
        }
        elapsed
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_draws_over_the_threshold_are_reported() {
        assert_eq!(slow_first_draw_notice(Duration::ZERO), None);
        assert_eq!(slow_first_draw_notice(SLOW_FIRST_DRAW), None);
        let notice = slow_first_draw_notice(Duration::from_millis(66)).unwrap();
        assert!(notice.contains("took 66 ms"), "{notice}");
        assert!(
            notice.contains("AWS_LC_SYS_NO_JITTER_ENTROPY = \"1\""),
            "{notice}"
        );
        assert!(notice.contains(".cargo/config.toml"), "{notice}");
    }

    #[test]
    fn the_first_draw_is_timed_once() {
        check_first_draw();
        let first = first_random_draw();
        assert!(first.is_some());
        check_first_draw();
        assert_eq!(first_random_draw(), first);
    }
}
