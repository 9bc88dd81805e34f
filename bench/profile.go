package main

import (
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
)

// startProfiles starts the profiles the flags ask for and returns a
// function that stops them and writes them out.
func startProfiles(o options) (stop func() error, err error) {
	var cpu *os.File
	if o.cpuProfile != "" {
		if cpu, err = os.Create(o.cpuProfile); err != nil {
			return nil, fmt.Errorf("cpu profile: %w", err)
		}
		if err := pprof.StartCPUProfile(cpu); err != nil {
			cpu.Close()
			return nil, fmt.Errorf("cpu profile: %w", err)
		}
	}
	if o.blockProfile != "" {
		runtime.SetBlockProfileRate(1)
	}
	var tr *os.File
	if o.trace != "" {
		if tr, err = os.Create(o.trace); err == nil {
			err = trace.Start(tr)
		}
		if err != nil {
			if cpu != nil {
				pprof.StopCPUProfile()
				cpu.Close()
			}
			if tr != nil {
				tr.Close()
			}
			return nil, fmt.Errorf("trace: %w", err)
		}
	}
	return func() error {
		var first error
		keep := func(err error) {
			if err != nil && first == nil {
				first = err
			}
		}
		if cpu != nil {
			pprof.StopCPUProfile()
			keep(cpu.Close())
		}
		if tr != nil {
			trace.Stop()
			keep(tr.Close())
		}
		if o.memProfile != "" {
			keep(writeProfile("allocs", o.memProfile))
		}
		if o.blockProfile != "" {
			keep(writeProfile("block", o.blockProfile))
		}
		return first
	}, nil
}

// writeProfile writes the named runtime profile to path.
func writeProfile(name, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("%s profile: %w", name, err)
	}
	err = pprof.Lookup(name).WriteTo(f, 0)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("%s profile: %w", name, err)
	}
	return nil
}
