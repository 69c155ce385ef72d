// cuda_emulator.h: just enough of the CUDA execution model to run kernels/*.cu on a CPU.
//
// The emulator's RawModule (cupy/_raw_module.py) compiles a kernel file with g++ after including
// this header, and launches kernels through emulator_launch(). A launch runs the blocks of the grid
// one after the other on the calling OS thread. Each CUDA thread of a block is a fiber (ucontext):
// fibers run one at a time, in thread-index order, each until it calls __syncthreads() or returns;
// when every fiber of the block is waiting, the barrier opens and the next round starts. So barriers
// and shared memory behave as on a GPU, deterministically, with no OS threads to create.
//
// Checked, and reported to Python as a LaunchStatus:
//   - the argument types must equal the kernel's parameter types exactly (no conversions);
//   - the launch shape must be one a GPU accepts (at most 1024 threads per block, and so on);
//   - a __syncthreads() that some threads of the block reach while others have already returned;
//   - running out of memory for the fiber stacks.
// A memory fault (an index past the end of an array: the Python side puts an inaccessible page after
// every array it allocates) prints the kernel, block and thread, then crashes as before.
#pragma once

#include <math.h>
#include <signal.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

// ---- the CUDA C vocabulary the kernels use --------------------------------------------------
struct dim3 {
    unsigned int x = 1, y = 1, z = 1;
};
struct uint3 {
    unsigned int x = 0, y = 0, z = 0;
};

// The indices of the running CUDA thread. thread_local: they belong to the OS thread running the
// launch, and the scheduler rewrites threadIdx before it resumes each fiber.
inline thread_local uint3 threadIdx, blockIdx;
inline thread_local dim3 blockDim, gridDim;

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
// Shared memory: one static variable per kernel instantiation, seen by every fiber of the block.
// Blocks run one after another, so a block finds what the previous block left (a GPU gives garbage).
#define __shared__ static thread_local
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
#define __restrict__ __restrict

inline float __int_as_float(int bits)
{
    float value;
    std::memcpy(&value, &bits, sizeof value);
    return value;
}
inline double __longlong_as_double(long long bits)
{
    double value;
    std::memcpy(&value, &bits, sizeof value);
    return value;
}

// Atomics: the fibers of a launch run one at a time and switch only at __syncthreads(), so a plain
// read-modify-write is atomic here. CUDA's overloads for the integer types the kernels use.
template <typename T>
inline T emulated_atomic_min(T* address, T value)
{
    const T old = *address;
    *address = value < old ? value : old;
    return old;
}
inline int atomicMin(int* address, int value) { return emulated_atomic_min(address, value); }
inline unsigned int atomicMin(unsigned int* address, unsigned int value) { return emulated_atomic_min(address, value); }
inline long long atomicMin(long long* address, long long value) { return emulated_atomic_min(address, value); }
inline unsigned long long atomicMin(unsigned long long* address, unsigned long long value)
{
    return emulated_atomic_min(address, value);
}

