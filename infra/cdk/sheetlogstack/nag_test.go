package sheetlogstack

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"
)

// TestNagAwsSolutions runs cdk-nag's AWS Solutions rules: no finding may be
// left unsuppressed, and every suppression must say why.
func TestNagAwsSolutions(t *testing.T) {
	for name, ctx := range map[string]map[string]string{
		"default": nil,
		"jwt and cors": {
			CtxJWTIssuer: "https://issuer.example.com/", CtxJWTAudience: "sheetlog",
			CtxCORSOrigins: "https://app.example.com", CtxAlarmTopicARN: "arn:aws:sns:eu-west-1:123456789012:ops",
		},
	} {
		t.Run(name, func(t *testing.T) {
			st := build(t, ctx, nil)
			awscdk.Aspects_Of(st.Stack).Add(cdknag.NewAwsSolutionsChecks(&cdknag.NagPackProps{
				Verbose: jsii.Bool(true),
				Reports: jsii.Bool(false),
			}), nil)
			var annotations assertions.Annotations
			if !check(t, "synthesize with cdk-nag", func() { annotations = assertions.Annotations_FromStack(st.Stack) }) {
				// Error annotations fail the synthesis itself; the
				// validation report says which.
				reportViolations(t, filepath.Join(*st.Node().Root().(awscdk.App).Outdir(), "validation-report.json"))
				return
			}
			nag := assertions.Match_StringLikeRegexp(jsii.String("AwsSolutions-.*"))
			// The messages are decoded from JSON: their Go type is
			// deprecated in favour of a package the Go CDK does not have.
			var found []struct {
				ID    string `json:"id"`
				Level string `json:"level"`
				Entry struct {
					Data any `json:"data"`
				} `json:"entry"`
			}
			for _, msgs := range []any{
				annotations.FindError(jsii.String("*"), nag),
				annotations.FindWarning(jsii.String("*"), nag),
			} {
				b, err := json.Marshal(msgs)
				if err == nil {
					err = json.Unmarshal(b, &found)
				}
				if err != nil {
					t.Fatal(err)
				}
				for _, m := range found {
					t.Errorf("unsuppressed cdk-nag %s at %s: %s", m.Level, m.ID, firstLine(fmt.Sprint(m.Entry.Data)))
				}
			}
			checkSuppressionReasons(t, plain(t, assertions.Template_FromStack(st.Stack, nil).ToJSON()))
		})
	}
}

// reportViolations lists the findings of a failed synthesis.
func reportViolations(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Errorf("no validation report: %v", err)
		return
	}
	var report struct {
		PluginReports []struct {
			Violations []struct {
				Description         string `json:"description"`
				ViolatingConstructs []struct {
					ConstructPath string `json:"constructPath"`
				} `json:"violatingConstructs"`
			} `json:"violations"`
		} `json:"pluginReports"`
	}
	if err := json.Unmarshal(b, &report); err != nil {
		t.Errorf("validation report %s: %v", path, err)
		return
	}
	for _, p := range report.PluginReports {
		for _, v := range p.Violations {
			for _, c := range v.ViolatingConstructs {
				t.Errorf("unsuppressed finding at %s: %s", c.ConstructPath, firstLine(v.Description))
			}
		}
	}
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// checkSuppressionReasons fails on a suppression without a specific
// reason: cdk-nag only asks for 10 characters.
func checkSuppressionReasons(t *testing.T, tpl map[string]any) {
	t.Helper()
	n := 0
	for id, r := range tpl["Resources"].(map[string]any) {
		md, _ := r.(map[string]any)["Metadata"].(map[string]any)
		nag, _ := md["cdk_nag"].(map[string]any)
		for _, s := range list(nag["rules_to_suppress"]) {
			s := s.(map[string]any)
			n++
			reason, _ := s["reason"].(string)
			if len(reason) < 60 {
				t.Errorf("%s: suppression of %v has a vague reason %q", id, s["id"], reason)
			}
			if s["id"] == "AwsSolutions-IAM5" && s["applies_to"] == nil {
				t.Errorf("%s: IAM5 suppressed for every wildcard; name the one it is for", id)
			}
		}
	}
	t.Logf("%d suppressions, each with its reason", n)
}
