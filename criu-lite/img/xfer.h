/* Sending a dump over TCP to a page server (cr page-server), which writes an
 * ordinary image directory from it.
 *
 * The protocol (all numbers little-endian), version XFER_VERSION:
 *   both sides  hello: "CRXFER\0\0", u32 version, u32 0; a different version
 *               on the other side ends the transfer, naming both;
 *   client      per file: u8 'F', u16 name length, the name (no '/', not
 *               starting with '.'), u32 mode, u64 size, then the bytes in
 *               batches of u32 length (1 to XFER_BATCH), u32 crc32 of the
 *               batch, the batch;
 *               at the end: u8 'E', u32 number of files;
 *   server      once every file is durable under its name: u32 status (0)
 *               and u16 length + a message (empty); on an error, a
 *               non-zero status and the error;
 *   client      (version 2) after a successful answer, a final dump that
 *               killed the tree sends u8 'C' (commit): the tree is gone
 *               from the source, so the images may be restored; any other
 *               dump just closes.
 * The server writes each file under a hidden name and gives the files
 * their names only when everything has arrived, checked and synced, the
 * inventory last: a broken transfer leaves nothing that looks like a dump
 * (the hidden files are removed). */
#ifndef CR_IMG_XFER_H
#define CR_IMG_XFER_H

#include "os/error.h"

#include <stdbool.h>
#include <stdint.h>

#define XFER_VERSION 2
#define XFER_BATCH   (1u << 20)
#define XFER_TIMEOUT_S 60   /* a peer silent this long has failed */

/* Connects to address:port (numeric IPv4 or IPv6) and exchanges hellos:
 * a dump connects before it freezes anything. */
int xfer_connect(const char *address, int port, cr_error_t *err);

/* Listens on address:port (numeric; port 0: one the kernel picks, put in
 * *bound). */
int xfer_listen(const char *address, int port, int *bound, cr_error_t *err);

/* Sends every regular file of dirfd but the logs (*.log) over sock (from
 * xfer_connect), the inventory files last, and waits for the server's word
 * that it holds them.  *bytes gets the number of file bytes sent. */
int xfer_send_dir(int sock, int dirfd, uint64_t *bytes, cr_error_t *err);

/* What the server checks of a dump once it is there whole, before the
 * client hears that it holds it (cr page-server --verify). */
struct xfer_check {
	int (*fn)(int dirfd, void *arg, cr_error_t *err);
	void *arg;
};

/* Receives a dump from sock (accepted) into dirfd (which must hold no file
 * of the same names), checks it (check, may be NULL) before any file has
 * its name there, answers the client,
 * and removes what it wrote on failure (the check's too: the client hears
 * its error).
 * *files and *bytes get what arrived. */
int xfer_recv_dir(int sock, int dirfd, const struct xfer_check *check, uint32_t *files, uint64_t *bytes,
		  cr_error_t *err);

/* The client's commit: its tree is gone (after xfer_send_dir, once the
 * dump has killed it). */
int xfer_send_commit(int sock, cr_error_t *err);

/* The server's wait for the commit after xfer_recv_dir: *committed is
 * false if the client closed without one. */
int xfer_await_commit(int sock, bool *committed, cr_error_t *err);

#endif
