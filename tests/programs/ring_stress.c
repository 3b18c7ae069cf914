/* ring_stress.c: more threads than cores allocating in bursts, so that
 * they are preempted in the middle of events while the others go on: the
 * recorder's watermark (the ring protocol) must still merge every event in
 * time order, none lost.
 *
 * A child is forked first and both processes run the same: THREADS threads,
 * each ROUNDS rounds of a burst of 1 + round % 8 temporaries of BURST_SIZE
 * bytes (malloc, free at once), then one step of a chain the process's
 * threads share under a mutex: free the chain's block, allocate the next
 * (CHAIN_SIZE). Every 64 rounds a thread yields. Meanwhile another thread
 * sends the workers SIGUSR1 in turn every PERIOD_US; the handler spins for
 * SPIN_US (no allocation): a stop at any instruction, in the middle of an
 * event as anywhere else. main frees the last block.
 * Per process: THREADS * ROUNDS chain blocks (none temporary: a burst or
 * another thread comes between a block and its free), THREADS * the sum of
 * the bursts temporaries, nothing leaked from these lines.
 * With -s the child runs without membarrier(2): it makes the call fail
 * (seccomp) and execs the program again, so that its library writes the
 * rings with the fenced protocol while the parent's uses the light one.
 * usage: ring_stress [-s] THREADS ROUNDS
 */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__)
#define ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define ARCH AUDIT_ARCH_AARCH64
#endif

#define BURST_SIZE 48
#define CHAIN_SIZE 200
#define MAX_THREADS 64
#define PERIOD_US 50
#define SPIN_US 200

static pthread_mutex_t chain_lock = PTHREAD_MUTEX_INITIALIZER;
static void *chain;
static long rounds;
static atomic_long running;

static long long now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void on_signal(int sig)
{
	(void)sig;
	int saved = errno;
	long long end = now_ns() + SPIN_US * 1000;
	while (now_ns() < end)
		;
	errno = saved;
}

struct crowd {
	pthread_t *th;
	long n;
};

static void *disturber(void *arg)
{
	struct crowd *c = arg;
	struct timespec ts = { 0, PERIOD_US * 1000 };
	for (long i = 0; atomic_load(&running); i++) {
		pthread_kill(c->th[i % c->n], SIGUSR1);
		nanosleep(&ts, NULL);
	}
	return NULL;
}

static inline void use(void *p)
{
	__asm__ volatile("" : : "r"(p) : "memory");
}

static void *worker(void *arg)
{
	(void)arg;
	for (long r = 0; r < rounds; r++) {
		for (long i = 0; i <= r % 8; i++) {
			void *p = malloc(BURST_SIZE); /* LINE:burst */
			use(p);
			free(p);
		}
		pthread_mutex_lock(&chain_lock);
		free(chain);
		chain = malloc(CHAIN_SIZE); /* LINE:chain */
		use(chain);
		pthread_mutex_unlock(&chain_lock);
		if (r % 64 == 63)
			sched_yield();
	}
	atomic_fetch_sub(&running, 1);
	return NULL;
}

/* membarrier(2) fails with EPERM from now on, here and in what we exec */
static int deny_membarrier(void)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ARCH, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_membarrier, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { sizeof(f) / sizeof(f[0]), f };
	return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) ? -1 : 0;
}

int main(int argc, char **argv)
{
	int deny = argc > 1 && !strcmp(argv[1], "-s"), is_child = argc == 4 && !strcmp(argv[3], "child");
	long threads = argc == 3 + deny || is_child ? atol(argv[1 + deny]) : 0;
	rounds = threads ? atol(argv[2 + deny]) : 0;
	if (threads < 1 || threads > MAX_THREADS || rounds < 1) {
		fprintf(stderr, "usage: ring_stress [-s] THREADS(1-%d) ROUNDS\n", MAX_THREADS);
		return 2;
	}
	pid_t child = is_child ? 0 : fork();
	if (child < 0)
		return 2;
	if (child == 0 && deny) {
		char *args[] = { argv[0], argv[2], argv[3], "child", NULL };
		if (deny_membarrier() || syscall(SYS_membarrier, 0, 0, 0) != -1) /* MEMBARRIER_CMD_QUERY */
			_exit(3);
		execv("/proc/self/exe", args);
		_exit(3);
	}
	struct sigaction sa = { .sa_handler = on_signal, .sa_flags = SA_RESTART };
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGUSR1, &sa, NULL))
		return 2;
	pthread_t th[MAX_THREADS], dist;
	struct crowd crowd = { th, threads };
	atomic_store(&running, threads);
	for (long t = 0; t < threads; t++)
		if (pthread_create(&th[t], NULL, worker, NULL))
			return 2;
	if (pthread_create(&dist, NULL, disturber, &crowd))
		return 2;
	/* the workers are signalled until all are done, and joined only then */
	pthread_join(dist, NULL);
	for (long t = 0; t < threads; t++)
		pthread_join(th[t], NULL);
	free(chain);
	if (child == 0)
		return 0;
	int st;
	if (waitpid(child, &st, 0) != child || !WIFEXITED(st) || WEXITSTATUS(st))
		return 2;
	printf("ring_stress: done\n");
	return 0;
}
