//! Links the bench plugin with packed relative relocations (`DT_RELR`), as
//! docs/guide.md suggests for plugin executables on glibc 2.36 or later:
//! a position-independent Rust executable carries some 250 KB of
//! relocation entries that the dynamic loader reads (and so keeps
//! resident) at every start; packed, they take a few KB.

fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" {
        println!("cargo:rustc-link-arg-bin=kv-bench-plugin=-Wl,-z,pack-relative-relocs");
    }
}