namespace cuda_emulator {

// What a launch returns to Python (cupy/_raw_module.py turns each failure into an exception).
enum LaunchStatus : int {
    LAUNCH_OK = 0,
    LAUNCH_BAD_ARGUMENTS = 1,
    LAUNCH_BAD_SHAPE = 2,
    LAUNCH_DIVERGENT_BARRIER = 3,
    LAUNCH_OUT_OF_MEMORY = 4,
};

constexpr size_t FIBER_STACK_BYTES = 256 * 1024;  // far more than any kernel here needs
constexpr unsigned int MAX_THREADS_PER_BLOCK = 1024;

// ---- parameter types, spelled as C (the Python side spells its arguments the same way) --------
template <typename T> constexpr const char* scalar_name()
{
    using Plain = std::remove_cv_t<T>;
    if constexpr (std::is_same_v<Plain, float>) return "float";
    else if constexpr (std::is_same_v<Plain, double>) return "double";
    else if constexpr (std::is_same_v<Plain, long long>) return "long long";
    else if constexpr (std::is_same_v<Plain, int>) return "int";
    else if constexpr (std::is_same_v<Plain, unsigned int>) return "unsigned int";
    else if constexpr (std::is_same_v<Plain, unsigned char>) return "unsigned char";
    else return "unsupported";
}

template <typename P> std::string_view parameter_name()
{
    using Plain = std::remove_cv_t<std::remove_reference_t<P>>;
    static const std::string name = [] {
        if constexpr (std::is_pointer_v<Plain>) return std::string(scalar_name<std::remove_pointer_t<Plain>>()) + "*";
        else return std::string(scalar_name<Plain>());
    }();
    return name;
}

// "float*,float*,long long,float,float" for a kernel (const is dropped: it does not change the ABI).
template <typename... P> const char* signature_of(void (*)(P...))
{
    static const std::string signature = [] {
        std::string joined;
        ((joined += std::string(parameter_name<P>()) + ","), ...);
        if (!joined.empty()) joined.pop_back();
        return joined;
    }();
    return signature.c_str();
}

// ---- fibers -----------------------------------------------------------------------------------
struct Fiber {
    ucontext_t context;
    uint3 thread_index;
    bool finished = false;
};

struct BlockScheduler {
    ucontext_t scheduler_context;
    std::vector<Fiber> fibers;
    std::vector<char*> stacks;  // fiber stacks, kept for the next launch (mapping them is slow)
    Fiber* running = nullptr;
    void (*body)(void*) = nullptr;   // runs the kernel once, for the current threadIdx
    void* body_state = nullptr;
    const char* kernel_name = "";
};

inline thread_local BlockScheduler scheduler;

// At least `count` fiber stacks of FIBER_STACK_BYTES, each above an inaccessible guard page (so an
// overflow faults at once instead of overwriting the next stack).
inline bool ensure_stacks(size_t count)
{
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    while (scheduler.stacks.size() < count) {
        void* mapping = mmap(nullptr, FIBER_STACK_BYTES + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                             -1, 0);
        if (mapping == MAP_FAILED) return false;
        if (mprotect(mapping, page, PROT_NONE) != 0) return false;
        scheduler.stacks.push_back(static_cast<char*>(mapping) + page);
    }
    return true;
}

inline void fiber_main()
{
    scheduler.body(scheduler.body_state);
    scheduler.running->finished = true;
    // returning resumes scheduler_context (uc_link)
}

// ---- memory faults: name the kernel, block and thread, then let the previous handler crash ----
inline thread_local struct sigaction previous_segv_action, previous_bus_action;

inline void report_memory_fault(int signal_number, siginfo_t* info, void* context)
{
    char message[512];
    const int length = std::snprintf(
        message, sizeof message,
        "\ncuda emulator: invalid memory access at %p in kernel %s, block (%u, %u, %u), thread (%u, %u, %u): "
        "an index outside an array (every emulated array ends at an inaccessible page) or a fiber stack "
        "overflow\n",
        info->si_addr, scheduler.kernel_name, blockIdx.x, blockIdx.y, blockIdx.z, threadIdx.x, threadIdx.y,
        threadIdx.z);
    if (length > 0) {
        [[maybe_unused]] ssize_t written = write(STDERR_FILENO, message, (size_t)length);
    }
    const struct sigaction& previous = signal_number == SIGSEGV ? previous_segv_action : previous_bus_action;
    sigaction(signal_number, &previous, nullptr);
    if ((previous.sa_flags & SA_SIGINFO) && previous.sa_sigaction != nullptr) {
        previous.sa_sigaction(signal_number, info, context);
    } else {
        raise(signal_number);  // the default action (or the previous plain handler) takes over
    }
}

// Installs report_memory_fault for the duration of a launch, on an alternate stack (so that a fiber
// stack overflow can be reported too).
class MemoryFaultReporter {
public:
    MemoryFaultReporter()
    {
        static thread_local std::vector<char> alternate_stack(64 * 1024);
        stack_t stack{};
        stack.ss_sp = alternate_stack.data();
        stack.ss_size = alternate_stack.size();
        sigaltstack(&stack, &previous_stack_);
        struct sigaction action{};
        action.sa_sigaction = report_memory_fault;
        action.sa_flags = SA_SIGINFO | SA_ONSTACK;
        sigemptyset(&action.sa_mask);
        sigaction(SIGSEGV, &action, &previous_segv_action);
        sigaction(SIGBUS, &action, &previous_bus_action);
    }
    ~MemoryFaultReporter()
    {
        sigaction(SIGSEGV, &previous_segv_action, nullptr);
        sigaction(SIGBUS, &previous_bus_action, nullptr);
        sigaltstack(&previous_stack_, nullptr);
    }

private:
    stack_t previous_stack_{};
};

// ---- one block: every fiber runs until it waits at a barrier or returns, round after round -----
inline LaunchStatus run_block(dim3 block)
{
    const unsigned int thread_count = block.x * block.y * block.z;
    scheduler.fibers.assign(thread_count, Fiber{});
    unsigned int position = 0;
    for (unsigned int z = 0; z < block.z; ++z)
        for (unsigned int y = 0; y < block.y; ++y)
            for (unsigned int x = 0; x < block.x; ++x) {
                Fiber& fiber = scheduler.fibers[position];
                fiber.thread_index = {x, y, z};
                getcontext(&fiber.context);
                fiber.context.uc_stack.ss_sp = scheduler.stacks[position];
                fiber.context.uc_stack.ss_size = FIBER_STACK_BYTES;
                fiber.context.uc_link = &scheduler.scheduler_context;
                makecontext(&fiber.context, fiber_main, 0);
                ++position;
            }
    unsigned int live = thread_count;
    while (live > 0) {
        unsigned int waiting = 0;
        for (Fiber& fiber : scheduler.fibers) {
            if (fiber.finished) continue;
            threadIdx = fiber.thread_index;
            scheduler.running = &fiber;
            swapcontext(&scheduler.scheduler_context, &fiber.context);
            if (!fiber.finished) ++waiting;
        }
        // Every fiber that did not return is waiting at a barrier; if some returned in this round,
        // the barrier was not reached by the whole block.
        if (waiting > 0 && waiting != live) return LAUNCH_DIVERGENT_BARRIER;
        live = waiting;
    }
    return LAUNCH_OK;
}

inline bool valid_shape(dim3 grid, dim3 block)
{
    const unsigned long long threads = (unsigned long long)block.x * block.y * block.z;
    return grid.x >= 1 && grid.y >= 1 && grid.z >= 1 && grid.x <= 2147483647u && grid.y <= 65535 &&
           grid.z <= 65535 && block.x >= 1 && block.y >= 1 && block.z >= 1 && block.x <= 1024 &&
           block.y <= 1024 && block.z <= 64 && threads <= MAX_THREADS_PER_BLOCK;
}

template <typename... P, size_t... I>
void call_kernel(void (*kernel)(P...), void** arguments, std::index_sequence<I...>)
{
    kernel(*static_cast<std::remove_cv_t<std::remove_reference_t<P>>*>(arguments[I])...);
}

// Runs kernel<<<grid, block>>>(arguments...) after checking `signature` against its parameters.
template <typename... P>
int launch(void (*kernel)(P...), const char* kernel_name, dim3 grid, dim3 block, void** arguments,
           const char* signature)
{
    if (std::strcmp(signature, signature_of(kernel)) != 0) return LAUNCH_BAD_ARGUMENTS;
    if (!valid_shape(grid, block)) return LAUNCH_BAD_SHAPE;
    if (!ensure_stacks((size_t)block.x * block.y * block.z)) return LAUNCH_OUT_OF_MEMORY;
    auto run_once = [&] { call_kernel(kernel, arguments, std::index_sequence_for<P...>{}); };
    scheduler.body = [](void* state) { (*static_cast<decltype(run_once)*>(state))(); };
    scheduler.body_state = &run_once;
    scheduler.kernel_name = kernel_name;
    gridDim = grid;
    blockDim = block;
    MemoryFaultReporter reporter;
    for (unsigned int z = 0; z < grid.z; ++z)
        for (unsigned int y = 0; y < grid.y; ++y)
            for (unsigned int x = 0; x < grid.x; ++x) {
                blockIdx = {x, y, z};
                const LaunchStatus status = run_block(block);
                if (status != LAUNCH_OK) return status;
            }
    return LAUNCH_OK;
}

}  // namespace cuda_emulator

// The running fiber waits here until every thread of its block has arrived.
inline void __syncthreads()
{
    using cuda_emulator::scheduler;
    swapcontext(&scheduler.running->context, &scheduler.scheduler_context);
}
