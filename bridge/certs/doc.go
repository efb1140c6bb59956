// Package certs holds the TLS certificate a listener serves and the
// client CAs it checks, and changes them without a restart: a Store keeps
// the pair it loaded last behind an atomic pointer, read by every new
// handshake through tls.Config's GetConfigForClient, so a reload changes
// the handshakes to come and never an open connection. Reload loads the
// files again (SIGHUP, in cmd/wsbridge); Watch does it when they change,
// by comparing each file's identity (device, inode, size, modification
// time, followed through symlinks) every interval, which sees an atomic
// rename and a symlink swap alike and needs no inotify on a board whose
// kernel may lack it. A pair that fails to load keeps the old one, and
// the error names the file.
//
// SelfSigned makes a first-boot pair where a board has none (ECDSA P-256,
// as OpenWrt's uhttpd does), written atomically with the key 0600.
//
// It is a leaf: it imports nothing of the project.
package certs
