package server

import (
	"testing"

	"github.com/socketbus/socketbus/internal/router"
	"github.com/socketbus/socketbus/internal/wire"
)

// The documented defaults are written out so that go doc shows numbers,
// not internal names; they must stay the internal packages' own.
func TestDefaultsAreTheInternalOnes(t *testing.T) {
	if DefaultMaxHeaderBytes != router.DefaultMaxHeaderBytes {
		t.Errorf("DefaultMaxHeaderBytes %d, router's %d", DefaultMaxHeaderBytes, router.DefaultMaxHeaderBytes)
	}
	if DefaultMaxGatherMembers != router.GatherMembers {
		t.Errorf("DefaultMaxGatherMembers %d, router's %d", DefaultMaxGatherMembers, router.GatherMembers)
	}
	if MaxHeaderBytesLimit != wire.MaxHeaderBlock {
		t.Errorf("MaxHeaderBytesLimit %d, wire's %d", MaxHeaderBytesLimit, wire.MaxHeaderBlock)
	}
}
