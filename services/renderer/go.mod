module github.com/orchestry/orchestry/services/renderer

go 1.26
