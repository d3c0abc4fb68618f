package lambdaharness

import (
	"archive/zip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func writeZip(t *testing.T, path string, mode os.FileMode, data []byte) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := zip.NewWriter(f)
	h := &zip.FileHeader{Name: "bootstrap", Method: zip.Deflate}
	h.SetMode(mode)
	bw, err := w.CreateHeader(h)
	if err == nil {
		_, err = bw.Write(data)
	}
	if err == nil {
		err = w.Close()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
}

// The bootstrap comes out of its zip byte for byte, executable, with the
// architecture its ELF header names; a zip Lambda could not run is refused.
func TestExtractBootstrap(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	elf, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	good := filepath.Join(dir, "fn.zip")
	writeZip(t, good, 0o755, elf)
	b, err := ExtractBootstrap(good, filepath.Join(dir, "out"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(b.Path)
	if err != nil || string(got) != string(elf) || b.Arch != runtime.GOARCH {
		t.Fatalf("extracted %d bytes (%v), arch %s; want %d bytes, %s", len(got), err, b.Arch, len(elf), runtime.GOARCH)
	}
	if fi, err := os.Stat(b.Path); err != nil || fi.Mode()&0o111 == 0 {
		t.Fatalf("extracted bootstrap mode %v (%v)", fi.Mode(), err)
	}
	for name, c := range map[string]struct {
		mode os.FileMode
		data []byte
		want string
	}{
		"not executable": {0o644, elf, "not executable"},
		"not an ELF":     {0o755, []byte("#!/bin/sh\n"), "not an ELF"},
	} {
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".zip")
		writeZip(t, p, c.mode, c.data)
		if _, err := ExtractBootstrap(p, filepath.Join(dir, "x")); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one saying %q", name, err, c.want)
		}
	}
}
