package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// buildInfo is what "socketbus version" reports: the module version and VCS
// revision the binary was built from, and the Go that built it.
type buildInfo struct {
	version  string // the module version, or "(devel)"
	revision string // the VCS commit, or ""
	modified bool   // the work tree had changes the commit lacks
	goVer    string // runtime.Version()
}

// readBuildInfo reads the binary's build information. A binary built
// outside a module or a VCS checkout knows less: its version is "(devel)"
// and its revision empty.
func readBuildInfo() buildInfo {
	b := buildInfo{version: "(devel)", goVer: runtime.Version()}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return b
	}
	if v := info.Main.Version; v != "" {
		b.version = v
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			b.revision = s.Value
		case "vcs.modified":
			b.modified = s.Value == "true"
		}
	}
	return b
}

// String renders the information as "socketbus version" prints it.
func (b buildInfo) String() string {
	commit := "unknown (not built from a VCS checkout)"
	if b.revision != "" {
		commit = b.revision
		if b.modified {
			commit += " (modified)"
		}
	}
	var s strings.Builder
	fmt.Fprintf(&s, "socketbus %s\n", b.version)
	fmt.Fprintf(&s, "commit    %s\n", commit)
	fmt.Fprintf(&s, "go        %s %s/%s\n", b.goVer, runtime.GOOS, runtime.GOARCH)
	return s.String()
}

func newVersionCommand(s *streams) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit and Go version of this binary",
		Long: `Print the version of socketbus, the commit it was built from and the Go
that built it; --version prints the same. A binary built from a checkout
with changes not yet committed says "(modified)"; one built without module
or VCS information says "(devel)" and "unknown".`,
		Args: cobra.NoArgs,
		RunE: runE(func(*cobra.Command, []string) error {
			_, err := fmt.Fprint(s.out, readBuildInfo())
			return err
		}),
	}
}
