package execbridge_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"time"

	"github.com/moby/moby/client"

	"github.com/dockssh/dockssh/execbridge"
)

// Run a command in a container with the Docker backend alone, as `docker
// exec web1 uname -a` would, and report its exit status.
func ExampleNewDockerBackend() {
	docker, err := client.New(client.FromEnv)
	if err != nil {
		log.Fatal(err)
	}
	defer docker.Close()
	backend := execbridge.NewDockerBackend(docker, &execbridge.DockerConfig{KillGrace: 5 * time.Second})

	ctx := context.Background()
	target := execbridge.Target{Name: "web1"}
	shell, err := backend.Shell(ctx, target) // /bin/bash, or /bin/sh
	if err != nil {
		log.Fatal(err)
	}
	p, err := backend.Start(ctx, execbridge.ProcessSpec{Target: target, Argv: []string{shell, "-c", "uname -a"}})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close() // ends the process and its children if it still runs

	// stdout and stderr share one connection: read both at once.
	done := make(chan struct{})
	go func() {
		defer close(done)
		io.Copy(os.Stderr, p.Stderr())
	}()
	io.Copy(os.Stdout, p)
	<-done

	var ee *execbridge.ExitError
	switch err := p.Wait(ctx); {
	case err == nil:
		fmt.Println("exit status 0")
	case errors.As(err, &ee):
		fmt.Println("exit status", ee.Code, ee.Signal)
	default:
		log.Fatal(err)
	}
}
