module github.com/orchestry/orchestry/services/routing

go 1.26
