package examples

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// repoRoot is the module's root, the source the package recipes build.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// copyRecipe copies the files of deploy/from into dir, following links as
// `cp -rL` does, keeping the execute bits.
func copyRecipe(t *testing.T, from, dir string) {
	t.Helper()
	src := filepath.Join("deploy", from)
	err := filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := os.Stat(path) // through a link
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		writeFile(t, dir, rel, readRecipe(t, filepath.Join(from, rel)), info.Mode().Perm())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// checkInstalled checks root/path is a copy of the recipe file want with
// mode perm.
func checkInstalled(t *testing.T, root, path, want string, perm os.FileMode) {
	t.Helper()
	info, err := os.Stat(filepath.Join(root, path))
	if err != nil {
		t.Errorf("not installed: %v", err)
		return
	}
	if info.Mode().Perm() != perm {
		t.Errorf("%s installed with mode %v, want %v", path, info.Mode().Perm(), perm)
	}
	if got, _ := os.ReadFile(filepath.Join(root, path)); string(got) != readRecipe(t, want) {
		t.Errorf("%s is not deploy/%s", path, want)
	}
}

// checkVersion runs an installed wsbridge and checks the version the
// recipe stamped into it.
func checkVersion(t *testing.T, bin, want string) {
	t.Helper()
	if out, errOut, code := run(t, "", nil, bin, "--version"); code != 0 || out != "wsbridge "+want+"\n" {
		t.Errorf("%s --version: exit %d, %q %q; want %q", bin, code, out, errOut, "wsbridge "+want)
	}
}

// TestOpenWrtPackage builds and installs the OpenWrt package with GNU make
// and stand-ins for OpenWrt's includes: a package Makefile that misses a
// required variable, names a package outside its module, installs the
// wrong files or stamps no version fails here.
func TestOpenWrtPackage(t *testing.T) {
	mk := requireTool(t, "make", "make")
	tmp := t.TempDir()
	pkg := filepath.Join(tmp, "feed", "net", "wsbridge")
	copyRecipe(t, "openwrt", pkg)
	writeFile(t, tmp, "feed/lang/golang/golang-package.mk", openwrtGolang, 0o644)
	writeFile(t, tmp, "top/rules.mk", openwrtRules, 0o644)
	writeFile(t, tmp, "top/include/package.mk", openwrtPackage, 0o644)
	root := filepath.Join(tmp, "root")
	vars := []string{"TOPDIR=" + filepath.Join(tmp, "top"), "BUILD_DIR=" + filepath.Join(tmp, "build"),
		"IPKG_ROOT=" + root, "WSBRIDGE_SRC=" + repoRoot(t)}

	if out, errOut, code := runFor(t, buildTimeout, pkg, nil, append([]string{mk, "install"}, vars...)...); code != 0 {
		t.Fatalf("make install: exit %d\n%s%s", code, out, errOut)
	}
	checkVersion(t, filepath.Join(root, "usr/bin/wsbridge"), "0.1.0-1")
	checkInstalled(t, root, "etc/init.d/wsbridge", "openwrt/files/wsbridge.init", 0o755)
	checkInstalled(t, root, "etc/config/wsbridge", "openwrt/files/wsbridge.config", 0o600)

	// opkg keeps a user's edits of the conffiles across upgrades.
	out, errOut, code := run(t, pkg, nil, append([]string{mk, "-s", "conffiles"}, vars...)...)
	if code != 0 {
		t.Fatalf("make conffiles: exit %d\n%s%s", code, out, errOut)
	}
	if got := strings.Fields(out); !reflect.DeepEqual(got, []string{"/etc/config/wsbridge"}) {
		t.Errorf("conffiles %q, want /etc/config/wsbridge", got)
	}
}

// TestBuildrootPackage builds and installs the Buildroot package with GNU
// make and a stand-in for golang-package, then checks its Config.in with
// kconfiglib, Python's implementation of the kernel's Kconfig language.
func TestBuildrootPackage(t *testing.T) {
	mk := requireTool(t, "make", "make")
	tmp := t.TempDir()
	copyRecipe(t, "buildroot", filepath.Join(tmp, "package", "wsbridge"))
	writeFile(t, tmp, "Makefile", buildrootMakefile, 0o644)
	target := filepath.Join(tmp, "target")
	vars := []string{"BUILD_DIR=" + filepath.Join(tmp, "build"), "TARGET_DIR=" + target, "WSBRIDGE_SRC=" + repoRoot(t)}
	make := func(goals ...string) string {
		t.Helper()
		// install-target compiles wsbridge; the rest only prints.
		out, errOut, code := runFor(t, buildTimeout, tmp, nil, append(append([]string{mk, "-s"}, goals...), vars...)...)
		if code != 0 {
			t.Fatalf("make %s: exit %d\n%s%s", strings.Join(goals, " "), code, out, errOut)
		}
		return out
	}

	version := strings.TrimSpace(make("print-VERSION"))
	if site, want := strings.TrimSpace(make("print-SITE")), "https://github.com/wsbridge/wsbridge/archive/v"+version; site != want {
		t.Errorf("WSBRIDGE_SITE is %s, want %s", site, want)
	}
	make("install-target", "install-sysv", "install-systemd")
	checkVersion(t, filepath.Join(target, "usr/bin/wsbridge"), version)
	checkInstalled(t, target, "etc/init.d/S50wsbridge", "sysvinit/S50wsbridge", 0o755)
	checkInstalled(t, target, "usr/lib/systemd/system/wsbridge.service", "systemd/wsbridge.service", 0o644)

	t.Run("Config.in", func(t *testing.T) { checkKconfig(t, tmp) })
}

// checkKconfig reads package/wsbridge/Config.in under dir as Buildroot's
// menuconfig does: no warnings, and BR2_PACKAGE_WSBRIDGE can be chosen
// only where Buildroot's Go supports the target architecture.
func checkKconfig(t *testing.T, dir string) {
	// Debian's python, which python3-kconfiglib installs for, whatever
	// else PATH finds first.
	python := "/usr/bin/python3"
	if _, err := os.Stat(python); err != nil {
		requireTool(t, python, "python3")
	}
	if _, _, code := run(t, "", nil, python, "-c", "import kconfiglib"); code != 0 {
		msg := "python3 cannot import kconfiglib: install it with `apt-get install python3-kconfiglib` (or `make test-deps`)"
		if inCI() {
			t.Fatal(msg)
		}
		t.Skip("SKIPPING: " + msg)
	}
	writeFile(t, dir, "Config.in", `mainmenu "stand-in for Buildroot"
config BR2_PACKAGE_HOST_GO_TARGET_ARCH_SUPPORTS
	bool "Go supports the target"
source "package/wsbridge/Config.in"
`, 0o644)
	script := writeFile(t, dir, "check.py", `import kconfiglib
kc = kconfiglib.Kconfig("Config.in", warn_to_stderr=False)
for w in kc.warnings:
    print("warning:", w)
arch, pkg = kc.syms["BR2_PACKAGE_HOST_GO_TARGET_ARCH_SUPPORTS"], kc.syms["BR2_PACKAGE_WSBRIDGE"]
for a in ("n", "y"):
    arch.set_value(a)
    pkg.set_value("y")
    print("arch=%s wsbridge=%s" % (a, pkg.str_value))
node = pkg.nodes[0]
print("prompt:", node.prompt[0])
print("help:", (node.help or "").split("\n")[0])
`, 0o644)
	out, errOut, code := run(t, dir, []string{"srctree=" + dir}, python, script)
	want := "arch=n wsbridge=n\narch=y wsbridge=y\nprompt: wsbridge\nhelp: Turns a program that reads stdin and writes stdout into a\n"
	if code != 0 || out != want {
		t.Errorf("kconfiglib: exit %d\n%s%s\nwant:\n%s", code, out, errOut, want)
	}
}
