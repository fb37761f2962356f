package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"
)

// kustomizeVersion is the pinned kustomize the Makefile builds into ../bin.
const kustomizeVersion = "v5.8.2"

// rendered returns the output of kustomize build deploy/kubernetes: the
// file KUSTOMIZE_OUTPUT names (make release-check renders it), or else
// the output of the pinned binary in ../bin. Without either the test
// fails: CI must run it.
func rendered(t *testing.T) []byte {
	t.Helper()
	if f := os.Getenv("KUSTOMIZE_OUTPUT"); f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	bin := filepath.Join("..", "bin", "kustomize-"+kustomizeVersion)
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("no kustomize output: run `make release-check` (it builds %s and renders deploy/kubernetes), or set KUSTOMIZE_OUTPUT to the output of `kustomize build deploy/kubernetes`", bin)
	}
	out, err := exec.Command(bin, "build", "kubernetes").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("kustomize build: %v\n%s", err, ee.Stderr)
		}
		t.Fatal(err)
	}
	return out
}

// decodeAll strictly decodes every object of a multi-document YAML stream
// into its k8s.io/api type: an unknown field, a wrong type or an unknown
// kind is an error.
func decodeAll(data []byte) (map[string]any, error) {
	objs := map[string]any{}
	for i, doc := range bytes.Split(data, []byte("\n---\n")) {
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		var meta struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		var obj any
		switch meta.APIVersion + "/" + meta.Kind {
		case "v1/Namespace":
			obj = &corev1.Namespace{}
		case "v1/ServiceAccount":
			obj = &corev1.ServiceAccount{}
		case "v1/Service":
			obj = &corev1.Service{}
		case "v1/ConfigMap":
			obj = &corev1.ConfigMap{}
		case "apps/v1/StatefulSet":
			obj = &appsv1.StatefulSet{}
		case "batch/v1/CronJob":
			obj = &batchv1.CronJob{}
		case "networking.k8s.io/v1/NetworkPolicy":
			obj = &networkingv1.NetworkPolicy{}
		case "policy/v1/PodDisruptionBudget":
			obj = &policyv1.PodDisruptionBudget{}
		default:
			return nil, fmt.Errorf("document %d: %s %s of kind %s/%s: add its type to decodeAll", i, meta.Kind, meta.Metadata.Name, meta.APIVersion, meta.Kind)
		}
		if err := yaml.UnmarshalStrict(doc, obj); err != nil {
			return nil, fmt.Errorf("%s %s: %w", meta.Kind, meta.Metadata.Name, err)
		}
		objs[meta.Kind+"/"+meta.Metadata.Name] = obj
	}
	return objs, nil
}

// TestDecodeRejectsUnknownFields: the strict decoding the manifest test
// relies on refuses a misspelt field.
func TestDecodeRejectsUnknownFields(t *testing.T) {
	_, err := decodeAll([]byte("apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: x\nspec:\n  replica: 1\n"))
	if err == nil || !strings.Contains(err.Error(), "replica") {
		t.Fatalf("a misspelt field: %v", err)
	}
}

