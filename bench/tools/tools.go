//go:build tools

// Package tools pins the Go programs the benchmarks build: go.mod and go.sum fix vegeta and every
// dependency to verified versions, so `bench/install_vegeta.sh` builds the same binary everywhere.
package tools

import _ "github.com/tsenart/vegeta/v12"
