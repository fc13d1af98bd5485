/* The int8 multiply-accumulate peak of this CPU: THREADS threads (default: all online CPUs),
 * each retiring AVX-512 VNNI vpdpbusd (64 u8 x s8 MACs per instruction) on 12 independent
 * accumulators for ~1 s. Prints GMAC/s in total and per thread, so tools/bench/model.sh can
 * say how far the int8 graphs are from what the silicon does.
 *   build: cc -O2 -mavx512f -mavx512vnni -pthread vnni_peak.c -o vnni_peak
 *   usage: vnni_peak [THREADS] */
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define ACC 12
#define INNER 1000000L

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

struct job { long rounds; int sink; };

/* Twelve named accumulators, so that they stay in registers (an array went through memory). */
#define DP(x) x = _mm512_dpbusd_epi32(x, a, b)
static void *spin(void *arg) {
    struct job *j = arg;
    __m512i a = _mm512_set1_epi8(3), b = _mm512_set1_epi8(-2);
    __m512i c0 = _mm512_set1_epi32(0), c1 = _mm512_set1_epi32(1), c2 = _mm512_set1_epi32(2),
            c3 = _mm512_set1_epi32(3), c4 = _mm512_set1_epi32(4), c5 = _mm512_set1_epi32(5),
            c6 = _mm512_set1_epi32(6), c7 = _mm512_set1_epi32(7), c8 = _mm512_set1_epi32(8),
            c9 = _mm512_set1_epi32(9), c10 = _mm512_set1_epi32(10), c11 = _mm512_set1_epi32(11);
    for (long r = 0; r < j->rounds; r++)
        for (long n = 0; n < INNER / ACC; n++) {
            DP(c0); DP(c1); DP(c2); DP(c3); DP(c4); DP(c5);
            DP(c6); DP(c7); DP(c8); DP(c9); DP(c10); DP(c11);
        }
    __m512i sum = _mm512_add_epi32(_mm512_add_epi32(_mm512_add_epi32(c0, c1), _mm512_add_epi32(c2, c3)),
                                   _mm512_add_epi32(_mm512_add_epi32(c4, c5), _mm512_add_epi32(c6, c7)));
    sum = _mm512_add_epi32(sum, _mm512_add_epi32(_mm512_add_epi32(c8, c9), _mm512_add_epi32(c10, c11)));
    j->sink = _mm512_reduce_add_epi32(sum); /* keeps the loop from being optimised away */
    return NULL;
}

static double run(int threads, long rounds) {
    pthread_t t[256];
    struct job jobs[256];
    double start = now();
    for (int i = 0; i < threads; i++) {
        jobs[i].rounds = rounds;
        pthread_create(&t[i], NULL, spin, &jobs[i]);
    }
    for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
    return now() - start;
}

int main(int argc, char **argv) {
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512vnni")) {
        fprintf(stderr, "vnni_peak: this CPU has no AVX-512 VNNI\n");
        return 2;
    }
    int threads = argc > 1 ? atoi(argv[1]) : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (threads < 1 || threads > 256) threads = 1;
    run(threads, 50);  /* warm up: clocks settle */
    long rounds = 400;
    double s = run(threads, rounds);
    double macs = (double)threads * rounds * (INNER / ACC) * ACC * 64;
    printf("{\"threads\":%d,\"gmac_per_s\":%.1f,\"gmac_per_s_per_thread\":%.1f}\n", threads, macs / s / 1e9,
           macs / s / 1e9 / threads);
    return 0;
}
