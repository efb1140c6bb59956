################################################################################
#
# wsbridge
#
################################################################################
# Copy this directory (cp -rL) to package/wsbridge (or to a BR2_EXTERNAL tree) and
# add `source "package/wsbridge/Config.in"` to package/Config.in, under
# "Networking applications".

WSBRIDGE_VERSION = 0.1.0
WSBRIDGE_SITE = $(call github,wsbridge,wsbridge,v$(WSBRIDGE_VERSION))
# WSBRIDGE_LICENSE and WSBRIDGE_LICENSE_FILES (for `make legal-info`): the
# repository has no LICENSE file yet; set them when it does.

WSBRIDGE_GOMOD = github.com/wsbridge/wsbridge
WSBRIDGE_BUILD_TARGETS = cmd/wsbridge
WSBRIDGE_LDFLAGS = -X main.version=$(WSBRIDGE_VERSION)
# Pure Go resolver and user lookup: nothing loads libc's NSS at run time.
# No HTTP/2 (wsbridge speaks HTTP/1.1 only): 390 KB less, as make cross.
WSBRIDGE_TAGS = netgo osusergo nethttpomithttp2

# The init script and the unit next to this file are links to
# ../sysvinit and ../systemd: copy the directory with `cp -rL`.
define WSBRIDGE_INSTALL_INIT_SYSV
	$(INSTALL) -D -m 0755 $(WSBRIDGE_PKGDIR)/S50wsbridge \
		$(TARGET_DIR)/etc/init.d/S50wsbridge
endef

define WSBRIDGE_INSTALL_INIT_SYSTEMD
	$(INSTALL) -D -m 0644 $(WSBRIDGE_PKGDIR)/wsbridge.service \
		$(TARGET_DIR)/usr/lib/systemd/system/wsbridge.service
endef

$(eval $(golang-package))
