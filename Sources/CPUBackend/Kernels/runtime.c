/* The artifact's ABI entry points (kiln.h). Compiled for the baseline of the
   target architecture, never with the variant flags: this code must run on any
   CPU of the architecture to say which instruction sets are missing instead
   of dying of SIGILL. It uses no system header (see kiln_libc.h): the few
   operating-system calls it needs are declared here, per OS. */
#define KILN_BUILDING_ARTIFACT 1
#include "kiln.h"
#include "kiln_libc.h"
#include "kiln_model_info.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#if defined(_WIN32)
typedef void *kiln_handle;
#define KILN_WINAPI __stdcall
__declspec(dllimport) kiln_handle KILN_WINAPI CreateFileA(const char *, unsigned long, unsigned long, void *, unsigned long,
                                    unsigned long, kiln_handle);
__declspec(dllimport) int KILN_WINAPI ReadFile(kiln_handle, void *, unsigned long, unsigned long *, void *);
__declspec(dllimport) int KILN_WINAPI CloseHandle(kiln_handle);
__declspec(dllimport) kiln_handle KILN_WINAPI GetProcessHeap(void);
__declspec(dllimport) void *KILN_WINAPI HeapAlloc(kiln_handle, unsigned long, size_t);
__declspec(dllimport) int KILN_WINAPI HeapFree(kiln_handle, unsigned long, void *);
__declspec(dllimport) int KILN_WINAPI GetModuleHandleExA(unsigned long, const char *, kiln_handle *);
__declspec(dllimport) unsigned long KILN_WINAPI GetModuleFileNameA(kiln_handle, char *, unsigned long);
/* The MSVC ABI references this symbol from any object that uses floating point. */
int _fltused = 0;
#else
int open(const char *, int, ...);
ptrdiff_t read(int, void *, size_t);
int close(int);
void *malloc(size_t);
void free(void *);
int posix_memalign(void **, size_t, size_t);
int madvise(void *, size_t, int);
#define KILN_MADV_HUGEPAGE 14 /* Linux; elsewhere the call fails and changes nothing */
typedef struct {
  const char *dli_fname;
  void *dli_fbase;
  const char *dli_sname;
  void *dli_saddr;
} kiln_dl_info;
int dladdr(const void *, kiln_dl_info *);
#if defined(__arm__) || defined(__aarch64__)
unsigned long getauxval(unsigned long);
#endif
#endif

/* Threads: glibc Linux only for now (the pool is found through thread-local storage, which Windows and
   Android artifacts would need a C runtime for). Elsewhere kiln_create's thread count is taken as 1. */
#if !defined(_WIN32) && !defined(__ANDROID__)
#define KILN_HAVE_THREADS 1
/* Opaque storage at least as large and aligned as glibc's pthread types on every architecture. */
typedef struct {
  _Alignas(16) unsigned char bytes[128];
} kiln_pthread_sync;
typedef unsigned long kiln_pthread_t;
int pthread_create(kiln_pthread_t *, const void *, void *(*)(void *), void *);
int pthread_join(kiln_pthread_t, void **);
int pthread_mutex_init(kiln_pthread_sync *, const void *);
int pthread_mutex_destroy(kiln_pthread_sync *);
int pthread_mutex_lock(kiln_pthread_sync *);
int pthread_mutex_unlock(kiln_pthread_sync *);
int pthread_cond_init(kiln_pthread_sync *, const void *);
int pthread_cond_destroy(kiln_pthread_sync *);
int pthread_cond_wait(kiln_pthread_sync *, kiln_pthread_sync *);
int pthread_cond_broadcast(kiln_pthread_sync *);
int sched_yield(void);
int sched_getcpu(void);
int sched_getaffinity(int, size_t, void *);
int pthread_setaffinity_np(kiln_pthread_t, size_t, const void *);
#define KILN_MAX_THREADS 64
/* glibc's clock_gettime takes a struct of two longs on every architecture (the 32-bit symbol too). */
typedef struct {
  long seconds, nanoseconds;
} kiln_timespec;
int clock_gettime(int, kiln_timespec *);
#define KILN_CLOCK_MONOTONIC 1
#endif

