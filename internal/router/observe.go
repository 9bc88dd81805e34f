package router

import "github.com/socketbus/socketbus/internal/wire"

// An Observer is told when a channel's count of local members or of local
// receivers waiting changes (ChannelCounts has the counts). It is called
// with the channel's lock held: it must not block nor call the router.
// Package cluster uses it to tell other nodes what this one has.
type Observer func(channel wire.ID)

// SetObserver sets the router's observer. Call it before the first join.
func (r *Router) SetObserver(o Observer) { r.observer = o }

// localMembersLocked counts the channel's members that are connections.
func (ch *channel) localMembersLocked() int { return len(ch.members) - ch.remoteN }

// noticeLocked tells the observer if the channel's counts changed since
// it was last told.
func (ch *channel) noticeLocked() {
	o := ch.r.observer
	if o == nil {
		return
	}
	members, ready := ch.localMembersLocked(), ch.readyLocked()
	if members == ch.seenMembers && ready == ch.seenReady {
		return
	}
	ch.seenMembers, ch.seenReady = members, ready
	o(ch.id)
}

// ChannelCounts returns a channel's local members (connections, not remote
// members) and its local receivers waiting (Receive polls and units of
// push credit).
func (r *Router) ChannelCounts(channel wire.ID) (members, ready int) {
	r.mu.Lock()
	ch := r.channels[channel]
	r.mu.Unlock()
	if ch == nil {
		return 0, 0
	}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	return ch.localMembersLocked(), ch.readyLocked()
}

// Channels returns the IDs of the channels that have a local member.
func (r *Router) Channels() []wire.ID {
	r.mu.Lock()
	chans := make([]*channel, 0, len(r.channels))
	for _, ch := range r.channels {
		chans = append(chans, ch)
	}
	r.mu.Unlock()
	ids := make([]wire.ID, 0, len(chans))
	for _, ch := range chans {
		ch.mu.Lock()
		if ch.localMembersLocked() > 0 {
			ids = append(ids, ch.id)
		}
		ch.mu.Unlock()
	}
	return ids
}
