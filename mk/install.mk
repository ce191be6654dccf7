# make install [PREFIX=/usr/local] [DESTDIR=...]: build/cr and its manual page.
#
#   $(DESTDIR)$(PREFIX)/bin/cr                 mode 0755
#   $(DESTDIR)$(PREFIX)/share/man/man1/cr.1    mode 0644
#
# make uninstall removes both.  DESTDIR stages the files for a package;
# nothing else is written outside it.

PREFIX  ?= /usr/local
BINDIR  ?= $(PREFIX)/bin
MANDIR  ?= $(PREFIX)/share/man
INSTALL ?= install

.PHONY: install install-files uninstall

install: deps
	@$(MAKE) --no-print-directory install-files

install-files: $(BUILD)/cr docs/cr.1
	$(INSTALL) -d -m 0755 $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1
	$(INSTALL) -m 0755 $(BUILD)/cr $(DESTDIR)$(BINDIR)/cr
	$(INSTALL) -m 0644 docs/cr.1 $(DESTDIR)$(MANDIR)/man1/cr.1

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/cr $(DESTDIR)$(MANDIR)/man1/cr.1
