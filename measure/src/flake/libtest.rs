//! Reads libtest's human output: which tests failed, and what each printed.
//!
//! libtest ends a failing run with
//!
//! ```text
//! failures:
//!
//! ---- module::test_name stdout ----
//! (the test's captured output)
//!
//! failures:
//!     module::test_name
//!
//! test result: FAILED. ...
//! ```
//!
//! The indented list after the second `failures:` is authoritative (a test
//! that printed nothing has no `----` block); the blocks give the output.

use std::collections::BTreeMap;

/// One failed test of one run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Failure {
    pub(crate) test: String,
    pub(crate) output: String,
}

enum State {
    Outside,
    /// After a `failures:` line, before any block or list entry.
    Failures,
    /// Inside the `---- name stdout ----` block of this test.
    Block(String),
    /// In the indented list of failed test names.
    List,
}

/// Every failed test named in `output`, in order, with its captured output
/// (empty when libtest printed none).
pub(crate) fn parse_failures(output: &str) -> Vec<Failure> {
    let mut blocks: BTreeMap<String, String> = BTreeMap::new();
    let mut names: Vec<String> = Vec::new();
    let mut state = State::Outside;
    for line in output.lines() {
        state = match state {
            State::Outside | State::List if line == "failures:" => State::Failures,
            State::Outside => State::Outside,
            State::List => match line.strip_prefix("    ") {
                Some(name) if !name.trim().is_empty() => {
                    names.push(name.trim().to_owned());
                    State::List
                }
                _ => State::Outside,
            },
            State::Failures | State::Block(_) if block_header(line).is_some() => {
                let name = block_header(line).unwrap_or_default().to_owned();
                blocks.entry(name.clone()).or_default();
                State::Block(name)
            }
            State::Block(_) if line == "failures:" => State::List,
            State::Block(name) => {
                let text = blocks.entry(name.clone()).or_default();
                text.push_str(line);
                text.push('\n');
                State::Block(name)
            }
            State::Failures => match line.strip_prefix("    ") {
                Some(name) if !name.trim().is_empty() => {
                    names.push(name.trim().to_owned());
                    State::List
                }
                _ => State::Failures,
            },
        };
    }
    let mut seen = std::collections::BTreeSet::new();
    names
        .into_iter()
        .filter(|name| seen.insert(name.clone()))
        .map(|test| Failure {
            output: blocks
                .get(&test)
                .map(|t| t.trim_end().to_owned())
                .unwrap_or_default(),
            test,
        })
        .collect()
}

/// The test name of a `---- name stdout ----` line.
fn block_header(line: &str) -> Option<&str> {
    line.strip_prefix("---- ")?.strip_suffix(" stdout ----")
}

/// Splits the output of `cargo test --doc` (stdout and stderr merged) into
/// one section per crate, after each `Doc-tests <crate>` header.
pub(crate) fn doctest_sections(output: &str) -> Vec<(&str, &str)> {
    let mut starts: Vec<(usize, &str)> = Vec::new();
    let mut offset = 0;
    for line in output.split_inclusive('\n') {
        if let Some(krate) = line.trim().strip_prefix("Doc-tests ") {
            starts.push((offset + line.len(), krate.trim()));
        }
        offset += line.len();
    }
    starts
        .iter()
        .enumerate()
        .map(|(i, &(start, krate))| {
            let end = starts.get(i + 1).map_or(output.len(), |&(next, _)| next);
            (krate, output.get(start..end).unwrap_or_default())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUN: &str = "\
running 3 tests
test lifecycle::kill_is_idempotent ... ok
test lifecycle::dropping_the_client_stops_the_plugin ... FAILED
test quiet ... FAILED

failures:

---- lifecycle::dropping_the_client_stops_the_plugin stdout ----

thread 'lifecycle::dropping_the_client_stops_the_plugin' panicked at crates/tests/tests/e2e/lifecycle.rs:40:5:
plugin process 4242 is still there (running or unreaped)
    indented detail line
note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace


failures:
    lifecycle::dropping_the_client_stops_the_plugin
    quiet

test result: FAILED. 1 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out; finished in 2.01s
";

    #[test]
    fn finds_failed_tests_and_their_output() {
        let failures = parse_failures(RUN);
        assert_eq!(failures.len(), 2, "{failures:?}");
        assert_eq!(
            failures[0].test,
            "lifecycle::dropping_the_client_stops_the_plugin"
        );
        assert!(failures[0].output.contains("still there"));
        assert!(failures[0].output.contains("    indented detail line"));
        assert!(!failures[0].output.contains("failures:"));
        assert_eq!(failures[1].test, "quiet");
        assert_eq!(failures[1].output, "");
    }

    #[test]
    fn a_failure_without_output_has_no_block() {
        let out =
            "test a ... FAILED\n\nfailures:\n    a\n\ntest result: FAILED. 0 passed; 1 failed\n";
        assert_eq!(
            parse_failures(out),
            vec![Failure {
                test: "a".into(),
                output: String::new()
            }]
        );
    }

    #[test]
    fn a_passing_run_has_no_failures() {
        let out = "running 2 tests\ntest a ... ok\ntest b ... ok\n\ntest result: ok. 2 passed; 0 failed\n";
        assert!(parse_failures(out).is_empty());
        assert!(parse_failures("").is_empty());
    }

    #[test]
    fn splits_doctest_output_per_crate() {
        let out = "   Doc-tests rpcplugin\n\nrunning 1 test\ntest src/lib.rs - x (line 3) ... ok\n\
                   \n   Doc-tests rpcplugin_certs\n\nrunning 1 test\n\
                   test crates/certs/src/lib.rs - y (line 9) ... FAILED\n\nfailures:\n\n\
                   ---- crates/certs/src/lib.rs - y (line 9) stdout ----\nerror[E0425]: boom\n\n\
                   failures:\n    crates/certs/src/lib.rs - y (line 9)\n\ntest result: FAILED.\n";
        let sections = doctest_sections(out);
        assert_eq!(sections.len(), 2);
        assert_eq!(sections[0].0, "rpcplugin");
        assert!(parse_failures(sections[0].1).is_empty());
        assert_eq!(sections[1].0, "rpcplugin_certs");
        let failures = parse_failures(sections[1].1);
        assert_eq!(failures.len(), 1);
        assert_eq!(failures[0].test, "crates/certs/src/lib.rs - y (line 9)");
        assert!(failures[0].output.contains("E0425"));
    }
}
