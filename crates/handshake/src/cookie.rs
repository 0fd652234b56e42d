//! The magic cookie: a guard against running a plugin binary by hand.

/// An application's magic cookie: the host sets the environment variable
/// `key` to `value` when it launches a plugin, and the plugin refuses to
/// start without it.
///
/// This is a usability guard, not a security feature: it lets a plugin tell a
/// person who ran it directly what to do instead.
///
/// ```
/// use rpcplugin_handshake::MagicCookie;
///
/// let cookie = MagicCookie::new("BASIC_PLUGIN", "hello");
/// // A plugin hands in what it read from its environment.
/// assert!(cookie.check(Some("hello")).is_ok());
/// assert!(cookie.check(None).is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MagicCookie {
    /// Name of the environment variable.
    pub key: String,
    /// The value the variable must hold exactly.
    pub value: String,
}

impl MagicCookie {
    /// A cookie with this variable name and value.
    ///
    /// ```
    /// use rpcplugin_handshake::MagicCookie;
    ///
    /// let cookie = MagicCookie::new("BASIC_PLUGIN", "hello");
    /// assert_eq!(cookie.key, "BASIC_PLUGIN");
    /// assert_eq!(cookie.value, "hello");
    /// ```
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> MagicCookie {
        MagicCookie {
            key: key.into(),
            value: value.into(),
        }
    }

    /// Checks the value found in the environment (`None` when the variable is
    /// unset) against this cookie. The comparison is exact.
    ///
    /// A cookie whose own key or value is empty is a mistake in the plugin,
    /// reported as [`CookieError::Misconfigured`] whatever `actual` holds.
    ///
    /// ```
    /// use rpcplugin_handshake::{CookieError, MagicCookie};
    ///
    /// let cookie = MagicCookie::new("BASIC_PLUGIN", "hello");
    /// assert_eq!(cookie.check(Some("hello")), Ok(()));
    /// assert!(matches!(cookie.check(Some("Hello")), Err(CookieError::NotLaunchedByHost { .. })));
    ///
    /// let broken = MagicCookie::new("BASIC_PLUGIN", "");
    /// assert!(matches!(broken.check(Some("")), Err(CookieError::Misconfigured { .. })));
    /// ```
    pub fn check(&self, actual: Option<&str>) -> Result<(), CookieError> {
        if self.key.is_empty() || self.value.is_empty() {
            return Err(CookieError::Misconfigured {
                key_empty: self.key.is_empty(),
                value_empty: self.value.is_empty(),
            });
        }
        if actual == Some(self.value.as_str()) {
            Ok(())
        } else {
            Err(CookieError::NotLaunchedByHost {
                key: self.key.clone(),
            })
        }
    }
}

/// Why a [`MagicCookie`] check failed.
///
/// The `Display` text is meant for the person at the terminal; a plugin
/// prints it to stderr and exits with status 1, leaving stdout untouched.
///
/// ```
/// use rpcplugin_handshake::MagicCookie;
///
/// let err = MagicCookie::new("BASIC_PLUGIN", "hello").check(None).unwrap_err();
/// assert!(err.to_string().starts_with("This binary is a plugin:"));
/// ```
#[non_exhaustive]
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum CookieError {
    /// The variable is unset or holds another value: most likely a person ran
    /// the plugin binary directly.
    #[error(
        "This binary is a plugin: it is meant to be started by the program that uses it, \
         not run directly.\n\
         To use it, run that program instead; it loads this plugin on its own when needed."
    )]
    NotLaunchedByHost {
        /// The name of the environment variable that was checked.
        key: String,
    },

    /// The plugin's own cookie has an empty key or value: the plugin was built
    /// wrongly, and only its author can fix that.
    #[error(
        "This plugin is misconfigured: its magic cookie {} empty.\n\
         This is a bug in the plugin, not something you can fix; please report it to the plugin's author.",
        misconfigured_part(*key_empty, *value_empty)
    )]
    Misconfigured {
        /// The cookie's key is empty.
        key_empty: bool,
        /// The cookie's value is empty.
        value_empty: bool,
    },
}

fn misconfigured_part(key_empty: bool, value_empty: bool) -> &'static str {
    match (key_empty, value_empty) {
        (true, true) => "key and value are",
        (true, false) => "key is",
        _ => "value is",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_comparison() {
        let cookie = MagicCookie::new("K", "v");
        assert_eq!(cookie.check(Some("v")), Ok(()));
        for wrong in [None, Some(""), Some("V"), Some("v "), Some(" v")] {
            assert_eq!(
                cookie.check(wrong),
                Err(CookieError::NotLaunchedByHost { key: "K".into() }),
                "{wrong:?}"
            );
        }
    }

    #[test]
    fn empty_configuration_wins() {
        assert_eq!(
            MagicCookie::new("", "").check(Some("")),
            Err(CookieError::Misconfigured {
                key_empty: true,
                value_empty: true,
            })
        );
        assert_eq!(
            MagicCookie::new("", "v").check(Some("v")),
            Err(CookieError::Misconfigured {
                key_empty: true,
                value_empty: false,
            })
        );
    }

    #[test]
    fn messages() {
        let shown = [
            CookieError::NotLaunchedByHost { key: "K".into() },
            CookieError::Misconfigured {
                key_empty: true,
                value_empty: true,
            },
            CookieError::Misconfigured {
                key_empty: true,
                value_empty: false,
            },
            CookieError::Misconfigured {
                key_empty: false,
                value_empty: true,
            },
        ]
        .iter()
        .map(|err| format!("{err}\n---\n"))
        .collect::<String>();
        expect_test::expect![[r#"
            This binary is a plugin: it is meant to be started by the program that uses it, not run directly.
            To use it, run that program instead; it loads this plugin on its own when needed.
            ---
            This plugin is misconfigured: its magic cookie key and value are empty.
            This is a bug in the plugin, not something you can fix; please report it to the plugin's author.
            ---
            This plugin is misconfigured: its magic cookie key is empty.
            This is a bug in the plugin, not something you can fix; please report it to the plugin's author.
            ---
            This plugin is misconfigured: its magic cookie value is empty.
            This is a bug in the plugin, not something you can fix; please report it to the plugin's author.
            ---
        "#]].assert_eq(&shown);
    }
}
