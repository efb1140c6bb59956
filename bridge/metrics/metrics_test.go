package metrics

import (
	"sync"
	"testing"
)

func TestTextGolden(t *testing.T) {
	var open Counter
	open.Add(3)
	open.Inc()
	var x Text
	x.Family("wsbridge_connections_total", "WebSocket sessions begun.", TypeCounter)
	x.Sample("wsbridge_connections_total", open.Load(), "endpoint", "/chat")
	x.Sample("wsbridge_connections_total", 0, "endpoint", `a"b\c`+"\n")
	x.Family("wsbridge_children_running", "Programs running,\nnow. A back\\slash.", TypeGauge)
	x.Gauge("wsbridge_children_running", -1)
	x.Family("wsbridge_closed_total", "Sessions ended.", TypeCounter)
	x.Sample("wsbridge_closed_total", 18446744073709551615, "endpoint", "*", "code", "1001")
	const want = `# HELP wsbridge_connections_total WebSocket sessions begun.
# TYPE wsbridge_connections_total counter
wsbridge_connections_total{endpoint="/chat"} 4
wsbridge_connections_total{endpoint="a\"b\\c\n"} 0
# HELP wsbridge_children_running Programs running,\nnow. A back\\slash.
# TYPE wsbridge_children_running gauge
wsbridge_children_running -1
# HELP wsbridge_closed_total Sessions ended.
# TYPE wsbridge_closed_total counter
wsbridge_closed_total{endpoint="*",code="1001"} 18446744073709551615
`
	if got := string(x.Bytes()); got != want {
		t.Errorf("exposition:\n%s\nwant:\n%s", got, want)
	}
}

func TestTextRefusesBadNames(t *testing.T) {
	for _, f := range []func(*Text){
		func(x *Text) { x.Family("1abc", "", TypeCounter) },
		func(x *Text) { x.Family("a-b", "", TypeCounter) },
		func(x *Text) { x.Sample("a", 1, "bad-label", "v") },
		func(x *Text) { x.Sample("a", 1, "__reserved", "v") },
		func(x *Text) {
			//lint:ignore SA5012 an odd list is what this case tests
			x.Sample("a", 1, "odd")
		},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Error("a bad name or label list did not panic")
				}
			}()
			f(new(Text))
		}()
	}
}

func TestCounterConcurrent(t *testing.T) {
	var c Counter
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				c.Inc()
			}
		})
	}
	wg.Wait()
	if c.Load() != 8000 {
		t.Errorf("counter = %d, want 8000", c.Load())
	}
}

func TestCounterAllocatesNothing(t *testing.T) {
	var c Counter
	if n := testing.AllocsPerRun(100, func() { c.Inc(); c.Add(2) }); n != 0 {
		t.Errorf("Counter allocates %v times a call, want 0", n)
	}
}