// TestManifests decodes the rendered manifests strictly and checks the
// settings docs/deployment/kubernetes.md promises.
func TestManifests(t *testing.T) {
	objs, err := decodeAll(rendered(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Namespace/audit-example", "StatefulSet/audit-example", "CronJob/audit-verify",
		"NetworkPolicy/audit-example", "NetworkPolicy/audit-verify", "PodDisruptionBudget/audit-example", "Service/audit-example"} {
		if objs[want] == nil {
			t.Errorf("no %s in the output", want)
		}
	}

	ss, _ := objs["StatefulSet/audit-example"].(*appsv1.StatefulSet)
	if ss == nil {
		t.FailNow()
	}
	checkPod(t, "StatefulSet", &ss.Spec.Template.Spec)
	if len(ss.Spec.VolumeClaimTemplates) != 1 {
		t.Fatalf("StatefulSet: %d volume claim templates, want 1", len(ss.Spec.VolumeClaimTemplates))
	}
	claim := ss.Spec.VolumeClaimTemplates[0].Name
	app := ss.Spec.Template.Spec.Containers[0]
	if !mounts(app, claim, "/var/audit", false) {
		t.Errorf("StatefulSet: the claim %s is not mounted read-write at /var/audit: %+v", claim, app.VolumeMounts)
	}
	for name, p := range map[string]*corev1.Probe{"liveness": app.LivenessProbe, "readiness": app.ReadinessProbe} {
		want := map[string]string{"liveness": "/healthz", "readiness": "/readyz"}[name]
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != want {
			t.Errorf("StatefulSet: %s probe is not an HTTP GET of %s: %+v", name, want, p)
		}
	}
	ann := ss.Spec.Template.Annotations
	if ann["prometheus.io/scrape"] != "true" || ann["prometheus.io/path"] != "/metrics" || ann["prometheus.io/port"] != "8080" {
		t.Errorf("StatefulSet: no scrape annotations: %v", ann)
	}
	if env(app, "AUDIT_WAL_DIR") != "/var/audit/wal" {
		t.Errorf("StatefulSet: AUDIT_WAL_DIR %q, want a directory on the volume", env(app, "AUDIT_WAL_DIR"))
	}

	cj, _ := objs["CronJob/audit-verify"].(*batchv1.CronJob)
	if cj == nil {
		t.FailNow()
	}
	job := cj.Spec.JobTemplate.Spec
	checkPod(t, "CronJob", &job.Template.Spec)
	if job.Template.Spec.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("CronJob: restartPolicy %q: a failed verify must fail the pod, not restart in place", job.Template.Spec.RestartPolicy)
	}
	if cj.Spec.ConcurrencyPolicy != batchv1.ForbidConcurrent {
		t.Errorf("CronJob: concurrencyPolicy %q, want Forbid", cj.Spec.ConcurrencyPolicy)
	}
	script := strings.Join(job.Template.Spec.Containers[0].Args, " ")
	for _, want := range []string{"mtlog-audit verify", "--anchor-from", "--key", "mtlog-audit retention apply --wal /var/audit/wal", "0|3) ;;", "exit $rc"} {
		if !strings.Contains(script, want) {
			t.Errorf("CronJob: the script lacks %q:\n%s", want, script)
		}
	}
	failsOn := map[int32]bool{}
	if job.PodFailurePolicy != nil {
		for _, r := range job.PodFailurePolicy.Rules {
			if r.Action == batchv1.PodFailurePolicyActionFailJob && r.OnExitCodes != nil && r.OnExitCodes.Operator == batchv1.PodFailurePolicyOnExitCodesOpIn {
				for _, c := range r.OnExitCodes.Values {
					failsOn[c] = true
				}
			}
		}
	}
	if !failsOn[1] || !failsOn[2] {
		t.Errorf("CronJob: exit statuses 1 (tampered) and 2 do not fail the Job at once: %+v", job.PodFailurePolicy)
	}
	vols := job.Template.Spec.Volumes
	if len(vols) != 1 || vols[0].PersistentVolumeClaim == nil || vols[0].PersistentVolumeClaim.ClaimName != claim+"-"+ss.Name+"-0" {
		t.Errorf("CronJob: does not mount the StatefulSet's claim %s-%s-0: %+v", claim, ss.Name, vols)
	}

	pdb, _ := objs["PodDisruptionBudget/audit-example"].(*policyv1.PodDisruptionBudget)
	if pdb == nil || pdb.Spec.Selector == nil || pdb.Spec.Selector.MatchLabels["app.kubernetes.io/name"] != ss.Spec.Selector.MatchLabels["app.kubernetes.io/name"] {
		t.Errorf("PodDisruptionBudget does not select the StatefulSet's pods")
	}
	for _, name := range []string{"audit-example", "audit-verify"} {
		np, _ := objs["NetworkPolicy/"+name].(*networkingv1.NetworkPolicy)
		if np == nil || len(np.Spec.PolicyTypes) != 2 {
			t.Errorf("NetworkPolicy %s does not restrict both ingress and egress", name)
		}
	}
}

// checkPod checks the pod-level and container-level security settings.
func checkPod(t *testing.T, what string, pod *corev1.PodSpec) {
	t.Helper()
	sc := pod.SecurityContext
	if sc == nil || sc.FSGroup == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser == 0 {
		t.Errorf("%s: pod securityContext lacks fsGroup, runAsNonRoot or a non-zero runAsUser: %+v", what, sc)
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Errorf("%s: the service account token is mounted", what)
	}
	if len(pod.Containers) == 0 {
		t.Fatalf("%s: no container", what)
	}
	for _, c := range append(append([]corev1.Container{}, pod.InitContainers...), pod.Containers...) {
		s := c.SecurityContext
		switch {
		case s == nil:
			t.Errorf("%s/%s: no securityContext", what, c.Name)
		case s.ReadOnlyRootFilesystem == nil || !*s.ReadOnlyRootFilesystem:
			t.Errorf("%s/%s: the root filesystem is writable", what, c.Name)
		case s.AllowPrivilegeEscalation == nil || *s.AllowPrivilegeEscalation:
			t.Errorf("%s/%s: privilege escalation is allowed", what, c.Name)
		case s.RunAsNonRoot == nil || !*s.RunAsNonRoot:
			t.Errorf("%s/%s: runAsNonRoot is not set", what, c.Name)
		case s.Privileged != nil && *s.Privileged:
			t.Errorf("%s/%s: privileged", what, c.Name)
		case s.Capabilities == nil || len(s.Capabilities.Drop) != 1 || s.Capabilities.Drop[0] != "ALL" || len(s.Capabilities.Add) != 0:
			t.Errorf("%s/%s: capabilities are not drop [ALL] add []: %+v", what, c.Name, s.Capabilities)
		}
		if c.Resources.Limits.Memory().IsZero() {
			t.Errorf("%s/%s: no memory limit", what, c.Name)
		}
	}
}

func mounts(c corev1.Container, volume, path string, readOnly bool) bool {
	for _, m := range c.VolumeMounts {
		if m.Name == volume && m.MountPath == path && m.ReadOnly == readOnly {
			return true
		}
	}
	return false
}

func env(c corev1.Container, name string) string {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}
