package deploy

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
)

// TestCompose loads and normalizes ../docker-compose.yml with the Compose
// specification's reference loader, offline, and checks that every file
// it mounts or builds from exists, and the security settings of the app.
func TestCompose(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(root, "docker-compose.yml")
	project, err := loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  root,
		ConfigFiles: []types.ConfigFile{{Filename: file}},
		Environment: types.Mapping{},
	}, func(o *loader.Options) {
		o.SetProjectName("mtlog-audit", true)
		o.Profiles = []string{"*"}
	})
	if err != nil {
		t.Fatalf("loading %s: %v", file, err)
	}
	for _, want := range []string{"app", "minio", "minio-init", "prometheus", "grafana", "verify"} {
		if _, ok := project.Services[want]; !ok {
			t.Errorf("no service %s", want)
		}
	}
	mounted := map[string]string{} // target in a container -> source on the host
	for name, svc := range project.Services {
		if svc.Build != nil {
			if fi, err := os.Stat(svc.Build.Context); err != nil || !fi.IsDir() {
				t.Errorf("%s: build context %s: %v", name, svc.Build.Context, err)
			}
			dockerfile := svc.Build.Dockerfile
			if !filepath.IsAbs(dockerfile) {
				dockerfile = filepath.Join(svc.Build.Context, dockerfile)
			}
			b, err := os.ReadFile(dockerfile)
			if err != nil {
				t.Errorf("%s: %v", name, err)
			} else if tgt := svc.Build.Target; tgt != "" && !strings.Contains(string(b), " AS "+tgt+"\n") {
				t.Errorf("%s: %s has no stage %q", name, dockerfile, tgt)
			}
		}
		for _, v := range svc.Volumes {
			if v.Type != types.VolumeTypeBind {
				if _, ok := project.Volumes[v.Source]; !ok {
					t.Errorf("%s: volume %s is not declared", name, v.Source)
				}
				continue
			}
			if _, err := os.Stat(v.Source); err != nil {
				t.Errorf("%s: bind-mounted file: %v", name, err)
			}
			if !v.ReadOnly {
				t.Errorf("%s: %s is bind-mounted read-write", name, v.Source)
			}
			mounted[name+":"+v.Target] = v.Source
		}
	}
	// The Prometheus configuration names the rule file where it is mounted,
	// and the rules are the repository's.
	promConf, err := os.ReadFile(mounted["prometheus:/etc/prometheus/prometheus.yml"])
	if err != nil {
		t.Fatalf("the Prometheus configuration is not mounted: %v", err)
	}
	if !strings.Contains(string(promConf), "- /etc/prometheus/alerts.yml") || mounted["prometheus:/etc/prometheus/alerts.yml"] != filepath.Join(root, "deploy", "prometheus", "alerts.yml") {
		t.Errorf("Prometheus does not load deploy/prometheus/alerts.yml")
	}
	if !strings.Contains(string(promConf), `"app:8080"`) {
		t.Errorf("Prometheus does not scrape the app")
	}
	if mounted["grafana:/var/lib/grafana/dashboards/mtlog-audit.json"] != filepath.Join(root, "deploy", "grafana", "mtlog-audit.json") {
		t.Errorf("Grafana does not load deploy/grafana/mtlog-audit.json")
	}

	app := project.Services["app"]
	if !app.ReadOnly || len(app.CapDrop) != 1 || app.CapDrop[0] != "ALL" {
		t.Errorf("app: read_only %v, cap_drop %v: want a read-only root and every capability dropped", app.ReadOnly, app.CapDrop)
	}
	wal := app.Environment["AUDIT_WAL_DIR"]
	onVolume := false
	for _, v := range app.Volumes {
		if v.Type == types.VolumeTypeVolume && wal != nil && strings.HasPrefix(*wal, v.Target+"/") {
			onVolume = true
		}
	}
	if !onVolume {
		t.Errorf("app: AUDIT_WAL_DIR %v is not on a named volume", wal)
	}
	if ship := app.Environment["AUDIT_SHIP_URL"]; ship == nil || !strings.Contains(*ship, "endpoint=http://minio:9000") {
		t.Errorf("app: does not ship to MinIO: %v", ship)
	}
}
