module github.com/orchestry/orchestry/cmd/orchestry

go 1.26