#if KILN_HAVE_THREADS
/* A pool created with the model: `workers` threads sleep until kiln_rt_parallel posts a job; whoever is
   awake (the caller always) takes its tasks one at a time. The caller waits for the tasks, never for a
   worker to wake, so a worker the OS is slow to schedule costs nothing but its help. */
typedef struct {
  kiln_pthread_sync lock, wake, finished;
  kiln_pthread_t threads[KILN_MAX_THREADS];
  int workers, stopping;
  int caller_cpu;           /* the CPU the workers were last kept off (keep_off_cpu) */
  unsigned long generation; /* bumped for each job */
  int active;               /* workers inside the current job's tasks */
  void (*task)(void *, size_t);
  void *context;
  size_t tasks, next, done;
} kiln_pool;
#endif

struct kiln_model {
  const kiln_model_info *info;
  const kiln_variant_info *variant;
  uint8_t *weights;
  uint8_t *arena;
  int threads;
#if KILN_HAVE_THREADS
  kiln_pool *pool;
  uint64_t *profile; /* kiln_profile's sums, or NULL */
#endif
};

#if KILN_HAVE_THREADS
/* The workers may run on any CPU the thread running the model may but the one it is on, when that leaves
   them one. A worker watching for jobs is always runnable and a new thread starts on its creator's CPU, so
   Linux left the caller and the worker taking turns on one CPU for tens of milliseconds while another idled:
   from a C host, 2 threads ran the MLP at one thread's speed (19-20 us a run, 10 processes of 10) until
   then; kept off the caller's CPU, at twice it (9-11 us, 10 of 10). kiln_run checks the caller's CPU
   (sched_getcpu, no system call) and moves the workers again only when it changed. */
static void keep_off_cpu(kiln_pool *pool, int cpu) {
  pool->caller_cpu = cpu;
  unsigned long mask[16] = {0}; /* glibc's cpu_set_t: 1024 CPUs */
  int bits = (int)(8 * sizeof mask[0]);
  if (cpu < 0 || cpu >= 1024 || sched_getaffinity(0, sizeof mask, mask) != 0) return;
  unsigned long *word = &mask[cpu / bits], bit = 1ul << (cpu % bits);
  if (!(*word & bit)) return;
  *word &= ~bit;
  int others = 0;
  for (int i = 0; i < 16; i++) others |= mask[i] != 0;
  if (!others) return;
  for (int i = 0; i < pool->workers; i++) (void)pthread_setaffinity_np(pool->threads[i], sizeof mask, mask);
}

/* The pool of the model whose kiln_run is on this thread (none: run everything here). */
static _Thread_local kiln_pool *current_pool;

static void pool_drain(kiln_pool *pool) {
  for (;;) {
    size_t t = __atomic_fetch_add(&pool->next, 1, __ATOMIC_RELAXED);
    if (t >= pool->tasks) return;
    pool->task(pool->context, t);
    if (__atomic_add_fetch(&pool->done, 1, __ATOMIC_ACQ_REL) == pool->tasks) {
      pthread_mutex_lock(&pool->lock);
      pthread_cond_broadcast(&pool->finished);
      pthread_mutex_unlock(&pool->lock);
    }
  }
}

/* A worker that has just finished a job watches for the next one this many times before it sleeps: waking a
   sleeping thread costs tens of microseconds here, and a model posts its jobs back to back. */
#define KILN_SPINS 20000
/* How long kiln_rt_parallel's caller watches before it sleeps (below). */
#ifndef KILN_CALLER_SPINS
#define KILN_CALLER_SPINS KILN_SPINS
#endif

/* One step of a watch loop: a pause, and every KILN_YIELD_SPINS steps a sched_yield, so that a watcher sharing
   its CPU with the thread it waits for (more threads asked for than CPUs, or a container of one CPU) hands the
   CPU over instead of spinning out its time slice; with a CPU to itself the call returns at once. */
