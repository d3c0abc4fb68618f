package sheetlogstack

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// scannerTool is the executable of a scanner the Makefile installs into its
// own virtualenv (mk/cdk.mk), or the one the environment variable names.
// Missing, it fails the test in CI and skips it loudly elsewhere.
func scannerTool(t *testing.T, env, venvPath string) string {
	t.Helper()
	path := os.Getenv(env)
	if path == "" {
		root, err := filepath.Abs(filepath.Join("..", "..", ".."))
		if err != nil {
			t.Fatal(err)
		}
		path = filepath.Join(root, venvPath)
	}
	if _, err := os.Stat(path); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is missing in CI (make test-infra installs it): %v", path, err)
		}
		t.Skipf("SKIPPING: %s is missing; `make test-infra` installs it (or set %s)", path, env)
	}
	return path
}

// scanConfigs are the stacks the scanners see: what `make deploy` makes,
// and the one with every optional resource (CORS preflight routes, JWT).
var scanConfigs = map[string]map[string]string{
	"default": nil,
	"jwt and cors": {
		CtxJWTIssuer: "https://issuer.example.com/", CtxJWTAudience: "sheetlog",
		CtxCORSOrigins: "https://app.example.com", CtxAlarmTopicARN: "arn:aws:sns:eu-west-1:123456789012:ops",
	},
	"iam and cors": {CtxCORSOrigins: "*"},
}

func writeTemplate(t *testing.T, s *synthesized) string {
	t.Helper()
	b, err := json.MarshalIndent(s.json, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "Sheetlog.template.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestCheckov runs checkov on the synthesized template: no check may fail,
// and every check skipped in the template's metadata must say why.
func TestCheckov(t *testing.T) {
	checkov := scannerTool(t, "SHEETLOG_CHECKOV", ".venv/checkov/bin/checkov")
	for name, ctx := range scanConfigs {
		t.Run(name, func(t *testing.T) {
			path := writeTemplate(t, synth(t, ctx))
			// --skip-download: no request to the vendor's API (the checks
			// are in the package; only guideline links would come from it).
			cmd := exec.Command(checkov, "-f", path, "--framework", "cloudformation", "--output", "json", "--skip-download")
			cmd.Env = append(os.Environ(), "BC_SKIP_MAPPING=TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2=false")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			var report struct {
				Results struct {
					Failed  []checkovResult `json:"failed_checks"`
					Skipped []checkovResult `json:"skipped_checks"`
				} `json:"results"`
				Summary struct {
					Passed, Failed, Skipped int
				} `json:"summary"`
			}
			if jerr := json.Unmarshal(out, &report); jerr != nil {
				t.Fatalf("checkov: %v (%v)\n%s\n%s", err, jerr, out, stderr.String())
			}
			for _, f := range report.Results.Failed {
				t.Errorf("checkov %s fails on %s: %s", f.CheckID, f.Resource, f.CheckName)
			}
			var skipped []string
			for _, s := range report.Results.Skipped {
				if len(strings.TrimSpace(s.CheckResult.Suppress)) < 40 {
					t.Errorf("checkov %s is skipped on %s without a reason (%q)", s.CheckID, s.Resource, s.CheckResult.Suppress)
				}
				skipped = append(skipped, s.CheckID+" "+s.Resource)
			}
			sort.Strings(skipped)
			t.Logf("checkov: %d passed, %d failed, %d skipped: %s", report.Summary.Passed, report.Summary.Failed,
				report.Summary.Skipped, strings.Join(skipped, ", "))
			if report.Summary.Passed == 0 {
				t.Errorf("checkov passed no check: did it read the template?\n%s", stderr.String())
			}
		})
	}
}

type checkovResult struct {
	CheckID     string `json:"check_id"`
	CheckName   string `json:"check_name"`
	Resource    string `json:"resource"`
	CheckResult struct {
		Suppress string `json:"suppress_comment"`
	} `json:"check_result"`
}

// TestCfnLint runs cfn-lint on the synthesized template: no error and no
// warning.
func TestCfnLint(t *testing.T) {
	cfnLint := scannerTool(t, "SHEETLOG_CFN_LINT", ".venv/cfn-lint/bin/cfn-lint")
	for name, ctx := range scanConfigs {
		t.Run(name, func(t *testing.T) {
			path := writeTemplate(t, synth(t, ctx))
			out, err := exec.Command(cfnLint, "--format", "json", "--", path).Output()
			var matches []struct {
				Rule struct {
					ID string `json:"Id"`
				} `json:"Rule"`
				Level    string `json:"Level"`
				Message  string `json:"Message"`
				Location struct {
					Path []any `json:"Path"`
				} `json:"Location"`
			}
			if jerr := json.Unmarshal(out, &matches); jerr != nil {
				t.Fatalf("cfn-lint: %v (%v)\n%s", err, jerr, out)
			}
			for _, m := range matches {
				t.Errorf("cfn-lint %s %s at %v: %s", m.Level, m.Rule.ID, m.Location.Path, m.Message)
			}
			if len(matches) == 0 && err != nil {
				t.Errorf("cfn-lint failed without a finding: %v", err)
			}
		})
	}
}
