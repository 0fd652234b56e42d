//! `terraform-provider-localfs`: an OpenTofu/Terraform provider on rpcplugin.
//!
//! - resource `localfs_file` (`path`, `content`; computed `id`, `sha256`):
//!   creates, reads, updates, deletes and imports a local file;
//! - data source `localfs_file`: reads a file;
//! - functions `provider::localfs::sha256(string)` and
//!   `provider::localfs::basename(string)`.
//!
//! It speaks protocol 6 with Terraform's magic cookie, so OpenTofu launches
//! it like any provider. Use it without a registry through a CLI config
//! (`TF_CLI_CONFIG_FILE`):
//!
//! ```text
//! provider_installation {
//!   dev_overrides { "example/localfs" = "/dir/holding/terraform-provider-localfs" }
//!   direct {}
//! }
//! ```

mod file;
mod functions;
mod provider;
mod schema;

use rpcplugin::{PluginServer, Routes};
use rpcplugin_tfplugin::tfplugin6::provider_server::ProviderServer;
use rpcplugin_tfplugin::{MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE};
use std::process::ExitCode;

fn main() -> ExitCode {
    PluginServer::new(MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE)
        .logging(Some("localfs"))
        .version(6, |_ctx| {
            Routes::new(
                ProviderServer::new(provider::LocalFs)
                    .max_decoding_message_size(rpcplugin::MAX_MESSAGE_SIZE)
                    .max_encoding_message_size(rpcplugin::MAX_MESSAGE_SIZE),
            )
        })
        .run()
}
