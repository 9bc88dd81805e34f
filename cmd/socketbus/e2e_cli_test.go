//go:build unix

package main

import (
	"os/exec"
	"runtime"
	"strings"
	"testing"
)

// TestVersion checks "socketbus version" and "socketbus --version" print
// the module version, commit and Go version the binary was built with, as
// "go version -m" reads them from the binary.
func TestVersion(t *testing.T) {
	bin := buildBinary(t)
	out, err := exec.Command("go", "version", "-m", bin).Output()
	if err != nil {
		t.Fatalf("go version -m: %v", err)
	}
	wantVersion, wantCommit := "(devel)", "unknown"
	for l := range strings.Lines(string(out)) {
		f := strings.Fields(l)
		switch {
		case len(f) >= 3 && f[0] == "mod":
			wantVersion = f[2]
		case len(f) == 2 && f[0] == "build" && strings.HasPrefix(f[1], "vcs.revision="):
			wantCommit = strings.TrimPrefix(f[1], "vcs.revision=")
		}
	}
	res := runCmd(t, bin, nil, "", "version")
	if res.code != 0 || res.stderr != "" {
		t.Fatalf("version: exit %d, stderr %q; want 0 and nothing", res.code, res.stderr)
	}
	for _, want := range []string{"socketbus " + wantVersion + "\n", "commit    " + wantCommit, "go        " + runtime.Version()} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("version printed %q, want it to contain %q", res.stdout, want)
		}
	}
	for _, args := range [][]string{{"--version"}, {"-v"}} {
		flag := runCmd(t, bin, nil, "", args...)
		if flag.code != 0 || flag.stdout != res.stdout {
			t.Errorf("%s: exit %d, stdout %q; want 0 and what version prints, %q", args[0], flag.code, flag.stdout, res.stdout)
		}
	}
}

// TestVersionString checks what version prints for a binary with and
// without VCS information.
func TestVersionString(t *testing.T) {
	b := buildInfo{version: "v1.2.3", revision: "abc123", modified: true, goVer: "go1.99"}
	for _, want := range []string{"socketbus v1.2.3\n", "commit    abc123 (modified)\n", "go        go1.99 "} {
		if got := b.String(); !strings.Contains(got, want) {
			t.Errorf("String() = %q, want it to contain %q", got, want)
		}
	}
	b = buildInfo{version: "(devel)", goVer: "go1.99"}
	if got := b.String(); !strings.Contains(got, "socketbus (devel)\n") || !strings.Contains(got, "commit    unknown") {
		t.Errorf("String() = %q, want (devel) and an unknown commit", got)
	}
}

// TestHelpUnknownTopic checks "socketbus help nosuch" is a usage error,
// and help for a real topic still succeeds.
func TestHelpUnknownTopic(t *testing.T) {
	bin := buildBinary(t)
	for _, args := range [][]string{{"help", "nosuch"}, {"help", "send", "nosuch"}} {
		res := runCmd(t, bin, nil, "", args...)
		checkFailure(t, res, exitUsage, "no help topic")
		if res.stdout != "" {
			t.Errorf("%v wrote %q to stdout, want nothing", args, abbreviate(res.stdout))
		}
	}
	res := runCmd(t, bin, nil, "", "help", "send")
	if res.code != 0 || !strings.Contains(res.stdout, "socketbus send [flags]") {
		t.Errorf("help send: exit %d, stdout %q; want 0 and send's usage", res.code, abbreviate(res.stdout))
	}
}
