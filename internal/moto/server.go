package moto

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

//go:embed serve_serialized.py
var launcher []byte

// Server is a running moto server.
type Server struct {
	// URL is the base endpoint, http://127.0.0.1:PORT.
	URL string

	cmd     *exec.Cmd
	done    chan struct{}
	exitErr error
	log     *tailBuffer
	dir     string
	once    sync.Once
}

// Start starts a moto server on a free loopback port and waits until it
// answers. binary is the moto_server executable ("" = Find()). The server
// runs serve_serialized.py with the Python interpreter that moto_server
// uses ($MOTO_PYTHON overrides it).
func Start(ctx context.Context, binary string) (*Server, error) {
	if binary == "" {
		var err error
		if binary, err = Find(); err != nil {
			return nil, err
		}
	}
	python, err := pythonOf(binary)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "moto-")
	if err != nil {
		return nil, err
	}
	script := filepath.Join(dir, "serve_serialized.py")
	if err := os.WriteFile(script, launcher, 0o644); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	// A port picked by the kernel can be taken by someone else before moto
	// binds it; try a few.
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := freePort()
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		s, err := startOn(ctx, python, script, port)
		if err == nil {
			s.dir = dir
			return s, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	os.RemoveAll(dir)
	return nil, lastErr
}

func startOn(ctx context.Context, python, script string, port int) (*Server, error) {
	s := &Server{
		URL:  "http://127.0.0.1:" + strconv.Itoa(port),
		done: make(chan struct{}),
		log:  &tailBuffer{max: 64 << 10},
	}
	s.cmd = exec.Command(python, script, "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	s.cmd.Stdout = s.log
	s.cmd.Stderr = s.log
	s.cmd.Env = append(os.Environ(), "PYTHONUNBUFFERED=1")
	setParentDeathSignal(s.cmd)
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting moto (%s %s): %w", python, script, err)
	}
	go func() {
		s.exitErr = s.cmd.Wait()
		close(s.done)
	}()
	if err := s.waitReady(ctx, 60*time.Second); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// waitReady polls until the server answers any HTTP request.
func (s *Server) waitReady(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	client := &http.Client{Timeout: time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/moto-api/", nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case <-s.done:
			return fmt.Errorf("moto exited before answering (%v); its output:\n%s", s.exitErr, s.log.String())
		case <-ctx.Done():
			return fmt.Errorf("waiting for moto at %s: %w; its output:\n%s", s.URL, ctx.Err(), s.log.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("moto did not answer at %s within %v; its output:\n%s", s.URL, limit, s.log.String())
		}
	}
}

// Stop terminates the server (SIGTERM, then SIGKILL after 5 s) and waits
// for it to exit.
func (s *Server) Stop() {
	s.once.Do(func() {
		if s.cmd.Process != nil {
			_ = s.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-s.done:
			case <-time.After(5 * time.Second):
				_ = s.cmd.Process.Kill()
				<-s.done
			}
		}
		if s.dir != "" {
			os.RemoveAll(s.dir)
		}
	})
}

// Output returns the tail of the server's output, for diagnostics.
func (s *Server) Output() string { return s.log.String() }

// pythonOf finds the interpreter of a pip-installed console script: a
// "python3" beside it (a virtualenv's bin/), else its #! line.
func pythonOf(binary string) (string, error) {
	if p := os.Getenv("MOTO_PYTHON"); p != "" {
		return p, nil
	}
	if p := filepath.Join(filepath.Dir(binary), "python3"); isExecutable(p) {
		return p, nil
	}
	f, err := os.Open(binary)
	if err != nil {
		return "", err
	}
	defer f.Close()
	line, _ := bufio.NewReader(f).ReadString('\n')
	if strings.HasPrefix(line, "#!") {
		fields := strings.Fields(strings.TrimPrefix(line, "#!"))
		if len(fields) > 0 && strings.Contains(filepath.Base(fields[len(fields)-1]), "python") {
			return fields[len(fields)-1], nil
		}
	}
	return "", errors.New("cannot tell which Python runs " + binary + ": set MOTO_PYTHON")
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// tailBuffer keeps the last max bytes written to it: moto logs every
// request, and only the end matters when something goes wrong.
type tailBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf.Write(p)
	if over := t.buf.Len() - t.max; over > 0 {
		t.buf.Next(over)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.buf.String()
}
