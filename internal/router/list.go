package router

// requestList is an intrusive doubly linked FIFO of requests.
type requestList struct {
	head, tail *request
	n          int
}

func (l *requestList) push(r *request) {
	r.prev, r.next = l.tail, nil
	if l.tail != nil {
		l.tail.next = r
	} else {
		l.head = r
	}
	l.tail = r
	r.queued = true
	l.n++
}

func (l *requestList) remove(r *request) {
	if !r.queued {
		return
	}
	if r.prev != nil {
		r.prev.next = r.next
	} else {
		l.head = r.next
	}
	if r.next != nil {
		r.next.prev = r.prev
	} else {
		l.tail = r.prev
	}
	r.prev, r.next, r.queued = nil, nil, false
	l.n--
}

// poll is one waiting Receive.
type poll struct {
	id         [16]byte
	m          *Member
	prev, next *poll
	linked     bool
}

// pollList is an intrusive doubly linked FIFO of polls.
type pollList struct {
	head, tail *poll
	n          int
}

func (l *pollList) push(p *poll) {
	p.prev, p.next = l.tail, nil
	if l.tail != nil {
		l.tail.next = p
	} else {
		l.head = p
	}
	l.tail = p
	p.linked = true
	l.n++
}

func (l *pollList) remove(p *poll) {
	if !p.linked {
		return
	}
	if p.prev != nil {
		p.prev.next = p.next
	} else {
		l.head = p.next
	}
	if p.next != nil {
		p.next.prev = p.prev
	} else {
		l.tail = p.prev
	}
	p.prev, p.next, p.linked = nil, nil, false
	l.n--
}
