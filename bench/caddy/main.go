// Command caddy is Caddy v2 with its standard modules, built from its Go
// module for the data-plane benchmark (bench/dataplane), which runs it as a
// peer of NGINX on the same backends. It lives in a module of its own so
// that no service module depends on Caddy.
//
//	go build -o bin/caddy ./bench/caddy
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

func main() {
	caddycmd.Main()
}
