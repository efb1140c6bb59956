package procs_test

import (
	"bufio"
	"fmt"
	"log"
	"time"

	"github.com/wsbridge/wsbridge/procs"
)

func ExampleStart() {
	p, err := procs.Start(procs.Spec{
		Path: "cat",
		Env:  []string{"PATH=/usr/bin:/bin"},
		Stderr: func(line []byte) {
			log.Printf("cat: %s", line)
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Stdout.Close()
	fmt.Fprintln(p.Stdin, "hello")
	p.Stdout.SetReadDeadline(time.Now().Add(time.Second))
	line, _ := bufio.NewReader(p.Stdout).ReadString('\n')
	fmt.Print(line)
	if err := p.Terminate(time.Second); err != nil {
		log.Print(err)
	}
	fmt.Println(p.Status())
}

func ExampleCGI_Environ() {
	env := procs.CGI{
		RemoteAddr: "192.0.2.7",
		Method:     "GET",
		URI:        "/chat?room=1",
		Query:      "room=1",
		Headers: [][2]string{
			{"Sec-WebSocket-Protocol", "chat"},
			{"Content_Type", "dropped: '_' in the name"},
			{"X-Tag", "a"},
			{"x-tag", "b"},
		},
	}.Environ(nil)
	for _, kv := range env {
		fmt.Println(kv)
	}
	// Output:
	// REMOTE_ADDR=192.0.2.7
	// REMOTE_PORT=
	// SERVER_NAME=
	// SERVER_PORT=
	// SERVER_PROTOCOL=
	// REQUEST_METHOD=GET
	// REQUEST_URI=/chat?room=1
	// SCRIPT_NAME=
	// PATH_INFO=
	// QUERY_STRING=room=1
	// GATEWAY_INTERFACE=CGI/1.1
	// SERVER_SOFTWARE=
	// UNIQUE_ID=
	// HTTP_SEC_WEBSOCKET_PROTOCOL=chat
	// HTTP_X_TAG=a, b
}
