// Command helper is a minimal SFTP helper for tests: sftphelper.Main and
// nothing else, built statically with CGO_ENABLED=0.
package main

import (
	"fmt"
	"os"

	"github.com/dockssh/dockssh/execbridge/sftphelper"
)

func main() {
	sftphelper.Main()
	fmt.Fprintf(os.Stderr, "usage: %s %s\n", os.Args[0], sftphelper.Arg)
	os.Exit(2)
}
