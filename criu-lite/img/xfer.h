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
 *               non-zero status and the error.
 * The server writes each file under a hidden name and gives the files
 * their names only when everything has arrived, checked and synced, the
 * inventory last: a broken transfer leaves nothing that looks like a dump
 * (the hidden files are removed). */
#ifndef CR_IMG_XFER_H
#define CR_IMG_XFER_H

#include "os/error.h"

#include <stdint.h>

#define XFER_VERSION 1
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

/* Receives a dump from sock (accepted) into dirfd (which must hold no file
 * of the same names), answers the client, and removes what it wrote on
 * failure.
 * *files and *bytes get what arrived. */
int xfer_recv_dir(int sock, int dirfd, uint32_t *files, uint64_t *bytes, cr_error_t *err);

#endif
