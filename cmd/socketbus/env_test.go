package main

import (
	"errors"
	"testing"

	"github.com/spf13/pflag"
)

func TestApplyEnv(t *testing.T) {
	env := map[string]string{
		"SOCKETBUS_ADDR":              "0.0.0.0:1",
		"SOCKETBUS_MAX_MESSAGE_BYTES": "16MiB",
		"SOCKETBUS_LOG_LEVEL":         "debug",
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }

	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:7411", "")
	level := fs.String("log-level", "info", "")
	format := fs.String("log-format", "text", "")
	var max byteSize
	fs.Var(&max, "max-message-bytes", "")
	bindEnv(fs)
	if err := fs.Parse([]string{"--log-level", "warn"}); err != nil {
		t.Fatal(err)
	}
	if err := applyEnv(fs, lookup); err != nil {
		t.Fatalf("applyEnv: %v", err)
	}
	if *addr != "0.0.0.0:1" || max != 16<<20 {
		t.Errorf("from the environment: addr %q, max %d; want 0.0.0.0:1 and %d", *addr, max, 16<<20)
	}
	if *level != "warn" {
		t.Errorf("log-level %q: the command line should win over the environment", *level)
	}
	if *format != "text" {
		t.Errorf("log-format %q, want the default", *format)
	}
	if u := fs.Lookup("addr").Usage; u != " [$SOCKETBUS_ADDR]" {
		t.Errorf("usage %q does not name the variable", u)
	}

	env["SOCKETBUS_MAX_MESSAGE_BYTES"] = "lots"
	fs = pflag.NewFlagSet("serve", pflag.ContinueOnError)
	fs.Var(&max, "max-message-bytes", "")
	bindEnv(fs, "max-message-bytes")
	var usage *usageError
	if err := applyEnv(fs, lookup); !errors.As(err, &usage) {
		t.Errorf("applyEnv with a bad value = %v, want a usage error", err)
	}
}
