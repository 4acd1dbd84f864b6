// Command remote-docker lists the containers of a remote Docker daemon and
// prints its version, over SSH, with the dialer package: aiodocker's basic
// example, in Go.
//
//	go run ./examples/remote-docker ssh://user@host
//	go run ./examples/remote-docker -accept-new ssh://user@host:2222/run/user/1000/docker.sock
//
// It reads ~/.ssh/config (or -F), checks the host key against
// ~/.ssh/known_hosts (strictly, unless -accept-new), and authenticates with
// the SSH agent and the usual identity files (or -i).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/moby/moby/client"

	"github.com/dockssh/dockssh/dialer"
	"github.com/dockssh/dockssh/examples/internal/sshflags"
)

func main() {
	ssh := sshflags.Register(flag.CommandLine, "i", "give up after this long")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: %s [flags] ssh://[user@]host[:port][/path/to/docker.sock]\n", os.Args[0])
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	cfg := ssh.Config()
	ctx, cancel := context.WithTimeout(context.Background(), ssh.Timeout)
	defer cancel()
	if err := run(ctx, flag.Arg(0), cfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(ctx context.Context, url string, cfg *dialer.Config) error {
	d, err := dialer.New(url, cfg)
	if err != nil {
		return err
	}
	defer d.Close()
	// The host in the URL is a placeholder: every connection goes to the
	// dialer's destination.
	cli, err := client.New(client.WithHost("http://docker"), client.WithDialContext(d.DialContext))
	if err != nil {
		return err
	}
	defer cli.Close()

	v, err := cli.ServerVersion(ctx, client.ServerVersionOptions{})
	if err != nil {
		return err
	}
	fmt.Printf("Docker Engine %s (API %s, %s/%s)\n", v.Version, v.APIVersion, v.Os, v.Arch)

	list, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true})
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "CONTAINER ID\tIMAGE\tSTATUS\tNAMES")
	for _, c := range list.Items {
		names := make([]string, len(c.Names))
		for i, n := range c.Names {
			names[i] = strings.TrimPrefix(n, "/")
		}
		fmt.Fprintf(w, "%.12s\t%s\t%s\t%s\n", c.ID, c.Image, c.Status, strings.Join(names, ","))
	}
	return w.Flush()
}
