module github.com/orchestry/orchestry/services/health

go 1.26
