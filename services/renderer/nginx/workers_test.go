package nginx

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestAcceptingWorkers(t *testing.T) {
	procfs := t.TempDir()
	proc := func(pid, stat, cmdline string) {
		dir := filepath.Join(procfs, pid)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "stat"), []byte(stat), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "cmdline"), []byte(cmdline), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	proc("100", "100 (nginx) S 1 100 100 0", "nginx: master process nginx -p /x\x00")
	proc("101", "101 (nginx) S 100 100 100 0", "nginx: worker process\x00\x00\x00")
	proc("102", "102 (nginx) S 100 100 100 0", "nginx: worker process is shutting down\x00")
	proc("103", "103 (nginx) S 100 100 100 0", "nginx: cache manager process\x00")
	proc("104", "104 (odd) name)) S 100 100 100 0", "nginx: worker process")
	proc("200", "200 (nginx) S 999 200 200 0", "nginx: worker process\x00")
	if err := os.MkdirAll(filepath.Join(procfs, "self"), 0o755); err != nil {
		t.Fatal(err)
	}
	got, ok := acceptingWorkers(procfs, 100)
	slices.Sort(got)
	if !ok || !slices.Equal(got, []int{101, 104}) {
		t.Fatalf("accepting workers = %v %v, want [101 104]", got, ok)
	}
	if _, ok := acceptingWorkers(filepath.Join(procfs, "missing"), 100); ok {
		t.Fatal("a missing procfs reported ok")
	}
}
