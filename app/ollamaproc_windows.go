package app

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/windows"
)

// serveProc is a running `ollama serve`. Windows has no SIGTERM and no
// process groups to kill: the server gets a Ctrl-Break (Go programs take
// it as an interrupt, and Ollama then stops its runners), and it runs in
// a job object, so that the last resort ends its runners with it.
type serveProc struct {
	cmd *exec.Cmd
	mu  sync.Mutex
	job windows.Handle // 0 once closed, or when none could be made
}

func startServe(cmd *exec.Cmd) (*serveProc, error) {
	// A group of its own, so a Ctrl-Break can be aimed at it alone; no
	// console window on the desktop.
	cmd.SysProcAttr = &syscall.SysProcAttr{HideWindow: true, CreationFlags: windows.CREATE_NEW_PROCESS_GROUP}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &serveProc{cmd: cmd}
	// The server starts runners only when asked for a model, so it has
	// none yet: assigning it now puts every runner in the job too.
	if job, err := windows.CreateJobObject(nil, nil); err == nil {
		if h, err := windows.OpenProcess(windows.PROCESS_SET_QUOTA|windows.PROCESS_TERMINATE, false, uint32(cmd.Process.Pid)); err == nil {
			if windows.AssignProcessToJobObject(job, h) == nil {
				p.job = job
			}
			windows.CloseHandle(h)
		}
		if p.job == 0 {
			windows.CloseHandle(job)
		}
	}
	return p, nil
}

func (p *serveProc) wait() error {
	err := p.cmd.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.job != 0 {
		windows.CloseHandle(p.job)
		p.job = 0
	}
	return err
}

// stop ends the server: Ctrl-Break, then the whole job (or the process)
// after grace.
func (p *serveProc) stop(exited <-chan error, grace time.Duration, log *slog.Logger) {
	pid := p.cmd.Process.Pid
	if err := ctrlBreak(pid); err != nil {
		log.Warn("could not ask ollama serve to stop", "pid", pid, "err", err)
	}
	select {
	case <-exited:
	case <-time.After(grace):
		log.Warn("ollama serve did not stop; killing it", "pid", pid)
		p.mu.Lock()
		if p.job != 0 {
			_ = windows.TerminateJobObject(p.job, 1)
		}
		p.mu.Unlock()
		_ = p.cmd.Process.Kill()
		<-exited
	}
}

var (
	kernel32                     = windows.NewLazySystemDLL("kernel32.dll")
	procAttachConsole            = kernel32.NewProc("AttachConsole")
	procFreeConsole              = kernel32.NewProc("FreeConsole")
	procGenerateConsoleCtrlEvent = kernel32.NewProc("GenerateConsoleCtrlEvent")
)

// ctrlBreak sends Ctrl-Break to the process group pid leads. A console
// event reaches only processes on the sender's console, so the tray (a
// GUI program, with none) joins the server's hidden console for the call.
func ctrlBreak(pid int) error {
	attached := false
	if r, _, err := procAttachConsole.Call(uintptr(pid)); r != 0 {
		attached = true
	} else if !errors.Is(err, windows.ERROR_ACCESS_DENIED) { // denied: we have a console already
		return fmt.Errorf("attaching to its console: %w", err)
	}
	if attached {
		defer procFreeConsole.Call()
	}
	// Our own Ctrl-C handling stays as it was; Ctrl-Break goes to the
	// server's group only.
	if r, _, err := procGenerateConsoleCtrlEvent.Call(windows.CTRL_BREAK_EVENT, uintptr(pid)); r == 0 {
		return fmt.Errorf("GenerateConsoleCtrlEvent: %w", err)
	}
	return nil
}

// findOllama is the `ollama` on PATH, else where Ollama's installer puts
// it (per user, or for all users); "" when there is none.
func findOllama() string {
	if bin, err := exec.LookPath("ollama"); err == nil {
		return bin
	}
	for _, dir := range []string{
		filepath.Join(os.Getenv("LOCALAPPDATA"), "Programs", "Ollama"),
		filepath.Join(os.Getenv("ProgramFiles"), "Ollama"),
	} {
		if !filepath.IsAbs(dir) { // the variable was unset
			continue
		}
		bin := filepath.Join(dir, "ollama.exe")
		if fi, err := os.Stat(bin); err == nil && fi.Mode().IsRegular() {
			return bin
		}
	}
	return ""
}
