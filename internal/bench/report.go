package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteJSON writes the result as indented JSON.
func (r *Result) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteTable writes the result as a human-readable table.
func (r *Result) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	p := func(format string, args ...any) { fmt.Fprintf(tw, format+"\n", args...) }
	p("scenario\t%s", r.Scenario)
	p("machine\t%s", r.Machine)
	if r.Server != "" {
		p("server\t%s", r.Server)
	}
	p("clients\t%d in %d process(es), connected in %.1f s", r.Clients, r.Procs, r.ConnectSeconds)
	if r.Rooms > 0 {
		p("rooms\t%d x %d members", r.Rooms, r.Members)
	}
	tw.Flush()
	if len(r.Steps) > 0 && r.Scenario == "floor" {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "offered del/s\twritten\tdeliveries/s\tnot yet read\tp50 ms\tp99 ms\tp99.9 ms\tmax ms\twriter CPU s\twriter s/1k del\treader CPU s\treader s/1k del\t")
		for _, s := range r.Steps {
			fmt.Fprintf(tw, "%.0f\t%d\t%.0f\t%d\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.4f\t%.2f\t%.4f\t\n",
				s.OfferedPerSec, s.Sent, s.DeliveriesPerSec, s.Backlog,
				s.Latency.P50MS, s.Latency.P99MS, s.Latency.P999MS, s.Latency.MaxMS,
				s.ServerCPUSeconds, s.CPUPer1k, s.LoadCPUSeconds, s.LoadCPUPer1k)
		}
		tw.Flush()
	} else if len(r.Steps) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "offered msg/s\tsent\tacks/s\tdeliveries/s\tbacklog\tp50 ms\tp99 ms\tp99.9 ms\tmax ms\tack p50 ms\tack p99 ms\tsrv CPU s\tCPU s/1k del\t")
		for _, s := range r.Steps {
			fmt.Fprintf(tw, "%.0f\t%d\t%.0f\t%.0f\t%d\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%s\t%s\t\n",
				s.OfferedPerSec, s.Sent, s.AcksPerSec, s.DeliveriesPerSec, s.Backlog,
				s.Latency.P50MS, s.Latency.P99MS, s.Latency.P999MS, s.Latency.MaxMS,
				s.AckLatency.P50MS, s.AckLatency.P99MS,
				orDash(s.ServerCPUSeconds, "%.2f"), orDash(s.CPUPer1k, "%.4f"))
		}
		tw.Flush()
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if r.ServerRSSAfterBytes > 0 {
		p("server RSS\t%.1f MiB before, %.1f MiB with %d connections", mib(r.ServerRSSBeforeBytes), mib(r.ServerRSSAfterBytes), r.Clients)
		p("RSS per connection\t%.1f KiB", r.RSSPerConnBytes/1024)
	}
	if s := r.Storm; s != nil {
		p("storm\t%s: server down to ready %.2f s", s.Mode, s.DownSeconds)
		p("resumed\t%d of %d, the last %.2f s after ready (p50 %.2f s, p99 %.2f s)", s.Resumed, s.Of, s.AllResumedAfter, s.ResumeP50, s.ResumeP99)
		p("replayed\t%d events, %d resyncs, %d reconnects, %d sends resent", s.Replayed, s.Resyncs, s.Reconnects, s.Resent)
		p("dials\t%d (since the start), %d refused; %d retries answered by another client's refused dial", s.Dials, s.Refused, s.SharedRefusals)
		if s.ServerCPUSeconds > 0 || s.LoadCPUSeconds > 0 {
			p("storm CPU\tserver %s s (%s us/client), load workers %s s (%s us/client), outage to last resume",
				orDash(s.ServerCPUSeconds, "%.2f"), orDash(s.ServerCPUPerConn, "%.0f"),
				orDash(s.LoadCPUSeconds, "%.2f"), orDash(s.LoadCPUPerConn, "%.0f"))
		}
	}
	if s := r.Resume; s != nil {
		p("resume\t%d runs: p50 %.2f ms, p99 %.2f ms, max %.2f ms (hello to resumed)", s.Count, s.P50MS, s.P99MS, s.MaxMS)
	}
	if r.Scenario == "floor" {
		p("frames\t%d written, %d never read", r.TotalSent, r.Lost)
	} else {
		p("messages\t%d sent, %d acknowledged, %d unacknowledged, %d refused", r.TotalSent, r.TotalAcked, r.Unacked, r.SendErrors)
		p("losses\t%d lost, %d duplicated, %d unexpected", r.Lost, r.Duplicated, r.Unexpected)
	}
	if r.Receipts > 0 {
		p("receipts\t%d delivered reports (at most one per client per second)", r.Receipts)
	}
	if r.Failed > 0 || r.ProtoErrors > 0 {
		p("failures\t%d clients failed, %d unreadable frames", r.Failed, r.ProtoErrors)
	}
	if len(r.Errors) > 0 {
		p("errors\t%s", strings.Join(r.Errors, "; "))
	}
	p("load tool RSS\t%.1f MiB", mib(r.LoadRSS))
	return tw.Flush()
}

// OK reports whether the run lost, duplicated or failed nothing.
func (r *Result) OK() bool {
	return r.Lost == 0 && r.Duplicated == 0 && r.Unexpected == 0 && r.Failed == 0 && r.Unacked == 0
}

func orDash(v float64, format string) string {
	if v == 0 {
		return "-"
	}
	return fmt.Sprintf(format, v)
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
