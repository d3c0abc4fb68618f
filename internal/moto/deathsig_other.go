//go:build !linux

package moto

import "os/exec"

func setParentDeathSignal(*exec.Cmd) {}
