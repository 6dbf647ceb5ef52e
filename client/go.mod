module github.com/odavl/sync/client

go 1.26.8
