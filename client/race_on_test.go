//go:build race

package client_test

// raceOn: under the race detector the server's pure-Go SQLite runs several
// times slower, and on the shared 2-core machine TestPromise did not finish
// in 2 minutes (it stays correct, only slow), so it runs under -race only
// with PARLEY_PROMISE_RACE=1.
const raceOn = true
