package monitoring

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// exported returns the names of the metric families a Metrics describes,
// with the series names of its histograms.
func exported(t *testing.T) map[string]bool {
	t.Helper()
	m := New(SourceFunc(func() Status { return Status{} }), nil)
	ch := make(chan *prometheus.Desc, 64)
	m.Describe(ch)
	close(ch)
	name := regexp.MustCompile(`fqName: "([a-z_]+)"`)
	names := map[string]bool{}
	for d := range ch {
		n := name.FindStringSubmatch(d.String())
		if n == nil {
			t.Fatalf("no name in %s", d)
		}
		names[n[1]] = true
		if strings.HasSuffix(n[1], "_seconds") || strings.HasSuffix(n[1], "_events") {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				names[n[1]+s] = true
			}
		}
	}
	return names
}

var metricRef = regexp.MustCompile(`\bmtlog_audit_[a-z_]+`)

// exprs collects every "expr" string in a decoded JSON document.
func exprs(v any, out *[]string) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if s, ok := x.(string); ok && k == "expr" {
				*out = append(*out, s)
				continue
			}
			exprs(x, out)
		}
	case []any:
		for _, x := range v {
			exprs(x, out)
		}
	}
}

// TestDashboard: deploy/grafana/mtlog-audit.json parses, and every query
// names only metrics the sink exports (and names at least one).
func TestDashboard(t *testing.T) {
	data, err := os.ReadFile("../deploy/grafana/mtlog-audit.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash map[string]any
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("the dashboard is not JSON: %v", err)
	}
	var qs []string
	exprs(dash, &qs)
	if len(qs) < 10 {
		t.Fatalf("only %d queries in the dashboard", len(qs))
	}
	names := exported(t)
	used := map[string]bool{}
	for _, q := range qs {
		refs := metricRef.FindAllString(q, -1)
		if len(refs) == 0 {
			t.Errorf("query %q names no mtlog_audit metric", q)
		}
		for _, r := range refs {
			if !names[r] {
				t.Errorf("query %q: %s is not a metric the sink exports", q, r)
			}
			used[strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(r, "_bucket"), "_sum"), "_count")] = true
		}
	}
	for n := range names {
		if !strings.HasSuffix(n, "_bucket") && !strings.HasSuffix(n, "_sum") && !strings.HasSuffix(n, "_count") && !used[n] {
			t.Errorf("the dashboard shows no panel of %s", n)
		}
	}
}

// TestAlertRulesNameExportedMetrics: every metric the alert rules use is
// one the sink exports (promtool checks the syntax and the behaviour).
func TestAlertRulesNameExportedMetrics(t *testing.T) {
	data, err := os.ReadFile("../deploy/prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	names := exported(t)
	for _, r := range metricRef.FindAllString(string(data), -1) {
		if !names[r] {
			t.Errorf("alerts.yml: %s is not a metric the sink exports", r)
		}
	}
}
