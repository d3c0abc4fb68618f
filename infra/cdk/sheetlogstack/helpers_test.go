package sheetlogstack

import (
	"archive/zip"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/sheetlog/sheetlog/pkg/awsschema"
)

// zipDir holds dummy Lambda zips, so the tests need no `make lambdas`.
var zipDir string

func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	// One jsii runtime (one node process) for the whole binary: starting
	// it costs seconds.
	defer jsii.Close()
	tmp, err := os.MkdirTemp("", "sheetlog-cdk-test-")
	if err != nil {
		return 1, err
	}
	if keep := os.Getenv("SHEETLOG_CDK_TEST_KEEP"); keep != "" {
		fmt.Fprintln(os.Stderr, "keeping the cloud assemblies in", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}
	dir := filepath.Join(tmp, "zips")
	if err := os.Mkdir(dir, 0o755); err != nil {
		return 1, err
	}
	for _, name := range []string{awsschema.FunctionAPI, awsschema.FunctionWorkflow, awsschema.FunctionSweeper} {
		if err := writeZip(filepath.Join(dir, name+".zip"), name); err != nil {
			return 1, err
		}
	}
	zipDir = dir
	return m.Run(), nil
}

func writeZip(path, name string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := zip.NewWriter(f)
	h := &zip.FileHeader{Name: "bootstrap", Method: zip.Deflate}
	h.SetMode(0o755)
	bw, err := w.CreateHeader(h)
	if err == nil {
		_, err = bw.Write([]byte("#!/bin/sh\n# dummy " + name + " for the stack tests\n"))
	}
	if err == nil {
		err = w.Close()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// check runs a CDK assertion. A failed CDK assertion panics (a jsii error)
// instead of failing the test; check turns the panic into a test error, so
// one bad assertion does not abort the whole binary.
func check(t *testing.T, what string, assertion func()) (ok bool) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Errorf("%s: %v", what, r)
			if os.Getenv("SHEETLOG_CDK_TEST_STACKS") != "" {
				t.Logf("%s", debug.Stack())
			}
			ok = false
		}
	}()
	assertion()
	return true
}

// cdkJSONContext is the context of cdk.json (the feature flags), so that
// the tests synthesize what `cdk synth` synthesizes.
var cdkJSONContext = sync.OnceValues(func() (map[string]any, error) {
	b, err := os.ReadFile("../cdk.json")
	if err != nil {
		return nil, err
	}
	var cfg struct {
		App     string         `json:"app"`
		Context map[string]any `json:"context"`
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		return nil, fmt.Errorf("cdk.json: %w", err)
	}
	return cfg.Context, nil
})

// synthesized is one configuration of the stack, synthesized once.
type synthesized struct {
	stack *Stack
	tpl   assertions.Template
	// json is the template as plain Go values.
	json map[string]any
}

// newApp makes an app whose context is cdk.json's plus ctx (given as the
// CLI gives `-c key=value`: strings).
func newApp(t *testing.T, ctx map[string]string) awscdk.App {
	t.Helper()
	base, err := cdkJSONContext()
	if err != nil {
		t.Fatal(err)
	}
	all := map[string]any{}
	for k, v := range base {
		all[k] = v
	}
	for k, v := range ctx {
		all[k] = v
	}
	all[CtxAssetDir] = zipDir
	// Each app writes its cloud assembly (and any validation report) under
	// the binary's temporary directory.
	outdir, err := os.MkdirTemp(filepath.Dir(zipDir), "cdk.out-")
	if err != nil {
		t.Fatal(err)
	}
	return awscdk.NewApp(&awscdk.AppProps{Context: &all, Outdir: jsii.String(outdir), AnalyticsReporting: jsii.Bool(false)})
}

// build makes the stack from ctx the way main.go does, after mutate
// adjusts the props.
func build(t *testing.T, ctx map[string]string, mutate func(*Props)) *Stack {
	t.Helper()
	app := newApp(t, ctx)
	props, err := PropsFromContext(app.Node())
	if err != nil {
		t.Fatal(err)
	}
	if mutate != nil {
		mutate(&props)
	}
	var st *Stack
	check(t, "new stack", func() { st, err = New(app, StackName(app.Node()), props) })
	if err != nil {
		t.Fatal(err)
	}
	if st == nil {
		t.FailNow()
	}
	return st
}

var (
	cacheMu sync.Mutex
	cache   = map[string]*synthesized{}
)

// synth returns the template of the configuration ctx, synthesized once
// per test binary.
func synth(t *testing.T, ctx map[string]string) *synthesized {
	t.Helper()
	keys := make([]string, 0, len(ctx))
	for k, v := range ctx {
		keys = append(keys, k+"="+v)
	}
	sort.Strings(keys)
	key := strings.Join(keys, ",")
	cacheMu.Lock()
	defer cacheMu.Unlock()
	if s, ok := cache[key]; ok {
		return s
	}
	s := &synthesized{stack: build(t, ctx, nil)}
	if !check(t, "synthesize", func() { s.tpl = assertions.Template_FromStack(s.stack.Stack, nil) }) {
		t.FailNow()
	}
	s.json = plain(t, s.tpl.ToJSON())
	cache[key] = s
	return s
}

// plain converts jsii values to plain Go values through JSON.
func plain(t *testing.T, v any) map[string]any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// resources returns the template's resources of one type by logical id.
func (s *synthesized) resources(typ string) map[string]map[string]any {
	out := map[string]map[string]any{}
	for id, r := range s.json["Resources"].(map[string]any) {
		r := r.(map[string]any)
		if r["Type"] == typ {
			out[id] = r
		}
	}
	return out
}

// only returns the one resource of a type, failing if there is not exactly one.
func (s *synthesized) only(t *testing.T, typ string) (string, map[string]any) {
	t.Helper()
	rs := s.resources(typ)
	if len(rs) != 1 {
		t.Fatalf("want exactly one %s, have %d", typ, len(rs))
	}
	for id, r := range rs {
		return id, r
	}
	panic("unreachable")
}

// props returns a resource's Properties.
func props(r map[string]any) map[string]any {
	p, _ := r["Properties"].(map[string]any)
	return p
}

// logicalID is the logical id of a construct's CloudFormation resource.
func logicalID(s *synthesized, c constructs.IConstruct) string {
	return *s.stack.GetLogicalId(c.Node().DefaultChild().(awscdk.CfnElement))
}

// ref is {"Ref": id}; getAtt is {"Fn::GetAtt": [id, attr]}.
func ref(id string) map[string]any { return map[string]any{"Ref": id} }
func getAtt(id, attr string) map[string]any {
	return map[string]any{"Fn::GetAtt": []any{id, attr}}
}

// jsonEqual compares two values as JSON.
func jsonEqual(a, b any) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	if err1 != nil || err2 != nil {
		return false
	}
	var va, vb any
	_ = json.Unmarshal(ja, &va)
	_ = json.Unmarshal(jb, &vb)
	ca, _ := json.Marshal(va)
	cb, _ := json.Marshal(vb)
	return string(ca) == string(cb)
}

func show(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// strs returns v as a list of strings: a string alone or a list of them.
func strs(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// list returns v as a list: a single value becomes a one-element list.
func list(v any) []any {
	if l, ok := v.([]any); ok {
		return l
	}
	if v == nil {
		return nil
	}
	return []any{v}
}
