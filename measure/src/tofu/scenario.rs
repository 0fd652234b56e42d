//! The OpenTofu scenario, run once per provider build in a fresh directory:
//! validate, plan, apply, a plan with no changes, an update, provider
//! functions in outputs, import, configuration errors, destroy. Every step
//! checks its exit code and output; each command's trace log is parsed for
//! provider launches and for warnings or errors the provider logged.

use super::trace::{self, Launch};
use anyhow::{Context, Result, bail};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// SHA-256 (hex) of the contents the scenario writes, computed independently.
const V1: (&str, &str) = (
    "first version",
    "80d8f975e768eecac59d22a788bf8e811e51ca85e309ee47f1e821e3e58280f2",
);
const V2: (&str, &str) = (
    "second version",
    "ebfa015966891a400bf353bdf8ef30444a71b1751e2808ef6c014db34d168d85",
);
const IMPORTED: &str = "imported";

/// No single OpenTofu command may take longer than this.
const COMMAND_DEADLINE: Duration = Duration::from_secs(120);

/// One OpenTofu command of the scenario.
#[derive(Debug)]
pub(crate) struct Step {
    pub(crate) name: &'static str,
    pub(crate) ms: f64,
    pub(crate) launches: Vec<Launch>,
    /// Provider log lines at WARN or ERROR.
    pub(crate) problems: Vec<String>,
}

struct Runner<'a> {
    tofu: &'a Path,
    dir: PathBuf,
    cli_config: PathBuf,
    logs: PathBuf,
    steps: Vec<Step>,
}

const HEADER: &str = r#"terraform {
  required_providers {
    localfs = { source = "example/localfs" }
  }
}
"#;

fn config(dir: &Path, content: &str, with_import: bool) -> String {
    let dir = dir.display();
    let mut hcl = format!(
        r#"{HEADER}
resource "localfs_file" "a" {{
  path    = "{dir}/a.txt"
  content = "{content}"
}}

data "localfs_file" "a" {{
  path = localfs_file.a.path
}}

output "sha256" {{ value = localfs_file.a.sha256 }}
output "read_back" {{ value = data.localfs_file.a.content }}
output "fn_sha256" {{ value = provider::localfs::sha256(localfs_file.a.content) }}
output "fn_basename" {{ value = provider::localfs::basename(localfs_file.a.path) }}
"#
    );
    if with_import {
        hcl.push_str(&format!(
            "\nresource \"localfs_file\" \"b\" {{\n  path    = \"{dir}/b.txt\"\n  content = \"{IMPORTED}\"\n}}\n"
        ));
    }
    hcl
}

const BAD_CONFIG: &str = r#"
resource "localfs_file" "bad" {
  path    = "relative.txt"
  content = "x"
}

output "bad" { value = provider::localfs::basename("") }
"#;

impl Runner<'_> {
    /// Runs `tofu <args>` in `dir`, expecting exit code `code` and every
    /// string of `expect` in its output; returns the output.
    fn tofu(
        &mut self,
        name: &'static str,
        dir: &Path,
        args: &[&str],
        code: i32,
        expect: &[&str],
    ) -> Result<String> {
        let log = self.logs.join(format!("{name}.trace.log"));
        let out_path = self.logs.join(format!("{name}.out"));
        let out_file = fs::File::create(&out_path)?;
        let start = Instant::now();
        let mut child = Command::new(self.tofu)
            .current_dir(dir)
            .args(args)
            .arg("-no-color")
            .env("TF_CLI_CONFIG_FILE", &self.cli_config)
            .env("CHECKPOINT_DISABLE", "1")
            .env("TF_IN_AUTOMATION", "1")
            .env("TF_LOG", "trace")
            .env("TF_LOG_PATH", &log)
            .stdin(Stdio::null())
            .stdout(out_file.try_clone()?)
            .stderr(out_file)
            .spawn()
            .with_context(|| format!("starting {} {args:?}", self.tofu.display()))?;
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            if start.elapsed() > COMMAND_DEADLINE {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "step {name}: `tofu {}` still running after {COMMAND_DEADLINE:?}",
                    args.join(" ")
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let ms = start.elapsed().as_secs_f64() * 1000.0;
        let output = fs::read_to_string(&out_path)?;
        let trace_text = fs::read_to_string(&log).unwrap_or_default();
        let summary = trace::parse(
            &trace_text,
            &format!("provider.{}", super::build::PROVIDER_BIN),
        );
        let fail = |why: String| -> anyhow::Error {
            anyhow::anyhow!(
                "step {name}: `tofu {}` {why}\n--- output ---\n{output}",
                args.join(" ")
            )
        };
        if status.code() != Some(code) {
            return Err(fail(format!("exited with {status}, expected {code}")));
        }
        for want in expect {
            if !output.contains(want) {
                return Err(fail(format!("printed no {want:?}")));
            }
        }
        if summary.unfinished > 0 {
            return Err(fail(format!(
                "{} provider launches never completed their handshake",
                summary.unfinished
            )));
        }
        self.steps.push(Step {
            name,
            ms,
            launches: summary.launches,
            problems: summary.problems,
        });
        Ok(output)
    }

    fn write_config(&self, hcl: &str) -> Result<()> {
        fs::write(self.dir.join("main.tf"), hcl).context("writing main.tf")
    }
}

