package main

import (
	"strings"

	"github.com/spf13/pflag"
)

// envAnnotation is the pflag annotation holding the environment variable
// that sets a flag.
const envAnnotation = "socketbus_env"

// envName returns the environment variable for a flag: SOCKETBUS_ and the
// flag's name in capitals with dashes as underscores (--max-message-bytes
// is SOCKETBUS_MAX_MESSAGE_BYTES).
func envName(flag string) string {
	return "SOCKETBUS_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// bindEnv lets the environment set the named flags of fs, or every flag
// when names is empty, and says so in their help.
func bindEnv(fs *pflag.FlagSet, names ...string) {
	bind := func(f *pflag.Flag) {
		if f.Name == "help" {
			return
		}
		v := envName(f.Name)
		f.Usage += " [$" + v + "]"
		// SetAnnotation fails only for unknown flags, and f is known.
		_ = fs.SetAnnotation(f.Name, envAnnotation, []string{v})
	}
	if len(names) == 0 {
		fs.VisitAll(bind)
		return
	}
	for _, n := range names {
		if f := fs.Lookup(n); f != nil {
			bind(f)
		}
	}
}

// applyEnv sets every bound flag of fs that the command line left alone
// from its environment variable, if that is set: the command line wins
// over the environment, which wins over the default. lookup is
// os.LookupEnv outside tests.
func applyEnv(fs *pflag.FlagSet, lookup func(string) (string, bool)) error {
	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		vars := f.Annotations[envAnnotation]
		if err != nil || f.Changed || len(vars) == 0 {
			return
		}
		v, ok := lookup(vars[0])
		if !ok {
			return
		}
		if serr := fs.Set(f.Name, v); serr != nil {
			err = usagef("invalid %s=%q: %w", vars[0], v, serr)
		}
	})
	return err
}
