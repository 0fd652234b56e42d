//! docs/guide.md shows this crate's files; they must not drift apart. The
//! guide names the crate `greeter` where this one is
//! `rpcplugin_example_greeter`.

const GUIDE: &str = include_str!("../../../docs/guide.md");

fn assert_in_guide(name: &str, text: &str) {
    let shown = text.replace("rpcplugin_example_greeter", "greeter");
    assert!(
        GUIDE.contains(shown.trim_end()),
        "docs/guide.md does not show the current {name}; copy it there"
    );
}

#[test]
fn the_guide_shows_this_crates_code() {
    assert_in_guide(
        "proto/greeter.proto",
        include_str!("../proto/greeter.proto"),
    );
    assert_in_guide("build.rs", include_str!("../build.rs"));
    assert_in_guide("src/lib.rs", include_str!("../src/lib.rs"));
    assert_in_guide(
        "src/bin/greeter-plugin.rs",
        include_str!("../src/bin/greeter-plugin.rs"),
    );
    assert_in_guide(
        "src/bin/greeter-host.rs",
        include_str!("../src/bin/greeter-host.rs"),
    );
}
