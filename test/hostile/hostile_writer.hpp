// A hostile second process: it maps a live segment by itself and writes
// garbage into chosen words (the shared header, the structure's control
// words, the attach table, the lock words) while the process under test
// keeps using the segment.
//
// Two rhythms: *continuous* (garbage without pause until told to stop, for
// words whose corruption the user can only notice, never wait on) and
// *lockstep* (one burst per round, answered through a pipe, for words that
// readers retry on while they change, such as a seqlock's sequence).
#ifndef SHMKIT_TEST_HOSTILE_HOSTILE_WRITER_HPP
#define SHMKIT_TEST_HOSTILE_HOSTILE_WRITER_HPP

#include "specimens.hpp"

#include <shmkit/detail/kv_layout.hpp>
#include <shmkit/detail/share_layout.hpp>

#include <shmkit/sync/futex.hpp>

#include <random>

namespace hostile {

/// Bytes [offset, offset + length) of a file, garbaged `word` bytes at a time.
struct span_of_words {
    std::string name;
    std::uint64_t offset = 0, length = 0;
    unsigned word = 8; ///< 8 or 4 (a 4-byte length word that is not 8-aligned)
};

/// The validated layout of the segment in `path`, read from its header.
struct layout_of {
    shmkit::detail::segment_header h{};
    explicit layout_of(const std::string& path)
    {
        const std::string bytes = content_of(path);
        if (bytes.size() < sizeof h) throw std::runtime_error("not a segment: " + path);
        std::memcpy(static_cast<void*>(&h), bytes.data(), sizeof h);
    }
    span_of_words header() const { return {"header", 0, shmkit::detail::header_size}; }
    span_of_words attach_table() const
    {
        return {"attach table", h.attach_offset, 64 + std::uint64_t(h.attach_capacity) * 64};
    }
    span_of_words locks() const
    {
        return {"lock words", h.sync_offset, (std::uint64_t(h.n_rwlocks) + h.n_mutexes) * 64};
    }
    span_of_words data(const char* name, std::uint64_t offset, std::uint64_t length, unsigned word = 8) const
    {
        return {name, h.data_offset + offset, length, word};
    }
};

/// Garbage: random words, and the values that break arithmetic most.
class garbage {
public:
    explicit garbage(std::uint64_t seed) : rng_(seed) {}
    std::uint64_t next()
    {
        static const std::uint64_t nasty[] = {0,
                                              ~0ull,
                                              1,
                                              7,
                                              8,
                                              255,
                                              4096,
                                              0x7fffffffull,
                                              0xffffffffull,
                                              0x100000000ull,
                                              0x7fffffffffffffffull,
                                              0x8000000000000000ull,
                                              0xfffffffffffffff0ull,
                                              0x0000ffff00000000ull,
                                              0x5555555555555555ull};
        const std::uint64_t r = rng_();
        switch (r % 4) {
        case 0: return nasty[(r >> 8) % (sizeof nasty / sizeof nasty[0])];
        case 1: return (r >> 8) % 4096; // small: a plausible index or length
        default: return rng_();
        }
    }
    std::uint64_t below(std::uint64_t n) { return n ? rng_() % n : 0; }

private:
    std::mt19937_64 rng_;
};

/// Writes garbage into `spans` of the mapping at `base` of `size` bytes:
/// `words` stores.
inline void write_garbage(char* base, std::size_t size, const std::vector<span_of_words>& spans, garbage& g,
                          int words)
{
    if (spans.empty()) return;
    for (int k = 0; k < words; ++k) {
        const span_of_words& sp = spans[g.below(spans.size())];
        const std::uint64_t n = sp.length / sp.word;
        if (n == 0) continue;
        const std::uint64_t offset = sp.offset + g.below(n) * sp.word;
        if (offset > size || size - offset < sp.word) continue;
        char* at = base + offset;
        const std::uint64_t v = g.next();
        if (sp.word == 8) __atomic_store_n(reinterpret_cast<std::uint64_t*>(at), v, __ATOMIC_RELAXED);
        else __atomic_store_n(reinterpret_cast<std::uint32_t*>(at), static_cast<std::uint32_t>(v), __ATOMIC_RELAXED);
    }
}

/// Maps the whole file at `path` read-write by itself (as any process with
/// write permission can), or attaches System V segment N for "shmid:N";
/// unmapped on scope exit.
class raw_mapping {
public:
    explicit raw_mapping(const std::string& path)
    {
        if (path.rfind("shmid:", 0) == 0) {
            void* a = ::shmat(std::stoi(path.substr(6)), nullptr, 0);
            if (a == reinterpret_cast<void*>(-1)) throw std::runtime_error("cannot attach " + path);
            base_ = static_cast<char*>(a);
            sysv_ = true;
            shmid_ds ds{};
            if (::shmctl(std::stoi(path.substr(6)), IPC_STAT, &ds) == 0) size_ = ds.shm_segsz;
            return;
        }
        const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || ::fstat(fd, &st) != 0) throw std::runtime_error("cannot open " + path);
        size_ = static_cast<std::size_t>(st.st_size);
        void* p = ::mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        ::close(fd);
        if (p == MAP_FAILED) throw std::runtime_error("cannot map " + path);
        base_ = static_cast<char*>(p);
    }
    ~raw_mapping()
    {
        if (sysv_) ::shmdt(base_);
        else ::munmap(base_, size_);
    }
    raw_mapping(const raw_mapping&) = delete;
    raw_mapping& operator=(const raw_mapping&) = delete;
    char* base() const noexcept { return base_; }
    std::size_t size() const noexcept { return size_; }

private:
    char* base_ = nullptr;
    std::size_t size_ = 0;
    bool sysv_ = false;
};

