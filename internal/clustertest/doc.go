// Package clustertest holds the multi-node test: three Parley server nodes
// in one process, each with its own listener, store connection pool and
// broker connection, on one PostgreSQL database and one NATS server, with
// clients speaking protocol v1 over real WebSockets. It has no code of its
// own outside the test; see cluster_test.go.
//
// Run it with the services the test script provides:
//
//	PARLEY_TEST_POSTGRES=postgres://postgres@127.0.0.1:5432/test?sslmode=disable \
//	PARLEY_TEST_NATS=nats://127.0.0.1:4222 go test -race ./internal/clustertest/
//
// Without PARLEY_TEST_NATS it starts an embedded NATS server; without
// PARLEY_TEST_POSTGRES it skips (and fails under CI=true).
package clustertest
