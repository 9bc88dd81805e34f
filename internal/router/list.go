package router

// link is embedded in the things a fifo holds: its fields are the fifo's.
type link[T any] struct {
	prev, next *T
	linked     bool // on a fifo now
}

func (l *link[T]) links() *link[T] { return l }

// node is a pointer to a T that embeds link[T].
type node[T any] interface {
	*T
	links() *link[T]
}

// fifo is an intrusive doubly linked queue: push at the tail, walk from the
// head, remove from anywhere in O(1), no allocation.
type fifo[T any, P node[T]] struct {
	head, tail *T
	n          int
}

func (l *fifo[T, P]) push(x *T) {
	lx := P(x).links()
	lx.prev, lx.next = l.tail, nil
	if l.tail != nil {
		P(l.tail).links().next = x
	} else {
		l.head = x
	}
	l.tail = x
	lx.linked = true
	l.n++
}

// pushFront puts x at the head of the queue.
func (l *fifo[T, P]) pushFront(x *T) {
	lx := P(x).links()
	lx.prev, lx.next = nil, l.head
	if l.head != nil {
		P(l.head).links().prev = x
	} else {
		l.tail = x
	}
	l.head = x
	lx.linked = true
	l.n++
}

// remove takes x off the queue; it does nothing if x is not on it.
func (l *fifo[T, P]) remove(x *T) {
	lx := P(x).links()
	if !lx.linked {
		return
	}
	if lx.prev != nil {
		P(lx.prev).links().next = lx.next
	} else {
		l.head = lx.next
	}
	if lx.next != nil {
		P(lx.next).links().prev = lx.prev
	} else {
		l.tail = lx.prev
	}
	lx.prev, lx.next, lx.linked = nil, nil, false
	l.n--
}

// requestList holds the requests waiting for a receiver, oldest first.
type requestList = fifo[request, *request]

// poll is one waiting Receive, or a run of a v2 member's push credit
// (pushed, with the zero ID): a Receive takes one request, a run one per
// unit, first come, first served.
type poll struct {
	link[poll]
	id     [16]byte
	m      *Member
	pushed bool
	// units is a run's length: the units of credit the member granted
	// one after another, with no other receiver waiting between them.
	units int
}

// pollList holds the Receives waiting for a request, oldest first.
type pollList = fifo[poll, *poll]
