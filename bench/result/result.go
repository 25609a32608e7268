// Package result is the JSON every benchmark scenario writes and the report
// generator (bench/report) reads: figures measured once per run or round,
// ratios computed pair by pair within the same run, latency samples for the
// distribution plots, and notes.
package result

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// File is one scenario's results.
type File struct {
	// Scenario is the short name (the file is <Scenario>.json).
	Scenario string `json:"scenario"`
	// Title is the report section's heading.
	Title string `json:"title"`
	// Summary says what the scenario measures, in a sentence or two.
	Summary string `json:"summary,omitempty"`
	// Mode is quick or full.
	Mode     string    `json:"mode"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	// Params are the scenario's settings, as shown in the report.
	Params []Param `json:"params,omitempty"`
	// Figures are the measured values, one per run.
	Figures []Figure `json:"figures,omitempty"`
	// Ratios compare a figure with its reference, run by run.
	Ratios []Ratio `json:"ratios,omitempty"`
	// Samples are latency distributions to plot.
	Samples []Sample `json:"samples,omitempty"`
	// Series are x/y lines to plot (e.g. a time against a size).
	Series []Series `json:"series,omitempty"`
	// Notes are sentences shown under the scenario's tables.
	Notes []string `json:"notes,omitempty"`
}

// Param is one setting of a scenario.
type Param struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Figure is one measured quantity, with a value per run (or round).
type Figure struct {
	// Name says what was measured, e.g. "render, 1000 apps".
	Name string `json:"name"`
	// Unit is ms, req/s, MiB, count, ...
	Unit string `json:"unit"`
	// Runs holds one value per run.
	Runs []float64 `json:"runs"`
	// Goal is the target, as text ("≤ 300 ms"), if any.
	Goal string `json:"goal,omitempty"`
}

// Ratio is a figure divided by its reference's, pair by pair, each pair
// measured in the same run or round.
type Ratio struct {
	Name string    `json:"name"`
	Runs []float64 `json:"runs"`
	Goal string    `json:"goal,omitempty"`
}

// Sample is one latency distribution; the samples sharing a Plot are drawn
// in one figure.
type Sample struct {
	Plot   string    `json:"plot"`
	Name   string    `json:"name"`
	Unit   string    `json:"unit"`
	Values []float64 `json:"values"`
}

// Series is one line of an x/y plot; the series sharing a Plot are drawn
// in one figure.
type Series struct {
	Plot   string    `json:"plot"`
	Name   string    `json:"name"`
	XLabel string    `json:"x_label"`
	YLabel string    `json:"y_label"`
	X      []float64 `json:"x"`
	Y      []float64 `json:"y"`
}

// Add appends a figure.
func (f *File) Add(name, unit, goal string, runs ...float64) {
	f.Figures = append(f.Figures, Figure{Name: name, Unit: unit, Runs: runs, Goal: goal})
}

// Param appends a setting.
func (f *File) Param(name string, value any) {
	f.Params = append(f.Params, Param{Name: name, Value: fmt.Sprint(value)})
}

// Note appends a sentence.
func (f *File) Note(format string, args ...any) {
	f.Notes = append(f.Notes, fmt.Sprintf(format, args...))
}

// Write writes f as dir/<Scenario>.json, stamping Finished.
func (f *File) Write(dir string) error {
	f.Finished = time.Now().UTC()
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("result: encode %s: %w", f.Scenario, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("result: %w", err)
	}
	p := filepath.Join(dir, f.Scenario+".json")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		return fmt.Errorf("result: write %s: %w", p, err)
	}
	return nil
}

// Read reads one result file.
func Read(path string) (File, error) {
	var f File
	b, err := os.ReadFile(path)
	if err != nil {
		return f, fmt.Errorf("result: %w", err)
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return f, fmt.Errorf("result: decode %s: %w", path, err)
	}
	return f, nil
}

// New starts a result file for a scenario.
func New(scenario, title, mode string) *File {
	return &File{Scenario: scenario, Title: title, Mode: mode, Started: time.Now().UTC()}
}