#ifndef KILN_YIELD_SPINS
#define KILN_YIELD_SPINS 256
#endif
static inline void spin_pause(int spin) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__) || (defined(__arm__) && __ARM_ARCH >= 7)
  __asm__ __volatile__("yield");
#endif
  if (spin % KILN_YIELD_SPINS == KILN_YIELD_SPINS - 1) sched_yield();
}

static void *pool_worker(void *argument) {
  kiln_pool *pool = argument;
  unsigned long seen = 0;
  for (;;) {
    for (int spin = 0; spin < KILN_SPINS; spin++) {
      if (__atomic_load_n(&pool->generation, __ATOMIC_ACQUIRE) != seen ||
          __atomic_load_n(&pool->stopping, __ATOMIC_RELAXED))
        break;
      spin_pause(spin);
    }
    pthread_mutex_lock(&pool->lock);
    while (pool->generation == seen && !pool->stopping) pthread_cond_wait(&pool->wake, &pool->lock);
    if (pool->stopping) {
      pthread_mutex_unlock(&pool->lock);
      return NULL;
    }
    seen = pool->generation;
    __atomic_add_fetch(&pool->active, 1, __ATOMIC_ACQ_REL);
    pthread_mutex_unlock(&pool->lock);
    pool_drain(pool);
    pthread_mutex_lock(&pool->lock);
    if (__atomic_sub_fetch(&pool->active, 1, __ATOMIC_ACQ_REL) == 0) pthread_cond_broadcast(&pool->finished);
    pthread_mutex_unlock(&pool->lock);
  }
}
#endif

#if KILN_HAVE_THREADS
/* The profile kiln_run is taking on this thread: per-mark sums, and when the last mark was. */
static _Thread_local uint64_t *profile_sums;
static _Thread_local uint64_t profile_last;

static uint64_t now_nanoseconds(void) {
  kiln_timespec t;
  clock_gettime(KILN_CLOCK_MONOTONIC, &t);
  return (uint64_t)t.seconds * 1000000000u + (uint64_t)t.nanoseconds;
}
#endif

void kiln_rt_mark(int node) {
#if KILN_HAVE_THREADS
  if (!profile_sums) return;
  uint64_t now = now_nanoseconds();
  profile_sums[node] += now - profile_last;
  profile_last = now;
#else
  (void)node;
#endif
}

int kiln_rt_threads(void) {
#if KILN_HAVE_THREADS
  return current_pool ? current_pool->workers + 1 : 1;
#else
  return 1;
#endif
}

void kiln_rt_parallel(size_t tasks, void (*task)(void *, size_t), void *context) {
#if KILN_HAVE_THREADS
  kiln_pool *pool = current_pool;
  if (pool && tasks > 1) {
    /* A worker that woke late for the last job may still be looking at it. The caller watches for that,
       and below for its job's last task, before it sleeps: a sleep and a wake-up cost tens of microseconds,
       more than most of a model's steps take from the second thread. */
    for (int spin = 0; spin < KILN_CALLER_SPINS && __atomic_load_n(&pool->active, __ATOMIC_ACQUIRE) > 0; spin++)
      spin_pause(spin);
    pthread_mutex_lock(&pool->lock);
    while (__atomic_load_n(&pool->active, __ATOMIC_ACQUIRE) > 0) pthread_cond_wait(&pool->finished, &pool->lock);
    pool->task = task;
    pool->context = context;
    pool->tasks = tasks;
    pool->next = 0;
    pool->done = 0;
    __atomic_store_n(&pool->generation, pool->generation + 1, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->lock);
    pool_drain(pool);
    for (int spin = 0; spin < KILN_CALLER_SPINS && __atomic_load_n(&pool->done, __ATOMIC_ACQUIRE) < tasks; spin++)
      spin_pause(spin);
    if (__atomic_load_n(&pool->done, __ATOMIC_ACQUIRE) < tasks) {
      pthread_mutex_lock(&pool->lock);
      while (__atomic_load_n(&pool->done, __ATOMIC_ACQUIRE) < tasks) pthread_cond_wait(&pool->finished, &pool->lock);
      pthread_mutex_unlock(&pool->lock);
    }
    return;
  }
#endif
  for (size_t t = 0; t < tasks; t++) task(context, t);
}

