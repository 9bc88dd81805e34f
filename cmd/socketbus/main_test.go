package main

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"
)

// testDir holds what the tests share: the binary the end-to-end tests
// build once.
var testDir string

func TestMain(m *testing.M) {
	var err error
	testDir, err = os.MkdirTemp("", "socketbus-cmd-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		os.RemoveAll(testDir)
		os.Exit(code)
	}))
}
