package main

import "fmt"

// headerField is one request header the bench sends: a key and its value.
type headerField struct{ key, value string }

// benchHeaders returns n small request headers, the kind a service sends
// on every call: first a W3C trace context, a tenant and a request ID,
// then numbered ones. Keys are in canonical form. The values stay the
// same from request to request: the bench measures what carrying headers
// costs, not what making them does.
func benchHeaders(n int) []headerField {
	common := []headerField{
		{"Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
		{"Tenant", "acme-prod"},
		{"Request-Id", "7f3c2b1e-9d4a-4c1f-8e2b-5a6d7c8e9f01"},
	}
	fields := make([]headerField, 0, n)
	for i := range n {
		if i < len(common) {
			fields = append(fields, common[i])
			continue
		}
		fields = append(fields, headerField{fmt.Sprintf("X-Bench-%d", i+1), "value"})
	}
	return fields
}