/* Per thread where the target's TLS needs nothing from a C runtime; per process on Windows and
   Android, whose TLS would (a freestanding artifact links no C runtime). */
#if defined(_WIN32) || defined(__ANDROID__)
static char last_error[512];
#else
static _Thread_local char last_error[512];
#endif

/* last_error = the pieces, concatenated and cut to fit. */
static void set_error(const char *a, const char *b, const char *c) {
  const char *parts[3] = {a, b, c};
  size_t used = 0;
  for (int i = 0; i < 3; i++)
    for (const char *p = parts[i]; p && *p && used + 1 < sizeof last_error; p++) last_error[used++] = *p;
  last_error[used] = 0;
}

KILN_API const char *kiln_last_error(void) { return last_error; }

KILN_API int kiln_abi_version(void) { return KILN_ABI_VERSION; }

static unsigned cpu_features(void) {
  unsigned features = 0;
#if defined(__x86_64__) || defined(__i386__)
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
  unsigned leaf1 = c;
  unsigned leaf7 = 0, leaf7c = 0, leaf7d = 0, leaf7s1 = 0;
  if (__get_cpuid_max(0, 0) >= 7) {
    __cpuid_count(7, 0, a, b, c, d);
    leaf7 = b, leaf7c = c, leaf7d = d;
    if (a >= 1) {
      __cpuid_count(7, 1, a, b, c, d);
      leaf7s1 = a;
    }
  }
  /* The OS must save the vector registers too (XCR0), or the instructions fault. */
  unsigned xcr0 = 0;
  if (leaf1 & (1u << 27)) {
    unsigned high;
    __asm__ volatile("xgetbv" : "=a"(xcr0), "=d"(high) : "c"(0));
  }
  int ymm = (xcr0 & 0x6) == 0x6, zmm = (xcr0 & 0xE6) == 0xE6;
  if (ymm && (leaf1 & (1u << 28))) features |= KILN_FEATURE_AVX;
  if (ymm && (leaf7 & (1u << 5))) features |= KILN_FEATURE_AVX2;
  if (ymm && (leaf1 & (1u << 12))) features |= KILN_FEATURE_FMA;
  if (ymm && (leaf1 & (1u << 29))) features |= KILN_FEATURE_F16C;
  if (zmm && (leaf7 & (1u << 16))) features |= KILN_FEATURE_AVX512F;
  if (zmm && (leaf7 & (1u << 17))) features |= KILN_FEATURE_AVX512DQ;
  if (zmm && (leaf7 & (1u << 30))) features |= KILN_FEATURE_AVX512BW;
  if (zmm && (leaf7 & (1u << 31))) features |= KILN_FEATURE_AVX512VL;
  if (zmm && (leaf7c & (1u << 11))) features |= KILN_FEATURE_AVX512VNNI;
  if (zmm && (leaf7s1 & (1u << 5))) features |= KILN_FEATURE_AVX512BF16;
  if (zmm && (leaf7d & (1u << 23))) features |= KILN_FEATURE_AVX512FP16;
#elif defined(__aarch64__)
  features |= KILN_FEATURE_NEON;
  if (getauxval(16 /* AT_HWCAP */) & (1ul << 20) /* HWCAP_ASIMDDP */) features |= KILN_FEATURE_DOTPROD;
#elif defined(__arm__)
  unsigned long hwcap = getauxval(16 /* AT_HWCAP */);
  if (hwcap & (1ul << 12)) features |= KILN_FEATURE_NEON;
  if (hwcap & (1ul << 16)) features |= KILN_FEATURE_VFPV4;
#endif
  return features;
}

static void describe_missing(unsigned missing, char *out, size_t size) {
  static const char *names[] = {"avx",      "avx2",     "fma",  "f16c",    "avx512f",    "avx512dq",   "avx512bw",
                                "avx512vl", "neon",     "vfpv4", "dotprod", "avx512vnni", "avx512bf16", "avx512fp16"};
  size_t used = 0;
  for (unsigned bit = 0; bit < sizeof names / sizeof names[0]; bit++)
    if (missing & (1u << bit)) {
      const char *pieces[2] = {used ? ", " : "", names[bit]};
      for (int i = 0; i < 2; i++)
        for (const char *p = pieces[i]; *p && used + 1 < size; p++) out[used++] = *p;
    }
  out[used] = 0;
}

