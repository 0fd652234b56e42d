// Command terraform-provider-localfs is the Go reference for the Rust example
// provider of the same name (crates/tfplugin/examples/terraform-provider-localfs):
// the same schema and behaviour on hashicorp/terraform-plugin-go's low-level
// tfprotov6 server, so that `cargo xtask tofu` can run one OpenTofu scenario
// against both and compare them.
//
//   - resource localfs_file (path, content; computed id, sha256): a local file;
//   - data source localfs_file: reads a file;
//   - functions provider::localfs::sha256(string) and basename(string).
package main

import (
	"log"

	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6/tf6server"
)

func main() {
	err := tf6server.Serve("registry.opentofu.org/example/localfs", func() tfprotov6.ProviderServer {
		return &provider{}
	})
	if err != nil {
		log.Fatal(err)
	}
}
