module github.com/orchestry/orchestry/services/metrics

go 1.26