/* 64-byte aligned blocks on top of the system allocator; the original pointer sits just before. Blocks of
   4 MiB or more (the weights, the arena) start on a 2 MiB boundary and ask Linux for transparent huge pages
   (where THP is "madvise", as on Debian, malloc's pages are 4 KiB): a layer streaming megabytes of weights
   or activations then needs one TLB entry per 2 MiB instead of 512. */
#define KILN_HUGE_BYTES ((size_t)2 << 20)
#ifndef KILN_HUGE_PAGES
#define KILN_HUGE_PAGES 1 /* -DKILN_HUGE_PAGES=0 for A/B runs (benchmarks/ab-kernels.sh) */
#endif
static void *aligned(size_t bytes) {
  size_t total = bytes + 64 + sizeof(void *);
#if defined(_WIN32)
  uint8_t *raw = HeapAlloc(GetProcessHeap(), 0, total);
#else
  uint8_t *raw = NULL;
  if (KILN_HUGE_PAGES && total >= 2 * KILN_HUGE_BYTES) {
    size_t rounded = (total + KILN_HUGE_BYTES - 1) / KILN_HUGE_BYTES * KILN_HUGE_BYTES;
    void *block = NULL;
    if (posix_memalign(&block, KILN_HUGE_BYTES, rounded) == 0 && block) {
      (void)madvise(block, rounded, KILN_MADV_HUGEPAGE);
      raw = block;
    }
  }
  if (!raw) raw = malloc(total);
#endif
  if (!raw) return NULL;
  uintptr_t start = ((uintptr_t)raw + sizeof(void *) + 63) & ~(uintptr_t)63;
  ((void **)start)[-1] = raw;
  return (void *)start;
}

static void release(void *block) {
  if (!block) return;
  void *raw = ((void **)block)[-1];
#if defined(_WIN32)
  HeapFree(GetProcessHeap(), 0, raw);
#else
  free(raw);
#endif
}

/* Reads exactly `size` bytes of the file at `path` into `buffer`: 0 when the file holds exactly
   that many, 1 when it cannot be opened, 2 when its size differs. */
static int read_exactly(const char *path, uint8_t *buffer, size_t size) {
  size_t done = 0;
  uint8_t extra;
#if defined(_WIN32)
  kiln_handle file = CreateFileA(path, 0x80000000u /* GENERIC_READ */, 1 /* FILE_SHARE_READ */, NULL,
                                 3 /* OPEN_EXISTING */, 0x80 /* FILE_ATTRIBUTE_NORMAL */, NULL);
  if (file == (kiln_handle)(intptr_t)-1) return 1;
  for (;;) {
    size_t want = size - done;
    unsigned long got = 0;
    int ok = want ? ReadFile(file, buffer + done, want > (1u << 30) ? (1u << 30) : (unsigned long)want, &got, NULL)
                  : ReadFile(file, &extra, 1, &got, NULL);
    if (!ok) break;
    if (!want) {
      CloseHandle(file);
      return got == 0 ? 0 : 2;
    }
    if (got == 0) break;
    done += got;
  }
  CloseHandle(file);
  return 2;
#else
  int file = open(path, 0 /* O_RDONLY */);
  if (file < 0) return 1;
  for (;;) {
    size_t want = size - done;
    ptrdiff_t got = want ? read(file, buffer + done, want > (1u << 30) ? (1u << 30) : want) : read(file, &extra, 1);
    if (got < 0) break;
    if (!want) {
      close(file);
      return got == 0 ? 0 : 2;
    }
    if (got == 0) break;
    done += (size_t)got;
  }
  close(file);
  return 2;
#endif
}

