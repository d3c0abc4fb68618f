package lambdaharness

import (
	"archive/zip"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Bootstrap is a function's executable taken out of its deployment zip.
type Bootstrap struct {
	// Path is the extracted bootstrap, mode 0755.
	Path string
	// Arch is its architecture as GOARCH spells it: "amd64" or "arm64".
	Arch string
}

// ExtractBootstrap takes the bootstrap out of a Lambda deployment zip (the
// one `make lambdas` builds, byte for byte) into dir, and reads its
// architecture from the ELF header, so that the harness runs exactly what
// the stack deploys, under an emulator when it is not this machine's.
func ExtractBootstrap(zipPath, dir string) (Bootstrap, error) {
	zr, err := zip.OpenReader(zipPath)
	if err != nil {
		return Bootstrap{}, err
	}
	defer zr.Close()
	for _, f := range zr.File {
		if f.Name != "bootstrap" {
			continue
		}
		if f.Mode()&0o111 == 0 {
			return Bootstrap{}, fmt.Errorf("%s: bootstrap is not executable (mode %v): Lambda could not run it", zipPath, f.Mode())
		}
		rc, err := f.Open()
		if err != nil {
			return Bootstrap{}, err
		}
		defer rc.Close()
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return Bootstrap{}, err
		}
		out := filepath.Join(dir, "bootstrap")
		w, err := os.OpenFile(out, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o755)
		if err != nil {
			return Bootstrap{}, err
		}
		_, err = io.Copy(w, rc)
		if cerr := w.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return Bootstrap{}, err
		}
		arch, err := elfArch(out)
		if err != nil {
			return Bootstrap{}, fmt.Errorf("%s: %w", zipPath, err)
		}
		return Bootstrap{Path: out, Arch: arch}, nil
	}
	return Bootstrap{}, fmt.Errorf("%s holds no bootstrap", zipPath)
}

func elfArch(path string) (string, error) {
	f, err := elf.Open(path)
	if err != nil {
		return "", fmt.Errorf("bootstrap is not an ELF executable: %w", err)
	}
	defer f.Close()
	switch f.Machine {
	case elf.EM_X86_64:
		return "amd64", nil
	case elf.EM_AARCH64:
		return "arm64", nil
	}
	return "", fmt.Errorf("bootstrap is for %v, which Lambda does not run", f.Machine)
}
