package localkit

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// root is the repository root.
func root(t *testing.T) string {
	t.Helper()
	r, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(r, "mk", "cdk.mk")); err != nil {
		t.Fatalf("repository root %s has no mk/cdk.mk: %v", r, err)
	}
	return r
}

// pinned reads the exact versions of infra/cdk/package.json.
func pinned(t *testing.T) map[string]string {
	t.Helper()
	var pkg struct {
		DevDependencies map[string]string `json:"devDependencies"`
	}
	readJSON(t, filepath.Join(root(t), "infra", "cdk", "package.json"), &pkg)
	return pkg.DevDependencies
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// requireTool fails in CI and skips loudly elsewhere when a tool the
// Makefile should have installed is missing.
func requireTool(t *testing.T, path, how string) {
	t.Helper()
	if _, err := os.Stat(path); err == nil {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is missing in CI: %s", path, how)
	}
	t.Skipf("SKIPPING: %s is missing (%s)", path, how)
}

func TestComposeFile(t *testing.T) {
	path := filepath.Join(root(t), "localstack", "docker-compose.yml")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var compose struct {
		Name     string `yaml:"name"`
		Services map[string]struct {
			Image       string            `yaml:"image"`
			Ports       []string          `yaml:"ports"`
			Environment map[string]string `yaml:"environment"`
			Volumes     []string          `yaml:"volumes"`
			Healthcheck map[string]any    `yaml:"healthcheck"`
		} `yaml:"services"`
		Volumes map[string]any `yaml:"volumes"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&compose); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	ls, ok := compose.Services["localstack"]
	if !ok || len(compose.Services) != 1 {
		t.Fatalf("services %v, want exactly localstack", compose.Services)
	}
	// An exact release, never a moving tag: later LocalStack images need
	// an auth token, and a moving tag would change under the user.
	if !regexp.MustCompile(`^localstack/localstack:\d+\.\d+\.\d+$`).MatchString(ls.Image) {
		t.Errorf("image %q is not pinned to a release", ls.Image)
	}
	services := strings.Split(ls.Environment["SERVICES"], ",")
	for _, want := range []string{"dynamodb", "dynamodbstreams", "s3", "lambda", "apigateway", "sqs", "events", "iam", "sts", "cloudformation", "logs", "cloudwatch", "ssm", "secretsmanager"} {
		if !slices.Contains(services, want) {
			t.Errorf("SERVICES %q lacks %s", ls.Environment["SERVICES"], want)
		}
	}
	if !slices.Contains(ls.Volumes, "/var/run/docker.sock:/var/run/docker.sock") {
		t.Errorf("volumes %v: LocalStack's Lambda needs the Docker socket", ls.Volumes)
	}
	if !slices.Contains(ls.Ports, "127.0.0.1:4566:4566") {
		t.Errorf("ports %v: want the edge port 4566 on loopback", ls.Ports)
	}
	if ls.Healthcheck == nil {
		t.Errorf("no healthcheck: `docker compose up --wait` would not wait for LocalStack")
	}
}

// dryRun prints the commands of a make target without running them.
func dryRun(t *testing.T, target string, vars ...string) string {
	t.Helper()
	args := append([]string{"-n", "--no-print-directory", "-C", root(t), target}, vars...)
	out, err := exec.Command("make", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("make %v: %v\n%s", args, err, out)
	}
	// One command per line: join continuation lines, squeeze blanks.
	joined := strings.ReplaceAll(string(out), "\\\n", " ")
	return regexp.MustCompile(`[ \t]+`).ReplaceAllString(joined, " ")
}

func TestLocalStackUpDown(t *testing.T) {
	compose := filepath.Join(root(t), "localstack", "docker-compose.yml")
	for target, want := range map[string]string{
		"localstack-up":   "docker compose -f " + compose + " up --detach --wait",
		"localstack-down": "docker compose -f " + compose + " down --volumes",
	} {
		if out := dryRun(t, target); !strings.Contains(out, want) {
			t.Errorf("make %s runs\n%s\nwant %q", target, out, want)
		}
	}
	// Where Docker Compose is installed, it validates the file too.
	if err := exec.Command("docker", "compose", "version").Run(); err != nil {
		t.Logf("NOTE: no Docker Compose here; the localstack-up/-down commands were checked, not run")
		return
	}
	if out, err := exec.Command("docker", "compose", "-f", compose, "config", "--quiet").CombinedOutput(); err != nil {
		t.Errorf("docker compose config: %v\n%s", err, out)
	}
}

func TestLocalStackDeploy(t *testing.T) {
	r := root(t)
	cdklocal := filepath.Join(r, "infra", "cdk", "node_modules", ".bin", "cdklocal")
	requireTool(t, cdklocal, "make cdk-deps installs it")
	out := dryRun(t, "localstack-deploy")
	var bootstrap, deploy string
	for _, line := range strings.Split(out, "\n") {
		switch {
		case strings.Contains(line, cdklocal+" bootstrap "):
			bootstrap = line
		case strings.Contains(line, cdklocal+" deploy "):
			deploy = line
		}
	}
	if bootstrap == "" || deploy == "" {
		t.Fatalf("make localstack-deploy does not bootstrap and deploy with %s:\n%s", cdklocal, out)
	}
	for _, want := range []string{"-c dev=true", "-c localstack=true", "-c allowAnonymous=true", "-c stackName=Sheetlog"} {
		if !strings.Contains(bootstrap, want) || !strings.Contains(deploy, want) {
			t.Errorf("bootstrap or deploy lacks %s:\n%s\n%s", want, bootstrap, deploy)
		}
	}
	if !strings.Contains(deploy, "--outputs-file "+filepath.Join(r, ".cache", "localstack-outputs.json")) {
		t.Errorf("deploy does not write the outputs localstack-e2e reads:\n%s", deploy)
	}
	if !strings.Contains(out, "cd "+filepath.Join(r, "infra", "cdk")+" &&") {
		t.Errorf("cdklocal does not run in infra/cdk (where cdk.json is):\n%s", out)
	}
	var cdkJSON struct {
		App string `json:"app"`
	}
	readJSON(t, filepath.Join(r, "infra", "cdk", "cdk.json"), &cdkJSON)
	if cdkJSON.App != "go run ." {
		t.Errorf("cdk.json app %q, want `go run .` (a download step breaks offline synth)", cdkJSON.App)
	}

	// The installed cdklocal and CDK CLI are the pinned ones.
	pins := pinned(t)
	for name, v := range pins {
		if !regexp.MustCompile(`^\d+\.\d+\.\d+$`).MatchString(v) {
			t.Errorf("package.json: %s %q is not an exact version", name, v)
		}
	}
	ver, err := exec.Command(cdklocal, "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("cdklocal --version: %v\n%s", err, ver)
	}
	for _, want := range []string{"cdklocal v" + pins["aws-cdk-local"], "cdk cli version v" + pins["aws-cdk"]} {
		if !strings.Contains(string(ver), want) {
			t.Errorf("cdklocal --version says %q, want %q", ver, want)
		}
	}
	var lock struct {
		Packages map[string]struct {
			Version string `json:"version"`
		} `json:"packages"`
	}
	readJSON(t, filepath.Join(r, "infra", "cdk", "package-lock.json"), &lock)
	for name, v := range pins {
		if got := lock.Packages["node_modules/"+name].Version; got != v {
			t.Errorf("package-lock.json has %s %s, package.json pins %s", name, got, v)
		}
	}
}

func TestLocalStackE2E(t *testing.T) {
	r := root(t)
	out := dryRun(t, "localstack-e2e")
	if !strings.Contains(out, "test ./test/e2e -count=1") || !strings.Contains(out, "SHEETLOG_E2E_BASE_URL=") {
		t.Errorf("make localstack-e2e does not run test/e2e with SHEETLOG_E2E_BASE_URL:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(r, "test", "e2e")); err != nil {
		t.Logf("NOTE: test/e2e is not in this tree yet; localstack-e2e will run it once it is")
	}

	// Run the target for real on a made-up outputs file, with `echo` for
	// go: the API URL must come out of the file cdklocal writes.
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatalf("node is needed by localstack-e2e: %v", err)
	}
	outputs := filepath.Join(t.TempDir(), "outputs.json")
	url := "http://abc123.lambda-url.us-east-1.localhost.localstack.cloud:4566/"
	b, _ := json.Marshal(map[string]any{"Sheetlog": map[string]string{"ApiUrl": url, "TableName": "t"}})
	if err := os.WriteFile(outputs, b, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("make", "--no-print-directory", "-C", r, "localstack-e2e", "LOCALSTACK_OUTPUTS="+outputs, "GO=echo")
	got, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make localstack-e2e: %v\n%s", err, got)
	}
	want := "SHEETLOG_E2E_BASE_URL=" + strings.TrimSuffix(url, "/") + "\n"
	if !strings.Contains(string(got), want) || !strings.Contains(string(got), "test ./test/e2e -count=1") {
		t.Errorf("make localstack-e2e printed\n%s\nwant %q and the go test line", got, want)
	}

	// Without a deployment it says what to do.
	cmd = exec.Command("make", "--no-print-directory", "-C", r, "localstack-e2e", "LOCALSTACK_OUTPUTS="+filepath.Join(t.TempDir(), "none.json"), "GO=echo")
	got, err = cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(got), "make localstack-deploy") {
		t.Errorf("without outputs: err %v, output\n%s", err, got)
	}
}