/* The path of the file beside this artifact's shared object, or 0 when it cannot be found. */
static int beside_library(const char *name, char *path, size_t size) {
  size_t used = 0;
#if defined(_WIN32)
  kiln_handle module = NULL;
  if (!GetModuleHandleExA(4 | 2 /* FROM_ADDRESS | UNCHANGED_REFCOUNT */, (const char *)(void *)&kiln_create,
                          &module))
    return 0;
  used = GetModuleFileNameA(module, path, (unsigned long)size);
  if (used == 0 || used >= size) return 0;
#else
  kiln_dl_info self;
  if (!dladdr((const void *)&kiln_create, &self) || !self.dli_fname) return 0;
  for (const char *p = self.dli_fname; *p && used + 1 < size; p++) path[used++] = *p;
  path[used] = 0;
#endif
  size_t cut = 0;
  for (size_t i = 0; i < used; i++)
    if (path[i] == '/' || path[i] == '\\') cut = i + 1;
  used = cut;
  for (const char *p = name; *p && used + 1 < size; p++) path[used++] = *p;
  path[used] = 0;
  return 1;
}

KILN_API kiln_model *kiln_create(const char *weights_path, int threads) {
  last_error[0] = 0;
  const kiln_model_info *info = &kiln_model_description;
  unsigned have = cpu_features();
  const kiln_variant_info *chosen = NULL;
  for (int i = 0; i < info->variant_count && !chosen; i++)
    if ((info->variants[i].required_features & ~have) == 0) chosen = &info->variants[i];
  if (!chosen) {
    char missing[128];
    describe_missing(info->variants[info->variant_count - 1].required_features & ~have, missing, sizeof missing);
    set_error("this CPU lacks instruction sets the model's code needs: ", missing,
              "; compile for a target this CPU supports");
    return NULL;
  }
  char path[4096];
  if (!weights_path) {
    if (!beside_library("weights.bin", path, sizeof path)) {
      set_error("cannot find the shared object's directory to load weights.bin", NULL, NULL);
      return NULL;
    }
    weights_path = path;
  }
  kiln_model *model = aligned(sizeof *model);
  if (!model) {
    set_error("out of memory", NULL, NULL);
    return NULL;
  }
  memset(model, 0, sizeof *model);
  model->info = info;
  model->variant = chosen;
  model->threads = threads < 1 ? 1 : threads;
  model->weights = aligned(info->weights_bytes);
  model->arena = aligned(info->arena_bytes);
  if (!model->weights || !model->arena) {
    kiln_destroy(model);
    set_error("out of memory allocating the arena and weights", NULL, NULL);
    return NULL;
  }
  int status = read_exactly(weights_path, model->weights, info->weights_bytes);
  if (status != 0) {
    if (status == 1)
      set_error("cannot open the weights file ", weights_path, NULL);
    else
      set_error("the weights file ", weights_path, " does not match this model (wrong size)");
    kiln_destroy(model);
    return NULL;
  }
#if KILN_HAVE_THREADS
  if (model->threads > 1) {
    kiln_pool *pool = aligned(sizeof *pool);
    if (!pool) {
      kiln_destroy(model);
      set_error("out of memory", NULL, NULL);
      return NULL;
    }
    memset(pool, 0, sizeof *pool);
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->wake, NULL);
    pthread_cond_init(&pool->finished, NULL);
    model->pool = pool;
    int wanted = model->threads - 1 < KILN_MAX_THREADS ? model->threads - 1 : KILN_MAX_THREADS;
    for (int i = 0; i < wanted; i++) {
      if (pthread_create(&pool->threads[i], NULL, pool_worker, pool) != 0) break;
      pool->workers++;
    }
    pool->caller_cpu = -1;
    model->threads = pool->workers + 1;
  }
#else
  model->threads = 1;
#endif
  return model;
}

#define CHECK_INDEX(list, count, fallback) \
  if (!model || index < 0 || index >= model->info->count) return fallback;

