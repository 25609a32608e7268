// Command gen writes routing's OpenAPI document (services/routing/api's
// openapi.json), derived from the Go types by package openapi.
package main

import (
	"flag"
	"log"
	"os"

	"github.com/orchestry/orchestry/services/routing/api/internal/openapi"
)

func main() {
	out := flag.String("out", "openapi.json", "file to write the document to")
	flag.Parse()
	b, err := openapi.Document()
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(*out, b, 0o644); err != nil {
		log.Fatal(err)
	}
}