/// Where the garbage goes: a fixed file, or one found again at every burst
/// (a kv_store's current table, which growth replaces).
struct garbage_target {
    std::function<std::string()> path;
    std::function<std::vector<span_of_words>(const std::string& path)> spans;
};

/// The spans of each file, learnt the first time the writer sees it: the
/// writer garbages the header it learnt them from.
class span_cache {
public:
    explicit span_cache(const garbage_target& t) : t_(t) {}
    const std::vector<span_of_words>& of(const std::string& path)
    {
        if (path != path_) {
            spans_ = t_.spans(path);
            path_ = path;
        }
        return spans_;
    }

private:
    const garbage_target& t_;
    std::string path_;
    std::vector<span_of_words> spans_;
};

/// The hostile process, continuous rhythm: writes garbage into the target
/// until told to stop. The constructor returns once the first garbage is
/// written; finish() (or the destructor) stops and reaps it.
class continuous_writer {
public:
    continuous_writer(const garbage_target& t, std::uint64_t seed)
        : flags_(test::shared_scratch<flags>()),
          child_([t, seed, f = flags_] {
              garbage g(seed);
              span_cache spans(t);
              while (f->stop.load(std::memory_order_relaxed) == 0) {
                  const std::string path = t.path();
                  if (path.empty()) continue;
                  try {
                      raw_mapping m(path);
                      const std::vector<span_of_words>& where = spans.of(path);
                      for (int burst = 0; burst < 64 && f->stop.load(std::memory_order_relaxed) == 0; ++burst) {
                          write_garbage(m.base(), m.size(), where, g, 256);
                          if (f->bursts.fetch_add(1) == 0) shmkit::sync::futex_wake(f->bursts);
                      }
                  } catch (const std::exception&) {
                      // The file went (a table replaced): find the next one.
                  }
              }
              return 0;
          })
    {
        const auto deadline = shmkit::deadline_clock::now() + std::chrono::seconds(20);
        while (flags_->bursts.load() == 0 && shmkit::deadline_clock::now() < deadline)
            shmkit::sync::futex_wait_until(flags_->bursts, 0, deadline);
    }
    ~continuous_writer() { finish(); }
    /// Stops the writer; its exit status (0 unless it crashed).
    int finish()
    {
        if (done_) return status_;
        flags_->stop.store(1);
        status_ = child_.wait(std::chrono::seconds(20));
        done_ = true;
        ::munmap(flags_, sizeof *flags_);
        return status_;
    }
    /// Bursts written so far.
    std::uint32_t bursts() const { return flags_->bursts.load(); }

private:
    struct flags {
        std::atomic<int> stop;
        std::atomic<std::uint32_t> bursts;
    };
    flags* flags_;
    test::child child_;
    bool done_ = false;
    int status_ = 0;
};

/// The hostile process, lockstep rhythm: one burst of garbage per burst().
class lockstep_writer {
public:
    lockstep_writer(const garbage_target& t, std::uint64_t seed, int words_per_burst)
        : child_([this, t, seed, words_per_burst] {
              garbage g(seed);
              span_cache spans(t);
              ::close(to_writer_.wr);
              ::close(from_writer_.rd);
              to_writer_.wr = from_writer_.rd = -1;
              while (to_writer_.receive() == 'g') {
                  const std::string path = t.path();
                  if (!path.empty()) {
                      raw_mapping m(path);
                      write_garbage(m.base(), m.size(), spans.of(path), g, words_per_burst);
                  }
                  from_writer_.send('d');
              }
              return 0;
          })
    {
        // The writer's ends: a writer that dies is then seen as an EOF.
        ::close(to_writer_.rd);
        ::close(from_writer_.wr);
        to_writer_.rd = from_writer_.wr = -1;
    }
    /// One burst, written before this returns; false if the writer is gone.
    bool burst()
    {
        to_writer_.send('g');
        return from_writer_.receive() == 'd';
    }
    int finish()
    {
        to_writer_.send('q');
        return child_.wait(std::chrono::seconds(20));
    }

private:
    test::pipe_pair to_writer_, from_writer_;
    test::child child_;
};

} // namespace hostile

#endif
