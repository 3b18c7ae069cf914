"""patch.py ROOT: adds ablation switches to a copy of the sources at ROOT.

Never run on the tree itself: bench/ablate/ablate.sh copies src/ to a
temporary directory first. Each switch removes (or replaces) one piece of
the library's per-event work, so the cost of that piece is the difference
in the target's CPU time:
  ABL_NO_CAPTURE   no stack capture (no unwinding, no interning)
  ABL_NO_INTERN    unwind, but do not intern the frames
  ABL_NO_RING      no event is written (and no clock read)
  ABL_CLOCK_ONLY   the clock is read, no event is written
  ABL_NO_USABLE    no malloc_usable_size call
  ABL_NO_MALLINFO  no mallinfo2 sampling
  ABL_FP           unwind by frame pointers instead of libunwind (only valid
                   where every frame keeps one: build with -fno-omit-frame-pointer)
A pattern that is no longer in the sources stops the script: update it.
"""
import sys
root = sys.argv[1]
def patch(path, old, new, count=1):
    s = open(path).read()
    if s.count(old) < 1:
        sys.exit(f"pattern not found in {path}: {old[:60]!r}")
    s = s.replace(old, new, count)
    open(path, 'w').write(s)
st = root + '/src/preload/stack.c'
patch(st, 'uint32_t pl_stack_capture(struct pl_thread *t, uint16_t *flags)\n{\n',
      'uint32_t pl_stack_capture(struct pl_thread *t, uint16_t *flags)\n{\n#ifdef ABL_NO_CAPTURE\n\treturn 0;\n#endif\n')
patch(st, '\tint n = unw_backtrace(buf, HS_MAX_DEPTH + 16);\n',
      '#ifdef ABL_FP\n\tint n = abl_fp_backtrace(buf, HS_MAX_DEPTH + 16);\n#else\n\tint n = unw_backtrace(buf, HS_MAX_DEPTH + 16);\n#endif\n#ifdef ABL_NO_INTERN\n\tif (n > 0) return 0;\n#endif\n')
patch(st, 'static struct hs_node *nodes;',
      '''#ifdef ABL_FP
/* frame-pointer walk: valid only where every frame keeps rbp */
static int abl_fp_backtrace(void **buf, int max)
{
	void **fp = __builtin_frame_address(0);
	int n = 0;
	while (fp && n < max) {
		void *ret = fp[1];
		if (!ret)
			break;
		buf[n++] = ret;
		void **next = (void **)fp[0];
		if (next <= fp || (char *)next - (char *)fp > (1 << 20))
			break;
		fp = next;
	}
	return n;
}
#endif
static struct hs_node *nodes;''')
rg = root + '/src/preload/ring.c'
patch(rg, '''int pl_event_begin(struct pl_thread *t, unsigned n, uint64_t *time_out)
{
''', '''int pl_event_begin(struct pl_thread *t, unsigned n, uint64_t *time_out)
{
#ifdef ABL_NO_RING
	(void)t; (void)n; (void)time_out;
	return -1;
#endif
#ifdef ABL_CLOCK_ONLY
	(void)t; (void)n;
	*time_out = pl_now();
	return -1;
#endif
''')
hk = root + '/src/preload/hooks.c'
patch(hk, '''	size_t usable = malloc_usable_size(p);''', '''#ifdef ABL_NO_USABLE
	size_t usable = size; (void)p;
#else
	size_t usable = malloc_usable_size(p);
#endif''')
sm = root + '/src/preload/sample.c'
patch(sm, '''void pl_sample_allocator(struct pl_thread *t, uint64_t now)
{
''', '''void pl_sample_allocator(struct pl_thread *t, uint64_t now)
{
#ifdef ABL_NO_MALLINFO
	(void)t; (void)now;
	return;
#endif
''')