fn read_file(path: &Path) -> Result<String> {
    fs::read_to_string(path)
        .with_context(|| format!("the provider should have written {}", path.display()))
}

/// Runs the scenario in `dir` (created empty) with the provider found in
/// `provider_dir`; returns one entry per command.
pub(crate) fn run(tofu: &Path, provider_dir: &Path, dir: &Path) -> Result<Vec<Step>> {
    if dir.exists() {
        fs::remove_dir_all(dir)?;
    }
    let logs = dir.join("logs");
    let work = dir.join("work");
    let bad = dir.join("bad");
    for d in [&logs, &work, &bad] {
        fs::create_dir_all(d)?;
    }
    let cli_config = dir.join("cli.tfrc");
    fs::write(
        &cli_config,
        format!(
            "provider_installation {{\n  dev_overrides {{\n    \"example/localfs\" = \"{}\"\n  }}\n  direct {{}}\n}}\n",
            provider_dir.display()
        ),
    )?;
    let mut r = Runner {
        tofu,
        dir: work.clone(),
        cli_config,
        logs,
        steps: Vec::new(),
    };
    let a = work.join("a.txt");
    let b = work.join("b.txt");

    r.write_config(&config(&work, V1.0, false))?;
    r.tofu(
        "validate",
        &work,
        &["validate"],
        0,
        &["The configuration is valid"],
    )?;
    r.tofu(
        "plan",
        &work,
        &["plan", "-detailed-exitcode"],
        2,
        &[
            "Plan: 1 to add, 0 to change, 0 to destroy.",
            "(known after apply)",
            V1.1,
        ],
    )?;
    r.tofu(
        "apply",
        &work,
        &["apply", "-auto-approve"],
        0,
        &[
            "Apply complete! Resources: 1 added, 0 changed, 0 destroyed.",
            &format!("sha256 = \"{}\"", V1.1),
            &format!("fn_sha256 = \"{}\"", V1.1),
            &format!("read_back = \"{}\"", V1.0),
            "fn_basename = \"a.txt\"",
        ],
    )?;
    if read_file(&a)? != V1.0 {
        bail!("after apply, {} does not hold {:?}", a.display(), V1.0);
    }
    r.tofu(
        "plan-no-changes",
        &work,
        &["plan", "-detailed-exitcode"],
        0,
        &["No changes."],
    )?;

    r.write_config(&config(&work, V2.0, false))?;
    r.tofu(
        "plan-update",
        &work,
        &["plan", "-detailed-exitcode"],
        2,
        &[
            "Plan: 0 to add, 1 to change, 0 to destroy.",
            &format!("~ sha256  = \"{}\" -> (known after apply)", V1.1),
        ],
    )?;
    r.tofu(
        "apply-update",
        &work,
        &["apply", "-auto-approve"],
        0,
        &[
            "Apply complete! Resources: 0 added, 1 changed, 0 destroyed.",
            &format!("sha256 = \"{}\"", V2.1),
            &format!("fn_sha256 = \"{}\"", V2.1),
        ],
    )?;
    if read_file(&a)? != V2.0 {
        bail!("after the update, {} does not hold {:?}", a.display(), V2.0);
    }

    fs::write(&b, IMPORTED)?;
    r.write_config(&config(&work, V2.0, true))?;
    let b_id = b.display().to_string();
    r.tofu(
        "import",
        &work,
        &["import", "localfs_file.b", &b_id],
        0,
        &["Import successful!"],
    )?;
    r.tofu(
        "plan-after-import",
        &work,
        &["plan", "-detailed-exitcode"],
        0,
        &["No changes."],
    )?;

    fs::write(bad.join("main.tf"), format!("{HEADER}{BAD_CONFIG}"))?;
    r.tofu(
        "validate-error",
        &bad,
        &["validate"],
        1,
        &[
            "Error: Relative path",
            "path must be absolute, got \"relative.txt\"",
            "Error: Invalid function argument",
            "path must not be empty or only slashes",
        ],
    )?;

    r.tofu(
        "destroy",
        &work,
        &["destroy", "-auto-approve"],
        0,
        &["Destroy complete! Resources: 2 destroyed."],
    )?;
    for path in [&a, &b] {
        if path.exists() {
            bail!("destroy left {} behind", path.display());
        }
    }
    Ok(r.steps)
}
