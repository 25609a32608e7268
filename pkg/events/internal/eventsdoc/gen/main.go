// Command gen writes the event catalogue (docs/events.md) from package
// events.
package main

import (
	"flag"
	"log"
	"os"

	"github.com/orchestry/orchestry/pkg/events/internal/eventsdoc"
)

func main() {
	out := flag.String("out", "../../docs/events.md", "file to write the catalogue to")
	example := flag.String("example", "example_test.go", "pkg/events' example_test.go, whose ExamplePublish the guide shows")
	flag.Parse()
	src, err := os.ReadFile(*example)
	if err != nil {
		log.Fatal(err)
	}
	b, err := eventsdoc.Markdown(src)
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(*out, b, 0o644); err != nil {
		log.Fatal(err)
	}
}
