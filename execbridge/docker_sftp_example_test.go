package execbridge_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"

	"github.com/moby/moby/client"

	"github.com/dockssh/dockssh/execbridge"
	"github.com/dockssh/dockssh/execbridge/sftphelper"
)

// Serve SFTP into containers with or without an sftp-server: this
// program is its own helper (built with CGO_ENABLED=0), so main hands it
// over to sftphelper.Main first.
func ExampleDockerBackend_Subsystem() {
	sftphelper.Main() // serves SFTP and exits when started as the helper

	docker, err := client.New(client.FromEnv)
	if err != nil {
		log.Fatal(err)
	}
	defer docker.Close()
	self, err := os.Executable()
	if err != nil {
		log.Fatal(err)
	}
	backend := execbridge.NewDockerBackend(docker, &execbridge.DockerConfig{SFTPHelper: self})

	// What a session runs for "subsystem sftp" in web1, as user app.
	argv, err := backend.Subsystem(context.Background(), execbridge.Target{Name: "web1"}, "sftp", "app")
	var se *execbridge.TargetError
	switch {
	case errors.As(err, &se):
		fmt.Println("no SFTP in web1:", se.Reason)
	case err != nil:
		log.Fatal(err)
	default:
		fmt.Println(argv) // [/usr/lib/openssh/sftp-server -d %d], or [/.dockssh-sftp-... --dockssh-sftp-helper-v1]
	}
}

// Tell a user of legacy scp (scp -O) that the container has no scp,
// rather than let its shell say "scp: not found".
func ExampleDockerBackend_LookPath() {
	docker, err := client.New(client.FromEnv)
	if err != nil {
		log.Fatal(err)
	}
	defer docker.Close()
	backend := execbridge.NewDockerBackend(docker, nil)
	_, err = backend.LookPath(context.Background(), execbridge.Target{Name: "web1"}, "scp")
	if errors.Is(err, execbridge.ErrProgramNotFound) {
		fmt.Println("web1 has no scp: use scp without -O, which speaks SFTP")
	}
}
