module github.com/orchestry/orchestry/services/certs

go 1.26
