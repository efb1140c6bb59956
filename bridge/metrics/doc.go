// Package metrics counts what a daemon does, without allocating, and
// writes the counts in the Prometheus text exposition format, version
// 0.0.4: what a Prometheus server, or anything that reads its format,
// scrapes.
//
// It is not a registry: whoever owns the counters walks them and writes
// each family with a Text. The official client library would bring a
// registry, protobuf and a dozen packages into a binary for boards; the
// text format is a page of code.
package metrics