KILN_API int kiln_input_count(const kiln_model *model) { return model ? model->info->input_count : 0; }
KILN_API int kiln_output_count(const kiln_model *model) { return model ? model->info->output_count : 0; }
KILN_API const char *kiln_input_name(const kiln_model *model, int index) {
  CHECK_INDEX(inputs, input_count, NULL) return model->info->inputs[index].name;
}
KILN_API int kiln_input_dtype(const kiln_model *model, int index) {
  CHECK_INDEX(inputs, input_count, 0) return model->info->inputs[index].dtype;
}
KILN_API int kiln_input_rank(const kiln_model *model, int index) {
  CHECK_INDEX(inputs, input_count, -1) return model->info->inputs[index].rank;
}
KILN_API const int64_t *kiln_input_shape(const kiln_model *model, int index) {
  CHECK_INDEX(inputs, input_count, NULL) return model->info->inputs[index].shape;
}
KILN_API const char *kiln_output_name(const kiln_model *model, int index) {
  CHECK_INDEX(outputs, output_count, NULL) return model->info->outputs[index].name;
}
KILN_API int kiln_output_dtype(const kiln_model *model, int index) {
  CHECK_INDEX(outputs, output_count, 0) return model->info->outputs[index].dtype;
}
KILN_API int kiln_output_rank(const kiln_model *model, int index) {
  CHECK_INDEX(outputs, output_count, -1) return model->info->outputs[index].rank;
}
KILN_API const int64_t *kiln_output_shape(const kiln_model *model, int index) {
  CHECK_INDEX(outputs, output_count, NULL) return model->info->outputs[index].shape;
}
KILN_API const char *kiln_variant(const kiln_model *model) { return model ? model->variant->name : NULL; }

KILN_API int kiln_run(kiln_model *model, const void *const *inputs, void *const *outputs) {
  last_error[0] = 0;
  if (!model) {
    set_error("kiln_run called with a NULL model", NULL, NULL);
    return 1;
  }
#if KILN_HAVE_THREADS
  kiln_pool *outer = current_pool;
  uint64_t *outer_profile = profile_sums, outer_last = profile_last;
  current_pool = model->pool;
  if (current_pool) {
    int cpu = sched_getcpu();
    if (cpu != current_pool->caller_cpu) keep_off_cpu(current_pool, cpu);
  }
  profile_sums = model->profile;
  if (profile_sums) profile_last = now_nanoseconds();
  int status = model->variant->run(model->weights, model->arena, inputs, outputs);
  current_pool = outer;
  profile_sums = outer_profile;
  profile_last = outer_last;
#else
  int status = model->variant->run(model->weights, model->arena, inputs, outputs);
#endif
  if (status != 0) set_error("the model failed at run time: ", status == 2 ? "an index is out of range" : "error", NULL);
  return status;
}

KILN_API int kiln_node_count(const kiln_model *model) { return model ? model->info->node_count : 0; }

KILN_API const char *kiln_node_label(const kiln_model *model, int index) {
  CHECK_INDEX(node_labels, node_count, NULL) return model->info->node_labels[index];
}

KILN_API int kiln_profile(kiln_model *model, uint64_t *nanoseconds) {
  last_error[0] = 0;
  if (!model) {
    set_error("kiln_profile called with a NULL model", NULL, NULL);
    return 1;
  }
#if KILN_HAVE_THREADS
  model->profile = nanoseconds;
  return 0;
#else
  (void)nanoseconds;
  set_error("this artifact cannot time its steps: profiling needs a Linux (glibc) target", NULL, NULL);
  return 1;
#endif
}

KILN_API void kiln_destroy(kiln_model *model) {
  if (!model) return;
#if KILN_HAVE_THREADS
  kiln_pool *pool = model->pool;
  if (pool) {
    pthread_mutex_lock(&pool->lock);
    __atomic_store_n(&pool->stopping, 1, __ATOMIC_RELAXED);
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->lock);
    for (int i = 0; i < pool->workers; i++) pthread_join(pool->threads[i], NULL);
    pthread_cond_destroy(&pool->finished);
    pthread_cond_destroy(&pool->wake);
    pthread_mutex_destroy(&pool->lock);
    release(pool);
  }
#endif
  release(model->weights);
  release(model->arena);
  release(model);
}
