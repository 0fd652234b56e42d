use super::*;

#[test]
fn timestamps_go_accepts() {
    assert!(valid_go_timestamp("2026-03-01T12:00:00.123456Z"));
    assert!(valid_go_timestamp("2026-03-01T12:00:00.123456+01:00"));
    assert!(!valid_go_timestamp("2026-03-01T12:00:00.123Z"));
    assert!(!valid_go_timestamp("2026-03-01T12:00:00.123456789Z"));
    assert!(!valid_go_timestamp("2026-03-01 12:00:00.123456Z"));
    assert!(!valid_go_timestamp(""));
}

#[test]
fn our_format_is_what_go_parses() {
    let line = HclogLayer::new("m").format(Level::INFO, "hi", &[("n", Value::from(1))]);
    let parsed = parse_stderr_line(&line, false);
    assert_eq!(parsed.level, Level::INFO);
    assert_eq!(parsed.message, "hi");
    assert_eq!(
        parsed.fields,
        vec![("@module".into(), "m".into()), ("n".into(), "1".into())]
    );
    let v: Value = serde_json::from_str(&line).unwrap();
    assert!(valid_go_timestamp(v["@timestamp"].as_str().unwrap()));
}

#[test]
fn go_host_rules() {
    // A bad timestamp makes the whole line text.
    let l = parse_stderr_line(
        r#"{"@level":"error","@message":"x","@timestamp":"2026-03-01T12:00:00.123Z"}"#,
        false,
    );
    assert_eq!((l.level, l.message.starts_with('{')), (Level::DEBUG, true));
    // Missing level: raw at debug.
    let l = parse_stderr_line(r#"{"@message":"x"}"#, false);
    assert_eq!(l.level, Level::DEBUG);
    // Non-string level is text, not a crash.
    let l = parse_stderr_line(r#"{"@level":3,"@message":"x"}"#, false);
    assert_eq!(l.level, Level::DEBUG);
    // Case-insensitive level.
    assert_eq!(
        parse_stderr_line(r#"{"@level":"WARN","@message":"x"}"#, false).level,
        Level::WARN
    );
    // Non-object JSON is text.
    assert_eq!(parse_stderr_line("[1,2]", false).level, Level::DEBUG);
    // Panic handling.
    let l = parse_stderr_line("panic: oh no", false);
    assert!(l.starts_panic);
    assert_eq!(l.level, Level::ERROR);
    assert_eq!(parse_stderr_line("[INFO] tagged", true).level, Level::INFO);
}

#[test]
fn the_default_filter_keeps_the_grpc_and_tls_stack_at_info() {
    let filter = super::default_log_filter();
    assert!(filter.would_enable("rpcplugin_runtime::server", &Level::DEBUG));
    assert!(filter.would_enable("my_plugin", &Level::DEBUG));
    assert!(!filter.would_enable("my_plugin", &Level::TRACE));
    for target in ["h2::codec", "hyper", "tonic::transport", "rustls::client"] {
        assert!(filter.would_enable(target, &Level::INFO), "{target}");
        assert!(!filter.would_enable(target, &Level::DEBUG), "{target}");
    }
}
