package examples

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wsbridge/wsbridge/bridge/wstest"
)

// The recipes of deploy/, each checked by the tool that reads it on a
// board or in a build tree: systemd-analyze for the unit, dash and BusyBox
// sh running the init script for real, the procd script under stand-ins
// for OpenWrt's shell functions, GNU make for the package makefiles, and
// kconfiglib for Buildroot's Config.in.

// run runs argv in dir with env added, and returns its output and exit
// code; it fails the test if it cannot start or outlives runTimeout.
func run(t *testing.T, dir string, env []string, argv ...string) (stdout, stderr string, code int) {
	t.Helper()
	return runFor(t, runTimeout, dir, env, argv...)
}

// runFor is run with its own time limit, for steps that compile.
func runFor(t *testing.T, limit time.Duration, dir string, env []string, argv ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	var out, errOut wstest.Buffer
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir, cmd.Env = dir, append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	cmd.WaitDelay = ioTimeout
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("%s still running after %v (stderr %q)", strings.Join(argv, " "), limit, errOut.String())
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return out.String(), errOut.String(), code
}

// writeFile writes content to dir/name, making the directories, and
// returns the path.
func writeFile(t *testing.T, dir, name, content string, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	return path
}

// readRecipe returns a file of deploy/, following links as `cp -rL` does.
func readRecipe(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("deploy", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestSystemdUnit(t *testing.T) {
	analyze := requireTool(t, "systemd-analyze", "systemd")
	bin := wsbridgeBinary(t)
	unit := readRecipe(t, "systemd/wsbridge.service")
	// verify insists the ExecStart program exists: point it at the one
	// just built.
	local := strings.Replace(unit, "ExecStart=/usr/bin/wsbridge ", "ExecStart="+bin+" ", 1)
	if local == unit {
		t.Fatal("the unit no longer starts /usr/bin/wsbridge; update this test")
	}
	path := writeFile(t, t.TempDir(), "wsbridge.service", local, 0o644)

	// Exit 0 is not enough: an unknown or misspelt key is a warning.
	if out, errOut, code := run(t, "", nil, analyze, "verify", path); code != 0 || errOut != "" {
		t.Errorf("systemd-analyze verify: exit %d\n%s%s", code, out, errOut)
	}
	// The sandbox: systemd's own exposure score, 0 (locked down) to 10,
	// must stay at most 2.0 ("OK"); the threshold is in tenths.
	if out, errOut, code := run(t, "", nil, analyze, "security", "--offline=true", "--threshold=20", path); code != 0 {
		t.Errorf("systemd-analyze security: exposure above 2.0 (exit %d)\n%s%s", code, lastLines(out, 3), errOut)
	}
	// Stopping must reach the children wsbridge started: not KillMode=process
	// or none, which would leave them running.
	if !strings.Contains(unit, "\nKillMode=mixed\n") && !strings.Contains(unit, "\nKillMode=control-group\n") {
		t.Error("the unit's KillMode is neither mixed nor control-group: stopping it could leave children behind")
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// shells are the shells an init script must run under: dash (Debian's
// /bin/sh) and BusyBox's ash, as on most boards.
func shells(t *testing.T) []shellRun {
	return []shellRun{
		{"dash", func(t *testing.T) []string { return []string{requireTool(t, "dash", "dash")} }},
		{"busybox", func(t *testing.T) []string { return []string{requireTool(t, "busybox", "busybox"), "sh"} }},
	}
}

// alive reports whether pid is a process that has not exited: a zombie
// waiting for init to reap it has.
func alive(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return syscall.Kill(pid, 0) == nil
	}
	s := string(stat)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(fields) > 0 && fields[0] != "Z" && fields[0] != "X"
}

// procdStubs stand in for what /etc/rc.common and /lib/functions.sh give a
// procd init script on OpenWrt. The UCI functions keep options in
// CONFIG_<section>_<option> variables and load a file by sourcing it, as
// functions.sh does; the procd functions print what they are given:
// "instance NAME", one "arg WORD" per word of the command, "param NAME
// VALUES", "end".
const procdStubs = `
CONFIG_SECTIONS=
CONFIG_NUM=0
config() {
	CONFIG_NUM=$((CONFIG_NUM + 1))
	CONFIG_SECTION="${2:-cfg$CONFIG_NUM}"
	CONFIG_SECTIONS="$CONFIG_SECTIONS $CONFIG_SECTION"
	eval "CONFIG_${CONFIG_SECTION}_TYPE=\$1"
}
option() { eval "CONFIG_${CONFIG_SECTION}_$1=\$2"; }
list() {
	eval "n=\$((\${CONFIG_${CONFIG_SECTION}_$1_LENGTH:-0} + 1))"
	eval "CONFIG_${CONFIG_SECTION}_$1_ITEM$n=\$2; CONFIG_${CONFIG_SECTION}_$1_LENGTH=$n"
}
config_load() { . "$UCI_CONFIG_DIR/$1"; }
config_get() { eval "$1=\${CONFIG_$2_$3:-\$4}"; }
config_get_bool() {
	config_get "$1" "$2" "$3" "$4"
	eval "v=\$$1"
	case "$v" in
	1 | on | true | yes | enabled) eval "$1=1" ;;
	0 | off | false | no | disabled) eval "$1=0" ;;
	*) eval "$1=\$4" ;;
	esac
}
config_foreach() {
	fn="$1" type="$2"
	for s in $CONFIG_SECTIONS; do
		eval "st=\$CONFIG_${s}_TYPE"
		[ "$st" = "$type" ] && "$fn" "$s"
	done
	return 0
}
config_list_foreach() {
	eval "len=\${CONFIG_$1_$2_LENGTH:-0}"
	i=1
	while [ "$i" -le "$len" ]; do
		eval "item=\$CONFIG_$1_$2_ITEM$i"
		"$3" "$item"
		i=$((i + 1))
	done
}
procd_open_instance() { echo "instance $1"; }
procd_set_param() {
	name="$1"
	shift
	if [ "$name" = command ]; then
		for a in "$@"; do echo "arg $a"; done
	else
		echo "param $name $*"
	fi
}
procd_append_param() { procd_set_param "$@"; }
procd_close_instance() { echo end; }
procd_add_reload_trigger() { echo "trigger $*"; }
`

// OpenWrt's build system, reduced to what the package Makefile uses: the
// variables of rules.mk, BuildPackage checking what every package must
// set, and golang-package.mk building GO_PKG_BUILD_PKG with GO_PKG_TAGS,
// GO_PKG_LDFLAGS and GO_PKG_LDFLAGS_X as its go build does.
const (
	openwrtRules = `INCLUDE_DIR:=$(TOPDIR)/include
INSTALL_DIR:=install -d -m0755
INSTALL_BIN:=install -m0755
INSTALL_CONF:=install -m0600
`
	openwrtPackage = `PKG_BUILD_DIR:=$(BUILD_DIR)/$(PKG_NAME)-$(PKG_VERSION)
define BuildPackage
$(foreach v,PKG_NAME PKG_VERSION PKG_RELEASE PKG_SOURCE PKG_SOURCE_URL PKG_HASH PKG_MAINTAINER,$(if $($(v)),,$(error $(v) is not set)))
$(if $(value Package/$(1)),,$(error Package/$(1) is not defined))
$(eval $(Package/$(1)))
$(foreach v,SECTION CATEGORY TITLE URL DEPENDS,$(if $($(v)),,$(error Package/$(1) does not set $(v))))
$(if $(value Package/$(1)/description),,$(error Package/$(1)/description is not defined))
PACKAGE_NAME:=$(1)
endef
install: compile
	$(call Package/$(PACKAGE_NAME)/install,$(IPKG_ROOT))
conffiles:
	@:$(info $(Package/$(PACKAGE_NAME)/conffiles))
`
	openwrtGolang = `GO_ARCH_DEPENDS:=@(aarch64||arm||i386||i686||mips||mips64||mips64el||mipsel||powerpc64||x86_64)
GO_PKG_BUILD_BIN_DIR=$(PKG_BUILD_DIR)/bin
define GoBinPackage
$(if $(GO_PKG),,$(error GO_PKG is not set))
$(if $(filter $(GO_PKG) $(GO_PKG)/%,$(GO_PKG_BUILD_PKG)),,$(error GO_PKG_BUILD_PKG is not in GO_PKG))
endef
define GoPackage/Package/Install/Bin
	$(INSTALL_DIR) $(1)/usr/bin
	$(INSTALL_BIN) $(GO_PKG_BUILD_BIN_DIR)/* $(1)/usr/bin/
endef
compile:
	mkdir -p $(GO_PKG_BUILD_BIN_DIR)
	cd $(WSBRIDGE_SRC) && CGO_ENABLED=0 go build -trimpath -tags "$(GO_PKG_TAGS)" -ldflags "$(GO_PKG_LDFLAGS) $(patsubst %,-X %,$(GO_PKG_LDFLAGS_X))" -o $(GO_PKG_BUILD_BIN_DIR)/ $(GO_PKG_BUILD_PKG)
`
)

// Buildroot's golang-package, reduced likewise: the package name from the
// .mk file's name, the variables every Go package sets, go build of each
// of <PKG>_BUILD_TARGETS in <PKG>_GOMOD with <PKG>_TAGS and <PKG>_LDFLAGS,
// and the install hooks.
const buildrootMakefile = `github = https://github.com/$(1)/$(2)/archive/$(3)
INSTALL = install
define inner-golang-package
$$(foreach v,VERSION SITE GOMOD BUILD_TARGETS,$$(if $$($(2)_$$(v)),,$$(error $(2)_$$(v) is not set)))
$(2)_PKGDIR := $(dir $(lastword $(MAKEFILE_LIST)))
$(2)_INSTALL_BINS ?= $(1)
build:
	$$(foreach t,$$($(2)_BUILD_TARGETS),cd $$(WSBRIDGE_SRC) && CGO_ENABLED=0 go build -trimpath -tags "$$($(2)_TAGS)" -ldflags "$$($(2)_LDFLAGS)" -o $$(BUILD_DIR)/bin/ ./$$(t) &&) true
install-target: build
	$$(foreach b,$$($(2)_INSTALL_BINS),$$(INSTALL) -D -m 0755 $$(BUILD_DIR)/bin/$$(b) $$(TARGET_DIR)/usr/bin/$$(b) &&) true
install-sysv: ; $$($(2)_INSTALL_INIT_SYSV)
install-systemd: ; $$($(2)_INSTALL_INIT_SYSTEMD)
print-%: ; @echo '$$($(2)_$$*)'
endef
golang-package = $(call inner-golang-package,$(basename $(notdir $(lastword $(MAKEFILE_LIST)))),$(shell echo $(basename $(notdir $(lastword $(MAKEFILE_LIST)))) | tr a-z- A-Z_))
include package/wsbridge/wsbridge.mk
`
