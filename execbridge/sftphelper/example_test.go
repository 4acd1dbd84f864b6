package sftphelper_test

import (
	"fmt"
	"io"
	"log"

	"github.com/pkg/sftp"

	"github.com/dockssh/dockssh/execbridge/sftphelper"
)

// A helper program: it serves SFTP when execbridge starts it with
// sftphelper.Arg, and does its own work otherwise. Build it with
// CGO_ENABLED=0 and name it in execbridge.DockerConfig.SFTPHelper.
func ExampleMain() {
	sftphelper.Main() // does not return when started as the helper

	fmt.Println("started without", sftphelper.Arg)
	// Output: started without --dockssh-sftp-helper-v1
}

// Serve one SFTP session on a pair of pipes, as the helper does on its
// standard input and output.
func ExampleServe() {
	toServer, fromClient := io.Pipe()
	toClient, fromServer := io.Pipe()
	go sftphelper.Serve(toServer, fromServer, nil)

	c, err := sftp.NewClientPipe(toClient, fromClient)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	fi, err := c.Stat("/")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(fi.IsDir())
	// Output: true
}
