//! Builds what the scenario runs: the pinned OpenTofu (from the Go module
//! proxy, cached under target/tofu), the Rust example provider (release) and
//! the Go reference provider (peers/go).

use anyhow::{Context, Result, bail};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The OpenTofu release the scenario runs against.
pub(crate) const OPENTOFU_VERSION: &str = "v1.10.6";
/// Marks the build as the release, so `tofu version` prints no `-dev`.
const OPENTOFU_LDFLAGS: &str = "-X=github.com/opentofu/opentofu/version.dev=no";
const OPENTOFU_MODULE: &str = "github.com/opentofu/opentofu";
/// The provider binary name, the same for the Rust and the Go provider.
pub(crate) const PROVIDER_BIN: &str = "terraform-provider-localfs";

/// Paths of the built programs.
pub(crate) struct Built {
    pub(crate) tofu: PathBuf,
    /// Directories holding `terraform-provider-localfs`, for dev_overrides.
    pub(crate) rust_dir: PathBuf,
    pub(crate) go_dir: PathBuf,
}

fn output(cmd: &mut Command) -> Result<Output> {
    cmd.output().with_context(|| format!("running {cmd:?}"))
}

fn checked(cmd: &mut Command) -> Result<Output> {
    let out = output(cmd)?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim_end()
        );
    }
    Ok(out)
}

/// Fails plainly when Go is missing: OpenTofu and the Go provider need it.
fn require_go() -> Result<String> {
    match Command::new("go").arg("version").output() {
        Ok(out) if out.status.success() => {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        }
        Ok(out) => bail!(
            "`go version` failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(err) => bail!(
            "Go (the `go` command) is not installed or not on PATH ({err}): \
             cargo xtask tofu builds OpenTofu {OPENTOFU_VERSION} and the Go reference provider \
             from the Go module proxy; install Go >= 1.25 (peers/go/go.mod) and retry"
        ),
    }
}

/// The version line `tofu version` prints first, if the binary runs.
fn tofu_version(tofu: &Path) -> Option<String> {
    let out = Command::new(tofu).arg("version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().next().map(str::to_owned)
}

/// Builds OpenTofu once into `target/tofu/bin/tofu`; reuses it when it is
/// there and reports the pinned version.
fn build_opentofu(root: &Path) -> Result<PathBuf> {
    let out_dir = root.join("target/tofu");
    let tofu = out_dir.join("bin/tofu");
    let wanted = format!("OpenTofu {OPENTOFU_VERSION}");
    if tofu_version(&tofu).as_deref() == Some(wanted.as_str()) {
        eprintln!("tofu: using cached {} ({wanted})", tofu.display());
        return Ok(tofu);
    }
    eprintln!("tofu: downloading {OPENTOFU_MODULE}@{OPENTOFU_VERSION} from the Go module proxy");
    let module = format!("{OPENTOFU_MODULE}@{OPENTOFU_VERSION}");
    let out = output(Command::new("go").args(["mod", "download", "-json", &module]))?;
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let dir = match info.get("Dir").and_then(|d| d.as_str()) {
        Some(dir) if out.status.success() => PathBuf::from(dir),
        _ => bail!(
            "cannot download {module} from the Go module proxy (is GOPROXY reachable?): {}{}",
            String::from_utf8_lossy(&out.stderr).trim(),
            info.get("Error")
                .and_then(|e| e.as_str())
                .unwrap_or_default()
        ),
    };
    // The module cache is read-only and `go install pkg@version` refuses
    // modules with replace directives: build in a writable copy.
    let src = out_dir.join(format!("opentofu-{OPENTOFU_VERSION}"));
    if src.exists() {
        fs::remove_dir_all(&src).with_context(|| format!("removing {}", src.display()))?;
    }
    fs::create_dir_all(&out_dir)?;
    checked(Command::new("cp").arg("-R").arg(&dir).arg(&src))?;
    checked(Command::new("chmod").arg("-R").arg("u+w").arg(&src))?;
    eprintln!("tofu: building OpenTofu {OPENTOFU_VERSION} (a few minutes the first time)");
    checked(
        Command::new("go")
            .current_dir(&src)
            .env("GOFLAGS", "-buildvcs=false")
            .args(["build", "-ldflags", OPENTOFU_LDFLAGS])
            .arg("-o")
            .arg(&tofu)
            .arg("./cmd/tofu"),
    )?;
    match tofu_version(&tofu) {
        Some(v) if v == wanted => Ok(tofu),
        other => bail!(
            "built {} but it reports {other:?}, not {wanted:?}",
            tofu.display()
        ),
    }
}

/// Builds everything; fails plainly when Go or the module proxy is missing.
pub(crate) fn build_all(root: &Path) -> Result<Built> {
    let go = require_go()?;
    eprintln!("tofu: {go}");
    let tofu = build_opentofu(root)?;

    eprintln!("tofu: building the Rust provider (release example {PROVIDER_BIN})");
    checked(Command::new(env!("CARGO")).current_dir(root).args([
        "build",
        "--release",
        "--quiet",
        "-p",
        "rpcplugin-tfplugin",
        "--example",
        PROVIDER_BIN,
    ]))?;
    let rust_dir = root.join("target/tofu/rust");
    fs::create_dir_all(&rust_dir)?;
    let built = root.join("target/release/examples").join(PROVIDER_BIN);
    fs::copy(&built, rust_dir.join(PROVIDER_BIN))
        .with_context(|| format!("copying {}", built.display()))?;

    eprintln!("tofu: building the Go provider (peers/go, terraform-plugin-go)");
    let go_dir = root.join("target/tofu/go");
    fs::create_dir_all(&go_dir)?;
    checked(
        Command::new("go")
            .current_dir(root.join("peers/go"))
            .args(["build", "-trimpath", "-o"])
            .arg(go_dir.join(PROVIDER_BIN))
            .arg(format!("./cmd/{PROVIDER_BIN}")),
    )?;
    Ok(Built {
        tofu,
        rust_dir,
        go_dir,
    })
}
