//go:build !wsbridge_minimal

package pages

// Minimal says this build serves no pages: false, it serves them all.
const Minimal = false
