//! The example's two binaries talk to each other for real: the host
//! launches the plugin process, calls it over mutual TLS and stops it.

use std::process::Command;

#[test]
fn the_host_greets_through_the_plugin() {
    let output = Command::new(env!("CARGO_BIN_EXE_greeter-host"))
        .arg(env!("CARGO_BIN_EXE_greeter-plugin"))
        .arg("guide")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "host failed: {stderr}");
    assert_eq!(String::from_utf8_lossy(&output.stdout), "Hello, guide!\n");
    assert!(stderr.contains("launch to first reply: "), "{stderr}");
}

#[test]
fn the_plugin_started_by_hand_explains_itself() {
    let output = Command::new(env!("CARGO_BIN_EXE_greeter-plugin"))
        .env_remove("GREETER_PLUGIN")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("plugin"), "{stderr}");
}

#[test]
fn an_error_returned_from_main_prints_its_message() {
    // `main` returns `Result<(), Box<dyn Error>>`: what std prints is the
    // error's Debug form, which for rpcplugin::Error is its message.
    let output = Command::new(env!("CARGO_BIN_EXE_greeter-host"))
        .arg("/nonexistent/greeter-plugin")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("Error: cannot start plugin \"/nonexistent/greeter-plugin\": "),
        "{stderr}"
    );
    assert!(!stderr.contains("Spawn {"), "{stderr}");
}
