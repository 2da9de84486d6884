// Package platformtest checks the builds for other systems and the
// packages from the outside, as a user would meet them, on this Linux
// machine: the Windows build under Wine 10 (Debian trixie, in a chroot)
// against the real Ollama of the test tier, its tray and window on a
// virtual screen, and the .deb installed with apt into a fresh Debian
// chroot.
//
// The tests run only when the scripts that prepare those chroots say where
// they are (scripts/wine-test.sh, scripts/deb-test.sh); they need root for
// chroot.
package platformtest
