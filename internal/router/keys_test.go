package router_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/google/uuid"

	"github.com/socketbus/socketbus/internal/router"
	"github.com/socketbus/socketbus/internal/wire"
)

// TestClientKeys: a client ID joined with a key can be joined again, once
// its member has left, only with that key; one joined without a key can be
// joined again by anyone, as before keys.
func TestClientKeys(t *testing.T) {
	r := router.New(router.Config{DefaultTimeout: 60e9})
	ch, id, other := uuid.New(), uuid.New(), uuid.New()
	key := bytes.Repeat([]byte{1}, router.KeySize)
	wrong := bytes.Repeat([]byte{2}, router.KeySize)
	isConflict := func(err error) bool {
		var werr *wire.Error
		return errors.As(err, &werr) && werr.Code == wire.CodeConflict
	}

	m, err := r.JoinKeyed(id, ch, wire.Version2, key, &socketPeer{})
	if err != nil {
		t.Fatalf("first keyed join: %v", err)
	}
	m.Leave()
	for _, k := range [][]byte{nil, wrong} {
		if _, err := r.JoinKeyed(id, ch, wire.Version2, k, &socketPeer{}); !isConflict(err) {
			t.Fatalf("join of a departed keyed ID with key %x: got %v, want conflict", k, err)
		}
	}
	// The ID is the channel's: the same ID on another channel is free.
	if m2, err := r.JoinKeyed(id, other, wire.Version2, nil, &socketPeer{}); err != nil {
		t.Fatalf("the same ID on another channel: %v", err)
	} else {
		m2.Leave()
	}
	m, err = r.JoinKeyed(id, ch, wire.Version2, key, &socketPeer{})
	if err != nil {
		t.Fatalf("rejoin with the right key: %v", err)
	}
	m.Leave()

	// Without a key: anyone may rejoin with the ID.
	plain := uuid.New()
	m, err = r.JoinKeyed(plain, ch, wire.Version2, nil, &socketPeer{})
	if err != nil {
		t.Fatalf("join without a key: %v", err)
	}
	m.Leave()
	if m, err = r.JoinKeyed(plain, ch, wire.Version2, wrong, &socketPeer{}); err != nil {
		t.Fatalf("rejoin of an unkeyed ID: %v", err)
	}
	m.Leave()
}
