// Command schemagen writes the JSON Schema files of the event contract,
// derived from the Go types, into a directory (pkg/events/schema).
package main

import (
	"flag"
	"log"
	"os"
	"path/filepath"

	"github.com/orchestry/orchestry/pkg/events"
)

func main() {
	out := flag.String("out", "schema", "directory to write the schema files into")
	flag.Parse()
	files, err := events.Schemas()
	if err != nil {
		log.Fatal(err)
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(*out, name), b, 0o644); err != nil {
			log.Fatal(err)
		}
	}
}
