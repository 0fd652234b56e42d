//! Raises the plugin's open-file limit at start, as Go programs do.
//!
//! Every connection a plugin serves holds a descriptor, and the soft
//! RLIMIT_NOFILE is often 1024 while the hard limit is far higher. Go
//! raises the soft limit to the hard one when a program starts (Go 1.19 and
//! later), so go-plugin plugins get it without asking; a Rust plugin gets it
//! here, when it starts serving.

/// Sets the soft RLIMIT_NOFILE to the hard limit when it is lower. Failure
/// (a hard limit the kernel refuses as a soft one) leaves the limit as it
/// was; it is logged at debug level only.
pub(crate) fn raise_nofile_limit() {
    #[cfg(unix)]
    {
        use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
        let limit = getrlimit(Resource::Nofile);
        if limit.current == limit.maximum {
            return;
        }
        let raised = Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => {
                tracing::trace!(from = ?limit.current, to = ?limit.maximum, "raised RLIMIT_NOFILE")
            }
            Err(err) => tracing::debug!(%err, "could not raise RLIMIT_NOFILE to its hard limit"),
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use rustix::process::{Resource, getrlimit};

    #[test]
    fn the_soft_limit_ends_at_the_hard_limit() {
        super::raise_nofile_limit();
        let limit = getrlimit(Resource::Nofile);
        assert_eq!(limit.current, limit.maximum);
    }
}
