// Command sheetctl is the command-line client of sheetlog's HTTP API:
// read and write cells, import and export CSV and XLSX files, show a
// sheet's status and follow its log. Run `sheetctl help`.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"github.com/sheetlog/sheetlog/pkg/client"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Exit statuses.
const (
	exitOK     = 0
	exitFailed = 1 // the server (or the input, or the network) said no
	exitUsage  = 2 // the command line is wrong
)

// env is what every command runs with.
type env struct {
	ctx    context.Context
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string

	url, token, region string
	sigv4, json        bool
}

// command is one sub-command.
type command struct {
	name, args, short string
	// long is the help text after the usage line.
	long string
	// flags registers the command's own flags.
	flags func(fs *flag.FlagSet)
	// run runs the command with its positional arguments.
	run func(e *env, c *client.Client, args []string) error
	// nargs is the number of positional arguments (min, max).
	minArgs, maxArgs int
}

var commands = map[string]*command{}

func register(c *command) { commands[c.name] = c }

// usageError is a command line that is wrong: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// run is sheetctl with its arguments and standard streams; it returns the
// exit status.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return runEnv(ctx, args, stdin, stdout, stderr, os.Getenv)
}

func runEnv(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	e := &env{ctx: ctx, stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv}
	def := func(k, d string) string {
		if v := getenv(k); v != "" {
			return v
		}
		return d
	}
	e.url, e.token, e.region = def("SHEETLOG_URL", "http://127.0.0.1:8080"), getenv("SHEETLOG_TOKEN"), getenv("AWS_REGION")
	// Global flags may come first; the first argument that is not a
	// flag names the command.
	global := e.flagSet("sheetctl")
	if err := global.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printHelp(stdout)
			return exitOK
		}
		return e.fail(usagef("%v", err))
	}
	rest := global.Args()
	if len(rest) == 0 {
		printHelp(stderr)
		return exitUsage
	}
	name, rest := rest[0], rest[1:]
	if name == "help" {
		if len(rest) > 0 {
			if c, ok := commands[rest[0]]; ok {
				printCommandHelp(stdout, c)
				return exitOK
			}
			return e.fail(usagef("no command %q; run sheetctl help", rest[0]))
		}
		printHelp(stdout)
		return exitOK
	}
	c, ok := commands[name]
	if !ok {
		return e.fail(usagef("no command %q; run sheetctl help", name))
	}
	fs := e.flagSet(c.name)
	if c.flags != nil {
		c.flags(fs)
	}
	pos, err := parseInterspersed(fs, rest)
	if errors.Is(err, flag.ErrHelp) {
		printCommandHelp(stdout, c)
		return exitOK
	}
	if err != nil {
		return e.fail(usagef("%s: %v", c.name, err))
	}
	if len(pos) < c.minArgs || len(pos) > c.maxArgs {
		return e.fail(usagef("usage: sheetctl %s %s", c.name, c.args))
	}
	cl, err := e.client()
	if err != nil {
		return e.fail(err)
	}
	return e.fail(c.run(e, cl, pos))
}

// flagSet is a flag set with the global flags, which every command takes
// too (before or after its arguments); their defaults are the values so
// far (the environment's, then what the flags before the command said).
func (e *env) flagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&e.url, "url", e.url, "")
	fs.StringVar(&e.token, "token", e.token, "")
	fs.BoolVar(&e.sigv4, "sigv4", e.sigv4, "")
	fs.StringVar(&e.region, "region", e.region, "")
	fs.BoolVar(&e.json, "json", e.json, "")
	return fs
}

// parseInterspersed parses flags wherever they stand among the
// positional arguments ("--" ends the flags).
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		// flag stops at "--" (dropping it) or at a non-flag.
		if consumed := len(args); consumed > 0 && args[0] != "" && !strings.HasPrefix(args[0], "-") {
			pos = append(pos, args[0])
			args = args[1:]
			continue
		}
		return append(pos, args...), nil
	}
}

func (e *env) client() (*client.Client, error) {
	var opts []client.Option
	opts = append(opts, client.WithUserAgent("sheetctl"), client.WithToken(e.token))
	if e.sigv4 {
		s, err := client.NewSigV4(e.ctx, e.region)
		if err != nil {
			return nil, err
		}
		opts = append(opts, client.WithAuth(s))
	}
	c, err := client.New(e.url, opts...)
	if err != nil {
		return nil, usagef("--url: %v", err)
	}
	return c, nil
}

// fail prints err as one line on stderr and returns the exit status.
func (e *env) fail(err error) int {
	if err == nil {
		return exitOK
	}
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintln(e.stderr, "sheetctl:", oneLine(ue.msg))
		return exitUsage
	}
	msg := err.Error()
	if t := client.TypeOf(err); t != "" && !strings.HasPrefix(msg, t) {
		msg = t + ": " + msg
	}
	fmt.Fprintln(e.stderr, "sheetctl:", oneLine(msg))
	return exitFailed
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ")), " ")
}

const globalHelp = `Global flags (before or after the command's arguments):
  --url URL      the API's base URL (SHEETLOG_URL; default http://127.0.0.1:8080)
  --token T      bearer token: the server's token or a JWT (SHEETLOG_TOKEN)
  --sigv4        sign requests with AWS SigV4 (IAM deployments; credentials
                 from the AWS SDK's default chain)
  --region R     the region to sign for (AWS_REGION)
  --json         machine-readable output

Exit status: 0 success, 1 an error the server reported (one line on stderr
with its type), or a bad input file, 2 bad usage.`

func printHelp(w io.Writer) {
	fmt.Fprintln(w, "sheetctl: the command-line client of a sheetlog server\n\nCommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		c := commands[n]
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.short)
	}
	fmt.Fprintln(w, "\nRun `sheetctl help COMMAND` or `sheetctl COMMAND --help` for a command's flags.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, globalHelp)
}

func printCommandHelp(w io.Writer, c *command) {
	fmt.Fprintf(w, "usage: sheetctl %s %s\n\n%s\n", c.name, c.args, c.short)
	if c.long != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimRight(c.long, "\n"))
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, globalHelp)
}
