package ollamatest

import (
	"os/exec"
	"time"
)

// process is a started server process. Its one goroutine waits for the
// process and closes exited; stop waits for that, so the goroutine never
// outlives the Server that owns it.
type process struct {
	cmd    *exec.Cmd
	exited chan struct{}
	err    error // cmd.Wait's result, readable once exited is closed
}

func startProcess(cmd *exec.Cmd) (*process, error) {
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &process{cmd: cmd, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// stop asks the process to exit (SIGTERM: Ollama then stops the runner
// subprocesses it started), kills it and its group after grace, and waits.
func (p *process) stop(grace time.Duration) {
	select {
	case <-p.exited:
	default:
		terminate(p.cmd)
		select {
		case <-p.exited:
		case <-time.After(grace):
			killGroup(p.cmd)
			<-p.exited
		}
	}
	// A runner that outlived a clean server exit would hold memory and the
	// model files; the group kill reaches it (no-op when none is left).
	killGroup(p.cmd)
}

// kill sends SIGKILL to the process group (server and runners) at once and
// waits for the server to be reaped.
func (p *process) kill() {
	killGroup(p.cmd)
	<-p.exited
}
