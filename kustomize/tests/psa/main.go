// Command psa-check evaluates every pod template of rendered manifests with the upstream
// Pod Security Admission library, at the level and version its Namespace's labels name,
// exactly as the API server's admission plugin would. Usage: psa-check FILE.yaml...
package main

import (
	"bytes"
	"fmt"
	"os"
	"regexp"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
	"sigs.k8s.io/yaml"
)

var docSeparator = regexp.MustCompile(`(?m)^---\s*$`)

type object struct {
	Kind     string            `json:"kind"`
	Metadata metav1.ObjectMeta `json:"metadata"`
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: psa-check FILE.yaml...")
		os.Exit(2)
	}
	evaluator, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		fail("%v", err)
	}
	failures := 0
	for _, file := range os.Args[1:] {
		failures += checkFile(evaluator, file)
	}
	if failures > 0 {
		fail("%d pod template(s) violate their namespace's Pod Security level", failures)
	}
}

func checkFile(evaluator policy.Evaluator, file string) int {
	raw, err := os.ReadFile(file)
	if err != nil {
		fail("%v", err)
	}
	levels := map[string][]namedLevel{}
	var deployments []appsv1.Deployment
	for _, doc := range docSeparator.Split(string(raw), -1) {
		if len(bytes.TrimSpace([]byte(doc))) == 0 {
			continue
		}
		var obj object
		must(yaml.Unmarshal([]byte(doc), &obj))
		switch obj.Kind {
		case "Namespace":
			levels[obj.Metadata.Name] = namespaceLevels(obj.Metadata)
		case "Deployment":
			var d appsv1.Deployment
			must(yaml.UnmarshalStrict([]byte(doc), &d))
			deployments = append(deployments, d)
		}
	}
	if len(deployments) == 0 {
		fail("%s: no Deployment to check", file)
	}
	failures := 0
	for _, d := range deployments {
		modes, ok := levels[d.Namespace]
		if !ok || len(modes) != 3 {
			fmt.Printf("FAIL %s: namespace %q does not set enforce, audit and warn levels in this render\n", file, d.Namespace)
			failures++
			continue
		}
		for _, m := range modes {
			if m.lv.Level != api.LevelRestricted {
				fmt.Printf("FAIL %s: namespace %s %s level is %s, not restricted\n", file, d.Namespace, m.mode, m.lv.Level)
				failures++
			}
			agg := policy.AggregateCheckResults(evaluator.EvaluatePod(m.lv, &d.Spec.Template.ObjectMeta, &d.Spec.Template.Spec))
			if !agg.Allowed {
				fmt.Printf("FAIL %s: deployment %s/%s violates %s (%s): %s: %s\n", file, d.Namespace, d.Name,
					m.lv.String(), m.mode, agg.ForbiddenReason(), agg.ForbiddenDetail())
				failures++
				continue
			}
			fmt.Printf("ok   %s: deployment %s/%s passes Pod Security %s (%s)\n", file, d.Namespace, d.Name, m.lv.String(), m.mode)
		}
		// The evaluator must reject a clearly non-restricted variant, or the checks above prove nothing.
		bad := d.Spec.Template.Spec.DeepCopy()
		yes := true
		bad.Containers[0].SecurityContext.AllowPrivilegeEscalation = &yes
		bad.Containers[0].SecurityContext.Capabilities = &corev1.Capabilities{Add: []corev1.Capability{"NET_ADMIN"}}
		if policy.AggregateCheckResults(evaluator.EvaluatePod(modes[0].lv, &d.Spec.Template.ObjectMeta, bad)).Allowed {
			fmt.Printf("FAIL %s: the evaluator admitted a privileged variant of %s\n", file, d.Name)
			failures++
		}
	}
	return failures
}

type namedLevel struct {
	mode string
	lv   api.LevelVersion
}

// namespaceLevels reads the pod-security.kubernetes.io/<mode>[-version] labels the way the
// admission plugin does (a missing version means "latest").
func namespaceLevels(meta metav1.ObjectMeta) []namedLevel {
	var out []namedLevel
	for _, mode := range []string{"enforce", "audit", "warn"} {
		level, ok := meta.Labels["pod-security.kubernetes.io/"+mode]
		if !ok {
			continue
		}
		lv, err := api.ParseLevel(level)
		if err != nil {
			fail("namespace %s: %v", meta.Name, err)
		}
		version, err := api.ParseVersion(orLatest(meta.Labels["pod-security.kubernetes.io/"+mode+"-version"]))
		if err != nil {
			fail("namespace %s: %v", meta.Name, err)
		}
		out = append(out, namedLevel{mode, api.LevelVersion{Level: lv, Version: version}})
	}
	return out
}

func orLatest(v string) string {
	if v == "" {
		return "latest"
	}
	return v
}

func must(err error) {
	if err != nil {
		fail("%v", err)
	}
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "psa-check: "+format+"\n", args...)
	os.Exit(1)
}
