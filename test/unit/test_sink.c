/* The sink: threaded or not, pieces reach the consumer whole and in order;
 * a waited-for mark means those pieces were consumed; a failure stops the
 * consumer and is kept. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "img/sink.h"
#include "os/util.h"

#define TOTAL ((9u << 20) + 12345u)

struct crc_state {
	uint32_t crc;
	size_t pieces;
	size_t fail_at;   /* 1-based piece that fails with ENOSPC; 0 never */
	size_t bad_tags;  /* pieces that arrived without the tag they were added with */
};

static int crc_consumer(void *arg, const void *p, size_t len, uint64_t tag)
{
	struct crc_state *st = arg;

	if (tag != len * 3)
		st->bad_tags++;   /* no cmocka assert off the main thread */
	if (++st->pieces == st->fail_at)
		return ENOSPC;
	st->crc = (uint32_t)crc32_z(st->crc, p, len);
	return 0;
}

static unsigned char *random_bytes(size_t n, uint32_t seed)
{
	unsigned char *p = malloc(n);

	assert_non_null(p);
	for (size_t i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		p[i] = (unsigned char)(seed >> 23);
	}
	return p;
}

static void crc_in_pieces(bool threaded, const unsigned char *data, size_t total, struct crc_state *st)
{
	static const size_t sizes[] = { 1, SINK_COPY_MAX - 1, SINK_COPY_MAX, SINK_COPY_MAX + 1, 0, 4096,
					(1u << 20) + 3, 17, 3u << 20 };
	struct sink *s = sink_open(crc_consumer, st, threaded);

	assert_true(sink_threaded(s) == threaded);
	for (size_t off = 0, i = 0; off < total; i = (i + 1) % ARRAY_SIZE(sizes)) {
		size_t n = sizes[i] < total - off ? sizes[i] : total - off;

		sink_add(s, data + off, n, n * 3);
		off += n;
	}
	sink_settle(s);
	assert_int_equal(sink_failure(s), st->fail_at ? ENOSPC : 0);
	sink_close(s);
	assert_int_equal(st->bad_tags, 0);
}

static void test_in_order_threaded_or_not(void **state)
{
	unsigned char *data = random_bytes(TOTAL, 1);
	uint32_t want = (uint32_t)crc32_z(0, data, TOTAL);

	(void)state;
	for (int threaded = 0; threaded < 2; threaded++) {
		struct crc_state st = { 0 };

		crc_in_pieces(threaded, data, TOTAL, &st);
		assert_int_equal(st.crc, want);
	}
	free(data);
}

/* After a failure nothing more is consumed, and the failure is reported. */
static void test_failure_stops_consumer(void **state)
{
	unsigned char *data = random_bytes(TOTAL, 2);

	(void)state;
	for (int threaded = 0; threaded < 2; threaded++) {
		struct crc_state st = { .fail_at = 3 };

		crc_in_pieces(threaded, data, TOTAL, &st);
		assert_int_equal(st.pieces, 3);
		assert_int_equal(st.crc, (uint32_t)crc32_z(0, data, 1 + SINK_COPY_MAX - 1));
	}
	free(data);
}

/* One buffer reused for every piece: correct only if each wait really
 * waits for the piece before the buffer is overwritten. */
static void test_wait_protects_reused_buffer(void **state)
{
	const size_t piece = 2u << 20;
	unsigned char *data = random_bytes(8 * piece, 3), *buf = malloc(piece);
	struct crc_state st = { 0 };
	struct sink *s = NULL;

	(void)state;
	assert_non_null(buf);
	s = sink_open(crc_consumer, &st, true);
	for (size_t i = 0; i < 8; i++) {
		uint64_t mark;

		memcpy(buf, data + i * piece, piece);
		sink_add(s, buf, piece, piece * 3);
		mark = sink_mark(s);
		assert_int_equal(mark, i + 1);
		sink_wait(s, mark);
	}
	memset(buf, 0, piece);
	sink_close(s);
	assert_int_equal(st.crc, (uint32_t)crc32_z(0, data, 8 * piece));
	free(buf);
	free(data);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_in_order_threaded_or_not),
		cmocka_unit_test(test_failure_stops_consumer),
		cmocka_unit_test(test_wait_protects_reused_buffer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
