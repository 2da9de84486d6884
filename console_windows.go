package main

import (
	"os"
	"slices"

	"golang.org/x/sys/windows"
)

// The Windows build is a GUI program (-H=windowsgui), so a double-click
// opens no console window; a command typed in a console then has nowhere
// to print. A subcommand attaches to the console it was started from, and
// prints there, unless its output is already redirected. The tray and the
// window do not attach: closing that console would end them.
func init() {
	if wantsConsole(os.Args[1:]) {
		attachParentConsole()
	}
}

// consoleWords are the arguments that make this a command line run.
var consoleWords = []string{
	"serve", "models", "status", "best", "load", "unload", "yield", "restore", "history", "version", "mcp",
	"-h", "-help", "--help",
}

// AttachConsole has no golang.org/x/sys binding.
var procAttachConsole = windows.NewLazySystemDLL("kernel32.dll").NewProc("AttachConsole")

const attachParentProcess = ^uintptr(0) // ATTACH_PARENT_PROCESS, (DWORD)-1

func wantsConsole(args []string) bool {
	return slices.ContainsFunc(args, func(a string) bool { return slices.Contains(consoleWords, a) })
}

func attachParentConsole() {
	if redirected(windows.STD_OUTPUT_HANDLE) && redirected(windows.STD_ERROR_HANDLE) {
		return // a pipe or a file: keep it
	}
	if r, _, _ := procAttachConsole.Call(attachParentProcess); r == 0 {
		return // started without a console (Explorer, the Run key)
	}
	if out := openConsole("CONOUT$", windows.GENERIC_READ|windows.GENERIC_WRITE); out != nil {
		if !redirected(windows.STD_OUTPUT_HANDLE) {
			os.Stdout = out
			_ = windows.SetStdHandle(windows.STD_OUTPUT_HANDLE, windows.Handle(out.Fd()))
		}
		if !redirected(windows.STD_ERROR_HANDLE) {
			os.Stderr = out
			_ = windows.SetStdHandle(windows.STD_ERROR_HANDLE, windows.Handle(out.Fd()))
		}
	}
	if in := openConsole("CONIN$", windows.GENERIC_READ|windows.GENERIC_WRITE); in != nil && !redirected(windows.STD_INPUT_HANDLE) {
		os.Stdin = in
		_ = windows.SetStdHandle(windows.STD_INPUT_HANDLE, windows.Handle(in.Fd()))
	}
}

// redirected: the standard handle is a file, a pipe or a console already.
func redirected(std uint32) bool {
	h, err := windows.GetStdHandle(std)
	if err != nil || h == 0 || h == windows.InvalidHandle {
		return false
	}
	t, err := windows.GetFileType(h)
	return err == nil && t != windows.FILE_TYPE_UNKNOWN
}

func openConsole(name string, access uint32) *os.File {
	p, err := windows.UTF16PtrFromString(name)
	if err != nil {
		return nil
	}
	h, err := windows.CreateFile(p, access, windows.FILE_SHARE_READ|windows.FILE_SHARE_WRITE, nil, windows.OPEN_EXISTING, 0, 0)
	if err != nil {
		return nil
	}
	return os.NewFile(uintptr(h), name)
}
