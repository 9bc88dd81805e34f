package cluster

import "time"

// Crash stops the node's embedded nats-server at once, as if the process
// had been killed: no bye reaches the other nodes, which find out from the
// missing heartbeats.
func (c *Cluster) Crash() {
	if c.ns != nil {
		c.ns.Shutdown()
	}
}

// ClientURL is the embedded nats-server's client URL.
func (c *Cluster) ClientURL() string { return c.ns.ClientURL() }

// Heard makes the node take announcement ("<node> <incarnation>") as if
// it had come on the bus's node subject: a phantom node, for tests.
func (c *Cluster) Heard(announcement string) { c.heard(announcement) }

// WithDeadAfter returns cfg with a node dropped after d of silence instead
// of three heartbeats.
func WithDeadAfter(cfg Config, d time.Duration) Config {
	cfg.deadAfter = d
	return cfg
}
